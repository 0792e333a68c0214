from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request, Response, status

from citypair_identity import accounts, notifications, preferences, service
from citypair_identity.schemas import (
    AuditOut,
    InvitationAccept,
    InvitationCreate,
    InvitationCreated,
    InvitationOut,
    MeUpdate,
    NotificationOut,
    PasswordChange,
    Preferences,
    RefreshIn,
    ResetComplete,
    ResetRequest,
    Role,
    TokenOut,
    UnsubscribeIn,
    UnsubscribeOut,
    UserCreate,
    UserOut,
    UserUpdate,
)
from citypair_shared.auth import CurrentUser, Principal, require_roles
from citypair_shared.deps import IdPath, Page, PageDep, SessionDep
from citypair_shared.idempotency import WITHOUT_IDEMPOTENCY_KEY
from citypair_shared.problems import problem_responses

router = APIRouter(tags=["identity"])
PROBLEMS = problem_responses(401, 403, 422)
Admin = Annotated[Principal, require_roles("admin")]
UserManager = Annotated[Principal, require_roles("admin", "coordinator")]


async def _ctx(request: Request) -> service.IdentityContext:
    return request.app.state.identity


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


Ctx = Annotated[service.IdentityContext, Depends(_ctx)]


@router.get("/.well-known/jwks.json", summary="Public keys that verify access tokens")
async def jwks(session: SessionDep, ctx: Ctx, response: Response) -> dict:
    response.headers["Cache-Control"] = "public, max-age=60"
    return await service.jwks(session=session, ctx=ctx)


@router.post(
    "/api/v1/auth/token",
    response_model=TokenOut,
    responses=problem_responses(422, 429, described={401: "Wrong email or password, or the user is disabled"}),
    summary="Sign in (OAuth2 password form)",
    openapi_extra=WITHOUT_IDEMPOTENCY_KEY,  # the answer is a pair of tokens: never stored
)
async def sign_in(
    request: Request,
    session: SessionDep,
    ctx: Ctx,
    username: Annotated[str, Form(min_length=3, max_length=254, description="Email")],
    password: Annotated[str, Form(min_length=1, max_length=200)],
):
    return await service.sign_in(session=session, ctx=ctx, email=username, password=password, address=_address(request))


@router.post(
    "/api/v1/auth/refresh",
    response_model=TokenOut,
    responses=problem_responses(422, described={401: "Unknown, used, revoked or expired refresh token"}),
    summary="Rotate a refresh token",
    openapi_extra=WITHOUT_IDEMPOTENCY_KEY,
)
async def refresh(body: RefreshIn, request: Request, session: SessionDep, ctx: Ctx):
    return await service.refresh(session=session, ctx=ctx, token=body.refresh_token, address=_address(request))


@router.post(
    "/api/v1/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(422),
    openapi_extra=WITHOUT_IDEMPOTENCY_KEY,  # revoking twice is revoking once
)
async def logout(body: RefreshIn, request: Request, session: SessionDep):
    """Revoke a refresh token (and the tokens rotated from it)."""
    await service.logout(session=session, token=body.refresh_token, address=_address(request))


@router.post(
    "/api/v1/auth/keys/rotate", responses=problem_responses(401, 403), summary="Sign with a new key from now on"
)
async def rotate(session: SessionDep, ctx: Ctx, admin: Admin) -> dict:
    return {"kid": await service.rotate_key(session=session, ctx=ctx, actor=admin)}


@router.get("/api/v1/me", response_model=UserOut, responses=problem_responses(401))
async def me(user: CurrentUser, session: SessionDep):
    return await service.get_user(session=session, user_id=user.user_id)


@router.patch("/api/v1/me", response_model=UserOut, responses=problem_responses(401, 422))
async def update_me(body: MeUpdate, user: CurrentUser, session: SessionDep):
    """Change my name or the language of my mails."""
    return await service.update_me(session=session, user_id=user.user_id, data=body)


@router.get("/api/v1/me/preferences", response_model=Preferences, responses=problem_responses(401))
async def my_preferences(user: CurrentUser, session: SessionDep):
    """How each kind of notification is mailed to me."""
    return await preferences.get(session, user.user_id)


@router.put("/api/v1/me/preferences", response_model=Preferences, responses=problem_responses(401, 422))
async def set_my_preferences(body: Preferences, user: CurrentUser, session: SessionDep):
    return await preferences.put(
        session, user.user_id, notifications=body.notifications, min_score=body.suggestion_min_score
    )


@router.post(
    "/api/v1/unsubscribe",
    response_model=UnsubscribeOut,
    responses=problem_responses(described={422: "`token` is not a valid unsubscribe link"}),
    summary="Stop one kind of notification mail, with the link of such a mail (no sign-in)",
)
async def unsubscribe(body: UnsubscribeIn, session: SessionDep):
    user_id, kind = await preferences.unsubscribe(session, body.token)
    service.audit(session, "mail.unsubscribed", actor=user_id, subject=user_id, kind=kind)
    await session.commit()
    return UnsubscribeOut(kind=kind)


@router.post(
    "/api/v1/invitations",
    response_model=InvitationCreated,
    status_code=status.HTTP_201_CREATED,
    responses={**PROBLEMS, **problem_responses(described={409: "A user with this e-mail exists"})},
)
async def invite(body: InvitationCreate, session: SessionDep, ctx: Ctx, actor: UserManager):
    """Invite someone by e-mail to choose a password (admins: any roles; coordinators: officials and observers)."""
    return await accounts.invite(session=session, ctx=ctx, actor=actor, data=body)


