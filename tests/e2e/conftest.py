import httpx
import pytest

from citypair_cli.stack import SERVICES, Stack, StackConfig
from tests.support import ADMIN_EMAIL, ADMIN_PASSWORD, client_for, create_user, fresh_database_url


def start_stack(var_dir, **env) -> Stack:
    """Every part as a real process on free ports, each service with its own fresh database."""
    urls = {s.name: fresh_database_url(s.name, var_dir) for s in SERVICES if s.has_database}
    extra_env = {"CITYPAIR_ADMIN_EMAIL": ADMIN_EMAIL, "CITYPAIR_ADMIN_PASSWORD": ADMIN_PASSWORD, **env}
    config = StackConfig.on_free_ports(var_dir, database_urls=urls, extra_env=extra_env)
    stack = Stack(config)
    try:
        stack.start()
    except BaseException:
        stack.stop()
        raise
    return stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = start_stack(tmp_path_factory.mktemp("stack"))
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def anonymous(stack):
    with httpx.Client(base_url=stack.config.gateway_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def admin(stack):
    with client_for(stack.config.gateway_url, ADMIN_EMAIL, ADMIN_PASSWORD) as client:
        yield client


@pytest.fixture(scope="module")
def coordinator(stack, admin):
    user = create_user(admin, ["coordinator"])
    with client_for(stack.config.gateway_url, user["email"]) as client:
        yield client


@pytest.fixture(scope="module")
def official_of(stack, admin):
    """A factory: a client signed in as an official of the given cities."""
    clients = []

    def make(*city_ids: str) -> httpx.Client:
        user = create_user(admin, ["official"], city_ids)
        clients.append(client_for(stack.config.gateway_url, user["email"]))
        return clients[-1]

    yield make
    for client in clients:
        client.close()
