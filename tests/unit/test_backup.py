"""citypair_cli.backup on SQLite files, without a stack (the restore drill is tests/e2e/test_backup_restore.py)."""

import socket
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta

import pytest
from alembic.script import ScriptDirectory

from citypair_cli import backup
from citypair_cli.stack import SERVICE_BY_NAME, StackConfig
from citypair_shared.migrations import alembic_config


def execute(path, *statements: str) -> None:
    with closing(sqlite3.connect(path)) as conn, conn:
        for statement in statements:
            conn.execute(statement)


def head(service: str) -> str:
    return ScriptDirectory.from_config(
        alembic_config(SERVICE_BY_NAME[service].directory, "sqlite://")
    ).get_current_head()


@pytest.fixture
def config(tmp_path):
    """A stack's configuration whose databases have an outbox, an inbox and their service's newest revision."""
    config = StackConfig.on_free_ports(tmp_path / "var")
    config.var_dir.mkdir()
    for name, url in backup.database_urls(config).items():
        execute(
            backup.sqlite_path(url),
            "PRAGMA journal_mode=WAL",
            "CREATE TABLE alembic_version (version_num TEXT)",
            f"INSERT INTO alembic_version VALUES ('{head(name)}')",
            "CREATE TABLE outbox (event_id TEXT, published_at TEXT)",
            "INSERT INTO outbox VALUES ('e1', '2025-01-01 00:00:00')",
            "CREATE TABLE inbox (consumer TEXT, event_id TEXT, type TEXT, handled_at TEXT DEFAULT CURRENT_TIMESTAMP)",
        )
    return config


def test_a_backup_is_each_database_as_its_snapshot_began_with_a_manifest(config, tmp_path, monkeypatch):
    profiles = backup.sqlite_path(config.database_url("profiles"))
    copy = backup.SqliteSnapshot.copy

    def write_meanwhile(snapshot, dest):  # a service writes while the backup copies
        execute(profiles, "INSERT INTO outbox VALUES ('e2', NULL)")
        copy(snapshot, dest)

    monkeypatch.setattr(backup.SqliteSnapshot, "copy", write_meanwhile)
    manifest = backup.backup(config, tmp_path / "backup")
    assert manifest["databases"]["profiles"]["revision"] == head("profiles")
    assert manifest["databases"]["profiles"]["rows"] == {"alembic_version": 1, "inbox": 0, "outbox": 1}
    assert backup.read_manifest(tmp_path / "backup") == manifest
    with closing(sqlite3.connect(tmp_path / "backup" / "profiles.db")) as conn:
        assert conn.execute("SELECT event_id FROM outbox").fetchall() == [("e1",)]
    assert (tmp_path / "backup").stat().st_mode & 0o777 == 0o700
    with pytest.raises(backup.BackupError, match="not empty"):
        backup.backup(config, tmp_path / "backup")


def test_a_restore_refuses_a_running_stack_an_unknown_revision_and_an_unfinished_backup(config, tmp_path):
    backup.backup(config, tmp_path / "backup")
    with socket.socket() as listening:
        listening.bind((config.host, config.ports["matching"]))
        listening.listen()
        with pytest.raises(backup.BackupError, match="matching port"):
            backup.check_stopped(config)
    manifest = backup.read_manifest(tmp_path / "backup")
    manifest["databases"]["identity"]["revision"] = "from-a-newer-citypair"
    with pytest.raises(backup.BackupError, match="unknown to this citypair"):
        backup.check_restorable(config, tmp_path / "backup", manifest)
    (tmp_path / "backup" / backup.MANIFEST).unlink()
    with pytest.raises(backup.BackupError, match="did not finish"):
        backup.read_manifest(tmp_path / "backup")


def test_a_restored_sqlite_database_is_the_backup_and_every_event_is_to_be_sent_again(config, tmp_path):
    backup.backup(config, tmp_path / "backup")
    url = config.database_url("matching")
    path = backup.sqlite_path(url)
    execute(path, "DELETE FROM outbox")
    path.with_name(path.name + "-wal").write_bytes(b"left over")
    backup.restore_sqlite(url, tmp_path / "backup" / "matching.db")
    assert not path.with_name(path.name + "-wal").exists()
    assert backup.restored_rows(url) == {"alembic_version": 1, "inbox": 0, "outbox": 1}
    assert backup.mark_unsent(url) == 1
    assert not list((tmp_path / "backup").glob("*-[ws][ah][lm]"))  # reading the backup left nothing beside it


def test_events_a_consumer_applied_that_its_producer_never_made_are_reported(config):
    matching = backup.sqlite_path(config.database_url("matching"))
    execute(
        matching,
        "INSERT INTO inbox (consumer, event_id, type) VALUES ('matching', 'e1', 'profiles.city.registered.v1')",
        "INSERT INTO inbox (consumer, event_id, type) VALUES ('matching', 'e9', 'profiles.city.updated.v1')",
        "INSERT INTO inbox (consumer, event_id, type, handled_at)"
        " VALUES ('matching', 'e8', 'profiles.city.updated.v1', '2020-01-01 00:00:00')",  # long before the backup
    )
    ahead = backup.events_ahead_of_producers(config, datetime.now(UTC) - timedelta(minutes=5))
    assert [(row["service"], row["event_id"]) for row in ahead] == [("matching", "e9")]


def test_with_nats_copies_the_store_only_while_nats_server_is_stopped(config, tmp_path):
    store = config.var_dir / "nats" / "jetstream"
    store.mkdir(parents=True)
    (store / "meta.inf").write_text("backed up")
    with socket.socket() as listening:
        listening.bind((config.host, config.nats_port))
        listening.listen()
        with pytest.raises(backup.BackupError, match="nats-server stopped"):
            backup.backup(config, tmp_path / "live", with_nats=True)
    manifest = backup.backup(config, tmp_path / "backup", with_nats=True)
    assert manifest["nats"] == ["nats"]
    (store / "meta.inf").write_text("changed since")
    assert backup.put_back_nats(config, tmp_path / "backup", manifest) == ["nats"]
    assert (store / "meta.inf").read_text() == "backed up"
