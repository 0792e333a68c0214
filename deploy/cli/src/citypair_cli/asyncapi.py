"""The AsyncAPI 3.0 description of every citypair event, generated from the schemas in `citypair_shared.events`.

`build_document()` is pure and deterministic: `citypair asyncapi --output docs/asyncapi.yaml` writes it, and a
contract test fails when the committed file and the schemas disagree.
"""

from typing import Any

from citypair_shared.bus import DUPLICATE_WINDOW_SECONDS, Subscription
from citypair_shared.events import (
    DEAD_LETTER_PREFIX,
    DEAD_LETTER_STREAM,
    EVENT_TYPES,
    STREAMS,
    TokensRevoked,
    stream_of,
)
from citypair_shared.events.envelope import EventData
from citypair_shared.settings import EMBEDDED_NATS_URL

ASYNCAPI_VERSION = "3.0.0"
DOCUMENT_VERSION = "0.1.0"
SERVER_ID = "nats"
EMBEDDED_NATS_HOST = EMBEDDED_NATS_URL.removeprefix("nats://")
SCHEMA_REF = "#/components/schemas/{model}"

# Which subjects each service consumes (NATS wildcards). Kept in step with the services' event handlers
# by tests/contract/test_events.py.
CONSUMERS: dict[str, tuple[str, ...]] = {
    "identity": ("pilot_zones.proposal.>", "matching.match.>", "matching.suggestions.found.v1"),
    "matching": ("profiles.city.>", "pilot_zones.proposal.approved.v1"),
    "pilot_zones": (
        "profiles.city.>",
        "matching.match.accepted.v1",
        "identity.user.registered.v1",
        "identity.user.roles_changed.v1",
    ),
}


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` is one token, a trailing `>` one or more."""
    tokens, subject_tokens = pattern.split("."), subject.split(".")
    for i, token in enumerate(tokens):
        if token == ">":
            return len(subject_tokens) > i
        if i >= len(subject_tokens) or token not in ("*", subject_tokens[i]):
            return False
    return len(tokens) == len(subject_tokens)


def producer_of(event_type: str) -> str:
    """The service that publishes an event type: its subject's first token."""
    return event_type.split(".", 1)[0]


def consumers_of(event_type: str) -> list[str]:
    """The services that consume an event type, by `CONSUMERS`."""
    return sorted(
        service for service, patterns in CONSUMERS.items() if any(subject_matches(p, event_type) for p in patterns)
    )


def durable_name(consumer: str, event_type: str) -> str:
    """The durable consumer a service reads an event type's stream with (as `Runtime` names it)."""
    return Subscription(consumer=consumer.replace("_", "-"), stream=stream_of(event_type)).durable


def _channel_id(event_type: str) -> str:
    return event_type.replace(".", "_")


def _summary(event_type: str) -> str:
    producer, aggregate, event, version = event_type.split(".")
    what = f"{aggregate} {event}".replace("_", " ").capitalize()
    return f"{what} ({version}), published by `{producer}`."


def _data_schema(model: type[EventData], schemas: dict[str, Any]) -> dict[str, Any]:
    """The model's JSON schema with its `$defs` moved into `schemas` (which must agree on shared names)."""
    schema = model.model_json_schema(ref_template=SCHEMA_REF)
    for name, definition in schema.pop("$defs", {}).items():
        if schemas.setdefault(name, definition) != definition:
            raise ValueError(f"two event schemas define {name!r} differently")
    return schema


# The CloudEvents distributed-tracing extension (citypair_shared.tracing): present only when tracing is on.
TRACE_CONTEXT_SCHEMA = {
    "traceparent": {
        "type": "string",
        "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
        "description": "W3C trace context of the request the event was made in (only when tracing is on).",
    },
    "tracestate": {"type": "string", "description": "W3C vendor trace state, with `traceparent`."},
}


def _envelope_schema(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "description": "CloudEvents 1.0 structured-mode JSON envelope plus the `correlationid` extension.",
        "required": ["specversion", "id", "source", "type", "time", "datacontenttype", "correlationid", "data"],
        "properties": {
            "specversion": {"type": "string", "const": "1.0"},
            "id": {
                "type": "string",
                "format": "uuid",
                "description": "Unique per event; also the `Nats-Msg-Id` header (JetStream de-duplication).",
            },
            "source": {
                "type": "string",
                "description": f"URI-reference of the producing service: `/citypair/{producer_of(event_type)}`.",
            },
            "type": {"type": "string", "const": event_type, "description": "The NATS subject."},
            "time": {"type": "string", "format": "date-time"},
            "subject": {
                "anyOf": [{"type": "string"}, {"type": "null"}],
                "description": "The aggregate the event is about (e.g. its id), when set.",
            },
            "datacontenttype": {"type": "string", "const": "application/json"},
            "correlationid": {
                "type": "string",
                "description": "The id of the request (or event) that caused this event.",
            },
            **TRACE_CONTEXT_SCHEMA,
            "data": data,
        },
    }


def _headers_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["Nats-Msg-Id"],
        "properties": {
            "Nats-Msg-Id": {
                "type": "string",
                "format": "uuid",
                "description": (
                    f"The envelope `id`: JetStream drops a re-publish within its {DUPLICATE_WINDOW_SECONDS} s "
                    "duplicate window."
                ),
            }
        },
    }


def _description() -> str:
    """Markdown: the envelope, the stream layout and who consumes what (one line per paragraph or table row)."""
    streams = [f"| `{name}` | `{subjects}` | `{name.lower()}` |" for name, subjects in sorted(STREAMS.items())]
    streams.append(f"| `{DEAD_LETTER_STREAM}` | `{DEAD_LETTER_PREFIX}.>` | any consumer, for its dead letters |")
    durables = sorted(
        {
            (consumer, durable_name(consumer, event_type), stream_of(event_type), pattern)
            for consumer, patterns in CONSUMERS.items()
            for pattern in patterns
            for event_type in EVENT_TYPES
            if subject_matches(pattern, event_type)
        }
    )
    consumers = [f"| `{c}` | `{durable}` | `{stream}` | `{pattern}` |" for c, durable, stream, pattern in durables]
    paragraphs = [
        "Every event citypair services exchange over NATS JetStream. Generated from `citypair_shared.events` by "
        "`citypair asyncapi --output docs/asyncapi.yaml`; do not edit by hand.",
        "## Envelope",
        "CloudEvents 1.0 JSON (structured mode) plus the `correlationid` extension, the id of the request that caused "
        "the event. `type` is the NATS subject, `<service>.<aggregate>.<event>.v<N>`, past tense. `id` is a UUID sent "
        f"as the `Nats-Msg-Id` header, so JetStream drops a re-publish inside its {DUPLICATE_WINDOW_SECONDS} s "
        "duplicate window. Producers publish through a transactional outbox: the event row commits with the change "
        "and is marked sent only after JetStream's ack. When tracing is on, `traceparent` and `tracestate` (the "
        "CloudEvents distributed-tracing extension) carry the trace context the event was made in, so the spans of "
        "its publication and of each consumer's handler join the trace of the request that caused it.",
        "## Streams",
        "One stream per producing service, file storage, declared by the bus admin before the services start (each "
        "keeps an event 30 days by default, `CITYPAIR_STREAM_MAX_AGE_DAYS`; dead letters 90):",
        "\n".join(["| stream | subjects | producer |", "|---|---|---|", *streams]),
        "## Consumers",
        "Durable pull consumers named `<consumer>--<producer>` (service names with `-` for `_`), explicit ack, finite "
        "`max_deliver`. Handlers are idempotent: an inbox row per (consumer, event id) commits with the handler's "
        f"effects before the ack. After `max_deliver` failed deliveries a message is re-published to "
        f"`{DEAD_LETTER_PREFIX}.<durable>` on the `{DEAD_LETTER_STREAM}` stream (headers `Citypair-Error`, "
        "`Citypair-Subject`, `Citypair-Deliveries`, `Citypair-Msg-Id`) and terminated: nothing is dropped silently "
        "(`citypair dead-letters` lists, shows, replays and discards them: docs/operations.md).",
        "\n".join(["| consumer | durable | stream | subjects |", "|---|---|---|---|", *consumers]),
        "## Token revocations",
        f"`{TokensRevoked.event_type}` is followed by every service that publishes or consumes events, with an "
        "ordered ephemeral consumer that replays the last 16 minutes at start-up (longer than any access token "
        "lives) and then applies each revocation to its in-memory token checker: no durable consumer, no inbox.",
    ]
    return "\n\n".join(paragraphs) + "\n"


def build_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document for every type in `EVENT_TYPES`, channels sorted by subject."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for event_type in sorted(EVENT_TYPES):
        model = EVENT_TYPES[event_type]
        name = model.__name__
        if name in messages:
            raise ValueError(f"two event types share the model name {name!r}")
        channel_id = _channel_id(event_type)
        producer = producer_of(event_type)
        consumers = consumers_of(event_type)
        consumed_by = ", ".join(f"`{c}` (durable `{durable_name(c, event_type)}`)" for c in consumers) or "no service"
        if event_type == TokensRevoked.event_type:
            consumed_by = "every service's token checker (ordered ephemeral consumer)"
        messages[name] = {
            "name": name,
            "title": name,
            "summary": _summary(event_type),
            "contentType": "application/json",
            "correlationId": {"location": "$message.payload#/correlationid"},
            "headers": _headers_schema(),
            "payload": _envelope_schema(event_type, _data_schema(model, schemas)),
        }
        channels[channel_id] = {
            "address": event_type,
            "title": event_type,
            "summary": _summary(event_type),
            "description": f"On stream `{stream_of(event_type)}`. Consumed by {consumed_by}.",
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "x-stream": stream_of(event_type),
            "x-consumers": consumers,
        }
        operations[f"send_{channel_id}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": f"`{producer}` publishes `{event_type}`.",
            "description": f"Published by the `{producer}` service through its transactional outbox.",
            "tags": [{"name": producer}],
            "messages": [{"$ref": f"#/channels/{channel_id}/messages/{name}"}],
            "x-producer": producer,
        }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "citypair events",
            "version": DOCUMENT_VERSION,
            "description": _description(),
        },
        "defaultContentType": "application/json",
        "servers": {
            SERVER_ID: {
                "host": EMBEDDED_NATS_HOST,
                "protocol": "nats",
                "description": "The embedded nats-server (JetStream) that `citypair run` starts (port "
                "`CITYPAIR_NATS_PORT`); elsewhere each service is pointed at NATS by `CITYPAIR_<SERVICE>_NATS_URL`.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "messages": messages,
        },
    }
