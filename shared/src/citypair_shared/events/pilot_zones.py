"""Events the `pilot_zones` service publishes: one type per workflow transition, and the stale flag."""

from datetime import datetime
from typing import ClassVar

from citypair_shared.events.envelope import EventData


class ProposalTransitioned(EventData):
    proposal_id: str
    title: str
    city_ids: list[str]
    themes: list[str] = []
    from_status: str
    to_status: str
    comment: str = ""


def _transition_event(status: str) -> type[ProposalTransitioned]:
    name = "Proposal" + status.title().replace("_", "")
    return type(name, (ProposalTransitioned,), {"event_type": f"pilot_zones.proposal.{status}.v1"})


ProposalSubmitted = _transition_event("submitted")
ProposalUnderReview = _transition_event("under_review")
ProposalChangesRequested = _transition_event("changes_requested")
ProposalApproved = _transition_event("approved")
ProposalRejected = _transition_event("rejected")
ProposalActivated = _transition_event("activated")
ProposalCompleted = _transition_event("completed")
ProposalWithdrawn = _transition_event("withdrawn")

EVENT_FOR_STATUS = {
    "submitted": ProposalSubmitted,
    "under_review": ProposalUnderReview,
    "changes_requested": ProposalChangesRequested,
    "approved": ProposalApproved,
    "rejected": ProposalRejected,
    "active": ProposalActivated,
    "completed": ProposalCompleted,
    "withdrawn": ProposalWithdrawn,
}


class ProposalStaleFlagged(EventData):
    """An active proposal went stale (no activity for a while, or a milestone overdue): once per episode."""

    event_type: ClassVar[str] = "pilot_zones.proposal.stale_flagged.v1"
    proposal_id: str
    title: str
    city_ids: list[str]
    coordinator_id: str | None = None
    reasons: list[str]
    last_activity_at: datetime
    overdue_milestones: list[str] = []


PROPOSAL_EVENTS = (*EVENT_FOR_STATUS.values(), ProposalStaleFlagged)
