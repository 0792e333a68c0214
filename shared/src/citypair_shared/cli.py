"""`citypair`: run the embedded stack, migrate, and load demo data."""

import os
import secrets
import signal
import time
from pathlib import Path

import httpx
import typer

from citypair_shared.stack import PortTaken, Stack, StackConfig

app = typer.Typer(help="citypair: city-pair cooperation on the Digital Silk Road.", no_args_is_help=True)


@app.command()
def run(demo: bool = typer.Option(True, help="Load the demo cities when the directory is empty")) -> None:
    """Start nats-server, migrate, start every service and the Caddy gateway; Ctrl-C stops all."""
    # Stop cleanly on Ctrl-C and on SIGTERM, even when started in the background (where SIGINT is ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    config = StackConfig.from_env()
    email = os.environ.get("CITYPAIR_ADMIN_EMAIL", "admin@citypair.local")
    password = os.environ.get("CITYPAIR_ADMIN_PASSWORD")
    generated = not password
    if generated:
        # Used by identity only if it has no admin yet; printed once below, stored only as a hash.
        password = secrets.token_urlsafe(15)
        config.extra_env["CITYPAIR_ADMIN_PASSWORD"] = password
    stack = Stack(config)
    try:
        stack.start()
    except PortTaken as exc:
        stack.stop()
        typer.secho(f"citypair cannot start: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    except BaseException:
        stack.stop()
        raise
    try:
        token = sign_in(config.gateway_url, email, password)
        if token and generated:
            typer.secho(f"first admin: {email} / {password}  (shown once; only its hash is stored)", fg="yellow")
        elif not token:
            typer.echo(
                f"admin: {email} exists (its password was shown on the first run, or is CITYPAIR_ADMIN_PASSWORD)"
            )
        if demo and token:
            from citypair_profiles.demo import load_demo_if_empty

            loaded = load_demo_if_empty(config.gateway_url, token)
            typer.echo(f"demo data: {loaded} cities loaded" if loaded else "demo data: directory already has cities")
        typer.secho(f"citypair is up at {config.gateway_url}  (Ctrl-C stops it; data in {config.var_dir})", fg="green")
        while True:
            for name, process in list(stack.processes.items()):
                if process.poll() is not None:
                    typer.secho(f"{name} stopped ({process.returncode}); see {stack.log_dir}/{name}.log", fg="red")
                    raise typer.Exit(1)
            time.sleep(1)
    except KeyboardInterrupt:
        typer.echo("stopping…")
    finally:
        stack.stop()


def sign_in(gateway_url: str, email: str, password: str) -> str | None:
    """An access token for these credentials, or None if they are refused."""
    response = httpx.post(
        f"{gateway_url}/api/v1/auth/token", data={"username": email, "password": password}, timeout=30
    )
    return response.json()["access_token"] if response.status_code == 200 else None


@app.command()
def migrate() -> None:
    """Bring every service's database to the newest revision."""
    Stack(StackConfig.from_env()).migrate()


@app.command()
def demo(
    gateway: str = typer.Option("http://127.0.0.1:18080", help="Gateway URL"),
    email: str = typer.Option(..., envvar="CITYPAIR_ADMIN_EMAIL", help="An admin or coordinator"),
    password: str = typer.Option(..., envvar="CITYPAIR_ADMIN_PASSWORD", prompt=True, hide_input=True),
) -> None:
    """Load the demo cities through the gateway if the directory is empty."""
    from citypair_profiles.demo import load_demo_if_empty

    token = sign_in(gateway, email, password)
    if token is None:
        typer.secho("sign-in refused", fg="red", err=True)
        raise typer.Exit(1)
    typer.echo(f"{load_demo_if_empty(gateway, token)} cities loaded")


@app.command()
def asyncapi(
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the YAML here instead of printing it"),
) -> None:
    """Print (or write) the AsyncAPI 3.0 description of every event subject."""
    import yaml

    from citypair_shared.asyncapi import build_document

    text = yaml.safe_dump(build_document(), sort_keys=False, allow_unicode=True)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}")


@app.command()
def openapi(
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the JSON here instead of printing it"),
) -> None:
    """Print (or write) the gateway's OpenAPI 3.1 document: every service's public API in one."""
    import json

    from citypair_shared.openapi import build_gateway_openapi

    text = json.dumps(build_gateway_openapi(), indent=2, sort_keys=True) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}")
