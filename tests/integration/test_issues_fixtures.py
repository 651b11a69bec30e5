"""Issues on the fixture repositories' real workflows, brought in by a real sync: seeds, approvals,
checklist guards, conditions, pinning, and concurrent transitions on PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from tests.support.issue_event_calls import event_calls  # noqa: F401  (fixture)
from tests.support.fixture_projects import LEGAL_TEAM, by_title, member, override, sync_again, synced_project
from tests.support.sync_repos import push_change


@pytest.fixture(autouse=True)
def _events(event_calls):
    return event_calls


def test_seed_issues_are_created_once_in_their_declared_states(app, owner, tmp_path):
    from app.extensions import db
    from app.models.issues import Issue
    from app.services import audit
    from app.services.sync import configuration, revisions

    project, repository, remote = synced_project(app, owner, tmp_path, "legal")
    config = configuration.project_config(project)
    rows = list(db.session.scalars(select(Issue).where(Issue.project_id == project.id).order_by(Issue.number)))
    assert len(rows) == len(config.project.seed_issues) == 6
    assert [(i.issue_type, i.state) for i in rows] == [(s.issue_type, s.status) for s in config.project.seed_issues]
    saas = rows[0]
    assert saas.key == "ENG-1" and saas.workflow_id == "contract"
    assert saas.workflow_version == config.workflows["contract"].version
    assert saas.config_revision_id == repository.active_revision_id
    assert audit.verify(project.id).ok
    assert revisions.count_issues_in_states(project.id, "contract", ["legal_review", "pending_signature"]) == 2

    push_change(remote, "main", ".kiket/README-extra.md", "changed\n", "Touch the repository")
    again = sync_again(app, repository.id)
    assert again.status in ("active", "unchanged"), again.error
    assert db.session.scalar(select(func.count()).select_from(Issue).where(Issue.project_id == project.id)) == 6


def test_legal_quorum_approval_gates_every_way_out_and_resets_on_reentry(app, owner, tmp_path, make_user,
                                                                         event_calls):
    from app.services.errors import Forbidden
    from app.services.runtime import issue_page, issue_queries, transitions

    project, repository, _ = synced_project(app, owner, tmp_path, "legal")
    counsel = member(make_user, project, "counsel@example.com")
    paralegal = member(make_user, project, "para@example.com")
    override(app, owner, project, "team.yaml", LEGAL_TEAM)
    contract = by_title(project, "Meridian")
    assert contract.state == "legal_review"

    view = issue_page.issue_view(paralegal, contract)
    assert view.verdicts and all(not v.allowed for v in view.verdicts)
    assert all("Needs 1 approval from role legal (0 so far)" in v.reasons for v in view.verdicts)
    assert not view.approval.can_decide and view.approval.why_not == "Only role legal may decide"
    with pytest.raises(Forbidden, match="Only role legal may decide"):
        transitions.decide_approval(contract.id, paralegal, "approved", "looks fine")

    assert issue_page.issue_view(counsel, contract).approval.can_decide
    approval = transitions.decide_approval(contract.id, counsel, "approved", "Reviewed clause 7")
    assert ("approval_decided", (contract.id, approval.id, counsel.id)) in event_calls
    view = issue_page.issue_view(paralegal, issue_queries.get_issue(paralegal, project.key, contract.number))
    assert all(v.allowed for v in view.verdicts)
    assert view.approval.satisfied and view.approval.approved_by == ("counsel@example.com",)

    transitions.apply_transition(contract.id, paralegal, target="internal_review")
    transitions.apply_transition(contract.id, paralegal, target="legal_review")
    blocked = transitions.simulate(contract.id, paralegal, target="pending_signature")
    assert blocked.failed == ("approval",), "approvals reset on re-entry"

    transitions.decide_approval(contract.id, counsel, "denied", "Clause 9 unacceptable")
    blocked = transitions.simulate(contract.id, paralegal, target="pending_signature")
    assert any("Denied by counsel@example.com" in r for r in blocked.reasons)


def test_legal_checklists_tick_only_in_their_state(app, owner, tmp_path):
    from app.services.errors import Invalid
    from app.services.runtime import issue_page, issue_queries, transitions

    project, _, _ = synced_project(app, owner, tmp_path, "legal")
    gdpr = by_title(project, "data deletion")
    assert gdpr.state == "processing"
    view = issue_page.issue_view(owner, gdpr)
    assert [c.checklist.id for c in view.checklists] == ["gdpr_processing"]
    assert view.checklists[0].summary == "0 of 3 required items checked"
    transitions.tick_checklist(gdpr.id, owner, "gdpr_processing", "data_located", True)
    view = issue_page.issue_view(owner, issue_queries.get_issue(owner, project.key, gdpr.number))
    assert view.checklists[0].summary == "1 of 3 required items checked"
    with pytest.raises(Invalid, match="cannot be ticked"):
        transitions.tick_checklist(gdpr.id, owner, "identity_verification", "email_verified", True)


def test_engineering_postmortem_checklist_guards_resolved_and_is_kept_on_arrival(app, owner, tmp_path, event_calls):
    from app.extensions import db
    from app.models.issues import ChecklistProgress, Issue
    from app.services.runtime import issue_page, issues, transitions

    project, _, _ = synced_project(app, owner, tmp_path, "engineering")
    incident = issues.create_issue(project, owner, issue_type="incident", title="API down")
    for target in ("investigating", "resolved"):
        incident = transitions.apply_transition(incident.id, owner, target=target)
    verdict = transitions.simulate(incident.id, owner, target="postmortem")
    assert verdict.failed == ("checklists",)
    assert verdict.reasons[0].endswith("is not complete: 0 of 4 required items checked")
    view = issue_page.issue_view(owner, db.session.get(Issue, incident.id))
    assert [c.checklist.id for c in view.checklists] == ["postmortem_checklist"] and view.checklists[0].tickable
    items = ("timeline_documented", "root_cause_identified", "action_items_created", "stakeholders_notified")
    for item in items:
        transitions.tick_checklist(incident.id, owner, "postmortem_checklist", item, True)
    assert [c for c in event_calls if c[0] == "checklist_completed"] == [
        ("checklist_completed", (incident.id, "postmortem_checklist", owner.id))]
    done = transitions.apply_transition(incident.id, owner, target="postmortem")
    assert done.state == "postmortem" and done.resolved_at is not None
    # Arriving through the transition the checklist guards keeps its ticks.
    assert db.session.scalar(select(func.count()).select_from(ChecklistProgress)) == 4


def test_engineering_condition_needs_an_assignee(app, owner, tmp_path):
    from app.services.runtime import issues, transitions

    project, _, _ = synced_project(app, owner, tmp_path, "engineering")
    bug = issues.create_issue(project, owner, issue_type="bug", title="Leak")
    bug = transitions.apply_transition(bug.id, owner, target="triaging")
    with pytest.raises(transitions.TransitionBlocked) as caught:
        transitions.apply_transition(bug.id, owner, target="fixing")
    assert caught.value.verdict.failed == ("conditions",)
    assert caught.value.problems["transition"] == list(caught.value.verdict.reasons)
    issues.update_issue(bug.id, owner, bug.lock_version, assignee_id=owner.id)
    assert transitions.apply_transition(bug.id, owner, target="fixing").state == "fixing"


def test_issue_stays_on_its_pinned_version_after_a_workflow_change(app, owner, tmp_path):
    from app.services.runtime import issue_page, issue_queries, issues, transitions
    from app.services.sync import configuration
    from tests.support.sync_repos import show

    project, repository, remote = synced_project(app, owner, tmp_path, "engineering")
    bug = issues.create_issue(project, owner, issue_type="bug", title="Old version")
    old_version = bug.workflow_version
    text = show(remote, "main", ".kiket/workflows/bug.yaml")
    push_change(remote, "main", ".kiket/workflows/bug.yaml",
                text.replace("- from: reported\n    to: triaging", "- from: reported\n    to: wont_fix\n"
                             "    name: Reject early\n  - from: reported\n    to: triaging", 1),
                "Reject early")
    assert sync_again(app, repository.id).status == "active"
    configuration.clear_cache()
    assert configuration.project_config(project).workflows["bug"].version != old_version
    view = issue_page.issue_view(owner, issue_queries.get_issue(owner, project.key, bug.number))
    assert view.pinned_outdated and view.workflow.version == old_version
    assert "Reject early" not in [v.transition.name for v in view.verdicts]
    fresh = issues.create_issue(project, owner, issue_type="bug", title="New version")
    assert fresh.workflow_version != old_version
    assert transitions.apply_transition(bug.id, owner, target="triaging").state == "triaging"


@pytest.mark.skipif("not __import__('os').environ.get('DATABASE_URL', '').startswith('postgres')",
                    reason="row-level concurrency needs PostgreSQL; SQLite serializes writers")
def test_twenty_concurrent_transitions_one_winner_and_the_audit_chain_holds(app, owner):
    from app.extensions import db
    from app.models.issues import Issue, IssueTransition
    from app.services import audit, projects
    from app.services.errors import Conflict
    from app.services.runtime import issues, transitions

    project = projects.create_project(owner, "KAN", "Kanban", "", "kanban")
    issue = issues.create_issue(project, owner, issue_type="task", title="Contended")
    issue_id, owner_id, version, project_id = issue.id, owner.id, issue.lock_version, project.id
    db.session.remove()
    barrier = threading.Barrier(20)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker():
        from app.models import User

        # Wait before touching the pool: 20 threads share its 15 connections, the losers queue for one.
        barrier.wait(timeout=30)
        with app.app_context():
            try:
                user = db.session.get(User, owner_id)
                transitions.apply_transition(issue_id, user, target="in_progress", lock_version=version)
                outcome = "won"
            except Conflict:
                outcome = "conflict"
            except Exception as exc:  # reported below, never swallowed
                outcome = f"error: {exc!r}"
            finally:
                db.session.remove()
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["conflict"] * 19 + ["won"], outcomes
    row = db.session.get(Issue, issue_id)
    assert row.state == "in_progress" and row.lock_version == version + 1
    assert db.session.scalar(select(func.count()).select_from(IssueTransition)
                             .where(IssueTransition.issue_id == issue_id, IssueTransition.from_state.is_not(None))) == 1
    result = audit.verify(project_id)
    assert result.ok and result.checked == 2


@pytest.mark.skipif("not __import__('os').environ.get('DATABASE_URL', '').startswith('postgres')",
                    reason="row-level concurrency needs PostgreSQL; SQLite serializes writers")
def test_concurrent_edits_with_one_lock_version_lose_no_update(app, owner):
    from app.extensions import db
    from app.models.issues import Issue
    from app.services import audit, projects
    from app.services.errors import Conflict
    from app.services.runtime import issues

    project = projects.create_project(owner, "KAN", "Kanban", "", "kanban")
    issue = issues.create_issue(project, owner, issue_type="task", title="Original")
    issue_id, owner_id, version, project_id = issue.id, owner.id, issue.lock_version, project.id
    db.session.remove()
    barrier = threading.Barrier(10)
    outcomes: dict[str, str] = {}
    lock = threading.Lock()

    def worker(n: int):
        from app.models import User

        barrier.wait(timeout=30)
        with app.app_context():
            try:
                issues.update_issue(issue_id, db.session.get(User, owner_id), version, title=f"Title {n}")
                outcome = "won"
            except Conflict:
                outcome = "conflict"
            except Exception as exc:  # reported below, never swallowed
                outcome = f"error: {exc!r}"
            finally:
                db.session.remove()
            with lock:
                outcomes[f"Title {n}"] = outcome

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    winners = [title for title, outcome in outcomes.items() if outcome == "won"]
    assert len(winners) == 1 and sorted(outcomes.values()) == ["conflict"] * 9 + ["won"], outcomes
    row = db.session.get(Issue, issue_id)
    assert row.title == winners[0] and row.lock_version == version + 1
    assert audit.verify(project_id).ok
