"""Production: the HTTPS gateway (deploy/Caddyfile.production) and the settings production needs (docs/operations.md).

The gateway is checked offline: `caddy validate` loads and provisions it (no certificate is asked for), its
JSON is compared with deploy/Caddyfile's routes, and it is run on free ports with a certificate from Caddy's
own CA for `localhost` to see the redirect and the header on the wire. A real ACME certificate cannot be
tried here.
"""

import copy
import importlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import typing
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from citypair_cli import stack
from citypair_cli.bus_users import service_bus_users
from citypair_shared import declare_streams
from citypair_shared.bus_access import ADMIN, password_variable
from tests.contract.gateway_files import CADDYFILE, PRODUCTION_CADDYFILE, config_text

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
OPERATIONS = ROOT / "docs" / "operations.md"
DECLARE_STREAMS = ROOT / "shared" / "src" / "citypair_shared" / "declare_streams.py"
SITE = "citypair.example.org"
HSTS = "max-age=31536000; includeSubDomains"
SECURITY_HEADER = "X-Content-Type-Options"  # one of the headers every answer carries (deploy/caddy/routes.caddy)
UPSTREAMS = {f"CITYPAIR_{spec.name.upper()}_UPSTREAM" for spec in stack.SERVICES}


def caddy(*args: str | Path, env: dict[str, str], tmp_path: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """The virtualenv's caddy with `env` (nothing else of CITYPAIR_*), its own state under tmp_path."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CITYPAIR_")}
    home = {"XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    return subprocess.run(
        [str(BIN / "caddy"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
        env=clean | home | env,
    )


def adapted(caddyfile: Path, env: dict[str, str], tmp_path: Path) -> dict:
    result = caddy("adapt", "--config", caddyfile, "--adapter", "caddyfile", env=env, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def walk(node, found: list[dict], handler: str) -> list[dict]:
    if isinstance(node, dict):
        if node.get("handler") == handler:
            found.append(node)
        for value in node.values():
            walk(value, found, handler)
    elif isinstance(node, list):
        for value in node:
            walk(value, found, handler)
    return found


def without(node, drop):
    """A copy of a JSON tree without what `drop(key, value)` says, at any depth."""
    if isinstance(node, dict):
        return {k: without(v, drop) for k, v in node.items() if not drop(k, v)}
    if isinstance(node, list):
        return [without(v, drop) for v in node]
    return node


# --- deploy/Caddyfile.production ------------------------------------------------------------------------


def test_production_caddyfile_is_valid_and_redirects_http_to_https(tmp_path):
    """Provisioning (what `caddy validate` does) sets up the redirect; no certificate is asked for."""
    result = caddy(
        "validate",
        "--config",
        PRODUCTION_CADDYFILE,
        "--adapter",
        "caddyfile",
        env={"CITYPAIR_SITE_ADDRESS": SITE},
        tmp_path=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Valid configuration" in output
    assert "enabling automatic HTTP->HTTPS redirects" in output


def test_production_caddyfile_needs_a_site_address(tmp_path):
    result = caddy("adapt", "--config", PRODUCTION_CADDYFILE, "--adapter", "caddyfile", env={}, tmp_path=tmp_path)
    assert result.returncode != 0, "no domain, no site: it must not start with a made-up one"


def test_production_caddyfile_is_an_https_site_for_the_domain_with_hsts_on_every_answer(tmp_path):
    config = adapted(PRODUCTION_CADDYFILE, {"CITYPAIR_SITE_ADDRESS": SITE}, tmp_path)
    assert config["admin"]["disabled"] is True
    (server,) = config["apps"]["http"]["servers"].values()
    assert server["listen"] == [":443"]
    assert "automatic_https" not in server, "automatic HTTPS (and its HTTP->HTTPS redirect) stays on"
    for routes in (server["routes"], server["errors"]["routes"]):
        (site,) = routes
        assert site["match"] == [{"host": [SITE]}]
    headers = [h for h in walk(server, [], "headers") if SECURITY_HEADER in h.get("response", {}).get("set", {})]
    assert len(headers) >= 4  # the site's routes and each of its error routes
    for handler in headers:
        assert handler["response"]["set"]["Strict-Transport-Security"] == [HSTS]


@pytest.mark.parametrize("caddyfile", [CADDYFILE, PRODUCTION_CADDYFILE], ids=["plain", "production"])
def test_the_gateway_traces_only_when_told(caddyfile, tmp_path):
    """Off by default (Caddy would export to localhost:4318 and log each failure); on, every request's span."""
    site = {"CITYPAIR_SITE_ADDRESS": SITE}
    assert walk(adapted(caddyfile, site, tmp_path), [], "tracing") == []
    traced = walk(adapted(caddyfile, site | {"CITYPAIR_GATEWAY_TRACING": "on"}, tmp_path), [], "tracing")
    assert traced and all(handler["span"] == "gateway" for handler in traced)


@pytest.mark.parametrize(
    "env",
    [{}, {**{variable: "upstream:8000" for variable in UPSTREAMS}, "CITYPAIR_GATEWAY_TRUSTED_PROXIES": "10.1.0.0/16"}],
    ids=["defaults", "containers"],
)
def test_production_caddyfile_has_the_routes_and_server_options_of_deploy_caddyfile(env, tmp_path):
    """Both import deploy/caddy/: only the address, the host match, HSTS and the bind address differ."""
    production = adapted(PRODUCTION_CADDYFILE, env | {"CITYPAIR_SITE_ADDRESS": SITE}, tmp_path)
    development = adapted(CADDYFILE, env, tmp_path)
    (prod,) = production["apps"]["http"]["servers"].values()
    (dev,) = development["apps"]["http"]["servers"].values()
    # The file server hides the Caddyfiles it was configured from: their paths differ.
    not_hsts = lambda key, value: key == "Strict-Transport-Security" or key == "hide"  # noqa: E731
    (site,) = prod["routes"]
    (site_errors,) = prod["errors"]["routes"]
    assert without(site["handle"], not_hsts) == [{"handler": "subroute", "routes": without(dev["routes"], not_hsts)}]
    assert without(site_errors["handle"], not_hsts) == [
        {"handler": "subroute", "routes": without(dev["errors"]["routes"], not_hsts)}
    ]
    options = {"listen", "routes", "errors", "automatic_https", "logs"}  # logs: named by host in production
    assert {k: v for k, v in prod.items() if k not in options} == {k: v for k, v in dev.items() if k not in options}
    assert "logs" in prod and "logs" in dev  # both write an access log


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_production_gateway_redirects_to_https_and_sends_hsts(tmp_path):
    """Run as adapted, but on free ports and with a certificate from Caddy's own CA for `localhost` (which it
    uses for that name instead of ACME; its root is not installed anywhere): the redirect and the header."""
    env = {"CITYPAIR_SITE_ADDRESS": "localhost", "CITYPAIR_DOCS_DIR": str(tmp_path / "no-docs")}
    env |= {variable: "127.0.0.1:9" for variable in UPSTREAMS}  # nothing answers: the gateway's own answers
    config = adapted(PRODUCTION_CADDYFILE, env, tmp_path)
    http_port, https_port = free_port(), free_port()
    run_config = copy.deepcopy(config)
    run_config["apps"]["http"] |= {"http_port": http_port, "https_port": https_port}
    (server,) = run_config["apps"]["http"]["servers"].values()
    server["listen"] = [f"127.0.0.1:{https_port}"]
    run_config["apps"]["pki"] = {"certificate_authorities": {"local": {"install_trust": False}}}
    (tmp_path / "caddy.json").write_text(json.dumps(run_config))
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CITYPAIR_")}
    home = {"XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    process = subprocess.Popen(
        [str(BIN / "caddy"), "run", "--config", str(tmp_path / "caddy.json")],
        env=clean | home | env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "caddy.log").open("w"),
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                redirect = httpx.get(f"http://127.0.0.1:{http_port}/cities?q=1", headers={"Host": "localhost"})
                not_found = httpx.get(f"https://localhost:{https_port}/api/v1/nope", verify=False)
                break
            except httpx.HTTPError:  # not listening yet, or its certificate not yet made
                assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "caddy.log").read_text()
                time.sleep(0.1)
        assert redirect.status_code == 308
        assert (
            redirect.headers["location"].startswith("https://localhost")
            and "/cities?q=1" in redirect.headers["location"]
        )
        # The gateway's own answer for an unknown API path, and an error route's (no docs/openapi.json to serve).
        no_file = httpx.get(f"https://localhost:{https_port}/api/v1/openapi.json", verify=False)
        for answer in (not_found, no_file):
            assert answer.status_code == 404, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.headers["strict-transport-security"] == HSTS
            assert answer.headers["x-content-type-options"] == "nosniff"
        assert not_found.json()["detail"] == "no API route for this path"  # a route of the site
        assert "detail" not in no_file.json()  # the error routes' catch-all
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- docs/operations.md, "Production settings" ------------------------------------------------------------

