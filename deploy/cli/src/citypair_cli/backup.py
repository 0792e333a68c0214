"""Backup and restore: `citypair backup DIR` and `citypair restore DIR` (docs/operations.md, Backup and restore).

A backup is every service's database, each read from a snapshot that was taken before any was copied (so all at
nearly one instant), and `manifest.json`: when, each database's Alembic revision and the row count of each of
its tables, as read from the same snapshot. SQLite is copied with its online backup API, PostgreSQL with
`pg_dump --format=custom --snapshot=…`: both while the services run.

The JetStream store is not backed up while it runs (`--with-nats` copies it when the stack is stopped). It need
not be: what the streams hold is derived from the outboxes. A restore therefore rebuilds the bus:

- every outbox row is marked unsent, so each service's relay publishes again every event its restored database
  has (sent rows are kept 7 days, unsent ones until sent);
- the producers' streams (with their consumers) are deleted, so they hold no event the restored databases never
  made (made after the backup), and the re-published events are not dropped as duplicates of their first
  publication; the next start declares them anew, and each service's durable consumer reads them from the start;
- each consumer applies what its restored inbox lacks, and skips, by event id, what it had applied.

The DEADLETTER stream and web's sessions bucket are left as they are.
"""

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
from contextlib import ExitStack, closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import psycopg
import typer
from alembic.script import ScriptDirectory
from nats.js.errors import NotFoundError
from psycopg import sql
from sqlalchemy import bindparam, column, create_engine, inspect, select, table
from sqlalchemy.engine import make_url

from citypair_cli.stack import Stack, StackConfig, port_is_free
from citypair_shared.bus import inbox_prefix
from citypair_shared.bus_access import ADMIN
from citypair_shared.db import UtcDateTime, sync_url
from citypair_shared.events import STREAMS, stream_of
from citypair_shared.migrations import alembic_config
from citypair_shared.services import SERVICE_BY_NAME, SERVICES

MANIFEST = "manifest.json"
FORMAT = 1
# Inbox rows handled this long before the backup began are checked against their producer's outbox too: a
# database server's clock may differ a little from this one's.
CLOCK_MARGIN = timedelta(minutes=1)


class BackupError(RuntimeError):
    """A backup or restore refused, or failed, with a reason for the operator."""


def kind_of(url: str) -> str:
    """`sqlite` or `postgresql`."""
    return make_url(url).get_backend_name()


def database_urls(config: StackConfig) -> dict[str, str]:
    """Each service's database URL, as the stack takes it (CITYPAIR_<SERVICE>_DATABASE_URL, else var/<service>.db)."""
    return {spec.name: config.database_url(spec.name) for spec in SERVICES if spec.has_database}


def sqlite_path(url: str) -> Path:
    return Path(make_url(url).database)


def libpq(url: str) -> tuple[str, str | None]:
    """A PostgreSQL URL for libpq (psycopg, pg_dump, pg_restore) without its password, and the password."""
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.set(password=None).render_as_string(hide_password=False), parsed.password


def _pg_env(password: str | None) -> dict[str, str]:
    """pg_dump's and pg_restore's environment: the password there, not on a command line others can read."""
    return {**os.environ, **({"PGPASSWORD": password} if password else {})}


def _run(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()}")


# Snapshots: a database held at one instant, read and copied from there.


class SqliteSnapshot:
    """A read transaction on a SQLite database: what it reads and copies is the database when it began."""

    suffix = ".db"

    def __init__(self, url: str):
        path = sqlite_path(url)
        if not path.exists():
            raise BackupError(f"no database at {path}")
        self.conn = sqlite3.connect(path, isolation_level=None)

    def begin(self) -> None:
        self.conn.execute("BEGIN")
        self.conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot is taken here

    def fetch(self, query: str) -> list[tuple]:
        return self.conn.execute(query).fetchall()

    def tables(self) -> list[str]:
        query = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        return [n for (n,) in self.fetch(query)]

    def copy(self, dest: Path) -> None:
        with closing(sqlite3.connect(dest)) as out:
            self.conn.backup(out)  # in the read transaction: its snapshot, whatever is written meanwhile

    def close(self) -> None:
        self.conn.close()


