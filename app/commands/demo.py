"""`flask kiket demo` and `flask kiket ready`: the demo data, and the credentials printed once `make run` serves.

The demo admin's generated password is written to `instance/demo-credentials` (mode 0600) when the account
is created, so it can be read again after it has scrolled away; `ready` prints it once `/up` answers.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import click
from sqlalchemy.exc import SQLAlchemyError
from flask import current_app

from app.extensions import db
from app.services import accounts, demo

CREDENTIALS_FILE = "demo-credentials"


def credentials_path() -> Path:
    return Path(current_app.instance_path) / CREDENTIALS_FILE


def write_credentials(email: str, password: str) -> Path:
    """Write (or replace) the credentials file, readable and writable by its owner only."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("# Kiket demo admin, written by `flask kiket demo`. Reset with "
                     f"`flask kiket user password {email}`.\n")
        handle.write(f"email: {email}\npassword: {password}\n")
    os.replace(temporary, path)
    return path


def read_credentials() -> tuple[str, str] | None:
    """(email, password) from the credentials file, or None when it is absent or not in our format."""
    try:
        lines = credentials_path().read_text().splitlines()
    except FileNotFoundError:
        return None
    fields = dict(line.split(": ", 1) for line in lines if ": " in line and not line.startswith("#"))
    if "email" in fields and "password" in fields:
        return fields["email"], fields["password"]
    return None


def display_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@click.command("demo")
def demo_command() -> None:
    """Create the demo organization, admin account and DEMO project (idempotent)."""
    result = demo.seed_demo()
    if result.admin_password:
        path = write_credentials(result.admin_email, result.admin_password)
        click.echo(f"Demo admin: {result.admin_email} (created; password saved to {display_path(path)}, "
                   "printed again once the servers are up)")
    else:
        click.echo(f"Demo admin: {result.admin_email} (exists; password unchanged)")
    click.echo(f"Demo project: {result.project_key}" + (" (created)" if result.created_project else " (exists)"))


def _wait_until_up(url: str, timeout: float) -> bool:
    """True once `/up` answers 200 (database, Redis and a worker are there); False after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/up", timeout=2):
                return True
        except (urllib.error.URLError, OSError):  # refused while starting; HTTPError (503) until a worker listens
            time.sleep(0.25)
    return False


def _login_line() -> str:
    """Where to log in: the demo credentials when they still work, else how to get new ones."""
    credentials = read_credentials()
    if credentials is None:
        return (f"Log in with your account (no demo credentials file; `flask kiket user password {demo.DEMO_ADMIN}` "
                "sets a new demo password).")
    email, password = credentials
    path = display_path(credentials_path())
    try:
        user = accounts.find_user(email)
    except SQLAlchemyError as error:  # this process must not stop make run; the web process reports the database
        return f"The demo credentials are in {path} (not checked: {type(error).__name__})."
    if user is not None and user.check_password(password):
        return f"Log in as {email} with password {password}  (also in {path}, readable only by you)"
    return f"The password in {path} no longer works for {email}; `flask kiket user password {email}` prints a new one."


@click.command("ready")
@click.option("--port", type=int, default=5000, show_default=True, help="Port the web process listens on.")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for /up to answer 200.")
def ready_command(port: int, timeout: float) -> None:
    """Wait until the app is up (`/up`), print where to log in, then wait to be stopped (a `make run` process)."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: sys.exit(0))
    url = f"http://127.0.0.1:{port}"
    if _wait_until_up(url, timeout):
        click.echo(f"Kiket is up: {url}")
    else:
        click.echo(f"Kiket did not report healthy at {url}/up within {timeout:.0f} s; see the lines above.")
    click.echo(_login_line())
    # An open read transaction would hold SQLite's shared lock (and block writers) while this waits.
    db.session.remove()
    while True:
        signal.pause()
