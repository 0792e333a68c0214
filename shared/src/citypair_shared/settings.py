"""Typed settings: one `BaseSettings` per service, each with its own env prefix."""

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from citypair_shared.bus import STREAM_MAX_AGE

VAR_DIR = Path("var")
# Where the embedded stack (`citypair run`) serves NATS: every default that names it reads these.
EMBEDDED_NATS_PORT = 14222
EMBEDDED_NATS_URL = f"nats://127.0.0.1:{EMBEDDED_NATS_PORT}"


class ServiceSettings(BaseSettings):
    """What every service is configured with; subclasses set `env_prefix` and defaults."""

    model_config = SettingsConfigDict(extra="ignore")
    has_database: ClassVar[bool] = True

    service_name: str = "service"
    environment: str = Field("development", pattern="^(development|test|production)$")
    host: str = "127.0.0.1"
    port: int = Field(18000, ge=1, le=65535)
    database_url: str = ""
    # One server, or a cluster's nodes comma-separated (nats://a:4222,nats://b:4222): the client moves on if one dies.
    nats_url: str = EMBEDDED_NATS_URL
    # This service's own NATS user is its name (citypair_shared.bus_access); none: connect anonymously.
    nats_password: SecretStr | None = None
    log_level: str = "INFO"
    log_json: bool = True
    # Consumers give up on a message after this many deliveries and dead-letter it.
    max_deliver: int = Field(5, ge=1, le=100)
    outbox_sweep_seconds: float = Field(1.0, gt=0)
    # Retention (citypair_shared.retention): sent outbox rows are kept this long; inbox rows as long as the
    # streams keep events (the same variable the streams job reads), and a day more.
    outbox_kept_days: float = Field(7, gt=0)
    stream_max_age_days: float = Field(STREAM_MAX_AGE.days, gt=0, validation_alias="CITYPAIR_STREAM_MAX_AGE_DAYS")
    # Token checks (see citypair_shared.auth): where identity publishes its public keys.
    jwks_url: str = "http://127.0.0.1:18081/.well-known/jwks.json"
    token_issuer: str = "citypair-identity"
    token_audience: str = "citypair"
    # Tracing (citypair_shared.tracing): spans go to this OTLP gRPC endpoint, the variable every OpenTelemetry
    # SDK reads (the gateway's too); unset, nothing is traced.
    otlp_endpoint: str | None = Field(None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT")

    @model_validator(mode="after")
    def _default_database(self):
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{VAR_DIR / (self.service_name + '.db')}"
        if self.has_database and self.environment == "production" and self.database_url.startswith("sqlite"):
            raise ValueError("production needs a server database (set DATABASE_URL to postgresql+asyncpg://…)")
        return self