LOOPBACK_OR_DEVELOPMENT = ("127.0.0.1", "localhost", ".local")


def section(title: str) -> str:
    text = OPERATIONS.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def documented_variables() -> set[str]:
    """Every CITYPAIR_* variable the section names; `<SERVICE>` stands for each service."""
    names = set()
    for name in re.findall(r"`(CITYPAIR_[A-Z0-9_<>]+)`", section("Production settings")):
        if "<SERVICE>" in name:
            names |= {name.replace("<SERVICE>", spec.name.upper()) for spec in stack.SERVICES}
        else:
            names.add(name)
    return names


def variables_of(spec, field: str, info) -> set[str]:
    """The variables a setting is read from: its own name(s), or the prefixed field name."""
    alias = info.validation_alias
    if alias is None:
        return {spec.env_prefix + field.upper()}
    return {alias} if isinstance(alias, str) else {choice for choice in alias.choices if isinstance(choice, str)}


def is_secret(info) -> bool:
    return info.annotation is SecretStr or SecretStr in typing.get_args(info.annotation)


def settings_needed_in_production() -> dict[str, str]:
    """Each setting of each service that production cannot leave as it is, and why (from the code)."""
    bus_users = {user.name for user in service_bus_users()}
    needed = {}
    for spec in stack.SERVICES:
        fields = importlib.import_module(f"{spec.package}.config").Settings.model_fields
        for field, info in fields.items():
            default = info.default
            if field == "environment":
                why = f"defaults to {default!r}"
            elif isinstance(default, str) and any(marker in default for marker in LOOPBACK_OR_DEVELOPMENT):
                why = f"its default {default!r} is loopback or development"
            elif field == "database_url" and spec.has_database:
                why = "its default is SQLite, which production refuses"
            elif is_secret(info) and default is None and (field != "nats_password" or spec.name in bus_users):
                why = "a secret with no default"
            else:
                continue
            for variable in variables_of(spec, field, info):
                needed[variable] = f"{spec.name}.{field}: {why}"
    return needed


