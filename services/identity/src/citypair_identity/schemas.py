from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from citypair_identity.passwords import MAX_LENGTH, MIN_LENGTH, WEAKNESSES, email_words, weakness, weakness_code
from citypair_identity.preferences import DEFAULT_MIN_SCORE, KINDS, MODES
from citypair_shared.contract import EMAIL_PATTERN
from citypair_shared.deps import CityId, Timestamp


class Role(StrEnum):
    admin = "admin"
    coordinator = "coordinator"
    official = "official"
    observer = "observer"


Email = Field(min_length=3, max_length=254, pattern=EMAIL_PATTERN, examples=["official@xian.gov.cn"])


def _not_weak(password: str) -> str:
    if found := weakness_code(password):
        code, params = found
        raise PydanticCustomError(code, "the password " + WEAKNESSES[code], params)
    return password


# Kept as typed (not stripped): signing in compares it as typed. The policy: citypair_identity.passwords.
NewPassword = Annotated[
    str,
    StringConstraints(strip_whitespace=False, min_length=MIN_LENGTH, max_length=MAX_LENGTH),
    AfterValidator(_not_weak),
    Field(description=f"{MIN_LENGTH}–{MAX_LENGTH} characters, not a common, repetitive or guessable one"),
]


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
    password: NewPassword
    roles: list[Role] = Field(min_length=1, max_length=4)
    city_ids: list[CityId] = CityIds

    @field_validator("password")
    @classmethod
    def _password_not_about_the_user(cls, password: str, info: ValidationInfo) -> str:
        if "email" in info.data and weakness(password, context=email_words(info.data["email"])):
            raise PydanticCustomError("password_personal", "the password " + WEAKNESSES["password_personal"])
        return password


class PasswordChange(BaseModel):
    """A user's new password, with the current one (a stolen session alone cannot take the account)."""

    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=MAX_LENGTH)
    new_password: NewPassword


class UserUpdate(BaseModel):
    """What may change on a user; every change voids the user's tokens."""

    model_config = ConfigDict(extra="forbid")

    roles: list[Role] | None = Field(None, min_length=1, max_length=4)
    city_ids: list[CityId] | None = Field(None, max_length=50)
    disabled: StrictBool | None = None


Language = Literal["en", "zh", "ru", "ar"]
PersonName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
# A link's secret, as the mail gave it (the page passes it on).
LinkToken = Field(min_length=20, max_length=1000)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str
    name: str
    language: Language
    roles: list[Role]
    city_ids: list[str]
    disabled: bool
    created_at: Timestamp
    updated_at: Timestamp


class MeUpdate(BaseModel):
    """What users change about themselves (their password: `POST /api/v1/me/password`)."""

    model_config = ConfigDict(extra="forbid")

    name: PersonName | None = None
    language: Language | None = None


class InvitationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: str = Email
    name: PersonName = ""
    roles: list[Role] = Field(min_length=1, max_length=4)
    city_ids: list[CityId] = CityIds
    language: Language = "en"


class InvitationCreated(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str
    roles: list[Role]
    city_ids: list[str]
    expires_at: Timestamp


class InvitationOut(InvitationCreated):
    name: str
    accepted_at: Timestamp | None


class InvitationAccept(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = LinkToken
    password: NewPassword
    name: PersonName | None = None


class ResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: str = Email


class ResetComplete(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = LinkToken
    password: NewPassword


Kind = Literal[KINDS]
Mode = Literal[MODES]


class Preferences(BaseModel):
    """How each kind of notification is mailed: at once, in the daily digest, or not at all (kinds left out:
    "digest"); and the lowest score of a partner suggestion worth a mail."""

    model_config = ConfigDict(extra="forbid")

    notifications: dict[Kind, Mode] = Field(default_factory=dict)
    suggestion_min_score: StrictFloat = Field(DEFAULT_MIN_SCORE, ge=0, le=1)


class UnsubscribeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = LinkToken


class UnsubscribeOut(BaseModel):
    kind: str = Field(description="The kind turned off, or `digest`: every kind that was mailed in the digest")


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
