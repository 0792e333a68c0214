"""Who may do what on the bus: a NATS user per service, its permissions derived from what it publishes and consumes.

A service may publish its own subjects, create, read and ack its own durable consumers, dead-letter what
they give up on and follow token revocations; it may subscribe to its own replies only. It may not create
or update a stream: a stream's configuration can copy any other stream (`sources`) and republish into any
subject, so whoever may shape a stream may read and forge every event. The streams are declared by the
admin user, which only the tooling has (`citypair run`, the tests, compose's `streams` job).

The nats-server configuration for all of them is rendered here, so it cannot drift from the code; the users
themselves are read from the services' apps by the tooling (citypair_cli.bus_users).
"""

import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from citypair_shared.bus import Subscription, inbox_prefix
from citypair_shared.events import DEAD_LETTER_PREFIX, STREAMS, TokensRevoked, stream_of

ADMIN = "admin"
CONSUMER_API = "$JS.API.CONSUMER"


@dataclass(frozen=True)
class BusUser:
    """A service's use of the bus: its NATS user is its name."""

    name: str
    publishes: bool
    subscriptions: tuple[Subscription, ...] = ()
    # Event types each of its processes follows into memory (besides token revocations, which all follow).
    follows: tuple[str, ...] = ()
    # Key-value buckets it reads and writes (declared by the admin with the streams).
    buckets: tuple[str, ...] = ()


def password_variable(user: str) -> str:
    """The environment variable with a user's password: the service's own setting, and what nats-server reads."""
    return "CITYPAIR_NATS_ADMIN_PASSWORD" if user == ADMIN else f"CITYPAIR_{user.upper()}_NATS_PASSWORD"


def permissions(user: BusUser, everyone: Sequence[BusUser]) -> dict[str, dict[str, list[str]]]:
    """What `user` may publish and subscribe to (JetStream's API is requests published to `$JS.API.…`)."""
    allow = [STREAMS[stream_of(user.name)]] if user.publishes else []
    for sub in user.subscriptions:
        stream, durable = sub.stream, sub.durable
        allow += [
            f"{CONSUMER_API}.CREATE.{stream}.{durable}.{STREAMS[stream]}",
            f"{CONSUMER_API}.INFO.{stream}.{durable}",
            f"{CONSUMER_API}.MSG.NEXT.{stream}.{durable}",
            f"$JS.ACK.{stream}.{durable}.>",
            f"{DEAD_LETTER_PREFIX}.{durable}",
        ]
    # Followers (citypair_shared.follow): a consumer of any name on a stream, whose create request names the
    # event type followed (the server refuses a consumer whose filter differs from its request's) ...
    deny = []
    for event_type in (TokensRevoked.event_type, *user.follows):
        stream = stream_of(event_type)
        allow += [f"{CONSUMER_API}.CREATE.{stream}.*.{event_type}", f"{CONSUMER_API}.MSG.NEXT.{stream}.*"]
        # ... but not under the name of another service's durable consumer there, to reshape it or read from it.
        others = [s.durable for u in everyone if u.name != user.name for s in u.subscriptions if s.stream == stream]
        deny += [f"{CONSUMER_API}.CREATE.{stream}.{durable}.>" for durable in others]
        deny += [f"{CONSUMER_API}.MSG.NEXT.{stream}.{durable}" for durable in others]
    for bucket in user.buckets:  # its keys (put, update, delete), the bucket's info, and direct reads
        allow += [f"$KV.{bucket}.>", f"$JS.API.STREAM.INFO.KV_{bucket}", f"$JS.API.DIRECT.GET.KV_{bucket}.>"]
    allow, deny = list(dict.fromkeys(allow)), list(dict.fromkeys(deny))
    publish = {"allow": allow, "deny": deny} if deny else {"allow": allow}
    return {"publish": publish, "subscribe": {"allow": [f"{inbox_prefix(user.name)}.>"]}}


