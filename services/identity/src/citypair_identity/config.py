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
    # Sign-in throttling: failures per account, attempts per address, within a window.
    signin_account_failures: int = Field(5, ge=1)
    signin_address_attempts: int = Field(30, ge=1)
    signin_window_seconds: float = Field(300, gt=0)
