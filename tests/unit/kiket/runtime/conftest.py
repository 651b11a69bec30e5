"""Fixtures for the runtime tests: the real fixture revisions, a small hand-written project, and a fixed clock."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from app.kiket.loader import load_revision
from app.kiket.model import ConfigRevision

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)

# A small project exercising the gates the fixture repositories do not use.
MINI_WORKFLOW = b"""
workflow:
  id: mini
  name: Mini
states:
  open: {type: initial}
  doing: {type: active, wip_limit: 2}
  review:
    type: active
    required_documents: [signed_nda]
    approval:
      type: sequential
      chain: [counsel, cfo]
      conditional:
        cfo: {when: "custom_fields.amount > 1000"}
  done: {type: final}
  cancelled: {type: final}
transitions:
  - {from: open, to: doing, name: Start, roles: [dev]}
  - from: doing
    to: review
    name: Submit
    requires:
      fields: [root_cause, assignee]
      predicate: "priority != 'low'"
    comment_required: true
  - {from: doing, to: review, name: Fast track, conditions: [{field: labels, contains: trivial}]}
  - {from: review, to: done, name: Accept, approval_required: true}
  - {from: review, to: doing, name: Rework, approval_required: false}
  - {from: "*", to: cancelled, name: Cancel}
  - {from: done, to: doing, name: Reopen}
"""

MINI_BOARD = b"""
board: {id: mini-board, name: Mini board, workflow: mini}
columns:
  - {key: todo, name: To do, states: [open]}
  - {key: wip, name: In progress, states: [doing, review], wip_limit: 3, wip_policy: block}
  - {key: done, name: Done, states: [done, cancelled]}
"""

# The roles its gates name, declared so that people can hold them (an undeclared one would be unsatisfiable, §16).
MINI_TEAM = b"""
team:
  roles: [{name: dev}, {name: counsel}, {name: cfo}]
"""

MINI_FILES = {
    ".kiket/team.yaml": MINI_TEAM,
    ".kiket/workflows/mini.yaml": MINI_WORKFLOW,
    ".kiket/boards/mini.yaml": MINI_BOARD,
}


@pytest.fixture(scope="session")
def revision(loaded):
    """revision("legal") → the loaded ConfigRevision of a fixture repository (main branch)."""

    def get(name: str, branch: str = "main") -> ConfigRevision:
        result = loaded(name, branch)
        assert result.ok, [d.message for d in result.diagnostics if d.severity == "fatal"]
        return result.revision

    return get


@pytest.fixture(scope="session")
def mini() -> ConfigRevision:
    """The hand-written project above, loaded through the real loader."""
    result = load_revision(MINI_FILES, include_bundled=False)
    assert result.ok, [(d.code, d.message) for d in result.diagnostics]
    return result.revision
