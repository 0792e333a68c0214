"""citypair profiles: city profiles and their history."""
