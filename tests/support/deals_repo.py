"""The "deals" repository: a small `.kiket/` in the docs dialect (with the aliases) holding the gate kinds the
fixture repositories lack: roles, required fields, a guard, a `when` predicate, a required document, a
sequential approval, a comment-required transition and a blocking WIP column."""

from __future__ import annotations

from pathlib import Path

from tests.support.fixture_projects import sync_remote
from tests.support.sync_repos import new_remote

DEALS_WORKFLOW = """workflow:
  key: deal
  name: Deals
states:
  drafting:
    category: initial
    required_documents: [signed_nda]
  negotiating:
    category: active
  signed:
    category: final
  lost:
    category: final
transitions:
  - from: drafting
    to: negotiating
    name: Open negotiation
    roles: [sales]
    conditions:
      - {field: value, operator: greater_or_equal, value: 10000}
    required_fields: [assignee, custom_fields.value]
    when: "custom_fields.value <= 500000 && priority != 'low'"
  - from: negotiating
    to: signed
    name: Sign
    approval:
      type: sequential
      chain: [sales, finance]
      conditional:
        finance: {when: "custom_fields.value > 100000"}
  - from: negotiating
    to: lost
    name: Lose
    requires_comment: true
  - {from: lost, to: negotiating, name: Revive}
"""

DEALS_TYPES = """issue_types:
  deal:
    label: Deal
    workflow: deal
    fields:
      - {key: value, label: Deal value, type: integer}
    documents:
      - {key: signed_nda, label: Signed NDA}
"""

DEALS_TEAM = """team:
  roles:
    - {name: sales, description: Sales, inherits: member, permissions: [issue.approve]}
    - {name: finance, description: Finance, inherits: member, permissions: [issue.approve]}
  members:
    - {user: seller@example.com, roles: [sales]}
    - {user: cfo@example.com, roles: [finance]}
"""

DEALS_BOARD = """board:
  id: deals
  name: Deals
  workflow: deal
columns:
  - {key: drafting, name: Drafting, states: [drafting]}
  - {key: negotiating, name: Negotiating, states: [negotiating], wip_limit: 1, wip_policy: block}
  - {key: closed, name: Closed, states: [signed, lost]}
"""

DEALS_FILES = {
    ".kiket/workflows/deal.yaml": DEALS_WORKFLOW, ".kiket/issue_types.yaml": DEALS_TYPES,
    ".kiket/team.yaml": DEALS_TEAM, ".kiket/boards/deals.yaml": DEALS_BOARD,
}


def deals_project(app, owner, base: Path, make_user, key: str = "DEAL"):
    """Project `key` synced from a new deals repository under `base`; (project, seller, cfo).

    team.yaml's members join the project only when their accounts exist, so `make_user(email, org_role)` signs
    the seller (role sales) and the CFO (role finance) up before the sync.
    """
    remote = new_remote(base, "deals", DEALS_FILES)
    seller, cfo = make_user("seller@example.com", "member"), make_user("cfo@example.com", "member")
    project, _ = sync_remote(app, owner, remote, key)
    return project, seller, cfo
