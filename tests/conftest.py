import pytest

from tests.support import NatsServer, drop_created_databases


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory):
    """One nats-server for tests that do not stop it."""
    server = NatsServer(tmp_path_factory.mktemp("nats")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session", autouse=True)
def _drop_test_databases():
    yield
    drop_created_databases()
