"""Migrate one service's database: the pre-start step of a service container.

`python -m citypair_shared.migrate_service <service>` upgrades the service's database to the
newest revision before its server starts. The URL comes from `CITYPAIR_<SERVICE>_DATABASE_URL`
through the service's own settings, so the default and the production checks are the same as
the server's. A service without a database (web) has nothing to migrate.
"""

import importlib
import sys

from citypair_shared.migrations import upgrade
from citypair_shared.services import SERVICE_BY_NAME


def migrate_service(name: str) -> str:
    """Upgrade the named service's database and say what was done."""
    spec = SERVICE_BY_NAME.get(name)
    if spec is None:
        raise SystemExit(f"unknown service {name!r}; one of: {', '.join(SERVICE_BY_NAME)}")
    if not spec.has_database:
        return f"{name}: no database, nothing to migrate"
    if not (spec.directory / "alembic.ini").is_file():
        raise SystemExit(f"{name}: no alembic.ini in {spec.directory}")
    settings = importlib.import_module(f"{spec.package}.config").Settings()
    upgrade(spec.directory, settings.database_url)
    return f"{name}: database at the newest revision"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m citypair_shared.migrate_service <service>")
    print(migrate_service(args[0]), flush=True)


if __name__ == "__main__":
    main()
