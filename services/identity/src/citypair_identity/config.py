from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from citypair_shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CITYPAIR_IDENTITY_", extra="ignore")
    service_name: str = "identity"
    port: int = 18081

    # The first admin, created when there is no admin yet (README: Security).
    admin_email: str = Field("admin@citypair.local", validation_alias=AliasChoices("CITYPAIR_ADMIN_EMAIL"))
    admin_password: SecretStr | None = Field(None, validation_alias=AliasChoices("CITYPAIR_ADMIN_PASSWORD"))

    access_token_minutes: int = Field(10, ge=1, le=15)
    refresh_token_days: int = Field(14, ge=1, le=90)
    # Sign-in throttling (throttle.py, docs/security.md): free attempts on an account from one address, then
    # waits from the first to the longest, doubling; an account's failures from all addresses after which an
    # address that failed on it waits from its first failure; attempts per address on any account; the window.
    signin_account_failures: int = Field(5, ge=1)
    signin_first_wait_seconds: float = Field(1, gt=0)
    signin_max_wait_seconds: float = Field(900, gt=0)
    signin_account_wide_failures: int = Field(20, ge=1)
    signin_address_attempts: int = Field(30, ge=1)
    signin_window_seconds: float = Field(300, gt=0)

    # Accounts (docs/security.md, "Accounts"): how long an invitation's and a reset's link works; how many resets
    # an e-mail address, and a client address, may ask for per window.
    invitation_hours: float = Field(72, gt=0, le=72)
    reset_link_minutes: float = Field(60, gt=0, le=60)
    reset_requests_per_email: int = Field(3, ge=1)
    reset_requests_per_address: int = Field(20, ge=1)
    reset_window_seconds: float = Field(3600, gt=0)

    # Mail (mail.py): the SMTP server, and the address links in mails start with (web's pages).
    public_url: str = "http://127.0.0.1:18080"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    mail_from: str = "citypair <noreply@citypair.local>"
    # The sender's sweep, and its retries after a failure: from the first wait, doubling, up to the longest.
    mail_sweep_seconds: float = Field(1.0, gt=0)
    mail_retry_first_seconds: float = Field(2, gt=0)
    mail_retry_max_seconds: float = Field(3600, gt=0)
    # How often the digest job looks for work (a digest goes out once per user and UTC day, whatever this is).
    digest_check_seconds: float = Field(600, gt=0)
    # A user's digest goes out at the first check from this hour (UTC) on, with what was undigested then.
    digest_hour_utc: int = Field(6, ge=0, le=23)