@dataclass(frozen=True)
class ClusterNode:
    """This server's place in a JetStream cluster: its name, where it listens for routes, and every node's
    route address (its own included: nats-server skips itself)."""

    name: str
    port: int
    routes: tuple[str, ...]
    # Whether clients are told the other nodes' addresses (all of a node's interfaces): not where they are
    # given every node and some of those addresses are on networks they cannot reach (compose's).
    advertise: bool = True


def nats_config(
    users: Sequence[BusUser],
    *,
    port: int,
    store_dir: str,
    host: str | None = None,
    http_port: int | None = None,
    cluster: ClusterNode | None = None,
) -> str:
    """nats-server's configuration: JetStream, and the admin and each service's user; passwords by variable."""
    lines = [
        "# Rendered by citypair_shared.bus_access from the services' code: do not edit. deploy/nats.conf is",
        "# written by `citypair nats-config --output deploy/nats.conf`. Each password is read from the",
        "# environment variable it names (README: Configuration).",
        *(
            ["# Each node's own name, from its environment: JetStream's cluster tells its peers apart by it."]
            if cluster and cluster.name.startswith("$")
            else []
        ),
        f"server_name: {cluster.name if cluster else 'citypair-nats'}",
        *([f"host: {host}"] if host else []),
        f"port: {port}",
        *(["# Monitoring, for health checks; not published.", f"http_port: {http_port}"] if http_port else []),
        "# Events are small CloudEvents; a bigger payload is a bug, not a use case.",
        "max_payload: 1MB",
        "jetstream {",
        f"  store_dir: {json.dumps(store_dir)}",
        "}",
        *(_cluster_lines(cluster, host) if cluster else []),
        "authorization {",
        "  users = [",
        "    # The tooling's, to declare the streams; no service has it.",
        f"    {{user: {ADMIN}, password: ${password_variable(ADMIN)}}}",
    ]
    for user in users:
        lines += [
            f"    {{user: {user.name}, password: ${password_variable(user.name)}, permissions: {{",
            *_permission_lines(permissions(user, users)),
            "    }}",
        ]
    return "\n".join([*lines, "  ]", "}", ""])


def _cluster_lines(node: ClusterNode, host: str | None) -> list[str]:
    listen = f"{host or '0.0.0.0'}:{node.port}"
    return [
        "# Streams are kept on several nodes (the admin declares them with replicas); one may fail.",
        "cluster {",
        "  name: citypair",
        f"  listen: {json.dumps(listen)}",
        *([] if node.advertise else ["  no_advertise: true"]),
        "  routes: [",
        *(f"    {json.dumps(route)}" for route in node.routes),
        "  ]",
        "}",
    ]


def _permission_lines(granted: dict[str, dict[str, list[str]]]) -> list[str]:
    lines = []
    for direction, rules in granted.items():
        lines.append(f"      {direction}: {{")
        for rule, subjects in rules.items():
            lines += [f"        {rule}: [", *(f"          {json.dumps(s)}" for s in subjects), "        ]"]
        lines.append("      }")
    return lines


def bus_passwords(path: Path, users: Iterable[str]) -> dict[str, str]:
    """The password of the admin and of each user: generated once, kept in `path`, readable by its owner only."""
    wanted = [ADMIN, *users]
    known = json.loads(path.read_text()) if path.exists() else {}
    if missing := [user for user in wanted if user not in known]:
        known.update({user: new_password() for user in missing})
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(json.dumps(known, indent=2) + "\n")
    return {user: known[user] for user in wanted}


def new_password() -> str:
    """192 random bits, starting with a letter: nats-server parses a variable's value (`-1…` would be a number)."""
    return "p" + secrets.token_hex(24)


def password_environment(passwords: dict[str, str]) -> dict[str, str]:
    """The passwords as nats-server (all of them) and each service (its own) read them."""
    return {password_variable(user): password for user, password in passwords.items()}
