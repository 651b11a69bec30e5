"""Live updates across real processes: a move served by one web process reaches a viewer whose socket is held
by another process (the gevent `live` process), through Redis; a viewer who loses access is disconnected; the
issue page, the bell and the repositories dashboard get their changes too."""

from __future__ import annotations

import pytest
from simple_websocket import ConnectionClosed

from tests.support.live_servers import (
    PASSWORD, connect, live_command, receive_until, server, signed_in, web_command,
)


@pytest.fixture(scope="module")
def servers(process_env):
    """The web process and the live process, as the Procfile runs them; (web URL, live URL)."""
    with server(web_command, process_env) as web, server(live_command, process_env) as live:
        yield web, live


@pytest.fixture
def kanban(app):
    """Owner and member of project KAN (kanban template) with one card in the backlog; (issue id, member id)."""
    from app.extensions import db
    from app.models import ProjectMembership
    from app.services import accounts, projects
    from app.services.runtime import issues

    owner = accounts.create_user("owner@example.com", PASSWORD, "owner")
    viewer = accounts.create_user("viewer@example.com", PASSWORD, "member")
    project = projects.create_project(owner, "KAN", "Kanban", "", "kanban")
    db.session.add(ProjectMembership(project_id=project.id, user_id=viewer.id, role="member"))
    issue = issues.create_issue(project, owner, issue_type="task", title="Write the docs")
    db.session.commit()
    return issue.id, viewer.id


def test_a_move_on_one_process_reaches_a_viewer_on_another_and_revoked_access_disconnects(app, kanban, servers):
    from app.extensions import db
    from app.models import ProjectMembership

    issue_id, viewer_id = kanban
    web, live = servers
    mover = signed_in(web, "owner@example.com")
    watcher = signed_in(web, "viewer@example.com")
    ws = connect(live, watcher, "project=KAN&board=kanban", origin=web)
    first = receive_until(ws, lambda m: "<!--live init" in m)
    assert f'id="card-{issue_id}"' in first and 'id="colhead-backlog"' in first

    response = mover.post(f"{web}/projects/KAN/boards/kanban/cards/{issue_id}/move",
                          data={"column": "in_progress"}, headers={"HX-Request": "true"})
    assert response.status_code == 200, response.text[:500]
    change = receive_until(ws, lambda m: f"card-{issue_id}" in m and "<!--live project:" in m)
    assert "afterbegin:#list-in_progress-all" in change
    assert 'id="colhead-in_progress"' in change and "<strong>1 / " in change

    membership = db.session.query(ProjectMembership).filter_by(user_id=viewer_id).one()
    db.session.delete(membership)
    db.session.commit()
    with pytest.raises(ConnectionClosed):
        receive_until(ws, lambda m: False, timeout=10)
    assert ws.close_reason == 1008


def test_the_issue_page_and_the_bell_are_live(app, kanban, servers):
    from app.extensions import db
    from app.models import User
    from app.services.runtime import notifications

    issue_id, viewer_id = kanban
    web, live = servers
    owner = signed_in(web, "owner@example.com")
    reader = signed_in(web, "viewer@example.com")
    ws = connect(live, reader, f"issue={issue_id}", origin=web)
    first = receive_until(ws, lambda m: "<!--live init" in m)
    assert f'id="issue-{issue_id}"' in first and 'id="bell"' in first

    page = owner.get(f"{web}/projects/KAN/issues/1").text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = owner.post(f"{web}/projects/KAN/issues/1/comments", data={"body": "Seen it", "csrf_token": token})
    assert response.status_code in (200, 303), response.text[:300]
    change = receive_until(ws, lambda m: f'id="issue-live-{issue_id}"' in m)
    assert "changed this issue just now" in change and "Seen it" in change

    notifications.notify([db.session.get(User, viewer_id).id], None, None, "Look at KAN-1")
    bell = receive_until(ws, lambda m: 'id="bell"' in m and "<!--live user:" in m)
    assert "1 unread" in bell
    ws.close()


def test_the_repositories_dashboard_shows_syncs_started_anywhere(app, kanban, servers, tmp_path):
    from app.extensions import db
    from app.models import Project, User
    from app.services.sync import repositories, runs
    from tests.support.deals_repo import DEALS_FILES
    from tests.support.sync_repos import file_url, new_remote, run_worker

    web, live = servers
    owner = signed_in(web, "owner@example.com")
    project = db.session.query(Project).filter_by(key="KAN").one()
    repository, _ = repositories.add_repository(project, file_url(new_remote(tmp_path, "deals", DEALS_FILES)), branch="main",
                                        actor=db.session.query(User).filter_by(email="owner@example.com").one())
    ws = connect(live, owner, "repos=1", origin=web)
    receive_until(ws, lambda m: "<!--live init" in m)
    run = runs.request_sync(repository.id, branch=None, trigger="cli")
    run_worker(app)
    # KAN's card has no workflow in the deals repository: the sync waits for confirmation (§16).
    receive_until(ws, lambda m: f'id="repository-{repository.id}"' in m and ">held<" in m)
    runs.confirm_activation(run.id, None)
    run_worker(app)
    row = receive_until(ws, lambda m: f'id="repository-{repository.id}"' in m and ">active<" in m)
    assert "<!--live org:" in row
    ws.close()
