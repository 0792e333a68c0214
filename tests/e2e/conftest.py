import pytest

from citypair_shared.stack import SERVICES, Stack, StackConfig
from tests.support import fresh_database_url


def start_stack(var_dir) -> Stack:
    """Every part as a real process on free ports, each service with its own fresh database."""
    urls = {s.name: fresh_database_url(s.name, var_dir) for s in SERVICES if s.has_database}
    config = StackConfig.on_free_ports(var_dir, database_urls=urls)
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
