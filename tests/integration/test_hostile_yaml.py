"""Hostile YAML (issue 14): nesting bombs through validate, override save and sync, against live processes.

A 100 KB file of nested brackets used to overflow the C stack of pyyaml's composer: gunicorn logged
`Worker was sent SIGSEGV!` and the RQ worker died mid-sync. Here a real gunicorn and a real RQ worker
take every bomb; each gets a fatal `yaml_too_deep` at its file and line, and the same processes (same
pids) answer afterwards.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port, wait_for_port
from tests.support.sync_repos import file_url, new_remote

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
LEVELS = (10**3, 10**4, 10**5)


def bomb(style: str, levels: int) -> str:
    """A workflow file whose `states` nest `levels` deep, in flow or block style."""
    head = "workflow: {id: wf}\nstates:\n  open: {type: initial}\ntransitions: "
    if style == "flow":
        return head + "[" * levels + "]" * levels + "\n"
    return head + "\n" + "- " * levels + "x\n"


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(child) for child in (task / "children").read_text().split()}
    return found


def alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()


@pytest.fixture
def processes(app, process_env):
    """A gunicorn (one gthread worker) and an RQ worker on `configuration`, started on the test's empty stores."""
    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", "4", "--workers", "1",
         "--no-control-socket", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=ROOT, env=process_env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    worker = subprocess.Popen([sys.executable, "-m", "flask", "worker", "configuration", "--wait", "10"],
                              cwd=ROOT, env=process_env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, timeout=30)
        yield {"url": f"http://127.0.0.1:{port}", "web": web, "worker": worker}
    finally:
        for process in (web, worker):
            process.terminate()
            process.wait(20)


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _save_overrides(base: str, email: str) -> None:
    browser = requests.Session()
    page = browser.get(base + "/login", timeout=10).text
    signed_in = browser.post(base + "/login", data={"csrf_token": _csrf(page), "email": email, "password": PASSWORD},
                             timeout=10)
    assert signed_in.ok and "/login" not in signed_in.url
    token = _csrf(browser.get(base + "/projects/ENG/configuration", timeout=10).text)
    for style in ("flow", "block"):
        for levels in LEVELS:
            answer = browser.post(base + "/projects/ENG/configuration/overrides", timeout=60,
                                  data={"csrf_token": token, "path": "workflows/bomb.yaml",
                                        "yaml_text": bomb(style, levels)})
            assert answer.status_code == 422, (style, levels, answer.status_code)
            assert "yaml_too_deep" in answer.text and "100 levels" in answer.text, (style, levels)


def _sync_bomb(owner, tmp_path: Path):
    from app.extensions import db
    from app.models import SyncRun
    from app.services import projects
    from app.services.sync import repositories, runs

    project = projects.create_project(owner, "BMB", "Bombs", "", "kanban")
    remote = new_remote(tmp_path, "bombs", {".kiket/workflows/bomb.yaml": bomb("flow", LEVELS[-1])})
    repository, _ = repositories.add_repository(project, file_url(remote), branch="main", actor=owner)
    run = runs.request_sync(repository.id, trigger="ui")
    deadline = time.monotonic() + 60
    while True:
        db.session.expire_all()
        done = db.session.get(SyncRun, run.id)
        if done.status not in ("queued", "fetching", "validating"):
            return done
        assert time.monotonic() < deadline, f"the sync stayed {done.status}"
        time.sleep(0.1)


def test_nesting_bombs_through_override_save_and_sync_leave_the_processes_up(app, owner, processes, tmp_path):
    from app.services import projects

    projects.create_project(owner, "ENG", "Engineering", "", "kanban")
    web_workers = children(processes["web"].pid)
    assert web_workers, "gunicorn has no worker process"

    _save_overrides(processes["url"], owner.email)
    run = _sync_bomb(owner, tmp_path)
    assert run.status == "failed"
    assert run.worker_pid == processes["worker"].pid
    fatal = [(d["code"], d["file"], d["line"]) for d in run.diagnostics if d["severity"] == "fatal"]
    assert fatal == [("yaml_too_deep", ".kiket/workflows/bomb.yaml", 4)]

    assert processes["worker"].poll() is None, "the RQ worker died"
    assert children(processes["web"].pid) == web_workers, "the gunicorn worker was replaced"
    assert all(alive(pid) for pid in web_workers | {processes["worker"].pid})
    assert requests.get(processes["url"] + "/projects", timeout=10).ok


def test_validate_refuses_nesting_bombs_with_a_clear_error(process_env, tmp_path):
    workflows = tmp_path / ".kiket" / "workflows"
    workflows.mkdir(parents=True)
    for style in ("flow", "block"):
        for levels in LEVELS:
            (workflows / f"{style}{levels}.yaml").write_text(bomb(style, levels))
    done = subprocess.run([sys.executable, "-m", "flask", "kiket", "validate", str(tmp_path)],
                          cwd=ROOT, env=process_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])
    refused = re.findall(r"workflows/(\w+)\.yaml:\d+:\d+: fatal yaml_too_deep", done.stdout)
    assert sorted(refused) == sorted(f"{style}{levels}" for style in ("flow", "block") for levels in LEVELS), \
        done.stdout
