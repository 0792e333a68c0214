import pytest

from tests.support import NatsServer, drop_created_databases

# The longest files, started first when the suite runs on several workers (`make test`): started last, one of them
# would run alone at the end while the other worker sat idle.
LONGEST_FIRST = (
    "tests/e2e/test_schemathesis.py",
    "tests/e2e/browser/test_accessibility.py",
    "tests/e2e/test_backup_restore.py",
)


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in LONGEST_FIRST)  # stable: the rest keep their order


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
