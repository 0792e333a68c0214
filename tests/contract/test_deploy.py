"""The container deployment agrees with the code: compose, Dockerfile, gateway, NATS and PostgreSQL.

Docker cannot run here, so the files are checked by the tools that own their formats (the
compose-spec schema, `caddy validate`, `nats-server -t`) and against the repository itself.
"""

import importlib
import ipaddress
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from citypair_shared import stack
from citypair_shared.bus_access import ADMIN, compose_nats_config, password_variable, service_bus_users

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
CADDYFILE = ROOT / "deploy" / "Caddyfile"
NATS_CONF = ROOT / "deploy" / "nats.conf"
POSTGRES_INIT = ROOT / "deploy" / "postgres-init.sql"

SERVICE_NAMES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "pyproject.toml").is_file())
WITH_DATABASE = sorted(name for name in SERVICE_NAMES if (ROOT / "services" / name / "migrations").is_dir())
INFRA = {"nats", "postgres", "gateway"}
JOBS = {"streams"}  # run once and exit
BUS_USERS = sorted(user.name for user in service_bus_users())  # the services that use the bus
NATS_PASSWORDS = {password_variable(user): "p-test" for user in [ADMIN, *BUS_USERS]}
APP_PORT = "8000"


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
    result = run(BIN / "nats-server", "-c", NATS_CONF, "-t", env={**os.environ, **NATS_PASSWORDS})
    assert result.returncode == 0, result.stdout + result.stderr
    text = NATS_CONF.read_text()
    assert re.search(r"^port:\s*4222$", text, re.M)
    assert re.search(r"^http_port:\s*8222$", text, re.M)
    assert re.search(r"^max_payload:\s*1MB$", text, re.M)
    assert re.search(r'jetstream\s*\{[^}]*store_dir:\s*"/data"', text)
    nats = compose()["services"]["nats"]
    assert "./deploy/nats.conf:/etc/nats/nats.conf:ro" in nats["volumes"]
    assert any(v.endswith(":/data") and not v.startswith(".") for v in nats["volumes"]), "JetStream needs a volume"
    assert nats["command"] == ["-c", "/etc/nats/nats.conf"]


def test_nats_config_is_the_one_the_code_renders():
    """Each service's user and permissions come from its code (citypair_shared.bus_access), never by hand."""
    assert NATS_CONF.read_text() == compose_nats_config(), "run: citypair nats-config --output deploy/nats.conf"


def test_nats_config_has_no_password_of_its_own():
    result = run(
        BIN / "nats-server", "-c", NATS_CONF, "-t", env={k: v for k, v in os.environ.items() if "NATS" not in k}
    )
    assert result.returncode != 0 and password_variable(ADMIN) in result.stderr


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
    expected = {"nats"} | ({"postgres"} if name in WITH_DATABASE else set())
    assert set(depends_on) == expected | ({"streams"} if name in BUS_USERS else set())
    for dependency in expected:
        assert depends_on[dependency] == {"condition": "service_healthy"}, (name, dependency)
    if name in BUS_USERS:
        assert depends_on["streams"] == {"condition": "service_completed_successfully"}, "the streams exist first"


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_app_service_environment_uses_its_settings_prefix(name):
    env = compose()["services"][name]["environment"]
    prefix = stack.SERVICE_BY_NAME[name].env_prefix
    assert all(key.startswith(prefix) for key in env if key != "FORWARDED_ALLOW_IPS"), env  # uvicorn's own
    assert env[prefix + "HOST"] == "0.0.0.0"
    assert env[prefix + "PORT"] == APP_PORT
    assert env[prefix + "NATS_URL"] == "nats://nats:4222"
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
        monkeypatch.setenv(key, interpolate(str(value), NATS_PASSWORDS))
    settings = importlib.import_module(f"{spec.package}.config").Settings()
    assert settings.environment == "production"
    assert settings.host == "0.0.0.0"
    assert settings.port == int(APP_PORT)
    assert settings.nats_url == "nats://nats:4222"
    if name in BUS_USERS:
        assert settings.nats_password.get_secret_value() == "p-test"


def nats_passwords_in(service: str) -> dict[str, str]:
    env = compose()["services"][service].get("environment", {})
    return {key: value for key, value in env.items() if key in NATS_PASSWORDS}


