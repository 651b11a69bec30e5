"""Syncing workflow repositories end to end: real git remotes, database, Redis, queue and workers."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.support.sync_repos import bare_remote, file_url, git, push_change, run_worker, show

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def seed_calls(monkeypatch):
    """Record calls of the seeding hook (the issues module fills it in later)."""
    from app.services.runtime import seeding

    calls = []
    monkeypatch.setattr(seeding, "create_seed_issues",
                        lambda project, seeds, config: calls.append((project.key, len(seeds))) or {"created": 0})
    return calls


def make_project(owner, key="ENG", template="kanban"):
    from app.services import projects

    return projects.create_project(owner, key, f"Project {key}", "", template)


def connect(owner, remote: Path, key="ENG", branch="main", template="kanban"):
    from app.services.sync import repositories

    project = make_project(owner, key, template)
    repository, secret = repositories.add_repository(project, file_url(remote), branch=branch, actor=owner)
    return project, repository


def sync_now(app, repository_id: int, branch: str | None = None):
    from app.extensions import db
    from app.models import SyncRun
    from app.services.sync import runs

    run = runs.request_sync(repository_id, branch=branch, trigger="ui")
    run_worker(app)
    db.session.expire_all()
    return db.session.get(SyncRun, run.id)


def queued_jobs(app) -> list[str]:
    from app.queue import get_queue

    return get_queue("configuration").get_job_ids()


@pytest.mark.parametrize("name, expected_boards", [
    ("engineering", {"engineering-board", "incidents-board"}),
    ("scrum", {"scrum-sprint"}),
    ("kanban", {"kanban-default"}),
    ("legal", {"legal-board"}),
])
def test_fixture_repository_syncs_end_to_end(app, owner, tmp_path, seed_calls, name, expected_boards):
    from app.extensions import db
    from app.models import ConfigEvent, ConfigRevision
    from app.services.sync import configuration, workflow_sources

    remote = bare_remote(tmp_path, name)
    project, repository = connect(owner, remote)
    head = git("--git-dir", str(remote), "rev-parse", "main")

    run = sync_now(app, repository.id)

    assert run.status == "active", (run.error, run.diagnostics[:3])
    assert run.commit_sha == head and "<" in run.commit_author and run.commit_message
    assert set(run.timings) >= {"fetch", "resolve", "read", "validate", "write", "load"}
    assert run.started_at and run.finished_at and run.worker_pid
    assert all("file" in d and "line" in d for d in run.diagnostics)
    revision = db.session.get(ConfigRevision, run.revision_id)
    assert revision.status == "active" and revision.commit_sha == head
    assert db.session.get(type(repository), repository.id).active_revision_id == revision.id
    assert workflow_sources.has_revision(repository.id, head)
    config = configuration.project_config(project)
    assert set(config.boards) == expected_boards
    assert config.workflows and set(revision.workflow_versions) == set(config.workflows)
    assert config.source.commit_sha == head
    assert seed_calls == [("ENG", len(config.project.seed_issues))]
    assert db.session.scalar(select(func.count()).select_from(ConfigEvent).where(ConfigEvent.kind == "activated")) == 1

    again = sync_now(app, repository.id)
    assert again.status == "unchanged" and again.revision_id == revision.id
    assert seed_calls == [("ENG", len(config.project.seed_issues))]
    assert db.session.scalar(select(func.count()).select_from(ConfigRevision)) == 1


def test_switching_branches_creates_revisions_with_a_correct_diff(app, owner, tmp_path, seed_calls):
    from app.extensions import db
    from app.models import ConfigRevision
    from app.services.sync import configuration, revisions

    remote = bare_remote(tmp_path, "engineering")
    project, repository = connect(owner, remote)
    first = sync_now(app, repository.id)
    assert first.status == "active"
    assert len(configuration.project_config(project).project.seed_issues) == 6

    develop = sync_now(app, repository.id, branch="develop")
    assert develop.status == "active", develop.error
    assert db.session.get(type(repository), repository.id).branch == "develop"
    assert configuration.project_config(project).project.seed_issues == ()

    back = sync_now(app, repository.id, branch="main")
    assert back.status == "active"
    statuses = [r.status for r in db.session.scalars(select(ConfigRevision).order_by(ConfigRevision.id))]
    assert statuses == ["superseded", "superseded", "active"]
    assert len(seed_calls) == 1  # the first activation only

    # develop differs from main in issue_types.yaml: bug and incident lose `workflow:`, incident's icon changes.
    comparison = revisions.diff_revisions(first.revision_id, develop.revision_id)
    diff = comparison.diff
    assert "icon" in diff.find("issue_type", "incident").fields
    assert diff.find("issue_type", "bug").change == "changed"
    assert diff.find("issue_type", "task") is None and diff.find("issue_type", "story") is None
    assert diff.of_kind("workflow") == () and diff.of_kind("state") == () and diff.of_kind("board") == ()
    assert diff.of_kind("column") == () and diff.of_kind("transition") == ()
    assert comparison.affected_total == 0
    assert revisions.diff_revisions(first.revision_id, back.revision_id).diff.is_empty


def test_breaking_commit_fails_with_file_line_and_keeps_the_previous_revision(app, owner, tmp_path, seed_calls):
    from app.extensions import db
    from app.models import ConfigRevision
    from app.services.sync import configuration

    remote = bare_remote(tmp_path, "engineering")
    project, repository = connect(owner, remote)
    good = sync_now(app, repository.id)
    before = configuration.project_config(project)

    broken = show(remote, "main", ".kiket/workflows/bug.yaml") + "\nstates:\n  broken: {}\n"
    line = broken.count("\n", 0, broken.rindex("states:")) + 1
    push_change(remote, "main", ".kiket/workflows/bug.yaml", broken, "Break the bug workflow")

    run = sync_now(app, repository.id)

    assert run.status == "failed"
    fatal = [d for d in run.diagnostics if d["severity"] == "fatal"]
    assert fatal and fatal[0]["file"] == ".kiket/workflows/bug.yaml" and fatal[0]["line"] == line
    assert f".kiket/workflows/bug.yaml:{line}:" in run.error
    assert run.revision_id is None
    active = db.session.scalars(select(ConfigRevision).where(ConfigRevision.status == "active")).all()
    assert [r.id for r in active] == [good.revision_id]
    assert configuration.project_config(project) == before


def test_ten_concurrent_requests_create_one_run_and_one_job(app, owner, tmp_path):
    from app.extensions import db
    from app.models import SyncRun
    from app.services.sync import runs

    remote = bare_remote(tmp_path, "kanban")
    _, repository = connect(owner, remote)
    results, errors = [], []
    barrier = threading.Barrier(10)

    def request():
        with app.app_context():
            try:
                barrier.wait()
                results.append(runs.request_sync(repository.id, trigger="ui").id)
            except Exception as exc:  # surfaced by the assertion below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=request) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    assert len(results) == 10 and len(set(results)) == 1
    assert db.session.scalar(select(func.count()).select_from(SyncRun)) == 1
    assert queued_jobs(app) == [f"sync-{repository.id}-{results[0]}"]


def test_rollback_activates_an_older_revision_and_records_it(app, owner, tmp_path, seed_calls):
    from app.extensions import db
    from app.models import ConfigEvent, ConfigRevision
    from app.services.sync import configuration, revisions

    remote = bare_remote(tmp_path, "engineering")
    project, repository = connect(owner, remote)
    first = sync_now(app, repository.id)
    sync_now(app, repository.id, branch="develop")
    assert configuration.project_config(project).project.seed_issues == ()

    revision = revisions.rollback(project, first.revision_id, owner)

    assert revision.status == "active"
    assert len(configuration.project_config(project).project.seed_issues) == 6
    statuses = {r.id: r.status for r in db.session.scalars(select(ConfigRevision))}
    assert list(statuses.values()).count("active") == 1 and statuses[first.revision_id] == "active"
    event = db.session.scalar(select(ConfigEvent).where(ConfigEvent.kind == "rolled_back"))
    assert event.revision_id == first.revision_id and event.actor_id == owner.id
    assert len(seed_calls) == 1


def test_project_without_repository_runs_on_its_template(app, owner):
    from app.services.sync import configuration

    project = make_project(owner, "OPS", "scrum")
    config = configuration.project_config(project)
    assert config.source.repo == "template:scrum"
    assert config.workflows and config.boards
    assert configuration.project_config(project) is config  # cached


def test_team_override_grants_roles_and_invites_unknown_emails(app, owner, make_user, tmp_path):
    from app.extensions import db
    from app.models import Invitation, ProjectMembership
    from app.services.sync import layers

    remote = bare_remote(tmp_path, "kanban")
    project, repository = connect(owner, remote)
    assert sync_now(app, repository.id).status == "active"
    dev = make_user("dev@example.com", "member")
    team = "team:\n  members:\n    - {user: dev@example.com, roles: [viewer]}\n    - {user: new@example.com, roles: [member]}\n"

    result = layers.save_layer_file(owner, "team.yaml", team, project=project)
    assert result.saved and result.reload_revision_id
    run_worker(app)

    db.session.expire_all()
    membership = db.session.scalar(select(ProjectMembership).where(ProjectMembership.user_id == dev.id))
    assert membership is not None and membership.role == "viewer"
    invitation = db.session.scalar(select(Invitation).where(Invitation.email == "new@example.com"))
    assert invitation is not None and invitation.accepted_at is None
    owner_membership = db.session.scalar(select(ProjectMembership).where(ProjectMembership.user_id == owner.id))
    assert owner_membership.role == "owner"


def test_override_with_a_fatal_problem_is_not_saved(app, owner):
    from app.services.sync import layers

    project = make_project(owner)
    result = layers.save_layer_file(owner, "workflows/extra.yaml", "states: [a\n", project=project)
    assert not result.saved
    assert result.diagnostics and result.diagnostics[0]["file"] == ".kiket/workflows/extra.yaml"
    assert result.diagnostics[0]["line"] >= 1
    assert layers.list_layer_files(project=project) == []


def _start_worker(process_env, extra=None):
    env = {**process_env, **(extra or {})}
    return subprocess.Popen([sys.executable, "-m", "flask", "worker", "--burst", "configuration"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.slow
def test_worker_killed_while_writing_leaves_no_partial_copy(app, owner, tmp_path, process_env):
    from app.extensions import db
    from app.models import SyncRun
    from app.services.sync import configuration, runs, workflow_sources

    remote = bare_remote(tmp_path, "engineering")
    project, repository = connect(owner, remote)
    run = runs.request_sync(repository.id, trigger="cli")
    flag = tmp_path / "paused"
    worker = _start_worker(process_env, {"KIKET_TEST_PAUSE_BEFORE_RENAME": str(flag)})
    horse = None
    try:
        deadline = time.monotonic() + 60
        while not flag.exists():
            assert worker.poll() is None, worker.stdout.read().decode()
            assert time.monotonic() < deadline, "the worker never reached the write phase"
            time.sleep(0.05)
        db.session.expire_all()
        horse = db.session.get(SyncRun, run.id).worker_pid
    finally:
        # A forked work horse (which writes) runs in a session of its own: kill it and the worker's group.
        with contextlib.suppress(ProcessLookupError):
            if horse:
                os.kill(horse, signal.SIGKILL)
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(30)
        worker.stdout.close()

    root = workflow_sources.sources_root(repository.id)
    entries = [p.name for p in root.iterdir()]
    assert entries and all(name.startswith(".tmp-") for name in entries), entries
    db.session.expire_all()
    assert db.session.get(SyncRun, run.id).status == "writing"

    retry = runs.request_sync(repository.id, trigger="cli")
    assert retry.id != run.id
    assert "stopped before it finished" in db.session.get(SyncRun, run.id).error
    worker = _start_worker(process_env)
    output = worker.communicate(timeout=120)[0].decode()
    assert worker.returncode == 0, output

    db.session.expire_all()
    assert db.session.get(SyncRun, retry.id).status == "active", output
    assert [p.name for p in root.iterdir()] == [db.session.get(SyncRun, retry.id).commit_sha]
    assert configuration.project_config(project).boards


@pytest.mark.slow
def test_cli_adds_a_repository_and_waits_for_the_sync(app, owner, tmp_path, process_env):
    from app.extensions import db
    from app.models import SyncRun, WorkflowRepository

    remote = bare_remote(tmp_path, "scrum")
    make_project(owner, "SCR", "scrum")

    def flask(*args):
        return subprocess.Popen([sys.executable, "-m", "flask", "kiket", *args], cwd=ROOT, env=process_env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    out, err = flask("repo", "add", "SCR", file_url(remote), "--branch", "main").communicate(timeout=60)
    assert "Webhook secret (shown once):" in out, err
    db.session.expire_all()
    repository = db.session.scalar(select(WorkflowRepository))
    assert f"Repository {repository.id} " in out

    waiting = flask("sync", str(repository.id), "--wait", "--timeout", "60")
    deadline = time.monotonic() + 30
    while db.session.scalar(select(func.count()).select_from(SyncRun)) == 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
        db.session.rollback()
    run_worker(app)
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err
    assert ": active at " in out
    assert ".kiket/" in out and "warning unsupported_section" in out


def test_every_status_change_is_published_on_the_repository_channel(app, owner, tmp_path):
    import json

    from app.services.sync import runs

    remote = bare_remote(tmp_path, "kanban")
    _, repository = connect(owner, remote)
    pubsub = app.extensions["redis"].pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(runs.sync_channel(repository.id))
    try:
        run = sync_now(app, repository.id)
        messages = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (not messages or messages[-1]["status"] != "active"):
            message = pubsub.get_message(timeout=0.5)
            if message:
                messages.append(json.loads(message["data"]))
    finally:
        pubsub.close()
    assert [m["status"] for m in messages] == ["queued", "fetching", "validating", "writing", "loading", "active"]
    assert set(messages[-1]) == {"repository_id", "sync_run_id", "status", "revision_id"}
    assert messages[-1] == {"repository_id": repository.id, "sync_run_id": run.id, "status": "active",
                            "revision_id": run.revision_id}


def test_retention_prunes_the_oldest_inactive_copies(app, owner, tmp_path):
    from app.services.sync import workflow_sources

    app.config["KIKET_REVISION_RETENTION"] = 1
    remote = bare_remote(tmp_path, "engineering")
    _, repository = connect(owner, remote)
    main = sync_now(app, repository.id)
    develop = sync_now(app, repository.id, branch="develop")
    assert develop.status == "active"
    assert not workflow_sources.has_revision(repository.id, main.commit_sha)
    assert workflow_sources.has_revision(repository.id, develop.commit_sha)


def test_a_failing_load_rolls_back_everything_and_keeps_the_previous_revision(app, owner, make_user, tmp_path,
                                                                              monkeypatch):
    from rq.job import Job

    from app.extensions import db
    from app.models import ConfigRevision, Invitation
    from app.services.runtime import seeding
    from app.services.sync import configuration

    remote = bare_remote(tmp_path, "engineering")
    project, repository = connect(owner, remote)
    monkeypatch.setattr(seeding, "create_seed_issues", lambda project, seeds, config: 1 / 0)
    # The repository's team names someone new: the activation would invite them, in its own transaction.
    push_change(remote, "main", ".kiket/team.yaml", "team:\n  members:\n    - {user: someone@example.com, roles: [member]}\n",
                "Invite someone")

    run = sync_now(app, repository.id)

    assert run.status == "failed" and "ZeroDivisionError" in run.error
    assert set(run.timings) >= {"fetch", "write", "load"}
    revision = db.session.get(ConfigRevision, run.revision_id)
    assert revision.status == "rejected"
    assert db.session.scalar(select(func.count()).select_from(Invitation)) == 0  # same transaction, undone
    assert Job.fetch(run.load_job_id, connection=app.extensions["redis"]).get_status() == "failed"
    assert configuration.project_config(project).source.repo == "template:kanban"


@pytest.mark.slow
def test_cli_sync_of_a_broken_commit_prints_diagnostics_and_exits_non_zero(app, owner, tmp_path, process_env):
    from app.extensions import db
    from app.models import SyncRun

    remote = bare_remote(tmp_path, "kanban")
    _, repository = connect(owner, remote)
    push_change(remote, "main", ".kiket/workflows/kanban.yaml", "workflow: {id: kanban\n", "Break the YAML")

    waiting = subprocess.Popen([sys.executable, "-m", "flask", "kiket", "sync", str(repository.id), "--wait",
                                "--timeout", "60"], cwd=ROOT, env=process_env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while db.session.scalar(select(func.count()).select_from(SyncRun)) == 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
        db.session.rollback()
    run_worker(app)
    out, err = waiting.communicate(timeout=60)

    assert waiting.returncode == 1, (out, err)
    assert ": failed at " in out
    assert any(line.startswith(".kiket/workflows/kanban.yaml:") and ": fatal " in line for line in err.splitlines()), err



def test_a_push_while_a_sync_is_past_resolving_gets_its_own_sync(app, owner, tmp_path):
    from app.extensions import db
    from app.models import SyncRun
    from app.services.sync import runs

    remote = bare_remote(tmp_path, "kanban")
    _, repository = connect(owner, remote)
    first = runs.request_sync(repository.id, trigger="ui")
    runs.sync_repository(first.id)  # the job: resolved, validated, written; its load job is queued
    assert first.status == "loading"
    pushed = push_change(remote, "main", "README.md", "pushed during the sync\n", "Push during sync")
    assert runs.request_sync(repository.id, trigger="webhook").id == first.id
    run_worker(app)  # the load ends the first run, which starts the follow-up, which the worker runs too
    db.session.expire_all()
    all_runs = db.session.scalars(select(SyncRun).order_by(SyncRun.id)).all()
    assert [(r.trigger, r.status) for r in all_runs] == [("ui", "active"), ("webhook", "active")]
    assert all_runs[0].commit_sha != pushed and all_runs[1].commit_sha == pushed
