from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from citypair_shared.contract import EMAIL_PATTERN
from citypair_shared.deps import Timestamp


class Role(StrEnum):
    admin = "admin"
    coordinator = "coordinator"
    official = "official"
    observer = "observer"


Email = Field(min_length=3, max_length=254, pattern=EMAIL_PATTERN, examples=["official@xian.gov.cn"])
CityIds = Field(default_factory=list, max_length=50, description="Cities an official acts for")


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires")
    refresh_token: str


class RefreshIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refresh_token: str = Field(min_length=1, max_length=200)


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: str = Email
    # Kept as typed (not stripped): signing in compares it as typed.
    password: Annotated[str, StringConstraints(strip_whitespace=False, min_length=12, max_length=200)]
    roles: list[Role] = Field(min_length=1, max_length=4)
    city_ids: list[str] = CityIds


class UserUpdate(BaseModel):
    """What may change on a user; every change voids the user's tokens."""

    model_config = ConfigDict(extra="forbid")

    roles: list[Role] | None = Field(None, min_length=1, max_length=4)
    city_ids: list[str] | None = Field(None, max_length=50)
    disabled: StrictBool | None = None


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str
    roles: list[Role]
    city_ids: list[str]
    disabled: bool
    created_at: Timestamp
    updated_at: Timestamp


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    at: Timestamp
    action: str
    actor_id: str | None
    subject: str | None
    address: str | None
    detail: dict


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    title: str
    link: str
    created_at: Timestamp
    read_at: Timestamp | None
