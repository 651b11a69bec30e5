"""The Workflow Repositories dashboard as a browser (and HTMX) meets it: connect, pick, sync, inspect, compare, roll back."""

import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import ConfigRevision, Project, SyncRun, WorkflowRepository
from tests.conftest import csrf_token, post_form
from tests.support.sync_repos import bare_remote, file_url, push_change, run_worker

HX = {"HX-Request": "true"}


@pytest.fixture
def owner(make_user, login, client):
    make_user("ada@example.com", "owner")
    login("ada@example.com")
    assert post_form(client, "/projects", {"key": "ENG", "name": "Engineering", "template": "bug_tracking"}).status_code == 303
    return db.session.scalar(select(Project))


def connect(client, remote, branch="main") -> WorkflowRepository:
    response = post_form(client, "/repositories/", {"project": "ENG", "url": file_url(remote), "branch": branch})
    assert response.status_code == 200, response.get_data(as_text=True)
    html = response.get_data(as_text=True)
    assert "shown only now" in html and 'id="hook-secret"' in html
    return db.session.scalar(select(WorkflowRepository))


def sync(client, app, repository, branch=None) -> str:
    data = {"branch": branch} if branch else {}
    response = client.post(f"/repositories/{repository.id}/sync", data=data, headers={**HX, "X-CSRFToken": csrf_token(client)})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'id="sync-status"' in html and "<html" not in html and 'hx-trigger="every' in html
    run_worker(app)
    return client.get(f"/repositories/{repository.id}/status?was=running", headers=HX)


def test_connect_pick_branch_sync_and_watch_status(app, client, owner, tmp_path):
    remote = bare_remote(tmp_path, "engineering")
    repository = connect(client, remote)
    picker = client.get(f"/repositories/{repository.id}/branches", headers=HX).get_data(as_text=True)
    assert 'id="branch-picker"' in picker
    assert re.search(r'<option value="develop"', picker) and re.search(r'<option value="main" selected', picker)

    status = sync(client, app, repository)
    html = status.get_data(as_text=True)
    assert "status-active" in html and 'hx-trigger="every' not in html
    assert status.headers["HX-Trigger"] == "kiket:sync-finished"
    assert "HX-Request" in status.headers["Vary"]

    page = client.get(f"/repositories/{repository.id}").get_data(as_text=True)
    assert "Sync history" in page and "Revisions" in page
    listing = client.get("/repositories/").get_data(as_text=True)
    assert "status-active" in listing and file_url(remote) in listing


def test_run_page_shows_telemetry_and_revision_shows_provenance(app, client, owner, tmp_path):
    repository = connect(client, bare_remote(tmp_path, "legal"))
    sync(client, app, repository)
    run = db.session.scalar(select(SyncRun))
    page = client.get(f"/repositories/runs/{run.id}").get_data(as_text=True)
    for text in ("Enqueued", "Started", "Finished", "fetch", "validate", run.job_id, "/rq/0/view/job/"):
        assert text in page
    revision = db.session.scalar(select(ConfigRevision).where(ConfigRevision.status == "active"))
    page = client.get(f"/repositories/revisions/{revision.id}").get_data(as_text=True)
    assert "contract" in page and "gdpr" in page
    assert f"/repositories/revisions/{revision.id}/source/.kiket/workflows/contract.yaml" in page
    workflow = client.get(f"/repositories/revisions/{revision.id}/workflows/contract").get_data(as_text=True)
    assert 'id="wf-contract-diagram"' in workflow and "<svg" in workflow
    assert ".kiket/workflows/contract.yaml" in workflow and revision.commit_sha in workflow
    source = client.get(f"/repositories/revisions/{revision.id}/source/.kiket/workflows/contract.yaml?line=3")
    assert source.status_code == 200 and 'id="L3" class="highlight' in source.get_data(as_text=True)


