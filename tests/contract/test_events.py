"""Contract tests for the event schemas in `citypair_shared.events` and their AsyncAPI description."""

import enum
import importlib
import json
import re
import types
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator
from pydantic import BaseModel, ValidationError

from citypair_cli.asyncapi import CONSUMERS, build_document, consumers_of, subject_matches
from citypair_shared.events import EVENT_TYPES, STREAMS, CloudEvent, new_event, stream_of
from citypair_shared.events.envelope import EventData
from citypair_shared.tracing import TRACE_CONTEXT_ATTRIBUTES

ROOT = Path(__file__).resolve().parents[2]
ASYNCAPI_FILE = ROOT / "docs" / "asyncapi.yaml"
SERVICES = ("profiles", "matching", "pilot_zones", "identity")
EVENT_TYPE_PATTERN = re.compile(rf"^({'|'.join(SERVICES)})\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.v[1-9][0-9]*$")
MODELS = sorted(EVENT_TYPES.items())
EXAMPLES = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- hypothesis strategies for pydantic models, honouring their numeric bounds and JSON's finite floats --


def _int_strategy(metadata: list[Any]) -> st.SearchStrategy[int]:
    low = high = None
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            low = item.ge
        elif isinstance(item, annotated_types.Gt):
            low = item.gt + 1
        elif isinstance(item, annotated_types.Le):
            high = item.le
        elif isinstance(item, annotated_types.Lt):
            high = item.lt - 1
    return st.integers(min_value=low, max_value=high)


def _strategy(annotation: Any, metadata: list[Any] = ()) -> st.SearchStrategy:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        extra = [m for arg in args[1:] for m in getattr(arg, "metadata", [arg])]
        return _strategy(args[0], [*metadata, *extra])
    if origin in (Union, types.UnionType):
        return st.one_of(*(_strategy(arg) for arg in args))
    if origin is Literal:
        return st.sampled_from(args)
    if origin is list:
        return st.lists(_strategy(args[0]), max_size=3)
    if origin is dict:
        return st.dictionaries(_strategy(args[0]), _strategy(args[1]), max_size=3)
    if annotation is type(None):
        return st.none()
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return model_strategy(annotation)
        if issubclass(annotation, enum.Enum):
            return st.sampled_from(list(annotation))
        if annotation is bool:
            return st.booleans()
        if annotation is int:
            return _int_strategy(list(metadata))
        if annotation is float:
            return st.floats(allow_nan=False, allow_infinity=False)
        if annotation is str:
            return st.text(max_size=20)
        if annotation is datetime:
            return st.datetimes(timezones=st.just(UTC))
    raise NotImplementedError(f"teach tests/contract/test_events.py to generate {annotation!r}")


def model_strategy(model: type[BaseModel]) -> st.SearchStrategy[BaseModel]:
    """Every field drawn (defaults too), so a round trip covers the whole schema."""
    fields = {name: _strategy(field.annotation, field.metadata) for name, field in model.model_fields.items()}
    return st.builds(model, **fields)


def _nested_models(model: type[BaseModel]) -> set[type[BaseModel]]:
    found = {model}
    for field in model.model_fields.values():
        stack = [field.annotation]
        while stack:
            annotation = stack.pop()
            stack.extend(get_args(annotation))
            if isinstance(annotation, type) and issubclass(annotation, BaseModel) and annotation not in found:
                found |= _nested_models(annotation)
    return found


# -- (a) the committed AsyncAPI document is the generated one --


def test_committed_asyncapi_matches_the_schemas():
    assert ASYNCAPI_FILE.exists(), "docs/asyncapi.yaml is missing: run `citypair asyncapi --output docs/asyncapi.yaml`"
    committed = yaml.safe_load(ASYNCAPI_FILE.read_text(encoding="utf-8"))
    assert committed == build_document(), (
        "docs/asyncapi.yaml is stale: run `citypair asyncapi --output docs/asyncapi.yaml`"
    )


def test_asyncapi_describes_every_subject_once():
    document = build_document()
    assert document["asyncapi"] == "3.0.0"
    assert document["servers"]["nats"]["protocol"] == "nats"
    addresses = [channel["address"] for channel in document["channels"].values()]
    assert sorted(addresses) == sorted(EVENT_TYPES)
    for channel_id, channel in document["channels"].items():
        operations = [
            op for op in document["operations"].values() if op["channel"]["$ref"] == f"#/channels/{channel_id}"
        ]
        assert len(operations) == 1, channel_id
        assert operations[0]["action"] == "send"
        assert operations[0]["x-producer"] == channel["address"].split(".", 1)[0]


def test_asyncapi_references_resolve():
    document = build_document()

    def refs(node):
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in set(refs(document)):
        assert ref.startswith("#/"), ref
        target = document
        for part in ref[2:].split("/"):
            assert part in target, f"unresolved {ref}"
            target = target[part]


