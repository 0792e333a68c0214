"""The five services by name: package, default port, whether each has a database, where each lives.

Plain data, no import of any service: a service container's pre-start step (citypair_shared.migrate_service)
finds its own service here, and the tooling (citypair_cli) starts, migrates and documents all of them from it.
`services/<name>/` (alembic.ini, migrations/) is found from this file's own location, so a container's /app
mirrors the repository (deploy/Dockerfile).
"""

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    package: str
    default_port: int
    has_database: bool = True

    @property
    def env_prefix(self) -> str:
        return f"CITYPAIR_{self.name.upper()}_"

    @property
    def directory(self) -> Path:
        return REPO_ROOT / "services" / self.name


SERVICES = (
    ServiceSpec("identity", "citypair_identity", 18081),
    ServiceSpec("profiles", "citypair_profiles", 18082),
    ServiceSpec("matching", "citypair_matching", 18083),
    ServiceSpec("pilot_zones", "citypair_pilot_zones", 18084),
    ServiceSpec("web", "citypair_web", 18085, has_database=False),
)
SERVICE_BY_NAME = {s.name: s for s in SERVICES}