class PostgresSnapshot:
    """A repeatable-read transaction whose snapshot pg_dump dumps (`--snapshot`): the counts are the dump's."""

    suffix = ".dump"

    def __init__(self, url: str):
        self.dsn, self.password = libpq(url)
        self.conn = psycopg.connect(self.dsn, password=self.password)
        self.snapshot = ""

    def begin(self) -> None:
        self.conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        self.conn.read_only = True
        self.snapshot = self.conn.execute("SELECT pg_export_snapshot()").fetchone()[0]

    def fetch(self, query: str) -> list[tuple]:
        return self.conn.execute(query).fetchall()

    def tables(self) -> list[str]:
        return [n for (n,) in self.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]

    def copy(self, dest: Path) -> None:
        args = ["pg_dump", "--format=custom", f"--snapshot={self.snapshot}", f"--file={dest}", f"--dbname={self.dsn}"]
        _run(args, _pg_env(self.password))

    def close(self) -> None:
        self.conn.close()


def open_snapshot(url: str) -> SqliteSnapshot | PostgresSnapshot:
    """Connected, not begun (connecting takes a while; beginning every database's snapshot does not)."""
    return SqliteSnapshot(url) if kind_of(url) == "sqlite" else PostgresSnapshot(url)


def describe(snapshot: SqliteSnapshot | PostgresSnapshot) -> dict[str, Any]:
    """The database's Alembic revision and the row count of each table."""
    tables = sorted(snapshot.tables())
    rows = {t: snapshot.fetch(f'SELECT count(*) FROM "{t}"')[0][0] for t in tables}
    revision = snapshot.fetch("SELECT version_num FROM alembic_version")[0][0] if "alembic_version" in rows else None
    return {"revision": revision, "rows": rows}


# Backup


def nats_stopped(config: StackConfig) -> bool:
    return all(port_is_free(config.host, port) for _, port in config.nats_nodes)


def backup(config: StackConfig, directory: Path, *, with_nats: bool = False) -> dict[str, Any]:
    """Back up every service's database into `directory` (new or empty); returns the manifest, written last."""
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise BackupError(f"{directory} is not empty: back up into a new directory")
    if with_nats and not nats_stopped(config):
        raise BackupError("--with-nats copies the JetStream store, which needs nats-server stopped: stop the stack")
    started = datetime.now(UTC)
    urls = database_urls(config)
    databases: dict[str, Any] = {}
    with ExitStack() as held:
        snapshots = {name: held.enter_context(closing(open_snapshot(url))) for name, url in urls.items()}
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)  # it holds password hashes and signing keys
        for snapshot in snapshots.values():  # every snapshot begun before any is copied: one instant for all
            snapshot.begin()
        for name, snapshot in snapshots.items():
            dest = directory / f"{name}{snapshot.suffix}"
            snapshot.copy(dest)
            dest.chmod(0o600)
            url = make_url(urls[name]).render_as_string(hide_password=True)
            databases[name] = {"kind": kind_of(urls[name]), "file": dest.name, "database": url, **describe(snapshot)}
    manifest = {
        "format": FORMAT,
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "databases": databases,
        "nats": copy_nats(config, directory) if with_nats else [],
    }
    path = directory / MANIFEST
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    path.chmod(0o600)
    return manifest


def copy_nats(config: StackConfig, directory: Path) -> list[str]:
    """Copy each nats-server's store (`<var>/nats`); nats-server must be stopped."""
    copied = []
    for name, _ in config.nats_nodes:
        if (config.var_dir / name).is_dir():
            shutil.copytree(config.var_dir / name, directory / name)
            copied.append(name)
    return copied


# Restore