def test_failed_sync_links_each_diagnostic_to_its_line(app, client, owner, tmp_path):
    remote = bare_remote(tmp_path, "kanban")
    repository = connect(client, remote)
    sync(client, app, repository)
    active_before = db.session.scalar(select(ConfigRevision.id).where(ConfigRevision.status == "active"))
    push_change(remote, "main", ".kiket/workflows/kanban.yaml", "workflow:\n  id: kanban\nstates: {}\n", "Break the workflow")
    status = sync(client, app, repository).get_data(as_text=True)
    assert "status-failed" in status and "previous configuration stays active" in status
    run = db.session.scalars(select(SyncRun).order_by(SyncRun.id.desc())).first()
    page = client.get(f"/repositories/runs/{run.id}").get_data(as_text=True)
    link = re.search(rf'href="(/repositories/runs/{run.id}/source/\.kiket/workflows/kanban\.yaml\?line=(\d+))#L\d+"', page)
    assert link, page
    source = client.get(link.group(1)).get_data(as_text=True)
    assert f'id="L{link.group(2)}" class="highlight' in source and "states: {}" in source
    assert db.session.scalar(select(ConfigRevision.id).where(ConfigRevision.status == "active")) == active_before


def test_diff_and_rollback_between_branches(app, client, owner, tmp_path):
    repository = connect(client, bare_remote(tmp_path, "engineering"))
    sync(client, app, repository)
    sync(client, app, repository, branch="develop")
    older, newer = db.session.scalars(select(ConfigRevision).order_by(ConfigRevision.id)).all()
    assert (older.status, newer.status, newer.branch) == ("superseded", "active", "develop")
    page = client.get(f"/repositories/revisions/diff?older={older.id}&newer={newer.id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Changes from" in html and ("issue type" in html.lower())
    rolled = client.post(f"/repositories/revisions/{older.id}/rollback", headers={**HX, "X-CSRFToken": csrf_token(client)})
    assert rolled.status_code == 200 and 'id="history"' in rolled.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(ConfigRevision, older.id).status == "active"


def test_members_can_look_but_not_sync(app, client, owner, make_user, login, tmp_path):
    repository = connect(client, bare_remote(tmp_path, "kanban"))
    from app.models import ProjectMembership

    bob = make_user("bob@example.com", "member")
    db.session.add(ProjectMembership(project_id=owner.id, user_id=bob.id, role="member"))
    db.session.commit()
    post_form(client, "/logout")
    login("bob@example.com")
    assert client.get(f"/repositories/{repository.id}").status_code == 200
    picker = client.get(f"/repositories/{repository.id}/branches").get_data(as_text=True)
    assert "Project owners and admins can sync" in picker
    assert post_form(client, f"/repositories/{repository.id}/sync").status_code == 403
    assert db.session.scalar(select(SyncRun)) is None


def test_strangers_cannot_see_a_repository(app, client, owner, make_user, login, tmp_path):
    repository = connect(client, bare_remote(tmp_path, "kanban"))
    make_user("eve@example.com", "member")
    post_form(client, "/logout")
    login("eve@example.com")
    assert client.get(f"/repositories/{repository.id}").status_code == 404
    assert repository.remote_url not in client.get("/repositories/").get_data(as_text=True)


def test_project_configuration_page_and_overrides(app, client, owner):
    page = client.get("/projects/ENG/configuration").get_data(as_text=True)
    assert "bundled" in page and 'id="layer-editor"' in page
    bad = client.post(
        "/projects/ENG/configuration/overrides", data={"path": "workflows/bug.yaml", "yaml_text": "workflow: {id: bug}\nstates: {}\n"},
        headers={**HX, "X-CSRFToken": csrf_token(client)},
    )
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert 'id="layer-file-editor"' in html and "Not saved" in html and "fatal" in html
    good = client.post(
        "/projects/ENG/configuration/overrides", data={"path": "project.yaml", "yaml_text": "project:\n  name: Engineering\n"},
        headers={**HX, "X-CSRFToken": csrf_token(client)},
    )
    assert good.status_code == 200 and "Saved <code>project.yaml</code>" in good.get_data(as_text=True)
    assert "project.yaml" in client.get("/projects/ENG/configuration").get_data(as_text=True)
    workflows = re.findall(r'href="(/projects/ENG/configuration/workflows/[^"]+)"', page)
    assert workflows and all("<svg" in client.get(url).get_data(as_text=True) for url in workflows)


def test_a_rollback_shows_at_once_and_moves_the_tracked_branch(app, client, owner, tmp_path):
    repository = connect(client, bare_remote(tmp_path, "engineering"))
    project_page = client.get("/projects/ENG").get_data(as_text=True)
    assert "Created from the <strong>Bug tracking</strong> template" in project_page
    sync(client, app, repository)
    sync(client, app, repository, branch="develop")
    older, newer = db.session.scalars(select(ConfigRevision).order_by(ConfigRevision.id)).all()
    assert "template" not in client.get("/projects/ENG").get_data(as_text=True).split('id="config-source"')[1][:400]

    rolled = client.post(f"/repositories/revisions/{older.id}/rollback",
                         headers={**HX, "X-CSRFToken": csrf_token(client)})
    html = rolled.get_data(as_text=True)
    # In place: the history, with the status card and the branch picker out of band; no redirect.
    assert rolled.status_code == 200 and "HX-Redirect" not in rolled.headers and "<html" not in html
    assert 'id="history"' in html
    assert 'id="sync-status"' in html and 'hx-swap-oob="true"' in html
    assert f"Active now: revision" in html and older.short_sha in html.split('id="active-revision"')[1][:400]
    assert 'id="branch-picker"' in html and "Tracking <strong>main</strong>" in html
    db.session.expire_all()
    assert db.session.get(WorkflowRepository, repository.id).branch == "main"
    picker = client.get(f"/repositories/{repository.id}/branches", headers=HX).get_data(as_text=True)
    assert "main (tracked)" in picker and "develop (tracked)" not in picker
    status = client.get(f"/repositories/{repository.id}/status", headers=HX).get_data(as_text=True)
    assert 'id="active-revision"' in status
    # The develop run's revision is no longer live: neither the sync history nor the overview calls it active
    # (the main run's revision is live again).
    history = client.get(f"/repositories/{repository.id}/history", headers=HX).get_data(as_text=True)
    runs_table = history.split('aria-label="Sync runs"')[1]
    assert runs_table.count("status-active") == 1 and runs_table.count("status-superseded") == 1
    overview = client.get("/repositories/").get_data(as_text=True)
    row = overview.split(f'id="repository-{repository.id}"')[1].split("</tr>")[0]
    assert "status-superseded" in row and "status-active" not in row
    assert f'href="/repositories/revisions/{older.id}"' in client.get("/projects/ENG").get_data(as_text=True)

    # Syncing the tracked branch again finds its commit active: no second row for the same commit.
    sync(client, app, repository)
    db.session.expire_all()
    assert db.session.scalar(select(db.func.count()).select_from(ConfigRevision)) == 2
    assert db.session.scalar(select(SyncRun).order_by(SyncRun.id.desc())).status == "unchanged"


def test_open_dashboards_hear_of_a_rollback_and_redraw_from_the_active_revision(app, client, owner, tmp_path):
    import json
    import time

    from app.blueprints.live import render
    from app.blueprints.live.hub import Subscription, Viewer
    from app.services import live

    repository = connect(client, bare_remote(tmp_path, "engineering"))
    sync(client, app, repository)
    sync(client, app, repository, branch="develop")
    older = db.session.scalars(select(ConfigRevision).order_by(ConfigRevision.id)).first()
    redis = app.extensions["redis"]
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(live.redis_channel(redis))
    post_form(client, f"/repositories/revisions/{older.id}/rollback")
    messages, deadline = [], time.monotonic() + 5
    while time.monotonic() < deadline and not any(m.get("kind") == "sync" for m in messages):
        item = pubsub.get_message(timeout=0.2)
        if item is not None:
            messages.append(json.loads(item["data"]))
    pubsub.close()
    sync_message = next(m for m in messages if m.get("kind") == "sync")
    assert sync_message["repository"] == repository.id and sync_message["ch"] == f"org:{owner.organization_id}"

    # What the live socket sends an open dashboard for that message: status, history and the branch picker.
    db.session.expire_all()
    from app.models import User

    ada = db.session.scalar(select(User).where(User.email == "ada@example.com"))
    viewer = Viewer(ws=None, user_id=ada.id, session_version=0, organization_id=owner.organization_id, csrf=None,
                    subscription=Subscription(repository=repository.id))
    with app.test_request_context("/"):
        html = render.sync_status(viewer, repository.id)
    assert 'id="active-revision"' in html and older.short_sha in html
    assert 'id="history"' in html and 'id="branch-picker"' in html and "Tracking <strong>main</strong>" in html
