"""The CloudEvents 1.0 JSON envelope every citypair event travels in."""

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from citypair_shared.logging import current_request_id
from citypair_shared.tracing import current_trace_context


class EventData(BaseModel):
    """Base of every event's `data`: immutable, and named by its `event_type` (the subject)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    event_type: ClassVar[str]


class CloudEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    source: str
    type: str
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    subject: str | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    correlationid: str
    data: dict[str, Any]

    def parsed(self) -> EventData:
        """The data as its schema model (raises for an unknown type or bad data)."""
        from citypair_shared.events import EVENT_TYPES

        return EVENT_TYPES[self.type].model_validate(self.data)


def new_event(data: EventData, *, source: str, subject: str | None = None) -> CloudEvent:
    """Wrap event data in an envelope whose correlation id is the current request's, and its trace context
    (the CloudEvents distributed-tracing extension) when the request is traced."""
    return CloudEvent(
        source=source,
        type=data.event_type,
        subject=subject,
        correlationid=current_request_id(),
        data=data.model_dump(mode="json"),
        **current_trace_context(),
    )