def read_manifest(directory: Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST
    if not path.exists():
        raise BackupError(f"no {MANIFEST} in {directory}: not a backup, or one that did not finish")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{path}: format {manifest.get('format')!r}, this citypair reads {FORMAT}")
    return manifest


def known_revision(service: str, revision: str | None) -> bool:
    """Whether this code's migrations know `revision` (a backup from a newer citypair has ones it does not)."""
    if revision is None:
        return False
    spec = SERVICE_BY_NAME[service]
    script = ScriptDirectory.from_config(alembic_config(spec.directory, "sqlite://"))
    try:
        return script.get_revision(revision) is not None
    except Exception:
        return False


def check_restorable(config: StackConfig, directory: Path, manifest: dict[str, Any]) -> dict[str, Path]:
    """Each service's backup file, once it is certain that each can be restored into its configured database."""
    files = {}
    for name, url in database_urls(config).items():
        entry = manifest["databases"].get(name)
        if entry is None:
            raise BackupError(f"the backup has no database of {name}")
        if entry["kind"] != kind_of(url):
            raise BackupError(f"{name}: a {entry['kind']} backup cannot be restored into {kind_of(url)}")
        if not known_revision(name, entry["revision"]):
            raise BackupError(f"{name}: revision {entry['revision']!r} is unknown to this citypair (a newer one's?)")
        files[name] = Path(directory) / entry["file"]
        if not files[name].exists():
            raise BackupError(f"{files[name]} is missing")
    return files


def check_stopped(config: StackConfig, *, with_nats: bool = False) -> None:
    """Refuse while a service or the gateway listens on its port, or anyone else uses a PostgreSQL database."""
    ports = [("gateway", config.gateway_port)]
    ports += [(spec.name, port) for spec in SERVICES for port in config.service_ports(spec.name)]
    ports += config.nats_nodes if with_nats else []
    taken = [f"{name} port {port}" for name, port in ports if not port_is_free(config.host, port)]
    if taken:
        raise BackupError("citypair is running (taken: " + ", ".join(taken) + "): stop it before restoring")
    for name, url in database_urls(config).items():
        if kind_of(url) == "postgresql" and (sessions := other_sessions(url)):
            raise BackupError(f"{name}: {sessions} other session(s) use {make_url(url).database}: stop them first")


def _maintenance(url: str) -> psycopg.Connection:
    """A connection to the server's `postgres` database, from which another database is dropped and created."""
    dsn, password = libpq(make_url(url).set(database="postgres").render_as_string(hide_password=False))
    return psycopg.connect(dsn, password=password, autocommit=True)


def other_sessions(url: str) -> int:
    with _maintenance(url) as conn:
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
        return conn.execute(query, [make_url(url).database]).fetchone()[0]


def restore_sqlite(url: str, source: Path) -> None:
    """Replace the database file with the backup's (written beside it first, then moved into place)."""
    path = sqlite_path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".restoring")
    partial.unlink(missing_ok=True)
    # immutable: reading the backup creates no -wal or -shm file beside it, and changes nothing
    uri = f"{source.resolve().as_uri()}?immutable=1"
    with closing(sqlite3.connect(uri, uri=True)) as src, closing(sqlite3.connect(partial)) as dst:
        src.backup(dst)
    for leftover in ("-wal", "-shm", "-journal"):  # the old database's: applied to the new file, they would harm it
        path.with_name(path.name + leftover).unlink(missing_ok=True)
    os.replace(partial, path)


def restore_postgres(url: str, source: Path) -> None:
    """Drop and create the database (keeping its owner), then pg_restore the dump into it."""
    name = make_url(url).database
    with _maintenance(url) as conn:
        found = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", [name]).fetchone()
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if found:
            create += sql.SQL(" OWNER {}").format(sql.Identifier(found[0]))
        conn.execute(create)
    dsn, password = libpq(url)
    _run(["pg_restore", "--exit-on-error", "--single-transaction", f"--dbname={dsn}", str(source)], _pg_env(password))


def restored_rows(url: str) -> dict[str, int]:
    with closing(open_snapshot(url)) as snapshot:
        snapshot.begin()
        return describe(snapshot)["rows"]


