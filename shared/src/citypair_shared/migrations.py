"""One Alembic runner for every service: each service's env.py hands over its metadata."""

from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, create_engine, pool, text

from citypair_shared.db import sync_url

# Any fixed number: replicas starting together take turns at the migrations (PostgreSQL advisory lock).
MIGRATION_LOCK_ID = 7_312_026


def alembic_config(service_dir: Path, database_url: str) -> Config:
    cfg = Config(str(service_dir / "alembic.ini"))
    cfg.set_main_option("script_location", str(service_dir / "migrations"))
    cfg.set_main_option("sqlalchemy.url", sync_url(database_url).replace("%", "%%"))
    return cfg


def upgrade(service_dir: Path, database_url: str) -> None:
    """Bring a service's database to the newest revision."""
    if database_url.startswith("sqlite"):
        from sqlalchemy.engine import make_url

        path = make_url(database_url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(service_dir, database_url), "head")


def create_outbox_unpublished_index() -> None:
    """Every service's outbox gets the relay's partial index (`OutboxMixin`) in a migration of its own, calling this.
    Migrations already run call it: change it only by adding another."""
    from alembic import op

    unpublished = text("published_at IS NULL")
    op.create_index("ix_outbox_unpublished", "outbox", ["seq"], postgresql_where=unpublished, sqlite_where=unpublished)


def drop_outbox_unpublished_index() -> None:
    from alembic import op

    op.drop_index("ix_outbox_unpublished", table_name="outbox")


def _render_item(type_: str, obj, autogen_context):
    """Migrations spell our UtcDateTime as the plain column type it stores (no import of app code)."""
    from citypair_shared.db import UtcDateTime

    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_env(target_metadata: MetaData) -> None:
    """The body of every service's migrations/env.py."""
    url = context.config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(
            url=url, target_metadata=target_metadata, literal_binds=True, render_as_batch=True, render_item=_render_item
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        # Batch mode lets the same migration alter tables on SQLite.
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True, render_item=_render_item
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Held until this transaction ends: the next replica then finds the database at head.
                connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
            context.run_migrations()
    engine.dispose()
