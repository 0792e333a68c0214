"""What an operator watches of identity, besides every service's own metrics (citypair_shared.metrics)."""

from prometheus_client import Counter

# A spike of failures is password guessing; of throttles, guessing that is being held back.
SIGN_INS = Counter("identity_sign_ins_total", "Sign-in attempts by outcome", ["outcome"])
