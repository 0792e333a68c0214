from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response, status

from citypair_identity import service
from citypair_identity.schemas import AuditOut, RefreshIn, Role, TokenOut, UserCreate, UserOut, UserUpdate
from citypair_shared.auth import CurrentUser, Principal, require_roles
from citypair_shared.deps import Page, PageDep, SessionDep

router = APIRouter(tags=["identity"])
PROBLEMS = {401: {"description": "Not signed in"}, 403: {"description": "Not allowed"}, 422: {"description": "Invalid"}}
Admin = Annotated[Principal, require_roles("admin")]
UserManager = Annotated[Principal, require_roles("admin", "coordinator")]


def _ctx(request: Request) -> service.IdentityContext:
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
    responses={**PROBLEMS, 429: {"description": "Throttled; see Retry-After"}},
    summary="Sign in (OAuth2 password form)",
)
async def sign_in(
    request: Request,
    session: SessionDep,
    ctx: Ctx,
    username: Annotated[str, Form(min_length=3, max_length=254, description="Email")],
    password: Annotated[str, Form(min_length=1, max_length=200)],
):
    return await service.sign_in(session=session, ctx=ctx, email=username, password=password, address=_address(request))


@router.post("/api/v1/auth/refresh", response_model=TokenOut, responses=PROBLEMS, summary="Rotate a refresh token")
async def refresh(body: RefreshIn, request: Request, session: SessionDep, ctx: Ctx):
    return await service.refresh(session=session, ctx=ctx, token=body.refresh_token, address=_address(request))


@router.post("/api/v1/auth/logout", status_code=status.HTTP_204_NO_CONTENT, responses=PROBLEMS)
async def logout(body: RefreshIn, request: Request, session: SessionDep):
    """Revoke a refresh token (and the tokens rotated from it)."""
    await service.logout(session=session, token=body.refresh_token, address=_address(request))


@router.post("/api/v1/auth/keys/rotate", responses=PROBLEMS, summary="Sign with a new key from now on")
async def rotate(session: SessionDep, ctx: Ctx, admin: Admin) -> dict:
    return {"kid": await service.rotate_key(session=session, ctx=ctx, actor=admin)}


@router.get("/api/v1/me", response_model=UserOut, responses=PROBLEMS)
async def me(user: CurrentUser, session: SessionDep):
    return await service.get_user(session=session, user_id=user.user_id)


@router.get("/api/v1/users", response_model=Page[UserOut], responses=PROBLEMS)
async def list_users(session: SessionDep, page: PageDep, _: UserManager, role: Role | None = None):
    items, total = await service.list_users(session=session, limit=page.limit, offset=page.offset, role=role)
    return Page[UserOut](items=items, total=total, limit=page.limit, offset=page.offset)


@router.post(
    "/api/v1/users",
    response_model=UserOut,
    status_code=status.HTTP_201_CREATED,
    responses={**PROBLEMS, 409: {"description": "Email taken"}},
)
async def create_user(body: UserCreate, session: SessionDep, admin: Admin, response: Response):
    user = await service.create_user(session=session, actor=admin, data=body)
    response.headers["Location"] = f"/api/v1/users/{user.id}"
    return user


@router.get("/api/v1/users/{user_id}", response_model=UserOut, responses={**PROBLEMS, 404: {"description": "No user"}})
async def get_user(user_id: str, session: SessionDep, _: UserManager):
    return await service.get_user(session=session, user_id=user_id)


@router.patch(
    "/api/v1/users/{user_id}", response_model=UserOut, responses={**PROBLEMS, 404: {"description": "No user"}}
)
async def update_user(user_id: str, body: UserUpdate, session: SessionDep, ctx: Ctx, actor: UserManager):
    """Admins change roles, cities and `disabled`; coordinators bind officials to cities."""
    return await service.update_user(session=session, ctx=ctx, actor=actor, user_id=user_id, data=body)


@router.get("/api/v1/audit", response_model=Page[AuditOut], responses=PROBLEMS, summary="The security audit log")
async def audit_log(session: SessionDep, page: PageDep, _: Admin, action: str | None = None):
    items, total = await service.audit_log(session=session, limit=page.limit, offset=page.offset, action=action)
    return Page[AuditOut](items=items, total=total, limit=page.limit, offset=page.offset)
