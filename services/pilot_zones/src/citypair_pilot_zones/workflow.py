"""The proposal workflow as data: which state may follow which. Pure, no I/O.

The states themselves are shared vocabulary (web labels them); the moves between them are this service's.
"""

from citypair_shared.vocabulary import Status

ALLOWED: dict[Status, frozenset[Status]] = {
    Status.draft: frozenset({Status.submitted, Status.withdrawn}),
    Status.submitted: frozenset({Status.under_review, Status.withdrawn}),
    Status.under_review: frozenset({Status.approved, Status.rejected, Status.changes_requested, Status.withdrawn}),
    Status.changes_requested: frozenset({Status.submitted, Status.withdrawn}),
    Status.approved: frozenset({Status.active}),
    Status.active: frozenset({Status.completed}),
    Status.rejected: frozenset(),
    Status.completed: frozenset(),
    Status.withdrawn: frozenset(),
}
OPEN = frozenset(s for s, nexts in ALLOWED.items() if nexts) - {Status.approved, Status.active}


def allowed_from(status: Status) -> list[str]:
    return sorted(ALLOWED[status])


def can_move(current: Status, target: Status) -> bool:
    return target in ALLOWED[current]


# Who makes which move: officials of member cities propose; coordinators decide and deliver.
PROPOSER_MOVES = frozenset({Status.submitted, Status.withdrawn})
COORDINATOR_MOVES = frozenset(Status) - PROPOSER_MOVES - {Status.draft}


def moves_for(*, member_official: bool, coordinator: bool) -> frozenset[Status]:
    return (PROPOSER_MOVES if member_official else frozenset()) | (COORDINATOR_MOVES if coordinator else frozenset())
