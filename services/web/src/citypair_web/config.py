from pathlib import Path
from typing import ClassVar

from pydantic import Field, model_validator
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
    # Send the session cookie over HTTPS only. Unset: on in production (browsers reach the site through TLS),
    # off elsewhere (`make run` serves plain HTTP on loopback). Production refuses it off: a session id sent
    # in clear text is a session anyone on the way can take.
    secure_cookies: bool | None = None
    # The folder where `citypair run`'s local SMTP server keeps every mail: /dev/mail lists them, to anyone (in a
    # development stack people read their invitation before they have an account). Unset: no such page.
    # Production refuses it: those mails hold sign-up and password-reset links.
    dev_mail_dir: Path | None = None

    @model_validator(mode="after")
    def _secure_cookies_in_production(self):
        if self.secure_cookies is None:
            self.secure_cookies = self.environment == "production"
        elif not self.secure_cookies and self.environment == "production":
            prefix = self.model_config.get("env_prefix", "")
            raise ValueError(
                f"production sends the session cookie over HTTPS only: set {prefix}SECURE_COOKIES=true or unset"
            )
        return self

    @model_validator(mode="after")
    def _no_mail_page_in_production(self):
        if self.dev_mail_dir is not None and self.environment == "production":
            prefix = self.model_config.get("env_prefix", "")
            raise ValueError(f"production shows nobody the mails: unset {prefix}DEV_MAIL_DIR")
        return self
