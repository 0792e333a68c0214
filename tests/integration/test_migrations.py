"""Each service's Alembic history builds exactly the schema its models describe."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from citypair_cli.stack import SERVICES
from citypair_shared.db import sync_url
from citypair_shared.migrations import upgrade
from tests.support import fresh_database_url

WITH_DATABASE = [s for s in SERVICES if s.has_database]


@pytest.mark.parametrize("spec", WITH_DATABASE, ids=lambda s: s.name)
def test_models_and_migrations_agree(spec, tmp_path):
    import importlib

    url = fresh_database_url(spec.name, tmp_path)
    upgrade(spec.directory, url)
    upgrade(spec.directory, url)  # a second run is a no-op
    metadata = importlib.import_module(f"{spec.package}.models").Base.metadata
    engine = create_engine(sync_url(url))
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []
