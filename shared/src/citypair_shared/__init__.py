"""The citypair shared library: what every service needs to read and write the same way."""