CADDY_VARIABLE = re.compile(r"\{\$(CITYPAIR_\w+)(?::([^}]*))?\}")


def gateway_variables() -> dict[str, str | None]:
    """Every variable either gateway configuration reads, with its default (None: none)."""
    found = {}
    for caddyfile in (CADDYFILE, PRODUCTION_CADDYFILE):
        for name, default in CADDY_VARIABLE.findall(config_text(caddyfile)):
            found[name] = default or None
    return found


def gateway_needed_in_production() -> dict[str, str]:
    return {
        name: f"the gateway: {'no default' if default is None else 'loopback default ' + repr(default)}"
        for name, default in gateway_variables().items()
        if default is None or any(marker in default for marker in LOOPBACK_OR_DEVELOPMENT)
    }


# A default is a string or a module-level constant (EMBEDDED_NATS_URL), looked up in the module.
STREAMS_JOB_VARIABLE = re.compile(r"environ\.get\(\s*\"(CITYPAIR_\w+)\"(?:\s*,\s*(?:\"([^\"]*)\"|([A-Z][A-Z0-9_]*)))?")


def streams_job_variables() -> dict[str, str | None]:
    found = STREAMS_JOB_VARIABLE.findall(DECLARE_STREAMS.read_text())
    return {
        name: literal or (getattr(declare_streams, constant) if constant else None) for name, literal, constant in found
    }


