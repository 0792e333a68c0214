"""citypair pilot_zones: Digital Silk Road pilot-zone proposals, from draft to delivery."""
