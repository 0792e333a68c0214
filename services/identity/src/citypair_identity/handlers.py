"""Events `identity` consumes: the ones users are notified of."""

from citypair_identity.notifications import NOTIFIED_TYPES, notify

EVENT_HANDLERS = dict.fromkeys(NOTIFIED_TYPES, notify)
