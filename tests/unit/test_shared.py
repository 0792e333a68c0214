"""Pure parts of the shared library: settings, problem field names, themes, stack config."""

import httpx
import pytest
from pydantic import ValidationError

from citypair_cli.stack import PortTaken, StackConfig, answered_by, free_ports
from citypair_profiles.config import Settings as ProfilesSettings
from citypair_shared.problems import _field
from citypair_shared.themes import THEMES
from citypair_web.config import Settings as WebSettings


def test_settings_default_to_sqlite_under_var(monkeypatch):
    monkeypatch.delenv("CITYPAIR_PROFILES_DATABASE_URL", raising=False)
    assert ProfilesSettings().database_url == "sqlite+aiosqlite:///var/profiles.db"


def test_settings_read_their_own_prefix(monkeypatch):
    monkeypatch.setenv("CITYPAIR_PROFILES_PORT", "19999")
    monkeypatch.setenv("CITYPAIR_MATCHING_PORT", "1")
    assert ProfilesSettings().port == 19999


def test_production_refuses_sqlite_but_web_needs_no_database(monkeypatch):
    monkeypatch.setenv("CITYPAIR_PROFILES_ENVIRONMENT", "production")
    monkeypatch.delenv("CITYPAIR_PROFILES_DATABASE_URL", raising=False)
    with pytest.raises(ValidationError, match="production needs a server database"):
        ProfilesSettings()
    monkeypatch.setenv("CITYPAIR_WEB_ENVIRONMENT", "production")
    assert WebSettings().environment == "production"


@pytest.mark.parametrize(
    ("loc", "field"),
    [
        (("body", "latitude"), "latitude"),
        (("body", "themes", "ai", "offer"), "themes.ai.offer"),
        (("query", "limit"), "query.limit"),
        (("body",), "body"),
    ],
)
def test_problem_field_names(loc, field):
    assert _field(loc) == field


def test_the_initiative_themes_are_all_there():
    assert len(THEMES) == 17
    assert {"broadband", "smart_city", "ecommerce", "telemedicine", "internet_plus", "iot", "ai"} <= set(THEMES)


def test_stack_config_from_env_avoids_the_usual_ports(tmp_path):
    config = StackConfig.from_env({"CITYPAIR_VAR_DIR": str(tmp_path)})
    assert config.nats_port != 4222 and config.gateway_port not in (80, 8080)
    assert config.database_url("profiles").endswith(f"{tmp_path}/profiles.db")
    overridden = StackConfig.from_env({"CITYPAIR_GATEWAY_PORT": "18999", "CITYPAIR_MATCHING_PORT": "18998"})
    assert (overridden.gateway_port, overridden.ports["matching"]) == (18999, 18998)


def test_a_taken_port_is_reported_plainly(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        config = StackConfig.on_free_ports(tmp_path)
        config.nats_port = port
        with pytest.raises(PortTaken, match=f"nats port {port}.*CITYPAIR_NATS_PORT"):
            config.check_ports()


def test_free_ports_are_distinct(tmp_path):
    for _ in range(20):
        config = StackConfig.on_free_ports(tmp_path)
        ports = [config.gateway_port, config.nats_port, *config.ports.values()]
        assert len(set(ports)) == len(ports)
    assert len(set(free_ports(50))) == 50


def test_readiness_must_come_from_the_part_asked():
    def ready(body, status=200):
        return httpx.Response(status, json=body)

    assert answered_by(ready({"service": "identity", "status": "ok"}), "identity")
    # Another service answering on a port that was reused is not the one waited for.
    assert not answered_by(ready({"service": "matching", "status": "ok"}), "identity")
    assert not answered_by(ready({"service": "identity", "status": "unavailable"}, 503), "identity")
    assert answered_by(ready({"status": "ok"}), "gateway")