def test_compose_gives_nats_every_users_password_and_each_service_its_own_only():
    """Each password is required (no default to guess) and reaches nats-server and its one user only."""
    assert nats_passwords_in("nats") == {variable: required(variable) for variable in NATS_PASSWORDS}
    for name in SERVICE_NAMES:
        own = [password_variable(name)] if name in BUS_USERS else []
        assert nats_passwords_in(name) == {variable: required(variable) for variable in own}, name
    assert nats_passwords_in("streams") == {password_variable(ADMIN): required(password_variable(ADMIN))}
    assert nats_passwords_in("postgres") == nats_passwords_in("gateway") == {}


def test_the_streams_job_declares_the_streams_as_the_admin_before_the_services_start():
    services = compose()["services"]
    job = services["streams"]
    assert job["command"] == ["python", "-m", "citypair_shared.declare_streams"]
    assert job["environment"]["CITYPAIR_NATS_URL"] == "nats://nats:4222"
    assert job["depends_on"] == {"nats": {"condition": "service_healthy"}}
    assert job["restart"] == "on-failure" and "ports" not in job
    assert job["pull_policy"] == "never" and job["image"] in {services[name]["image"] for name in SERVICE_NAMES}


def test_gateway_routes_to_every_service_by_its_compose_name():
    services = compose()["services"]
    gateway = services["gateway"]
    assert gateway["image"] == "caddy:2"
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in gateway["volumes"]
    caddyfile = CADDYFILE.read_text()
    upstreams = {k: v for k, v in gateway["environment"].items() if k.endswith("_UPSTREAM")}
    expected = {f"CITYPAIR_{name.upper()}_UPSTREAM": f"{name}:{APP_PORT}" for name in SERVICE_NAMES}
    assert upstreams == expected
    for variable in expected:
        assert "{$" + variable + ":" in caddyfile, f"the Caddyfile does not read {variable}"
    assert gateway["depends_on"] == {name: {"condition": "service_healthy"} for name in SERVICE_NAMES}


def fixed_address(name: str) -> str:
    return compose()["services"][name]["networks"]["default"]["ipv4_address"]


def test_only_the_gateway_and_web_are_believed_about_client_addresses():
    """Services believe X-Forwarded-For from the gateway only; the gateway believes web's (a browser's address)."""
    services = compose()["services"]
    network = compose()["networks"]["default"]["ipam"]["config"][0]
    subnet, dynamic = ipaddress.ip_network(network["subnet"]), ipaddress.ip_network(network["ip_range"])
    gateway, web = fixed_address("gateway"), fixed_address("web")
    for address in (gateway, web):
        assert ipaddress.ip_address(address) in subnet and ipaddress.ip_address(address) not in dynamic
    assert gateway != web
    for name in SERVICE_NAMES:
        assert services[name]["environment"]["FORWARDED_ALLOW_IPS"] == gateway, name
    assert services["gateway"]["environment"]["CITYPAIR_GATEWAY_TRUSTED_PROXIES"] == web
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
    believed = {"ranges": [fixed_address("web")]} if compose_env else {}  # unset: no one
    assert server["trusted_proxies"] == {"source": "static", **believed}
    assert server["trusted_proxies_strict"] == 1  # the rightmost address it does not trust, never the leftmost
    proxies = proxy_handlers(server["routes"])
    assert len(proxies) >= len(SERVICE_NAMES)  # profiles' imports have a proxy of their own (a longer wait)
    for proxy in proxies:
        assert proxy["headers"]["request"]["set"]["X-Forwarded-For"] == ["{http.vars.client_ip}"]


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
    assert any("pip install -r /tmp/requirements.lock" in args for keyword, args in instructions if keyword == "RUN")
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
    """citypair_shared.stack finds services/ from its own file: /app must mirror the repository."""
    assert stack.REPO_ROOT == ROOT
    stack_in_repo = Path(stack.__file__).resolve().relative_to(ROOT)
    assert ("COPY", "shared/src /app/shared/src") in dockerfile_instructions()
    assert (Path("/app") / stack_in_repo).parents[3] == Path("/app")


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
