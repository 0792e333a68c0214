"""Events the `pilot_zones` service publishes, one type per workflow transition."""

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
ProposalApproved = _transition_event("approved")
ProposalRejected = _transition_event("rejected")
ProposalActivated = _transition_event("activated")
ProposalCompleted = _transition_event("completed")
ProposalWithdrawn = _transition_event("withdrawn")

EVENT_FOR_STATUS = {
    "submitted": ProposalSubmitted,
    "approved": ProposalApproved,
    "rejected": ProposalRejected,
    "active": ProposalActivated,
    "completed": ProposalCompleted,
    "withdrawn": ProposalWithdrawn,
}
