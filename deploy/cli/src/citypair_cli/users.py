"""`citypair users invite|list|disable|reset`: user management through the gateway, as the signed-in user (an admin,
or a coordinator for what coordinators may do); the API decides who may do what."""

import json

import httpx
import typer

users_app = typer.Typer(help="Invite, list, disable users and force password resets.", no_args_is_help=True)

GatewayOption = typer.Option("http://127.0.0.1:18080", envvar="CITYPAIR_GATEWAY_URL", help="Gateway URL")
EmailOption = typer.Option(..., envvar="CITYPAIR_EMAIL", help="Your account (an admin or coordinator)")
PasswordOption = typer.Option(..., envvar="CITYPAIR_PASSWORD", prompt=True, hide_input=True)
UserArgument = typer.Argument(..., help="The user's id or e-mail address")


def _cli():
    """cli.py's helpers (sign-in, POST with an Idempotency-Key, printing answers), shared with its commands;
    imported when a command runs, as cli.py imports this module to register it."""
    from citypair_cli import cli

    return cli


def _signed_in(gateway: str, email: str, password: str) -> httpx.Client:
    return _cli()._client(gateway, email, password)


def _report(response: httpx.Response) -> None:
    _cli()._report(response)


def _user_id(client: httpx.Client, user: str) -> str:
    """The id of `user`, given as an id or an e-mail address."""
    if "@" not in user:
        return user
    found = client.get("/api/v1/users", params={"q": user, "limit": 100})
    if found.status_code != 200:
        _report(found)
    ids = [u["id"] for u in found.json()["items"] if u["email"] == user.lower()]
    if not ids:
        typer.secho(f"no user {user}", fg="red", err=True)
        raise typer.Exit(1)
    return ids[0]


@users_app.command("invite")
def invite(
    address: str = typer.Argument(..., help="The e-mail address to invite"),
    role: list[str] = typer.Option(..., "--role", help="admin, coordinator, official or observer (repeatable)"),
    city: list[str] = typer.Option([], "--city", help="A city id the user acts for (repeatable)"),
    name: str = typer.Option("", help="The invitee's name, as the mail greets them"),
    language: str = typer.Option("en", help="The mail's language: en, zh, ru or ar"),
    gateway: str = GatewayOption,
    email: str = EmailOption,
    password: str = PasswordOption,
) -> None:
    """Mail an invitation: the link in it lets the invitee choose a password (once, within 72 hours)."""
    body = {"email": address, "roles": role, "city_ids": city, "name": name, "language": language}
    with _signed_in(gateway, email, password) as client:
        _report(_cli()._post(client, "/api/v1/invitations", headers={}, json=body))


@users_app.command("list")
def list_users(
    role: str | None = typer.Option(None, help="Only users with this role"),
    search: str | None = typer.Option(None, "--search", "-q", help="Found in the name or e-mail"),
    disabled: bool | None = typer.Option(None, "--disabled/--enabled", help="Only disabled, or only enabled, users"),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of a table"),
    gateway: str = GatewayOption,
    email: str = EmailOption,
    password: str = PasswordOption,
) -> None:
    """List users by e-mail, 100 a page, every page."""
    params = {k: v for k, v in {"role": role, "q": search, "disabled": disabled}.items() if v is not None}
    users = []
    with _signed_in(gateway, email, password) as client:
        while True:
            page = client.get("/api/v1/users", params={**params, "limit": 100, "offset": len(users)})
            if page.status_code != 200:
                _report(page)
            users += page.json()["items"]
            if len(users) >= page.json()["total"] or not page.json()["items"]:
                break
    if as_json:
        typer.echo(json.dumps(users, indent=2, ensure_ascii=False))
        return
    for user in users:
        state = "disabled" if user["disabled"] else "enabled"
        cities = ",".join(user["city_ids"]) or "-"
        typer.echo(
            f"{user['email']}\t{user['name'] or '-'}\t{','.join(user['roles'])}\t{cities}\t{state}\t{user['id']}"
        )


@users_app.command("disable")
def disable(
    user: str = UserArgument,
    enable: bool = typer.Option(False, "--enable", help="Enable the user again instead"),
    gateway: str = GatewayOption,
    email: str = EmailOption,
    password: str = PasswordOption,
) -> None:
    """Disable a user (their sessions end at once), or enable them again."""
    with _signed_in(gateway, email, password) as client:
        user_id = _user_id(client, user)
        _report(client.patch(f"/api/v1/users/{user_id}", json={"disabled": not enable}))


@users_app.command("reset")
def reset(
    user: str = UserArgument, gateway: str = GatewayOption, email: str = EmailOption, password: str = PasswordOption
):
    """Force a password reset: the password stops working, sessions end, the user is mailed a link."""
    with _signed_in(gateway, email, password) as client:
        user_id = _user_id(client, user)
        _report(client.post(f"/api/v1/users/{user_id}/password-reset"))
