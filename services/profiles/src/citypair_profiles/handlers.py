"""Events `profiles` consumes: none yet (it only publishes)."""

EVENT_HANDLERS: dict = {}
