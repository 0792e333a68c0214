from pydantic_settings import SettingsConfigDict

from citypair_shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CITYPAIR_PILOT_ZONES_", extra="ignore")
    service_name: str = "pilot_zones"
    port: int = 18084
