"""No stranded issues (§16): a template project connecting a repository is told before activation how many of
its issues the repository has no workflow for, confirms, maps them in one audited step; the same for a
rollback. Seed issues come once per repository activation; the file's project name is told, never applied."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.support.fixture_projects import KANBAN_STATES, sync_again, template_project_with_issues
from tests.support.issue_events import make_issue
from tests.support.sync_repos import bare_remote, file_url, push_change, run_worker


@pytest.fixture
def template_project(app, owner):
    """ENG on the kanban template with its sample issues, spread over every template state."""
    from app.extensions import db
    from app.models import Issue

    project, states = template_project_with_issues(owner)
    assert set(states.values()) == set(KANBAN_STATES)
    return project, [db.session.get(Issue, i) for i in states], states


def connect(owner, project, remote):
    from app.services.sync import repositories

    repository, _ = repositories.add_repository(project, file_url(remote), branch="main", actor=owner)
    return repository


def test_a_template_project_is_told_before_activation_then_maps_its_issues(app, owner, tmp_path, template_project):
    from app.extensions import db
    from app.kiket.runtime.transitions import outgoing
    from app.models import AuditEvent, ConfigRevision, Issue, IssueTransition
    from app.services.runtime import issue_page, stranded
    from app.services.sync import configuration, runs

    project, issues, states = template_project
    repository = connect(owner, project, bare_remote(tmp_path, "engineering"))
    run = sync_again(app, repository.id)
    assert run.status == "held"
    assert run.summary["stranded"] == [{"workflow": "kanban", "removed": True, "count": len(issues),
                                        "states": {s: list(states.values()).count(s) for s in KANBAN_STATES}}]
    assert db.session.get(ConfigRevision, run.revision_id).status == "pending"
    assert configuration.project_config(project).source.repo == "template:kanban"

    runs.confirm_activation(run.id, owner)
    run_worker(app)
    db.session.expire_all()
    assert db.session.get(type(run), run.id).status == "active"
    assert [(s.workflow, s.count) for s in stranded.stranded_workflows(project)] == [("kanban", len(issues))]
    sample = db.session.get(Issue, issues[0].id)
    assert issue_page.issue_view(owner, sample).stranded

    # Seeds of the repository come on its first activation, though the template's sample issues exist.
    seeds = runs.seed_outcome(run)
    assert seeds["created"] == 6 and seeds["skipped"] == []

    plan = stranded.preview(project, "kanban")
    assert [(t.source, t.target, t.reason) for t in plan.types] == [(t, t, "same type") for t in
                                                                    sorted({i.issue_type for i in issues},
                                                                           key=[i.issue_type for i in issues].index)]
    [group] = plan.targets
    assert group.workflow.id == "bug"
    assert {(r.source, r.target) for r in group.rows} == {("backlog", "reported"), ("in_progress", "triaging"),
                                                          ("review", "testing"), ("done", "deployed")}
    result = stranded.apply(project, "kanban", {"map:bug:in_progress": "fixing"}, owner)
    assert len(result.moved) == len(issues)
    assert stranded.stranded_workflows(project) == []
    db.session.expire_all()
    workflow = configuration.project_config(project).workflows["bug"]
    for issue in issues:
        moved = db.session.get(Issue, issue.id)
        assert moved.workflow_id == "bug" and moved.state in workflow.states
        assert outgoing(workflow, moved.state), f"{moved.key} is stuck in {moved.state}"
        assert moved.workflow_version == workflow.version
    assert {db.session.get(Issue, i).state for i, s in states.items() if s == "in_progress"} == {"fixing"}
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.kind == "workflow.migrated")) == 1
    assert db.session.scalar(select(func.count()).select_from(IssueTransition)
                             .where(IssueTransition.actor_kind == "migration")) == len(issues)


def test_the_migration_pages_map_stranded_issues_instead_of_answering_404(app, client, owner, login, tmp_path,
                                                                          template_project):
    from app.extensions import db
    from app.models import Issue
    from app.services.sync import runs
    from tests.conftest import post_form

    project, issues, states = template_project
    repository = connect(owner, project, bare_remote(tmp_path, "engineering"))
    run = sync_again(app, repository.id)
    login()
    page = client.get(f"/repositories/runs/{run.id}").get_data(as_text=True)
    assert "Waiting for confirmation" in page and f"{len(issues)} issues" in page
    assert post_form(client, f"/repositories/runs/{run.id}/confirm").status_code == 303
    run_worker(app)
    page = client.get("/projects/ENG").get_data(as_text=True)
    assert "which this configuration lacks" in page
    page = client.get("/projects/ENG/migrations/kanban")
    assert page.status_code == 200 and "Map the issues of workflow" in page.get_data(as_text=True)
    done = post_form(client, "/projects/ENG/migrations/kanban", {"action": "apply", "map:bug:done": "wont_fix"})
    assert done.status_code == 200 and f"Moved {len(issues)} issues" in done.get_data(as_text=True)
    db.session.expire_all()
    assert {db.session.get(Issue, i).state for i, s in states.items() if s == "done"} == {"wont_fix"}
    assert client.get("/projects/ENG/migrations/kanban").status_code == 404


def test_a_rollback_that_would_strand_issues_is_told_first(app, owner, tmp_path):
    from app.services.runtime import stranded
    from app.services.sync import revisions
    from tests.support.fixture_projects import sync_remote

    remote = bare_remote(tmp_path, "kanban")
    project, repository = sync_remote(app, owner, remote, "OPS")
    first = repository.active_revision_id
    ops = ("workflow: {id: ops, name: Ops}\nstates:\n  open: {type: initial}\n  closed: {type: final}\n"
           "transitions:\n  - {from: open, to: closed}\n")
    push_change(remote, "main", ".kiket/workflows/ops.yaml", ops, "Add ops")
    assert sync_again(app, repository.id).status == "active"
    make_issue(project, "Ops thing", issue_type="task", state="open", emit=False)
    from app.extensions import db
    from app.models import Issue

    issue = db.session.scalar(select(Issue).where(Issue.title == "Ops thing"))
    issue.workflow_id = "ops"
    db.session.commit()

    with pytest.raises(revisions.WouldStrand, match="1 issue on workflow ops"):
        revisions.rollback(project, first, owner)
    assert [s.workflow for s in revisions.stranded_by(first, owner)] == ["ops"]
    revisions.rollback(project, first, owner, confirm=True)
    assert [(s.workflow, s.count) for s in stranded.stranded_workflows(project)] == [("ops", 1)]


def test_the_files_project_name_is_told_and_never_applied(app, client, owner, login, tmp_path):
    from tests.support.fixture_projects import sync_remote

    project, _ = sync_remote(app, owner, bare_remote(tmp_path, "engineering"), "ENG")
    assert project.name == "Project ENG"
    login()
    page = client.get("/projects/ENG").get_data(as_text=True)
    assert "The file names the project" in page and "Engineering" in page and "the name stays" in page


def test_seeds_come_once_per_repository(app, owner, tmp_path):
    from app.extensions import db
    from app.models import Issue, ProjectSeedMarker
    from tests.support.fixture_projects import sync_remote

    project, repository = sync_remote(app, owner, bare_remote(tmp_path, "legal"), "LEG")
    count = db.session.scalar(select(func.count()).select_from(Issue).where(Issue.project_id == project.id))
    assert count == 6
    push_change(bare_remote(tmp_path, "legal"), "main", ".kiket/README.md", "x", "Touch")
    assert sync_again(app, repository.id).status == "active"
    assert db.session.scalar(select(func.count()).select_from(Issue).where(Issue.project_id == project.id)) == 6
    assert [m.source for m in db.session.scalars(select(ProjectSeedMarker))] == [f"repository:{repository.id}"]


def test_the_migrate_command_maps_a_stranded_workflow(app, owner, tmp_path, template_project):
    from app.extensions import db
    from app.models import Issue
    from app.services.sync import runs

    project, issues, states = template_project
    repository = connect(owner, project, bare_remote(tmp_path, "engineering"))
    runs.confirm_activation(sync_again(app, repository.id).id, owner)
    run_worker(app)
    runner = app.test_cli_runner()
    preview = runner.invoke(args=["kiket", "migrate", "ENG", "kanban", "--map", "done=wont_fix"])
    assert preview.exit_code == 0 and "done -> bug.wont_fix" in preview.output and "Preview only" in preview.output
    applied = runner.invoke(args=["kiket", "migrate", "ENG", "kanban", "--map", "done=wont_fix", "--apply"])
    assert applied.exit_code == 0, applied.output
    assert f"Mapped {len(issues)} issue(s)" in applied.output
    db.session.expire_all()
    assert {db.session.get(Issue, i).state for i, s in states.items() if s == "done"} == {"wont_fix"}
