"""Workflow version migration (spec §3): a revision removes a state; the preview lists the affected issues;
applying moves them, one audited operation per issue; from the page and from the command."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.conftest import post_form
from tests.integration.test_sync_diff import KANBAN_WITHOUT_REVIEW
from tests.support.fixture_projects import sync_again
from tests.support.sync_repos import bare_remote, file_url, push_change


@pytest.fixture
def kanban(app, make_user, tmp_path):
    """A project on the kanban fixture with two issues in `review` and one in `backlog`, then a revision
    that drops `review` (and so changes the workflow's version)."""
    from app.services import projects
    from app.services.runtime import issues, transitions
    from app.services.sync import configuration, repositories

    owner = make_user("owner@example.com", "owner")
    project = projects.create_project(owner, "KAN", "Kanban", "", "kanban")
    remote = bare_remote(tmp_path, "kanban")
    repository, _ = repositories.add_repository(project, file_url(remote), actor=owner)

    def sync_now():
        run = sync_again(app, repository.id)
        assert run.status == "active", run.error
        return run

    first = sync_now()
    issue_type = issues.creatable_types(configuration.project_config(project))[0].key
    made = []
    for title, path in (("Review me", ["in_progress", "review"]), ("Me too", ["in_progress", "review"]),
                        ("Still backlog", [])):
        issue = issues.create_issue(project, owner, issue_type=issue_type, title=title)
        for state in path:
            transitions.apply_transition(issue.id, owner, target=state)
        made.append(issue)
    push_change(remote, "main", ".kiket/workflows/kanban.yaml", KANBAN_WITHOUT_REVIEW, "Drop review")
    second = sync_now()
    return owner, project, made, first, second


def test_preview_lists_the_issues_in_the_removed_state(app, kanban):
    from app.services.runtime import workflow_migration

    owner, project, (a, b, c), first, second = kanban
    plan = workflow_migration.preview(project, "kanban")
    assert plan.total == 3 and len(plan.groups) == 1 and not plan.ready
    group = plan.groups[0]
    assert group.old_version == a.workflow_version != plan.new_version
    moves = {m.source: (m.target, m.count) for m in group.plan.moves if m.count}
    assert moves == {"review": (None, 2), "backlog": ("backlog", 1)}
    assert plan.needs_choice == ["review"] and group.keys_in("review") == [a.key, b.key]
    with pytest.raises(Exception) as refused:
        workflow_migration.apply(project, "kanban", {}, owner)
    assert "review" in str(refused.value)


def test_applying_moves_each_issue_and_records_each_move(app, kanban):
    from app.extensions import db
    from app.models import AuditEvent, Issue, IssueTransition
    from app.services import audit
    from app.services.runtime import workflow_migration

    owner, project, (a, b, c), first, second = kanban
    result = workflow_migration.apply(project, "kanban", {"review": "in_progress"}, owner)
    assert sorted(result.moved) == sorted([(a.key, "review", "in_progress"), (b.key, "review", "in_progress"),
                                           (c.key, "backlog", "backlog")])
    db.session.expire_all()
    new_version = workflow_migration.preview(project, "kanban").new_version
    for issue in (a, b):
        row = db.session.get(Issue, issue.id)
        assert row.state == "in_progress" and row.workflow_version == new_version
        assert row.config_revision_id == second.revision_id
        last = db.session.scalars(select(IssueTransition).where(IssueTransition.issue_id == issue.id)
                                  .order_by(IssueTransition.id.desc())).first()
        assert (last.from_state, last.to_state, last.actor_kind, last.transition_id) == \
            ("review", "in_progress", "migration", None)
    migrated = list(db.session.scalars(select(AuditEvent).where(AuditEvent.kind == "issue.migrated")))
    assert len(migrated) == 3 and {e.issue_id for e in migrated} == {a.id, b.id, c.id}
    assert audit.verify(project.id).ok
    assert workflow_migration.preview(project, "kanban").groups == []


def test_migration_page_and_the_diff_link(app, client, kanban, login):
    from app.extensions import db
    from app.models import Issue

    owner, project, (a, b, c), first, second = kanban
    login()
    diff = client.get(f"/repositories/revisions/diff?older={first.revision_id}&newer={second.revision_id}").get_data(as_text=True)
    assert "/projects/KAN/migrations/kanban" in diff
    page = client.get("/projects/KAN/migrations/kanban").get_data(as_text=True)
    assert a.key in page and "choose a target" in page and 'name="map-review"' in page
    refused = post_form(client, "/projects/KAN/migrations/kanban", {})
    assert refused.status_code == 422 and "choose where its issues go" in refused.get_data(as_text=True)
    done = post_form(client, "/projects/KAN/migrations/kanban", {"map-review": "backlog"})
    assert done.status_code == 200 and "Moved 3 issues" in done.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Issue, a.id).state == "backlog"


def test_migrate_command_previews_then_applies(app, kanban, process_env):
    from app.extensions import db
    from app.models import Issue

    owner, project, (a, b, c), first, second = kanban
    runner = app.test_cli_runner()
    preview = runner.invoke(args=["kiket", "migrate", "KAN", "kanban"])
    assert preview.exit_code == 0, preview.output
    assert f"review -> ?  (choose with --map): 2 [{a.key}, {b.key}]" in preview.output
    assert "Preview only" in preview.output
    refused = runner.invoke(args=["kiket", "migrate", "KAN", "kanban", "--apply"])
    assert refused.exit_code != 0 and "review" in refused.output
    applied = runner.invoke(args=["kiket", "migrate", "KAN", "kanban", "--map", "review=done", "--apply"])
    assert applied.exit_code == 0, applied.output
    assert f"moved {a.key}: review -> done" in applied.output
    db.session.expire_all()
    assert db.session.get(Issue, b.id).state == "done" and db.session.get(Issue, b.id).resolved_at is not None