def mark_unsent(url: str) -> int:
    """Mark every outbox row unsent, so that the relay publishes it again; returns how many were sent."""
    engine = create_engine(sync_url(url))
    try:
        with engine.begin() as conn:
            if not inspect(conn).has_table("outbox"):
                return 0
            return conn.exec_driver_sql("UPDATE outbox SET published_at = NULL WHERE published_at IS NOT NULL").rowcount
    finally:
        engine.dispose()


def put_back_nats(config: StackConfig, directory: Path, manifest: dict[str, Any]) -> list[str]:
    """Replace each nats-server's store with the backup's copy (`--with-nats`)."""
    for name in manifest["nats"]:
        shutil.rmtree(config.var_dir / name, ignore_errors=True)
        shutil.copytree(Path(directory) / name, config.var_dir / name)
    return list(manifest["nats"])


async def delete_streams(url: str, password: str | None, *, within: float = 30) -> list[str]:
    """Delete the producers' streams (and so their consumers) as the bus admin; returns those that existed."""
    credentials = {"user": ADMIN, "password": password} if password else {}
    servers = [server.strip() for server in url.split(",")]
    nc = await nats.connect(servers, **credentials, inbox_prefix=inbox_prefix(ADMIN), allow_reconnect=False)
    deadline = asyncio.get_running_loop().time() + within
    try:
        js = nc.jetstream()
        deleted = []
        for stream in STREAMS:
            while True:
                try:
                    await js.delete_stream(stream)
                    deleted.append(stream)
                    break
                except NotFoundError:
                    break
                except Exception:  # JetStream still starting (recovering its store, electing a leader)
                    if asyncio.get_running_loop().time() > deadline:
                        raise
                    await asyncio.sleep(0.5)
        return deleted
    finally:
        await nc.close()


def rebuild_streams(config: StackConfig) -> list[str]:
    """Delete the producers' streams: on the running NATS (CITYPAIR_NATS_URL and CITYPAIR_NATS_ADMIN_PASSWORD,
    else the embedded stack's), or, when none runs, on the embedded nats-server started for the purpose."""
    if not nats_stopped(config):
        return asyncio.run(delete_streams(config.admin_nats_url(), config.admin_password()))
    stack = Stack(config)
    try:
        stack.start_nats()
        return asyncio.run(delete_streams(config.nats_url, config.nats_passwords[ADMIN]))
    finally:
        stack.stop()


def events_ahead_of_producers(config: StackConfig, since: datetime) -> list[dict[str, str]]:
    """Events a restored consumer had applied that their restored producer never made: possible only if one was
    made and applied between the producer's snapshot and the consumer's (the backup takes them within a few
    milliseconds of each other). Inbox rows handled before `since` are not looked at: their events were older."""
    inbox = table("inbox", column("consumer"), column("event_id"), column("type"), column("handled_at", UtcDateTime()))
    outbox = table("outbox", column("event_id"))
    urls = database_urls(config)
    handled: dict[str, list[dict[str, str]]] = {}
    for name, url in urls.items():
        query = select(inbox.c.consumer, inbox.c.event_id, inbox.c.type).where(inbox.c.handled_at >= since)
        for consumer, event_id, type_ in _rows(url, "inbox", query):
            row = {"service": name, "consumer": consumer, "event_id": event_id, "type": type_}
            handled.setdefault(stream_of(type_).lower(), []).append(row)
    ahead = []
    query = select(outbox.c.event_id).where(outbox.c.event_id.in_(bindparam("ids", expanding=True)))
    for producer, rows in handled.items():
        ids = [row["event_id"] for row in rows]
        made = set()
        for start in range(0, len(ids) if producer in urls else 0, 1000):
            made |= {event_id for (event_id,) in _rows(urls[producer], "outbox", query, ids=ids[start : start + 1000])}
        ahead += [row for row in rows if row["event_id"] not in made]
    return ahead


def _rows(url: str, needs: str, query, **params) -> list[tuple]:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(query, params)] if inspect(conn).has_table(needs) else []
    finally:
        engine.dispose()


