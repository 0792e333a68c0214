from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from citypair_shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CITYPAIR_WEB_", extra="ignore")
    has_database: ClassVar[bool] = False
    service_name: str = "web"
    port: int = 18085