def test_documented_consumers_are_the_services_handlers():
    from citypair_identity.config import Settings as IdentitySettings
    from citypair_identity.handlers import event_handlers as identity_handlers
    from citypair_identity.service import IdentityContext
    from citypair_matching.core import MatchIndex
    from citypair_matching.handlers import event_handlers as matching_handlers
    from citypair_pilot_zones.handlers import EVENT_HANDLERS as pilot_zones_handlers
    from citypair_profiles.handlers import EVENT_HANDLERS as profiles_handlers

    handled = {
        "identity": set(identity_handlers(IdentityContext(settings=IdentitySettings()))),
        "matching": set(matching_handlers(MatchIndex(), relay=lambda: None)),
        "pilot_zones": set(pilot_zones_handlers),
        "profiles": set(profiles_handlers),
    }
    for service, event_types in handled.items():
        documented = {t for t in EVENT_TYPES if service in consumers_of(t)}
        assert documented == event_types, (
            f"{service} handles {sorted(event_types)}; update CONSUMERS in deploy/cli/src/citypair_cli/asyncapi.py"
        )
    assert set(CONSUMERS) <= set(handled)


@pytest.mark.parametrize("producer", sorted({t.split(".", 1)[0] for t in EVENT_TYPES}))
def test_each_producer_names_itself_as_the_events_source(producer):
    """CloudEvents `source` is a URI-reference: `/citypair/<service>`, as docs/asyncapi.yaml describes it."""
    source = importlib.import_module(f"citypair_{producer}.service").SOURCE
    assert source.startswith("/"), f"{producer}'s SOURCE {source!r} is not an absolute URI-reference"
    assert source == f"/citypair/{producer}"


# -- (b) subjects are named by their producer and live in its stream --


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_event_type_is_a_subject_in_its_producers_stream(event_type):
    assert EVENT_TYPE_PATTERN.match(event_type), f"{event_type} is not <service>.<aggregate>.<event>.v<N>"
    stream = stream_of(event_type)
    assert stream == event_type.split(".", 1)[0].upper()
    assert stream in STREAMS, f"no stream for {event_type}"
    assert subject_matches(STREAMS[stream], event_type)
    assert sum(subject_matches(subjects, event_type) for subjects in STREAMS.values()) == 1


def test_subject_matching_follows_nats_wildcards():
    assert subject_matches("profiles.>", "profiles.city.registered.v1")
    assert subject_matches("profiles.city.*.v1", "profiles.city.registered.v1")
    assert not subject_matches("profiles.city.*", "profiles.city.registered.v1")
    assert not subject_matches("profiles.>", "profiles")
    assert not subject_matches("matching.>", "profiles.city.registered.v1")


# -- (c) every event survives the envelope's JSON round trip, and the envelope matches the AsyncAPI schema --


@pytest.mark.parametrize(("event_type", "model"), MODELS, ids=[t for t, _ in MODELS])
@EXAMPLES
@given(data=st.data())
def test_event_round_trips_through_the_envelope(event_type, model, data):
    event_data = data.draw(model_strategy(model))
    event = new_event(event_data, source=f"/citypair/{event_type.split('.', 1)[0]}", subject="some-id")

    wire = event.model_dump_json()
    received = CloudEvent.model_validate_json(wire)

    assert received.type == event_type
    parsed = received.parsed()
    assert type(parsed) is model
    assert parsed == event_data

    document = build_document()
    validator = Draft7Validator({**document, "$ref": f"#/components/messages/{model.__name__}/payload"})
    validator.validate(json.loads(wire))


# -- (d) event data is closed and immutable --


@pytest.mark.parametrize(("event_type", "model"), MODELS, ids=[t for t, _ in MODELS])
def test_event_models_are_frozen_and_forbid_unknown_fields(event_type, model):
    assert issubclass(model, EventData)
    assert model.event_type == event_type
    for nested in _nested_models(model):
        assert nested.model_config.get("extra") == "forbid", f"{nested.__name__} accepts unknown fields"
        assert nested.model_config.get("frozen") is True, f"{nested.__name__} is mutable"


@pytest.mark.parametrize(("event_type", "model"), MODELS, ids=[t for t, _ in MODELS])
@EXAMPLES
@given(data=st.data())
def test_event_models_reject_unknown_fields_and_writes(event_type, model, data):
    event_data = data.draw(model_strategy(model))
    with pytest.raises(ValidationError, match="extra"):
        model.model_validate({**event_data.model_dump(mode="json"), "unexpected": 1})
    field = next(iter(model.model_fields))
    with pytest.raises(ValidationError, match="frozen"):
        setattr(event_data, field, getattr(event_data, field))


# -- (e) the envelope --


CLOUDEVENTS_REQUIRED = {"specversion", "id", "source", "type"}
CLOUDEVENTS_OPTIONAL = {"time", "subject", "datacontenttype", "data"}


def test_envelope_has_the_cloudevents_attributes():
    assert CLOUDEVENTS_REQUIRED | CLOUDEVENTS_OPTIONAL | {"correlationid"} == set(CloudEvent.model_fields)
    payloads = [m["payload"] for m in build_document()["components"]["messages"].values()]
    for payload in payloads:
        # and the distributed-tracing extension, an extra attribute set only when tracing is on
        assert set(payload["properties"]) == set(CloudEvent.model_fields) | set(TRACE_CONTEXT_ATTRIBUTES)
        assert set(payload["required"]) >= CLOUDEVENTS_REQUIRED


