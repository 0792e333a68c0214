import pytest

from tests.support import NatsServer


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory):
    """One nats-server for tests that do not stop it."""
    server = NatsServer(tmp_path_factory.mktemp("nats")).start()
    yield server
    server.stop()
