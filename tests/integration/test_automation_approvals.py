"""`requires_approval` automations (spec §10.1): each run waits, recorded as `awaiting_approval` with the
directives it plans; the project's owners and admins are notified; approving performs the actions through
the same executor, denying records the decision; only one decision wins."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.conftest import post_form
from tests.support.issue_events import make_issue, run_default, save_override

GATED = """model_version: "1.0"
automations:
  - id: label-on-comment
    name: Label commented issues
    trigger: comment.created
    requires_approval: true
    actions:
      - type: add_label
        label: discussed
      - type: notify
        recipients: {fields: [reporter]}
        message: "{{issue.key}} was labelled"
"""


def gated_project(make_user, key="GATE"):
    from app.services import projects

    owner = make_user("owner@example.com", "owner")
    project = projects.create_project(owner, key, "Gate", "", "kanban")
    save_override(owner, project, "automations/gated.yaml", GATED)
    return owner, project


def gated_run(app, owner, project):
    from app.extensions import db
    from app.models import AutomationRun
    from app.services.runtime import transitions

    issue = make_issue(project, "Needs a look", issue_type="task", reporter=owner, emit=False)
    transitions.add_comment(issue.id, owner, "looked")
    run_default(app)
    db.session.expire_all()
    return issue, db.session.scalar(select(AutomationRun).where(AutomationRun.automation_id == "label-on-comment"))


def test_a_gated_run_waits_with_its_plan_and_asks_the_owners(app, make_user):
    from app.extensions import db
    from app.models import Issue, Notification

    owner, project = gated_project(make_user)
    issue, run = gated_run(app, owner, project)
    assert run.outcome == "awaiting_approval"
    assert run.input["approval"] == {"state": "pending"}
    planned = run.input["planned"]
    assert [(p["type"], p["kind"]) for p in planned] == [("add_label", "add_label"), ("notify", "notify")]
    assert planned[1]["params"]["message"] == f"{issue.key} was labelled"
    assert db.session.get(Issue, issue.id).labels == []  # nothing done yet
    asked = [n.message for n in db.session.scalars(select(Notification).where(Notification.user_id == owner.id))]
    assert "Automation 'Label commented issues' awaits approval on GATE-1 Needs a look" in asked


def test_approving_performs_the_actions_once(app, make_user):
    from app.extensions import db
    from app.models import AuditEvent, Issue, Notification
    from app.services.runtime.effects import gated_runs

    owner, project = gated_project(make_user)
    issue, run = gated_run(app, owner, project)
    decided = gated_runs.decide_run(run.id, owner, approve=True)
    assert decided.outcome == "applied (approved by owner@example.com)"
    assert decided.input["approval"]["state"] == "approved" and decided.input["approval"]["by"] == owner.email
    assert [(a["type"], a["status"]) for a in decided.input["actions"]] == [("add_label", "applied"),
                                                                           ("notify", "applied")]
    db.session.expire_all()
    assert db.session.get(Issue, issue.id).labels == ["discussed"]
    assert db.session.scalar(select(Notification).where(Notification.message == "GATE-1 was labelled"))
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.kind == "automation.approved"))
    with pytest.raises(gated_runs.RunNotPending):
        gated_runs.decide_run(run.id, owner, approve=True)
    with pytest.raises(gated_runs.RunNotPending):
        gated_runs.decide_run(run.id, owner, approve=False)


def test_denying_records_the_decision_and_does_nothing(app, make_user):
    from app.extensions import db
    from app.models import AuditEvent, Issue
    from app.services.runtime.effects import gated_runs

    owner, project = gated_project(make_user)
    issue, run = gated_run(app, owner, project)
    decided = gated_runs.decide_run(run.id, owner, approve=False, reason="not now")
    assert decided.outcome == "denied by owner@example.com"
    assert decided.input["approval"]["state"] == "denied" and decided.input["approval"]["reason"] == "not now"
    assert "actions" not in decided.input
    db.session.expire_all()
    assert db.session.get(Issue, issue.id).labels == []
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.kind == "automation.denied"))


def test_only_managers_or_automation_managers_decide(app, make_user):
    from app.services.errors import Forbidden

    from app.extensions import db
    from app.models import ProjectMembership
    from app.services.runtime.effects import gated_runs

    owner, project = gated_project(make_user)
    _, run = gated_run(app, owner, project)
    member = make_user("member@example.com", "member")
    db.session.add(ProjectMembership(project_id=project.id, user_id=member.id, role="member"))
    db.session.commit()
    with pytest.raises(Forbidden):
        gated_runs.decide_run(run.id, member, approve=True)
    stranger = make_user("stranger@example.com", "member")
    with pytest.raises(Forbidden):
        gated_runs.decide_run(run.id, stranger, approve=False)
    membership = db.session.scalar(select(ProjectMembership).where(ProjectMembership.user_id == member.id))
    membership.role = "admin"
    db.session.commit()
    assert gated_runs.decide_run(run.id, member, approve=False).outcome == "denied by member@example.com"


def test_the_notifications_page_lists_and_decides_runs(app, make_user, client, login):
    from app.extensions import db
    from app.models import AutomationRun, Issue

    owner, project = gated_project(make_user)
    issue, run = gated_run(app, owner, project)
    login()
    page = client.get("/notifications").get_data(as_text=True)
    assert "Automation runs awaiting approval" in page and "label-on-comment" in page
    assert "GATE-1 was labelled" in page  # the planned notify's message
    response = post_form(client, f"/notifications/automation-runs/{run.id}", {"decision": "approve"},
                         headers={"HX-Request": "true"})
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert 'id="automation-approvals"' in body and "applied (approved by owner@example.com)" in body
    assert "<h2>Automation runs awaiting approval</h2>" not in body
    db.session.expire_all()
    assert db.session.get(AutomationRun, run.id).outcome.startswith("applied")
    assert db.session.get(Issue, issue.id).labels == ["discussed"]
    again = post_form(client, f"/notifications/automation-runs/{run.id}", {"decision": "deny"},
                      headers={"HX-Request": "true"})
    assert "already decided" in again.get_data(as_text=True)
    assert post_form(client, f"/notifications/automation-runs/{run.id}", {"decision": "maybe"}).status_code == 400


def test_a_member_sees_no_runs_to_decide(app, make_user, client, login):
    from app.extensions import db
    from app.models import ProjectMembership

    owner, project = gated_project(make_user)
    _, run = gated_run(app, owner, project)
    member = make_user("member@example.com", "member")
    db.session.add(ProjectMembership(project_id=project.id, user_id=member.id, role="member"))
    db.session.commit()
    login("member@example.com")
    assert "label-on-comment" not in client.get("/notifications").get_data(as_text=True)
    response = post_form(client, f"/notifications/automation-runs/{run.id}", {"decision": "approve"})
    assert response.status_code == 403


def add_member(make_user, project, email="member@example.com", role="member"):
    from app.extensions import db
    from app.models import ProjectMembership

    member = make_user(email, "member")
    db.session.add(ProjectMembership(project_id=project.id, user_id=member.id, role=role))
    db.session.commit()
    return member


def test_the_issue_page_lists_its_waiting_runs_and_decides_them(app, make_user, client, login):
    from app.extensions import db
    from app.models import AutomationRun, Issue

    owner, project = gated_project(make_user)
    issue, run = gated_run(app, owner, project)
    login()
    url = f"/projects/GATE/issues/{issue.number}"
    page = client.get(url).get_data(as_text=True)
    assert f'id="automation-runs-{issue.id}"' in page and f'id="automation-run-{run.id}"' in page
    assert "GATE-1 was labelled" in page and f'action="{url}/automation-runs/{run.id}"' in page

    response = post_form(client, f"{url}/automation-runs/{run.id}", {"decision": "approve"},
                         headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    assert body.lstrip().startswith(f'<div id="issue-{issue.id}"') and "<html" not in body
    assert f"Run {run.id} of label-on-comment: applied (approved by owner@example.com)" in body
    assert f'id="automation-run-{run.id}"' not in body and "discussed" in body
    db.session.expire_all()
    assert db.session.get(AutomationRun, run.id).outcome.startswith("applied")
    assert db.session.get(Issue, issue.id).labels == ["discussed"]

    again = post_form(client, f"{url}/automation-runs/{run.id}", {"decision": "deny"}, headers={"HX-Request": "true"})
    assert "This run was already decided." in again.get_data(as_text=True)
    assert post_form(client, f"{url}/automation-runs/{run.id}", {"decision": "maybe"}).status_code == 400
    assert f'id="automation-runs-{issue.id}"' not in client.get(url).get_data(as_text=True)


def test_denying_from_the_issue_page_without_htmx_redirects_back(app, make_user, client, login):
    from app.extensions import db
    from app.models import AutomationRun

    owner, project = gated_project(make_user)
    issue, run = gated_run(app, owner, project)
    login()
    url = f"/projects/GATE/issues/{issue.number}"
    response = post_form(client, f"{url}/automation-runs/{run.id}", {"decision": "deny"})
    assert response.status_code == 303 and response.headers["Location"] == url
    db.session.expire_all()
    assert db.session.get(AutomationRun, run.id).outcome == "denied by owner@example.com"


def test_members_see_the_waiting_runs_read_only_and_cannot_decide(app, make_user, client, login):
    from app.extensions import db
    from app.models import AutomationRun

    owner, project = gated_project(make_user)
    issue, run = gated_run(app, owner, project)
    add_member(make_user, project)
    login("member@example.com")
    url = f"/projects/GATE/issues/{issue.number}"
    page = client.get(url).get_data(as_text=True)
    assert f'id="automation-run-{run.id}"' in page and "label-on-comment" in page
    assert "/automation-runs/" not in page and "decide these runs" in page
    assert post_form(client, f"{url}/automation-runs/{run.id}", {"decision": "approve"}).status_code == 403
    db.session.expire_all()
    assert db.session.get(AutomationRun, run.id).outcome == "awaiting_approval"


def test_strangers_and_other_issues_runs_get_404(app, make_user, client, login):
    from app.extensions import db
    from app.models import AutomationRun

    owner, project = gated_project(make_user)
    issue, run = gated_run(app, owner, project)
    other = make_issue(project, "Another", issue_type="task", reporter=owner, emit=False)
    make_user("stranger@example.com", "member")
    login("stranger@example.com")
    assert client.get(f"/projects/GATE/issues/{issue.number}").status_code == 404
    response = post_form(client, f"/projects/GATE/issues/{issue.number}/automation-runs/{run.id}",
                         {"decision": "approve"})
    assert response.status_code == 404
    post_form(client, "/logout")
    login()
    response = post_form(client, f"/projects/GATE/issues/{other.number}/automation-runs/{run.id}",
                         {"decision": "approve"})
    assert response.status_code == 404
    db.session.expire_all()
    assert db.session.get(AutomationRun, run.id).outcome == "awaiting_approval"
