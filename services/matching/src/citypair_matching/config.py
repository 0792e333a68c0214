from pydantic import Field
from pydantic_settings import SettingsConfigDict

from citypair_shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CITYPAIR_MATCHING_", extra="ignore")
    service_name: str = "matching"
    port: int = 18083
    # Constraints that are configuration (reported with every explanation).
    allow_same_country: bool = False
    min_population: int = Field(0, ge=0)
    required_theme: str | None = None
