"""`citypair run` restarts a part killed with SIGKILL, says so, and still stops everything on SIGTERM; its streams
keep events as long as the environment says."""

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import nats
import pytest

from citypair_cli.stack import SERVICES, StackConfig
from citypair_shared.bus import inbox_prefix
from citypair_shared.bus_access import ADMIN
from tests.support import ADMIN_EMAIL, ADMIN_PASSWORD, city_body, client_for, eventually

# How each part's command line is recognised among `citypair run`'s children.
STREAM_DAYS, DEAD_LETTER_DAYS = 12, 40  # not the defaults (30, 90)
MARKERS = {"nats": "nats-server", "gateway": "caddy", **{s.name: f"{s.package}.main:create_app" for s in SERVICES}}


def parts(parent: int) -> dict[str, int]:
    """The pid of each part: the children of `parent`, told apart by their command lines."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, IndexError):
            continue  # gone meanwhile
        if ppid == parent:
            found.update({name: int(stat.parent.name) for name, marker in MARKERS.items() if marker in command})
    return found


def stream_days(config: StackConfig) -> dict[str, float]:
    """Days each of two streams keeps a message, read as the bus admin (password from `citypair run`'s secrets)."""
    password = config.admin_password()

    async def read() -> dict[str, float]:
        nc = await nats.connect(config.nats_url, user=ADMIN, password=password, inbox_prefix=inbox_prefix(ADMIN))
        try:
            js = nc.jetstream()
            return {name: (await js.stream_info(name)).config.max_age / 86400 for name in ("PROFILES", "DEADLETTER")}
        finally:
            await nc.close()

    return asyncio.run(read())


def ready(config: StackConfig, name: str) -> bool:
    try:
        return httpx.get(config.service_url(name) + "/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def citypair_run(tmp_path):
    """`citypair run` on free ports with its own SQLite data; yields the process, its config and its output file."""
    config = StackConfig.on_free_ports(tmp_path / "var")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYPAIR_")}  # no outside database or port
    env |= {
        "PYTHONUNBUFFERED": "1",
        "CITYPAIR_VAR_DIR": str(config.var_dir),
        "CITYPAIR_GATEWAY_PORT": str(config.gateway_port),
        "CITYPAIR_NATS_PORT": str(config.nats_port),
        "CITYPAIR_ADMIN_EMAIL": ADMIN_EMAIL,
        "CITYPAIR_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "CITYPAIR_STREAM_MAX_AGE_DAYS": str(STREAM_DAYS),
        "CITYPAIR_DEADLETTER_MAX_AGE_DAYS": str(DEAD_LETTER_DAYS),
        **{s.env_prefix + "PORT": str(config.ports[s.name]) for s in SERVICES},
    }
    output = tmp_path / "run.out"
    with output.open("wb") as out:
        command = [str(Path(sys.executable).parent / "citypair"), "run", "--no-demo"]
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        eventually(
            lambda: process.poll() is not None or "citypair is up" in output.read_text(), timeout=90, what="startup"
        )
        assert process.poll() is None, output.read_text()
        yield process, config, output
    finally:
        if process.poll() is None:
            leftovers = parts(process.pid)
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                for pid in [process.pid, *leftovers.values()]:  # never leave a test's parts running
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                process.wait()


def test_killed_parts_come_back_and_sigterm_still_stops_everything(citypair_run):
    process, config, output = citypair_run
    # The streams keep what the services were told: an inbox row (kept as long as the stream keeps its event, and
    # a day more) never outlives, nor is outlived by, the event it guards against.
    assert stream_days(config) == {"PROFILES": STREAM_DAYS, "DEADLETTER": DEAD_LETTER_DAYS}

    def until(check, what: str) -> None:
        """Wait for `check` (a restarted part may take seconds to import on a busy machine); stop at once if
        `citypair run` stops, and show what it printed either way."""

        def running_and():
            assert process.poll() is None, f"citypair run stopped:\n{output.read_text()}"
            return check()

        try:
            eventually(running_and, timeout=45, what=what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; citypair run printed:\n{output.read_text()}") from None

    with client_for(config.gateway_url, ADMIN_EMAIL, ADMIN_PASSWORD) as admin:
        killed = parts(process.pid)
        os.kill(killed["matching"], signal.SIGKILL)
        until(
            lambda: ready(config, "matching") and admin.get("/api/v1/clusters").status_code == 200,
            what="matching answering again, through the gateway too",
        )
        assert "matching exited (-9); restarting in 0.5 s, restart 1 in a row" in output.read_text()
        assert parts(process.pid)["matching"] != killed["matching"]

        os.kill(killed["nats"], signal.SIGKILL)
        until(lambda: all(ready(config, s.name) for s in SERVICES), what="every service back on the bus")
        assert "nats exited (-9); restarting in 0.5 s, restart 1 in a row" in output.read_text()
        # The restarted nats-server has its streams (on disk): a new city reaches matching through it.
        city = admin.post("/api/v1/cities", json=city_body("Lanzhou")).json()["id"]
        until(
            lambda: admin.get(f"/api/v1/cities/{city}/partners").status_code == 200,
            what="a city registered after the restart in matching",
        )

    running = parts(process.pid)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0, output.read_text()
    assert not [name for name, pid in running.items() if Path(f"/proc/{pid}").exists()], "a part outlived the stop"
