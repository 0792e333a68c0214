from pydantic_settings import SettingsConfigDict

from citypair_shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CITYPAIR_IDENTITY_", extra="ignore")
    service_name: str = "identity"
    port: int = 18081
