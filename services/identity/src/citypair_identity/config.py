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
