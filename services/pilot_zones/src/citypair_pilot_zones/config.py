from pydantic import Field
from pydantic_settings import SettingsConfigDict

from citypair_shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CITYPAIR_PILOT_ZONES_", extra="ignore")
    service_name: str = "pilot_zones"
    port: int = 18084
    # An active proposal with no activity for this long is stale (so is one with an overdue milestone).
    stale_after_days: int = Field(60, ge=1, le=3650)
    # How often the stale sweep runs in the background (POST /api/v1/pilot-zones/stale-sweep runs it at once).
    stale_sweep_seconds: float = Field(3600.0, gt=0)
    # Rows an import takes at most (POST /api/v1/pilot-zones/import): a larger file is refused whole (413).
    import_max_rows: int = Field(50_000, ge=1, le=1_000_000)
