"""Secret usage: which webhook actions read which `${env.NAME}` secrets, for the secrets page."""

from __future__ import annotations

from app.kiket import bundled
from app.kiket.loader import load_revision
from app.kiket.secret_usage import secret_usage

WORKFLOW = b"""
workflow: {id: ops, name: Ops}
states:
  open:
    type: initial
    category: pending
    on_enter:
      - action: webhook
        url: "${env.HOOK_URL}/enter"
        headers: {Authorization: "Bearer {{ env.API_TOKEN }}"}
  done: {type: final, category: completed}
transitions:
  - from: open
    to: done
    name: Finish
    actions:
      - action: webhook
        url: "https://example.com/done"
        body: {nested: {token: "${env.API_TOKEN}"}, list: ["${env.BODY_KEY}"]}
      - action: add_comment
        body: "not a secret: ${env.IGNORED}"
"""

AUTOMATIONS = b"""
automations:
  - id: ping
    name: Ping
    trigger: comment.created
    actions:
      - type: webhook
        url: "${env.HOOK_URL}/ping"
"""


def usage():
    result = load_revision({".kiket/workflows/ops.yaml": WORKFLOW, ".kiket/automations/ping.yaml": AUTOMATIONS})
    return secret_usage(result.revision)


def test_names_in_webhook_url_headers_and_body_are_found_with_their_places():
    found = usage()
    assert found.references == {
        "API_TOKEN": ("workflow ops: on_enter of open", "workflow ops: transition Finish"),
        "BODY_KEY": ("workflow ops: transition Finish",),
        "HOOK_URL": ("automation ping", "workflow ops: on_enter of open"),
    }


def test_every_webhook_action_is_listed_once_and_other_actions_are_not():
    assert usage().webhooks == ("automation ping", "workflow ops: on_enter of open", "workflow ops: transition Finish")


def test_a_configuration_without_webhooks_reads_no_secrets():
    found = secret_usage(load_revision(bundled.template_files("kanban")).revision)
    assert found.references == {} and found.webhooks == ()
