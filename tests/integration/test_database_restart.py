"""PostgreSQL stopped and started under the real web process: 503 pages with Retry-After while it is down,
nothing half-written by a request refused then, and recovery by itself once it is back.

PostgreSQL here is a private cluster of this test (initdb on a free port, never the shared server).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import pytest
import requests

from tests.conftest import ROOT, free_port
from tests.support.live_servers import server, signed_in, web_command

pytestmark = pytest.mark.slow

PG_BINS = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


class PrivatePostgres:
    """A PostgreSQL cluster in a temporary directory, run as the `postgres` user when the tests run as root
    (initdb refuses root)."""

    def __init__(self):
        self.bin = PG_BINS[-1]
        self.port = free_port()
        self.directory = tempfile.mkdtemp(prefix="kiket-pg-")
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run("initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "--no-sync")

    @property
    def data(self) -> str:
        return os.path.join(self.directory, "data")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        command = [os.path.join(self.bin, tool), *args]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", self.data, "-o", options, "-w", "-l", os.path.join(self.directory, "log"), "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def private_postgres():
    if not PG_BINS or (os.geteuid() == 0 and not shutil.which("runuser")):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    cluster = PrivatePostgres()
    cluster.start()
    yield cluster
    cluster.remove()


def flask(env: dict, *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "flask", *args], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True).stdout


def an_issue_type(session, base: str) -> str:
    """One without required custom fields, so a title is all a new issue needs."""
    form = session.get(f"{base}/projects/DEMO/issues/new").text
    select = re.search(r'name="issue_type".*?</select>', form, re.S).group(0)
    types = re.findall(r'<option value="([^"]+)"', select)
    assert "task" in types, types
    return "task"


def new_issue(session, base: str, issue_type: str, title: str):
    return session.post(f"{base}/projects/DEMO/issues", allow_redirects=False,
                        data={"title": title, "issue_type": issue_type,
                              "csrf_token": session.headers["X-CSRFToken"]})


def marked_titles(session, base: str) -> set[str]:
    page = session.get(f"{base}/projects/DEMO/issues")
    assert page.status_code == 200, page.text[:300]
    return set(re.findall(r"Restart-(\w+)-mark", page.text))


def test_postgres_stopped_and_started_under_the_web_process(private_postgres, process_env, tmp_path):
    env = {**process_env, "DATABASE_URL": private_postgres.url, "KIKET_INSTANCE_PATH": str(tmp_path / "instance")}
    flask(env, "db", "upgrade")
    flask(env, "kiket", "demo")
    credentials = dict(line.split(": ", 1) for line in (tmp_path / "instance" / "demo-credentials").read_text()
                       .splitlines() if ": " in line and not line.startswith("#"))
    with server(web_command, env) as base:
        session = signed_in(base, credentials["email"], credentials["password"])
        issue_type = an_issue_type(session, base)
        created = new_issue(session, base, issue_type, "Restart-before-mark")
        assert created.status_code == 303, re.findall(r"class=\"(?:error|problem)[^>]*>([^<]+)", created.text)

        private_postgres.stop()
        for path in ("/projects", "/projects/DEMO", "/projects/DEMO/issues"):
            page = session.get(base + path)
            assert page.status_code == 503 and page.headers["Retry-After"] == "30", (path, page.text[:300])
            assert "The database is not answering" in page.text
        refused = new_issue(session, base, issue_type, "Restart-during-mark")
        assert refused.status_code == 503
        assert requests.get(base + "/login", timeout=10).status_code == 503

        private_postgres.start()
        # The pool's connections died with the server: the first requests after it is back must not fail.
        deadline = time.monotonic() + 30
        while session.get(f"{base}/projects").status_code != 200:
            assert time.monotonic() < deadline, "pages did not recover within 30 s of PostgreSQL starting"
            time.sleep(0.2)
        assert new_issue(session, base, issue_type, "Restart-after-mark").status_code == 303
        assert marked_titles(session, base) == {"before", "after"}
