"""web's session cookie is sent over HTTPS only in production: by default, and refused otherwise."""

import pytest
from pydantic import ValidationError

from citypair_web.config import Settings


@pytest.fixture(autouse=True)
def _no_web_environment(monkeypatch):
    for variable in ("CITYPAIR_WEB_ENVIRONMENT", "CITYPAIR_WEB_SECURE_COOKIES"):
        monkeypatch.delenv(variable, raising=False)


@pytest.mark.parametrize(("environment", "secure"), [("development", False), ("test", False), ("production", True)])
def test_secure_cookies_default_to_the_environment(environment, secure):
    assert Settings(environment=environment).secure_cookies is secure


def test_production_refuses_cookies_over_plain_http(monkeypatch):
    monkeypatch.setenv("CITYPAIR_WEB_ENVIRONMENT", "production")
    monkeypatch.setenv("CITYPAIR_WEB_SECURE_COOKIES", "false")
    with pytest.raises(ValidationError, match="CITYPAIR_WEB_SECURE_COOKIES=true"):
        Settings()


@pytest.mark.parametrize("environment", ["development", "production"])
def test_secure_cookies_set_true_are_kept(environment, monkeypatch):
    monkeypatch.setenv("CITYPAIR_WEB_SECURE_COOKIES", "true")
    assert Settings(environment=environment).secure_cookies is True


def test_development_may_turn_them_off_explicitly(monkeypatch):
    monkeypatch.setenv("CITYPAIR_WEB_SECURE_COOKIES", "false")
    assert Settings().secure_cookies is False


def test_production_refuses_the_development_mail_page(monkeypatch):
    """/dev/mail shows every kept mail, reset links too, to anyone: never where real people get mail."""
    monkeypatch.setenv("CITYPAIR_WEB_DEV_MAIL_DIR", "var/mail")
    assert Settings(environment="development").dev_mail_dir is not None
    with pytest.raises(ValidationError, match="CITYPAIR_WEB_DEV_MAIL_DIR"):
        Settings(environment="production", secure_cookies=True)
