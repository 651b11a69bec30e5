import os
import stat

import pytest

from app.config import SettingsError, database_url, instance_secret_key, load_settings, parse_boolean


def test_defaults_embed_everything(tmp_path):
    settings = load_settings({}, str(tmp_path))
    assert settings["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/kiket.sqlite3"
    assert settings["REDIS_URL"] == "redis://127.0.0.1:6390/0" and settings["KIKET_REDIS_EMBEDDED"] is True
    assert settings["SECRET_KEY"] is None
    assert settings["PORT"] == 5000
    assert (settings["KIKET_UP_MAX_QUEUE_DEPTH"], settings["KIKET_UP_MAX_QUEUE_AGE"]) == (50, 120)
    assert settings["KIKET_ALLOW_LOCAL_REMOTES"] is False
    assert (settings["KIKET_BASE_URL"], settings["KIKET_TOKEN_ISSUER"]) == ("http://127.0.0.1:5000", "kiket.dev")
    assert (settings["KIKET_API_RATE_LIMIT"], settings["KIKET_EXTENSIONS_ALLOW_LOOPBACK"]) == (1200, True)


@pytest.mark.parametrize(("environ", "base_url"), [
    ({"PORT": "8080"}, "http://127.0.0.1:8080"),
    # A `make run` worker: honcho gave it its own PORT; the web process's is KIKET_WEB_PORT.
    ({"PORT": "5100", "KIKET_WEB_PORT": "5000"}, "http://127.0.0.1:5000"),
    ({"PORT": "5100", "KIKET_BASE_URL": "https://kiket.example.com/"}, "https://kiket.example.com"),
])
def test_base_url(tmp_path, environ, base_url):
    assert load_settings(environ, str(tmp_path))["KIKET_BASE_URL"] == base_url


def test_environment_overrides(tmp_path):
    settings = load_settings(
        {"REDIS_URL": "redis://cache:6379/2", "KIKET_EMBEDDED_REDIS_PORT": "7000", "PORT": "8080", "KIKET_ENV": "production"},
        str(tmp_path),
    )
    assert settings["REDIS_URL"] == "redis://cache:6379/2" and settings["KIKET_REDIS_EMBEDDED"] is False
    assert settings["PORT"] == 8080
    assert settings["KIKET_ALLOW_LOCAL_REMOTES"] is False and settings["SESSION_COOKIE_SECURE"] is True
    assert settings["KIKET_EXTENSIONS_ALLOW_LOOPBACK"] is False


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("postgres://u:p@db/kiket", "postgresql+psycopg://u:p@db/kiket"),
        ("postgresql://u@db/kiket", "postgresql+psycopg://u@db/kiket"),
        ("sqlite:////data/k.db", "sqlite:////data/k.db"),
    ],
)
def test_database_url_rewrites_postgres_for_psycopg(raw, expected):
    assert database_url(raw, "/x") == expected


@pytest.mark.parametrize(("name", "value"), [
    ("PORT", "http"), ("KIKET_UP_MAX_QUEUE_DEPTH", "-1"), ("KIKET_ALLOW_LOCAL_REMOTES", "maybe"),
    ("KIKET_REVISION_RETENTION", "0"), ("KIKET_MAX_ATTACHMENT_BYTES", "ten"), ("KIKET_WEBHOOK_ALLOW_PRIVATE", "sure"),
    ("KIKET_WEBHOOK_TIMEOUT", "0"), ("KIKET_AUTOMATION_RATE_LIMIT", "0"), ("KIKET_SMTP_URL", "http://mail.example.com"),
    ("KIKET_BASE_URL", "kiket.example.com"), ("KIKET_API_RATE_LIMIT", "0"), ("KIKET_EXTENSIONS_ALLOW_LOOPBACK", "often"),
    ("KIKET_GIT_ALLOWED_HOSTS", "git.corp/etc"), ("KIKET_WORKER_HEARTBEAT", "1"),
])
def test_junk_values_are_errors(tmp_path, name, value):
    with pytest.raises(SettingsError, match=name):
        load_settings({name: value}, str(tmp_path))


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("Yes", True), ("on", True), ("0", False), ("false", False), ("", False)])
def test_parse_boolean(raw, expected):
    assert parse_boolean("X", raw) is expected


def test_secret_key_is_generated_once_and_private(tmp_path):
    first = instance_secret_key(str(tmp_path))
    assert len(first) >= 40
    assert instance_secret_key(str(tmp_path)) == first
    mode = stat.S_IMODE(os.stat(tmp_path / "secret_key").st_mode)
    assert mode == 0o600


def test_smtp_errors_never_echo_the_value(tmp_path):
    with pytest.raises(SettingsError) as error:
        load_settings({"KIKET_SMTP_URL": "ftp://user:hunter2@mail"}, str(tmp_path))
    assert "hunter2" not in str(error.value)


def test_runtime_defaults(tmp_path):
    settings = load_settings({}, str(tmp_path))
    assert settings["KIKET_REVISION_RETENTION"] == 50 and settings["KIKET_GITHUB_API_URL"] is None
    assert settings["KIKET_SMTP_URL"] is None and settings["KIKET_WEBHOOK_ALLOW_PRIVATE"] is False
    assert (settings["KIKET_WEBHOOK_TIMEOUT"], settings["KIKET_AUTOMATION_RATE_LIMIT"]) == (10, 60)