@pytest.mark.parametrize(("event_type", "model"), MODELS[:1], ids=[t for t, _ in MODELS[:1]])
@EXAMPLES
@given(data=st.data())
def test_envelope_attributes_on_the_wire(event_type, model, data):
    event = new_event(data.draw(model_strategy(model)), source="/citypair/test")
    wire = json.loads(event.model_dump_json())

    for attribute in CLOUDEVENTS_REQUIRED | {"time", "datacontenttype", "correlationid", "data"}:
        assert wire.get(attribute), f"{attribute} missing on the wire"
    assert wire["specversion"] == "1.0"
    assert wire["type"] == event_type
    assert wire["datacontenttype"] == "application/json"
    assert str(uuid.UUID(wire["id"])) == wire["id"]
    assert event.time.tzinfo is not None
    assert new_event(event.parsed(), source="/citypair/test").id != event.id


def test_envelope_ids_are_uuids_by_default():
    ids = {CloudEvent(source="/x", type="t.a.b.v1", correlationid="c", data={}).id for _ in range(20)}
    assert len(ids) == 20
    assert all(uuid.UUID(i).version == 4 for i in ids)


def test_typing_helpers_cover_every_event_field():
    """Guards the strategy builder: a new field type fails here with a clear message, not deep in hypothesis."""
    for model in EVENT_TYPES.values():
        for nested in _nested_models(model):
            for field in nested.model_fields.values():
                _strategy(field.annotation, field.metadata)


# -- (e) README's architecture diagram shows who publishes and who consumes what, as the code wires it --

README = ROOT / "README.md"
# Its event edges: `a -->|"subjects"| b`, dotted `-.->` for what is not a durable consumer's.
DIAGRAM_EDGE = re.compile(r'^\s*(\w+)\S*\s+(?:-->|-\.->)\|"([^"]*)"\|\s*(\w+)', re.M)
DIAGRAM_NODES = {"identity": "identity", "profiles": "profiles", "matching": "matching", "pilot": "pilot_zones"}
EVERY_SERVICE = "everyone"  # the node for every service's token checks


def diagram_edges() -> list[tuple[str, str, str]]:
    (diagram,) = re.findall(r"## Architecture\n+```mermaid\n(.*?)```", README.read_text(), re.S)
    unread = [line for line in diagram.splitlines() if "nats" in line and not DIAGRAM_EDGE.match(line)]
    assert not unread, f'write the bus\'s edges as a -->|"subjects"| b: {unread}'
    return DIAGRAM_EDGE.findall(diagram)


def diagram_types(label: str) -> set[str]:
    """The event types a label names: `profiles.city.*`, `pilot_zones.proposal.approved`, and `.roles_changed`
    after `identity.user.registered` for `identity.user.roles_changed`; words in brackets are comments."""
    found, previous = set(), ""
    for item in re.sub(r"\([^)]*\)", "", label.replace("<br/>", ",")).split(","):
        pattern = item.strip()
        if not pattern:
            continue
        if pattern.startswith("."):
            pattern = previous.rsplit(".", 1)[0] + pattern
        previous = pattern
        matched = {
            t
            for t in EVENT_TYPES
            if t.rsplit(".", 1)[0] == pattern or (pattern.endswith(".*") and t.startswith(pattern[:-1]))
        }
        assert matched, f"README's diagram names {pattern!r}, which is no event type"
        found |= matched
    return found


def test_readme_diagram_shows_what_each_service_publishes_and_consumes():
    from citypair_cli.bus_users import service_bus_users
    from citypair_shared.events import TokensRevoked

    users = {user.name: user for user in service_bus_users()}
    published: dict[str, set[str]] = {}
    consumed: dict[str, set[str]] = {}
    for source, label, target in diagram_edges():
        if source == "web":
            assert target == "nats" and all(f"{bucket} bucket" in label for bucket in users["web"].buckets), label
        elif target == "nats":
            published[DIAGRAM_NODES[source]] = diagram_types(label)
        elif target == EVERY_SERVICE:
            # Every service that uses the bus follows the revocations (citypair_shared.runtime): all of them.
            assert diagram_types(label) == {TokensRevoked.event_type}
            assert set(users) == {spec_name for spec_name in (*DIAGRAM_NODES.values(), "web")}
        else:
            assert source == "nats", (source, target)
            consumed[DIAGRAM_NODES[target]] = diagram_types(label)
    producers = {t.split(".", 1)[0] for t in EVENT_TYPES}
    assert published == {p: {t for t in EVENT_TYPES if t.split(".", 1)[0] == p} for p in producers}
    # What each service's durable consumers handle, and what each of its replicas follows into memory.
    expected = {
        name: {t for t in EVENT_TYPES if name in consumers_of(t)} | set(users[name].follows)
        for name in DIAGRAM_NODES.values()
    }
    assert consumed == {name: types for name, types in expected.items() if types}, (
        "README's architecture diagram does not show what the services consume"
    )
