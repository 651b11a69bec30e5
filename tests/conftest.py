"""Shared test setup: a real database and a real Redis-protocol server for the whole run.

With DATABASE_URL / REDIS_URL set (CI: PostgreSQL and Redis), tests use them; without,
a SQLite file and the embedded server started here, the same one `make run` uses.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient

ROOT = Path(__file__).resolve().parents[1]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Every skip for want of the fixture bundles at one place, so the run's summary counts them on one line."""
    from tests.support.fixture_repos import MISSING_FIXTURES

    report = yield
    if report.skipped and isinstance(report.longrepr, tuple) and report.longrepr[2].endswith(MISSING_FIXTURES):
        report.longrepr = ("tests/support/fixture_repos.py", None, report.longrepr[2])
    return report


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


@pytest.fixture(scope="session")
def redis_url():
    """Real Redis when REDIS_URL is set, else the embedded server in its own process."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app.embedded_redis", "--port", str(port), "--drain-seconds", "0"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    """The database under test: DATABASE_URL (PostgreSQL in CI) or a SQLite file."""
    from app.config import database_url as normalize

    raw = os.environ.get("DATABASE_URL")
    return normalize(raw, "") if raw else "sqlite:///" + str(tmp_path_factory.mktemp("db") / "test.sqlite3")


@pytest.fixture(scope="session")
def settings(database_url, redis_url, tmp_path_factory) -> dict:
    """Overrides every test app gets; also the environment for processes tests start."""
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": secrets.token_hex(16),
        "STORAGE_DIR": str(tmp_path_factory.mktemp("storage")),
        # Never the developer's instance/ (its demo credentials, secret key and SQLite file).
        "KIKET_INSTANCE_PATH": str(tmp_path_factory.mktemp("instance")),
        # Fixture repositories are bare clones on disk, connected as file:// remotes.
        "KIKET_ALLOW_LOCAL_REMOTES": True,
    }


@pytest.fixture(scope="session")
def process_env(settings) -> dict:
    """Environment for child processes (worker, web server, flask commands) sharing the test stores."""
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": settings["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": settings["REDIS_URL"],
        "SECRET_KEY": settings["SECRET_KEY"],
        "STORAGE_DIR": settings["STORAGE_DIR"],
        "KIKET_INSTANCE_PATH": settings["KIKET_INSTANCE_PATH"],
        "KIKET_ALLOW_LOCAL_REMOTES": "1",
        "FLASK_APP": "wsgi:app",
        "PYTHONPATH": str(ROOT),
    })
    return env


@pytest.fixture(scope="session")
def _schema(settings):
    from app.extensions import db
    from app.factory import create_app

    app = create_app(settings)
    with app.app_context():
        db.drop_all()
        db.create_all()
    return app


def clean_database(app) -> None:
    from sqlalchemy.exc import OperationalError

    from app.extensions import db

    with app.app_context():
        tables = list(reversed(db.metadata.sorted_tables))
        for attempt in range(3):
            try:
                if db.engine.dialect.name == "postgresql":
                    names = ", ".join(f'"{t.name}"' for t in tables)
                    db.session.execute(db.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
                else:
                    for table in tables:
                        db.session.execute(table.delete())
                db.session.commit()
                return
            except OperationalError:
                # A server process of the previous test (the live process finishing a message) can hold a
                # table TRUNCATE then waits for: PostgreSQL picks one of the two to fail. Try again.
                db.session.rollback()
                if attempt == 2:
                    raise
                time.sleep(0.2)


class IsolatedClient(FlaskClient):
    """Each request in its own app context, as in production.

    Tests keep an app context open for their own queries; without this, Flask reuses
    it for every request, so `g` (CSRF token cache) and the DB session leak between clients.
    """

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def app(_schema, settings):
    """A fresh app on empty tables and an empty Redis database."""
    from app.factory import create_app

    clean_database(_schema)
    # Ids restart with the empty tables, so mirrors and copies kept for earlier tests' ids must go too.
    for part in ("git", "workflow_sources", "attachments"):
        shutil.rmtree(Path(settings["STORAGE_DIR"]) / part, ignore_errors=True)
    application = create_app(settings)
    application.test_client_class = IsolatedClient
    application.extensions["redis"].flushdb()
    # Cached configurations are keyed by row ids and versions, which repeat once the tables are emptied.
    from app.services.sync import configuration

    configuration.clear_cache()
    with application.app_context():
        yield application
        from app.extensions import db

        db.session.remove()


@pytest.fixture
def client(app):
    return app.test_client()


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"|"X-CSRFToken": "([^"]+)"')


def csrf_token(client) -> str:
    """The session's CSRF token, read from a rendered page as a browser would."""
    html = client.get("/__no_such_page__").get_data(as_text=True)
    match = CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1) or match.group(2)


def post_form(client, url: str, data: dict | None = None, **kwargs):
    """POST a form with the session's CSRF token, as the browser's form would."""
    data = dict(data or {})
    data["csrf_token"] = csrf_token(client)
    return client.post(url, data=data, **kwargs)


@pytest.fixture
def make_user(app):
    """Create an account directly through the service (role in the organization)."""
    from app.services import accounts

    def make(email: str = "owner@example.com", role: str = "owner", password: str = "correct horse battery"):
        return accounts.create_user(email, password, role)

    return make


@pytest.fixture
def owner(make_user):
    """The organization's owner, owner@example.com (files that also log in define their own)."""
    return make_user("owner@example.com", "owner")


@pytest.fixture
def login(client):
    def do(email: str = "owner@example.com", password: str = "correct horse battery"):
        response = post_form(client, "/login", {"email": email, "password": password})
        assert response.status_code == 303, response.get_data(as_text=True)
        return response

    return do