def tooling_needed_in_production() -> dict[str, str]:
    """What the streams job reads with a loopback default, and the NATS passwords nats-server reads."""
    needed = {
        name: f"the streams job: loopback default {default!r}"
        for name, default in streams_job_variables().items()
        if default and any(marker in default for marker in LOOPBACK_OR_DEVELOPMENT)
    }
    for user in [ADMIN, *(user.name for user in service_bus_users())]:
        needed[password_variable(user)] = "nats-server: a user's password, no default"
    return needed


def test_the_settings_production_needs_are_derived_from_the_code():
    """The derivation itself finds what it must (else the next test would pass on an empty list)."""
    needed = settings_needed_in_production() | gateway_needed_in_production() | tooling_needed_in_production()
    expected = {
        "CITYPAIR_PROFILES_DATABASE_URL",
        "CITYPAIR_WEB_HOST",
        "CITYPAIR_MATCHING_NATS_URL",
        "CITYPAIR_PILOT_ZONES_JWKS_URL",
        "CITYPAIR_IDENTITY_ENVIRONMENT",
        "CITYPAIR_IDENTITY_NATS_PASSWORD",
        "CITYPAIR_NATS_ADMIN_PASSWORD",
        "CITYPAIR_ADMIN_PASSWORD",
        "CITYPAIR_WEB_API_URL",
        "CITYPAIR_GATEWAY_TRUSTED_PROXIES",
        "CITYPAIR_SITE_ADDRESS",
        "CITYPAIR_NATS_URL",
        *UPSTREAMS,
    }
    assert expected <= set(needed), sorted(expected - set(needed))
    assert "CITYPAIR_WEB_DATABASE_URL" not in needed  # web has no database


def test_every_setting_production_needs_is_in_docs_operations():
    needed = settings_needed_in_production() | gateway_needed_in_production() | tooling_needed_in_production()
    missing = {name: why for name, why in needed.items() if name not in documented_variables()}
    assert not missing, f'docs/operations.md, "Production settings", does not say what to set: {missing}'


def test_every_variable_docs_operations_names_is_read_by_something():
    read = set(gateway_variables()) | set(streams_job_variables())
    read |= {password_variable(user) for user in [ADMIN, *(user.name for user in service_bus_users())]}
    for spec in stack.SERVICES:
        fields = importlib.import_module(f"{spec.package}.config").Settings.model_fields
        read |= {variable for field, info in fields.items() for variable in variables_of(spec, field, info)}
    unknown = documented_variables() - read
    assert not unknown, f'docs/operations.md, "Production settings", names variables nothing reads: {unknown}'


def test_web_refuses_cookies_over_plain_http_in_production():
    """What the section says of CITYPAIR_WEB_SECURE_COOKIES (tests/unit/test_web_settings.py has the rest)."""
    settings = importlib.import_module("citypair_web.config").Settings
    assert settings(environment="production").secure_cookies is True
    with pytest.raises(ValueError, match="HTTPS only"):
        settings(environment="production", secure_cookies=False)
    assert "`CITYPAIR_WEB_SECURE_COOKIES`" in section("Production settings")
