"""citypair identity: users, roles, the official-to-city binding, sign-in and tokens."""
