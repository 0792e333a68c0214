"""Events `identity` consumes: the ones users are notified of (and mailed about, as each chose)."""

from citypair_identity.mailing import notify_and_mail
from citypair_identity.notifications import NOTIFIED_TYPES
from citypair_identity.service import IdentityContext


def event_handlers(ctx: IdentityContext) -> dict:
    return dict.fromkeys(NOTIFIED_TYPES, notify_and_mail(ctx))
