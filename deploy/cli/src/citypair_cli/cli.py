"""`citypair`: run the embedded stack (alone or as a cluster), migrate, import and export profiles and pilot zones,
load demo data, write the API docs, back up and restore, look at dead letters."""

import json
import os
import secrets
import signal
import threading
import time
from pathlib import Path

import asyncpg
import httpx
import typer
from sqlalchemy.engine import make_url

from citypair_cli.backup import backup_command, restore_command
from citypair_cli.dead_letters import dead_letters_app
from citypair_cli.open_data import open_data_app
from citypair_cli.stack import PortTaken, Stack, StackConfig, postgres_databases
from citypair_cli.users import users_app
from citypair_shared.idempotency import HEADER as IDEMPOTENCY_KEY
from citypair_shared.idempotency import IN_PROGRESS_TYPE, new_key
from citypair_shared.services import SERVICES
from citypair_shared.spreadsheet import MEDIA_BY_ENDING

app = typer.Typer(help="citypair: city-pair cooperation on the Digital Silk Road.", no_args_is_help=True)
app.add_typer(dead_letters_app, name="dead-letters")
app.add_typer(users_app, name="users")
app.add_typer(open_data_app, name="open-data")


# Cluster mode's further replicas and nats-server nodes take their ports from here.
CLUSTER_PORTS = range(18200, 18300)
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@app.command()
def run(
    demo: bool = typer.Option(True, help="Load the demo cities when the directory is empty"),
    replicas: int = typer.Option(1, min=1, max=8, help="Processes of each service (2+: on PostgreSQL)"),
    nats_cluster: int = typer.Option(1, min=1, max=5, help="nats-server nodes (3: a JetStream cluster)"),
) -> None:
    """Start nats-server, migrate, start every service and the Caddy gateway; restart any part that crashes;
    Ctrl-C stops all. `--replicas 2 --nats-cluster 3` runs the cluster mode (README: Scaling)."""
    # Stop cleanly on Ctrl-C and on SIGTERM, even when started in the background (where SIGINT is ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    config = StackConfig.from_env()
    config.cluster(replicas=replicas, nats_nodes=nats_cluster, ports=iter(CLUSTER_PORTS))
    if replicas > 1:
        use_postgres(config)
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
        # Runs until Ctrl-C or SIGTERM (a KeyboardInterrupt, above): nothing sets this event.
        stack.supervise(threading.Event(), report=lambda line: typer.secho(line, fg="yellow", err=True))
    except KeyboardInterrupt:
        typer.echo("stopping…")
    finally:
        # A second signal (a service manager's, after Ctrl-C) must not cut the orderly stop short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()


def use_postgres(config: StackConfig) -> None:
    """Replicas share their service's database: a PostgreSQL one. Services without a URL get a database on
    the server of CITYPAIR_POSTGRES_URL (default: the local one, which must answer)."""
    missing = [s.name for s in SERVICES if s.has_database and s.name not in config.database_urls]
    if not missing:
        return
    admin_url = os.environ.get("CITYPAIR_POSTGRES_URL", POSTGRES_ADMIN_URL)
    try:
        config.database_urls |= postgres_databases(admin_url, missing)
    except (OSError, asyncpg.PostgresError) as exc:
        typer.secho(f"replicas need PostgreSQL: none answers at {admin_url} ({exc})", fg="red", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"databases: citypair_<service> on {make_url(admin_url).host}")


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


GatewayOption = typer.Option("http://127.0.0.1:18080", envvar="CITYPAIR_GATEWAY_URL", help="Gateway URL")
EmailOption = typer.Option(
    ..., envvar="CITYPAIR_EMAIL", help="Your account (an admin or coordinator; to import pilot zones, an official)"
)
PasswordOption = typer.Option(..., envvar="CITYPAIR_PASSWORD", prompt=True, hide_input=True)


def _client(gateway: str, email: str, password: str) -> httpx.Client:
    token = sign_in(gateway, email, password)
    if token is None:
        typer.secho("sign-in refused", fg="red", err=True)
        raise typer.Exit(1)
    return httpx.Client(base_url=gateway, headers={"Authorization": f"Bearer {token}"}, timeout=600)


POST_ATTEMPTS = 3
RETRY_PAUSE_SECONDS = 2.0


def _post(client: httpx.Client, path: str, *, headers: dict[str, str], **kwargs) -> httpx.Response:
    """POST once in effect: a fresh Idempotency-Key, sent again with each retry after a lost connection, the
    gateway's 503 or a 409 "in progress" (the first attempt may have been applied: the key makes a retry get
    its answer instead of applying it again)."""
    headers = {IDEMPOTENCY_KEY: new_key(), **headers}
    for attempt in range(1, POST_ATTEMPTS):
        try:
            response = client.post(path, headers=headers, **kwargs)
            if not _worth_retrying(response):
                return response
        except httpx.TransportError:
            pass  # the request or its answer was lost on the way: retried with the same key
        time.sleep(RETRY_PAUSE_SECONDS * attempt)
    return client.post(path, headers=headers, **kwargs)  # the last attempt, whatever it answers


