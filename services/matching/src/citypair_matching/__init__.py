"""citypair matching: two-sided partner suggestions over a projection of profiles."""