@router.get("/api/v1/invitations", response_model=Page[InvitationOut], responses=PROBLEMS)
async def pending_invitations(session: SessionDep, page: PageDep, _: UserManager):
    """Invitations not accepted yet whose link still works."""
    items, total = await accounts.pending_invitations(session=session, limit=page.limit, offset=page.offset)
    return Page[InvitationOut](items=items, total=total, limit=page.limit, offset=page.offset)


@router.post(
    "/api/v1/invitations/accept",
    response_model=UserOut,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(
        described={
            409: "A user with this e-mail exists",
            410: "The link was used, has expired or is unknown (`token`)",
            422: "A field is wrong, e.g. `password` (the password policy)",
        }
    ),
    summary="Accept an invitation: choose a password (no sign-in; then sign in as usual)",
)
async def accept_invitation(request: Request, body: InvitationAccept, session: SessionDep, ctx: Ctx):
    return await accounts.accept(session=session, ctx=ctx, data=body, address=_address(request))


@router.post(
    "/api/v1/password-resets",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(422, 429),
    summary="Mail me a password reset link (no sign-in; the same answer whether the address is known or not)",
)
async def request_password_reset(request: Request, body: ResetRequest, session: SessionDep, ctx: Ctx) -> dict:
    await accounts.request_reset(session=session, ctx=ctx, email=body.email, address=_address(request))
    return {}


@router.post(
    "/api/v1/password-resets/complete",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(
        described={
            410: "The link was used, has expired or is unknown (`token`)",
            422: "A field is wrong, e.g. `password` (the password policy)",
        }
    ),
    summary="Choose a new password with a reset link (no sign-in; every session of the user ends)",
)
async def complete_password_reset(request: Request, body: ResetComplete, session: SessionDep, ctx: Ctx):
    await accounts.complete_reset(session=session, ctx=ctx, data=body, address=_address(request))


@router.post(
    "/api/v1/me/password",
    response_model=TokenOut,
    responses=problem_responses(401, 429, described={422: "A field is wrong: `current_password`, or `new_password`"}),
    summary="Change my password (sessions elsewhere end; this one goes on with the tokens returned)",
    openapi_extra=WITHOUT_IDEMPOTENCY_KEY,  # the answer is a pair of tokens: never stored
)
async def change_my_password(request: Request, body: PasswordChange, user: CurrentUser, session: SessionDep, ctx: Ctx):
    return await service.change_password(
        session=session, ctx=ctx, user_id=user.user_id, data=body, address=_address(request)
    )


@router.get("/api/v1/me/notifications", response_model=Page[NotificationOut], responses=problem_responses(401, 422))
async def my_notifications(user: CurrentUser, session: SessionDep, page: PageDep, unread: bool = False):
    """What happened to my cities' matches and proposals (and, for coordinators, what awaits review)."""
    items, total = await notifications.list_for(
        session=session, user_id=user.user_id, unread=unread, limit=page.limit, offset=page.offset
    )
    return Page[NotificationOut](items=items, total=total, limit=page.limit, offset=page.offset)


@router.post(
    "/api/v1/me/notifications/{notification_id}/read",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 422, described={404: "No such notification of yours"}),
)
async def read_notification(notification_id: IdPath, user: CurrentUser, session: SessionDep):
    await notifications.mark_read(session=session, user_id=user.user_id, notification_id=notification_id)


@router.get("/api/v1/users", response_model=Page[UserOut], responses=PROBLEMS)
async def list_users(
    session: SessionDep,
    page: PageDep,
    _: UserManager,
    role: Role | None = None,
    q: Annotated[str | None, Query(max_length=254, description="Found in the name or e-mail, any case")] = None,
    disabled: bool | None = None,
):
    items, total = await service.list_users(
        session=session, limit=page.limit, offset=page.offset, role=role, q=q, disabled=disabled
    )
    return Page[UserOut](items=items, total=total, limit=page.limit, offset=page.offset)


@router.post(
    "/api/v1/users",
    response_model=UserOut,
    status_code=status.HTTP_201_CREATED,
    responses={**PROBLEMS, **problem_responses(described={409: "Email taken"})},
)
async def create_user(body: UserCreate, session: SessionDep, ctx: Ctx, admin: Admin, response: Response):
    user = await service.create_user(session=session, ctx=ctx, actor=admin, data=body)
    response.headers["Location"] = f"/api/v1/users/{user.id}"
    return user


@router.get("/api/v1/users/{user_id}", response_model=UserOut, responses={**PROBLEMS, **problem_responses(404)})
async def get_user(user_id: IdPath, session: SessionDep, _: UserManager):
    return await service.get_user(session=session, user_id=user_id)


@router.patch("/api/v1/users/{user_id}", response_model=UserOut, responses={**PROBLEMS, **problem_responses(404)})
async def update_user(user_id: IdPath, body: UserUpdate, session: SessionDep, ctx: Ctx, actor: UserManager):
    """Admins change roles, cities and `disabled`; coordinators bind officials to cities."""
    return await service.update_user(session=session, ctx=ctx, actor=actor, user_id=user_id, data=body)


@router.post(
    "/api/v1/users/{user_id}/password-reset",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**PROBLEMS, **problem_responses(404)},
    summary="Force a password reset: the password stops working, sessions end, a reset link is mailed",
)
async def force_password_reset(request: Request, user_id: IdPath, session: SessionDep, ctx: Ctx, admin: Admin) -> dict:
    await accounts.force_reset(session=session, ctx=ctx, actor=admin, user_id=user_id, address=_address(request))
    return {}


@router.get("/api/v1/audit", response_model=Page[AuditOut], responses=PROBLEMS, summary="The security audit log")
async def audit_log(session: SessionDep, page: PageDep, _: Admin, action: str | None = None):
    items, total = await service.audit_log(session=session, limit=page.limit, offset=page.offset, action=action)
    return Page[AuditOut](items=items, total=total, limit=page.limit, offset=page.offset)
