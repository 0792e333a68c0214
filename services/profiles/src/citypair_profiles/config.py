from pydantic import Field
from pydantic_settings import SettingsConfigDict

from citypair_shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CITYPAIR_PROFILES_", extra="ignore")
    service_name: str = "profiles"
    port: int = 18082
    # Rows one import may carry (each is validated and reported): a larger file is refused whole (413).
    import_max_rows: int = Field(50_000, ge=1, le=1_000_000)
