"""Every service's bus user, read from the services' own apps, and compose's nats-server configuration.

The permissions and the configuration are rendered by citypair_shared.bus_access from these users; finding
the users means building each service's app, which is the tooling's business, never a service's.
"""

import dataclasses
import functools
import importlib
import json
import subprocess
import sys

from citypair_shared.bus import Subscription
from citypair_shared.bus_access import BusUser, ClusterNode, nats_config
from citypair_shared.services import SERVICES


@functools.cache
def service_bus_users() -> tuple[BusUser, ...]:
    """Every service that uses the bus, as its `create_app` wires it: a new outbox or handler is covered at once.

    Read in a child process: building an app configures logging, which this process keeps as it is.
    """
    found = subprocess.run([sys.executable, "-m", __name__], capture_output=True, text=True)
    if found.returncode != 0:
        raise RuntimeError(f"reading the services' use of the bus failed:\n{found.stderr}")
    return tuple(
        BusUser(
            user["name"],
            user["publishes"],
            tuple(Subscription(**sub) for sub in user["subscriptions"]),
            tuple(user["follows"]),
            tuple(user["buckets"]),
        )
        for user in json.loads(found.stdout)
    )


def _bus_users_of_the_apps() -> list[BusUser]:
    users = []
    for spec in SERVICES:
        settings = importlib.import_module(f"{spec.package}.config").Settings(environment="development")
        runtime = importlib.import_module(f"{spec.package}.main").create_app(settings).state.runtime
        if runtime.bus_user is not None:
            users.append(runtime.bus_user)
    return users


# docker-compose.yml's NATS: a cluster of three nodes (compose services of these names) sharing one configuration
# file, deploy/nats.conf; each node's name is the SERVER_NAME in its environment (as in deploy/kubernetes).
COMPOSE_NATS_NODES = ("nats-1", "nats-2", "nats-3")
COMPOSE_NATS_PORT = 4222
COMPOSE_NATS_ROUTE_PORT = 6222
SERVER_NAME_VARIABLE = "SERVER_NAME"


def compose_nats_url() -> str:
    """What compose's services connect to: every node, comma-separated (the client moves on if one dies)."""
    return ",".join(f"nats://{node}:{COMPOSE_NATS_PORT}" for node in COMPOSE_NATS_NODES)


def compose_nats_config() -> str:
    """deploy/nats.conf: each nats-server of docker-compose.yml, JetStream on its volume at /data, routed to
    all three (a node skips the route to itself)."""
    cluster = ClusterNode(
        name=f"${SERVER_NAME_VARIABLE}",
        port=COMPOSE_NATS_ROUTE_PORT,
        routes=tuple(f"nats://{node}:{COMPOSE_NATS_ROUTE_PORT}" for node in COMPOSE_NATS_NODES),
        advertise=False,  # the services are given every node; the nodes' frontend addresses are not theirs to use
    )
    return nats_config(service_bus_users(), port=COMPOSE_NATS_PORT, http_port=8222, store_dir="/data", cluster=cluster)


if __name__ == "__main__":
    print(json.dumps([dataclasses.asdict(user) for user in _bus_users_of_the_apps()]))
