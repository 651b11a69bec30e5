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


def test_issues_of_a_removed_workflow_map_by_key_then_category_then_initial(revision):
    """Template kanban issues onto engineering's bug workflow (§16: no stranded issues)."""
    from app.kiket.bundled import template_files
    from app.kiket.model import Source
    from app.kiket.runtime.migration import plan_stranded

    kanban = load_revision(template_files("kanban"), source=Source(repo="template:kanban")).revision.workflows["kanban"]
    bug = revision("engineering").workflows["bug"]
    plan = plan_stranded(kanban, bug, {"backlog": 2, "in_progress": 1, "review": 1, "done": 3})
    assert plan.ready and plan.workflow == "bug"
    assert [(m.source, m.target, m.reason) for m in plan.moves] == [
        ("backlog", "reported", "same category (pending)"), ("in_progress", "triaging", "same category (active)"),
        ("review", "testing", "same category (review)"), ("done", "deployed", "same category (completed)")]
    edited = plan_stranded(kanban, bug, {"done": 3}, {"done": "wont_fix"})
    assert edited.target_for("done") == "wont_fix" and edited.moves[0].count == 3
    with pytest.raises(ValueError):
        plan_stranded(kanban, bug, {"done": 3}, {"done": "nowhere"})
    # Without the old definition (its copy is gone) only keys are known: same key, else the initial state.
    blind = plan_stranded(None, bug, {"fixing": 1, "limbo": 1})
    assert [(m.target, m.reason) for m in blind.moves] == [("fixing", "same state"), ("reported", "initial state")]


def test_only_organization_owners_and_admins_force_and_only_blocked_moves(revision):
    from datetime import datetime, timezone

    from app.kiket.runtime.snapshot import Actor, IssueSnapshot
    from app.kiket.runtime.transitions import evaluate_request, force_refusal, skipped_gates

    contract = revision("legal").workflows["contract"]
    now = datetime(2026, 3, 2, tzinfo=timezone.utc)
    snap = IssueSnapshot(id=1, status="legal_review", workflow="contract")
    owner = Actor("o", frozenset({"owner"}), frozenset({"*"}), org_admin=True)
    member = Actor("m", frozenset({"member"}), frozenset({"issue.*"}))
    blocked = evaluate_request(contract, snap, actor=owner, transition="Reject", now=now)
    assert not blocked.allowed and force_refusal(blocked, owner) is None
    assert [g.gate for g in skipped_gates(blocked)] == ["approval"]
    assert force_refusal(evaluate_request(contract, snap, actor=member, transition="Reject", now=now), member) == \
        "Only organization owners and admins can force a transition"
    free = evaluate_request(contract, IssueSnapshot(id=1, status="draft", workflow="contract"), actor=owner,
                            transition="Cancel", now=now)
    assert force_refusal(free, owner) == "Nothing blocks this transition; it needs no force"
    missing = evaluate_request(contract, snap, actor=owner, transition="Fly away", now=now)
    assert "not available" in force_refusal(missing, owner)