def restore(config: StackConfig, directory: Path, *, with_nats: bool = False) -> dict[str, Any]:
    """Restore every service's database from `directory` and rebuild the bus; the stack must be stopped.

    Returns what was done, and any events some consumer had applied that the producer's backup lacks."""
    manifest = read_manifest(directory)
    files = check_restorable(config, directory, manifest)
    check_stopped(config, with_nats=with_nats)
    urls = database_urls(config)
    for name, source in files.items():
        (restore_sqlite if kind_of(urls[name]) == "sqlite" else restore_postgres)(urls[name], source)
        if (rows := restored_rows(urls[name])) != manifest["databases"][name]["rows"]:
            raise BackupError(f"{name}: restored rows {rows} differ from the backup's {manifest['databases'][name]}")
    resend = {name: mark_unsent(url) for name, url in urls.items()}
    nats_restored = put_back_nats(config, directory, manifest) if with_nats else []
    deleted = rebuild_streams(config)
    since = datetime.fromisoformat(manifest["started_at"]) - CLOCK_MARGIN
    return {
        "databases": {name: manifest["databases"][name]["revision"] for name in files},
        "outbox_rows_to_resend": resend,
        "nats_restored": nats_restored,
        "streams_deleted": deleted,
        "ahead_of_producers": events_ahead_of_producers(config, since),
    }


# The commands (registered in citypair_cli.cli).

WithNatsOption = typer.Option(
    False, "--with-nats", help="Also the JetStream store (<var>/nats), copied while nats-server is stopped"
)


def backup_command(
    directory: Path = typer.Argument(..., file_okay=False, help="A new or empty directory"),
    with_nats: bool = WithNatsOption,
) -> None:
    """Back up every service's database (safe while citypair runs) and a manifest (docs/operations.md)."""
    try:
        manifest = backup(StackConfig.from_env(), directory, with_nats=with_nats)
    except (BackupError, OSError, psycopg.Error, sqlite3.Error) as exc:
        typer.secho(f"backup failed: {exc}", fg="red", err=True)
        raise typer.Exit(1) from exc
    for name, entry in manifest["databases"].items():
        rows = sum(entry["rows"].values())
        typer.echo(f"{name}: {entry['file']}, revision {entry['revision']}, {rows} rows in {len(entry['rows'])} tables")
    if manifest["nats"]:
        typer.echo(f"JetStream store: {', '.join(manifest['nats'])}")
    typer.secho(f"backed up into {directory} ({MANIFEST}: {manifest['started_at']})", fg="green")


def restore_command(
    directory: Path = typer.Argument(..., exists=True, file_okay=False, help="A directory `citypair backup` wrote"),
    with_nats: bool = WithNatsOption,
    yes: bool = typer.Option(False, "--yes", help="Do not ask before replacing the databases"),
) -> None:
    """Replace every service's database with a backup and rebuild the streams from the outboxes; citypair must
    be stopped. Start it again afterwards (docs/operations.md, Backup and restore)."""
    config = StackConfig.from_env()
    if not yes:
        typer.confirm(f"Replace every service's database with the backup in {directory}?", abort=True)
    try:
        report = restore(config, directory, with_nats=with_nats)
    except (RuntimeError, TimeoutError, OSError, psycopg.Error, sqlite3.Error, nats.errors.Error) as exc:
        typer.secho(f"restore failed: {exc}", fg="red", err=True)
        raise typer.Exit(1) from exc
    for name, revision in report["databases"].items():
        resend = report["outbox_rows_to_resend"][name]
        typer.echo(f"{name}: restored (revision {revision}); {resend} events to publish again")
    typer.echo(f"streams deleted, declared anew at the next start: {', '.join(report['streams_deleted']) or 'none'}")
    if report["nats_restored"]:
        typer.echo(f"JetStream store restored: {', '.join(report['nats_restored'])}")
    if ahead := report["ahead_of_producers"]:
        typer.secho(f"{len(ahead)} event(s) applied by a consumer but not in their producer's backup:", fg="yellow")
        for row in ahead[:20]:
            typer.secho(f"  {row['service']}: {row['type']} {row['event_id']}", fg="yellow")
    typer.secho("restored: start citypair (`citypair run`)", fg="green")