def _worth_retrying(response: httpx.Response) -> bool:
    if response.status_code == 503:
        return True
    is_problem = response.headers.get("content-type", "").startswith("application/problem+json")
    return response.status_code == 409 and is_problem and response.json().get("type") == IN_PROGRESS_TYPE


def _report(response: httpx.Response) -> None:
    """Print the service's JSON answer; exit non-zero on an error."""
    typer.echo(json.dumps(response.json(), indent=2, ensure_ascii=False))
    if response.status_code >= 400:
        raise typer.Exit(1)


@app.command()
def demo(gateway: str = GatewayOption, email: str = EmailOption, password: str = PasswordOption) -> None:
    """Load the demo cities and their real partnerships through the gateway if the directory is empty."""
    from citypair_profiles.demo import load_demo_if_empty

    token = sign_in(gateway, email, password)
    if token is None:
        typer.secho("sign-in refused", fg="red", err=True)
        raise typer.Exit(1)
    typer.echo(f"{load_demo_if_empty(gateway, token)} cities loaded")


# What a file's extension says it holds as the `format` of an export (its media type in an import: MEDIA_BY_ENDING).
EXPORT_FORMATS = {".csv": "csv", ".xlsx": "xlsx", ".json": "json"}
PilotZonesOption = typer.Option(False, "--pilot-zones", help="Pilot-zone proposals instead of city profiles")


def _kind(pilot_zones: bool) -> str:
    return "pilot-zones" if pilot_zones else "cities"


@app.command("import")
def import_cities(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A .csv, .xlsx or .json file"),
    all_or_nothing: bool = typer.Option(False, help="Keep nothing if any row is bad"),
    pilot_zones: bool = PilotZonesOption,
    gateway: str = GatewayOption,
    email: str = EmailOption,
    password: str = PasswordOption,
) -> None:
    """Import city profiles (re-importing updates, never duplicates) or, with --pilot-zones, draft proposals (as
    an official of their cities; a row with an export's `id` edits that proposal); prints the row-by-row report."""
    kind = MEDIA_BY_ENDING.get(file.suffix.lower(), "application/json")
    with _client(gateway, email, password) as client:
        _report(
            _post(
                client,
                f"/api/v1/{_kind(pilot_zones)}/import",
                content=file.read_bytes(),
                headers={"Content-Type": kind},
                params={"all_or_nothing": all_or_nothing},
            )
        )


@app.command()
def export(
    output: Path = typer.Argument(..., dir_okay=False, help="Where to write: .csv, .xlsx or .json"),
    pilot_zones: bool = PilotZonesOption,
    gateway: str = GatewayOption,
    email: str = EmailOption,
    password: str = PasswordOption,
) -> None:
    """Export the whole directory (contacts are never exported) or, with --pilot-zones, the proposals you may see,
    as CSV, XLSX or JSON (by the file's extension; CSV if it names none of these)."""
    kind = EXPORT_FORMATS.get(output.suffix.lower(), "csv")
    with _client(gateway, email, password) as client:
        response = client.get(f"/api/v1/{_kind(pilot_zones)}/export", params={"format": kind})
        response.raise_for_status()
        output.write_bytes(response.content)
    typer.echo(f"wrote {output}")


@app.command()
def partnerships(
    file: Path = typer.Argument(
        None,
        help="Rows city1,country1,lat1,lng1,city2,country2,lat2,lng2 "
        "(default: the real twin-city pairs shipped with citypair)",
    ),
    gateway: str = GatewayOption,
    email: str = EmailOption,
    password: str = PasswordOption,
) -> None:
    """Record real partnerships among the profiles; prints matched and unmatched rows."""
    from citypair_profiles.demo import TWIN_CITIES

    with _client(gateway, email, password) as client:
        _report(
            _post(
                client,
                "/api/v1/cities/partnerships/import",
                content=(file or TWIN_CITIES).read_bytes(),
                headers={"Content-Type": "text/csv"},
            )
        )


@app.command()
def asyncapi(
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the YAML here instead of printing it"),
) -> None:
    """Print (or write) the AsyncAPI 3.0 description of every event subject."""
    import yaml

    from citypair_cli.asyncapi import build_document

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

    from citypair_cli.openapi import build_gateway_openapi

    text = json.dumps(build_gateway_openapi(), indent=2, sort_keys=True) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}")


@app.command("nats-config")
def nats_config(
    output: Path | None = typer.Option(None, "--output", "-o", help="Write it here instead of printing it"),
) -> None:
    """Print (or write) compose's nats-server config, deploy/nats.conf: a user per service, from the code."""
    from citypair_cli.bus_users import compose_nats_config

    text = compose_nats_config()
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}")


@app.command("nats-passwords")
def nats_passwords() -> None:
    """Print a new password for the bus admin and each service's NATS user, as lines for compose's .env."""
    from citypair_cli.bus_users import service_bus_users
    from citypair_shared.bus_access import ADMIN, new_password, password_variable

    for user in [ADMIN, *(user.name for user in service_bus_users())]:
        typer.echo(f"{password_variable(user)}={new_password()}")


# `citypair backup DIR` and `citypair restore DIR` (citypair_cli.backup; docs/operations.md).
app.command("backup")(backup_command)
app.command("restore")(restore_command)
