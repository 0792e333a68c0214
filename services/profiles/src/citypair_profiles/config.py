from pydantic_settings import SettingsConfigDict

from citypair_shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CITYPAIR_PROFILES_", extra="ignore")
    service_name: str = "profiles"
    port: int = 18082
