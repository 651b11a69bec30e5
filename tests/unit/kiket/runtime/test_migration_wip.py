"""Version pinning and migration plans (§3), and board WIP helpers (§11.3)."""

from __future__ import annotations

import pytest
import yaml

from app.kiket.loader import load_revision
from app.kiket.runtime.migration import apply_choice, plan_migration, same_version
from app.kiket.runtime.wip import column_for_state, wip_info, wip_limit


def without_state(files: dict[str, bytes], path: str, state: str) -> dict[str, bytes]:
    data = yaml.safe_load(files[path])
    del data["states"][state]
    data["transitions"] = [t for t in data["transitions"] if state not in (t["from"], t["to"])]
    data["transitions"].append({"from": "pending_signature", "to": "active", "name": "Sign"})
    return {**files, path: yaml.safe_dump(data, allow_unicode=True).encode()}


@pytest.fixture(scope="module")
def contract_versions(fixture_repos):
    files = fixture_repos.files("legal")
    old = load_revision(files).revision.workflows["contract"]
    changed = load_revision(without_state(files, ".kiket/workflows/contract.yaml", "countersigned"))
    assert changed.ok
    return old, changed.revision.workflows["contract"]


def test_unchanged_workflow_moves_for_free(revision, fixture_repos):
    again = load_revision(fixture_repos.files("legal")).revision.workflows["contract"]
    old = revision("legal").workflows["contract"]
    assert same_version(old, again)
    plan = plan_migration(old, again, {"draft": 2})
    assert plan.free and plan.ready


def test_plan_when_a_state_is_removed(contract_versions):
    old, new = contract_versions
    assert not same_version(old, new)
    plan = plan_migration(old, new, {"draft": 3, "countersigned": 2, "legal_review": 1})
    assert not plan.free and not plan.ready
    assert [(m.source, m.count) for m in plan.needs_choice] == [("countersigned", 2)]
    assert plan.target_for("draft") == "draft" and plan.target_for("legal_review") == "legal_review"
    assert plan.target_for("countersigned") is None
    assert "removed" in plan.needs_choice[0].reason
    chosen = apply_choice(plan, "countersigned", "active")
    assert chosen.ready and chosen.target_for("countersigned") == "active"
    assert plan.target_for("countersigned") is None  # plans are values
    with pytest.raises(ValueError):
        apply_choice(plan, "countersigned", "countersigned")
    with pytest.raises(ValueError):
        apply_choice(plan, "nowhere", "active")


def test_removed_state_without_issues_needs_no_choice(contract_versions):
    old, new = contract_versions
    plan = plan_migration(old, new, {"draft": 1})
    assert plan.ready and plan.target_for("countersigned") is None


def test_scrum_board_limits(revision):
    rev = revision("scrum")
    board, workflow = rev.boards["scrum-sprint"], rev.workflows["scrum"]
    column = column_for_state(board, "scrum", "in_progress")
    assert column.name == "In Progress" and wip_limit(column, workflow) == 10
    assert column_for_state(board, "scrum", "backlog") is None  # omitted on purpose
    assert column_for_state(board, "kanban", "in_progress") is None
    info = wip_info(board, workflow, "scrum", "sprint_backlog", "in_progress", 10)
    assert info.policy == "warn" and info.over_limit and not info.includes_issue


def test_column_limit_from_state_limits(revision):
    rev = revision("scrum")
    workflow = rev.workflows["scrum"]
    from dataclasses import replace

    board = rev.boards["scrum-sprint"]
    merged = replace(board.columns[1], states=("in_progress", "review"), wip_limit=None)
    assert wip_limit(merged, workflow) == 15
    assert wip_limit(replace(merged, states=("in_progress", "done")), workflow) is None


def test_block_policy_and_moves_within_a_column(mini):
    board, workflow = mini.boards["mini-board"], mini.workflows["mini"]
    into = wip_info(board, workflow, "mini", "open", "doing", 3)
    assert into.policy == "block" and into.over_limit and into.limit == 3
    within = wip_info(board, workflow, "mini", "doing", "review", 3)
    assert within.includes_issue and not within.over_limit
    assert wip_info(board, workflow, "mini", "doing", "done", 50) is None


def test_legal_board_spans_two_workflows(revision):
    rev = revision("legal")
    board = rev.boards["legal-board"]
    for wf in ("gdpr", "contract"):
        assert column_for_state(board, wf, "legal_review") is not None
    column = column_for_state(board, "gdpr", "processing")
    assert wip_limit(column, rev.workflows.values()) == 15
