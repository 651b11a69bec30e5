"""Revision diffs per element, and the count of issues sitting in removed states."""

from __future__ import annotations

from tests.support.fixture_projects import sync_again
from tests.support.sync_repos import bare_remote, file_url, push_change

KANBAN_WITHOUT_REVIEW = """model_version: 1.0
workflow:
  id: kanban
  name: Kanban Flow
  version: 1.2.0
states:
  backlog: {type: initial, category: pending, metadata: {label: Backlog}}
  in_progress: {type: active, category: active, metadata: {label: In Progress}, wip_limit: 8}
  done: {type: final, category: completed, metadata: {label: Done}}
  shipped: {type: final, category: completed, metadata: {label: Shipped}}
transitions:
  - {from: backlog, to: in_progress, name: Start Work}
  - {from: in_progress, to: backlog, name: Park Item}
  - {from: in_progress, to: done, name: Finish}
"""


def test_diff_names_removed_states_and_counts_their_issues(app, make_user, tmp_path, monkeypatch):
    from app.services import projects
    from app.services.sync import repositories, revisions

    owner = make_user("owner@example.com", "owner")
    project = projects.create_project(owner, "KAN", "Kanban", "", "kanban")
    remote = bare_remote(tmp_path, "kanban")
    repository, _ = repositories.add_repository(project, file_url(remote), actor=owner)

    def sync_now():
        return sync_again(app, repository.id)

    before = sync_now()
    push_change(remote, "main", ".kiket/workflows/kanban.yaml", KANBAN_WITHOUT_REVIEW, "Drop review, add shipped")
    after = sync_now()
    assert after.status == "active", after.error

    asked = []

    def count(project_id, workflow_id, states):
        asked.append((project_id, workflow_id, tuple(states)))
        return 3

    monkeypatch.setattr(revisions, "count_issues_in_states", count)
    comparison = revisions.diff_revisions(before.revision_id, after.revision_id, owner)
    diff = comparison.diff

    assert diff.find("state", "review", "kanban").change == "removed"
    assert diff.find("state", "shipped", "kanban").change == "added"
    assert "wip_limit" in diff.find("state", "in_progress", "kanban").fields
    assert diff.find("state", "backlog", "kanban") is None or diff.find("state", "backlog", "kanban").change == "changed"
    assert diff.find("workflow", "kanban").change == "changed"
    transitions = {c.key: c.change for c in diff.of_kind("transition")}
    assert "removed" in transitions.values() and "added" in transitions.values()
    assert diff.removed_states() == {"kanban": ("review",)}
    assert asked == [(project.id, "kanban", ("review",))]
    assert comparison.affected_issues == {"kanban": {"review": 3}} and comparison.affected_total == 3
    assert diff.counts()["state"] == {"added": 1, "removed": 1, "changed": diff.counts()["state"]["changed"]}
