from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from citypair_shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CITYPAIR_WEB_", extra="ignore")
    has_database: ClassVar[bool] = False
    service_name: str = "web"
    port: int = 18085
    # Where the pages call the API as the signed-in user: the gateway.
    api_url: str = "http://127.0.0.1:18080"
    session_hours: float = Field(8, gt=0, le=24 * 7)
    # Send cookies only over HTTPS (production, behind TLS).
    secure_cookies: bool = False
