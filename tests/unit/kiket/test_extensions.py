"""Extension manifests in both shapes (protocol spec §6), scope words, and reply parsing (§5)."""

import pytest

from app.kiket.extensions import (
    DEFAULT_EXTENSION_SCOPES, Decision, parse_manifest, parse_reply, parse_scope_list, scope_for,
)

DOCS_SHAPE = """\
name: Marketing
version: 1.2.0
vendor: Acme
description: Posts campaign notes
scopes:
  read: [issue, comment]
  write: [comment, workflow]
events:
  - issue.transitioned
  - {name: issue.created, version: v2}
actions:
  - {key: tag, label: Tag it, inputs: []}
"""

SDK_SHAPE = """\
extension:
  id: com.example.marketing
  version: 0.3.1
  delivery:
    callback:
      url: http://127.0.0.1:8088
      secret: env.KIKET_WEBHOOK_SECRET
  configuration:
    properties:
      API_KEY: {type: string, secret: true, description: Vendor key}
      CHANNEL: {type: string, default: "#general"}
"""


def test_docs_shape():
    result = parse_manifest(DOCS_SHAPE)
    manifest = result.manifest
    assert result.errors == () and manifest is not None
    assert (manifest.id, manifest.name, manifest.version, manifest.vendor) == ("acme.marketing", "Marketing", "1.2.0", "Acme")
    assert manifest.scopes == ("issues:read", "comments:read", "comments:write", "issues:transition")
    assert manifest.event_version("issue.created") == "v2"
    assert manifest.event_version("issue.transitioned") == "v1"
    assert manifest.event_version("issue.commented") is None
    assert manifest.base_url is None and manifest.secret is None
    assert manifest.actions[0]["key"] == "tag"


def test_sdk_shape_under_extension_key():
    manifest = parse_manifest(SDK_SHAPE).manifest
    assert manifest.id == "com.example.marketing" and manifest.base_url == "http://127.0.0.1:8088"
    # A reference to the extension's environment is not a secret we can use: one is generated instead.
    assert manifest.secret is None
    assert manifest.secret_keys == ("API_KEY",)
    assert [p.default for p in manifest.properties] == [None, "#general"]
    # No scopes declared: what its directives need; no events declared: every event.
    assert manifest.scopes == DEFAULT_EXTENSION_SCOPES and not manifest.declares_scopes
    assert manifest.event_version("sla.breach") == "v1"


def test_a_literal_delivery_secret_is_kept():
    manifest = parse_manifest("id: com.example.x\ndelivery: s3cret-value\n").manifest
    assert manifest.secret == "s3cret-value"


@pytest.mark.parametrize("text,code,line", [
    ("version: 1\n", "manifest_id", 1),
    ("id: Not An Id\n", "manifest_id", 1),
    ("id: com.example.x\nevents: issue.created\n", "manifest_type", 2),
    ("id: com.example.x\nevents:\n  - {name: issue.created, version: latest}\n", "manifest_event", 3),
    ("id: com.example.x\ndelivery: {callback: {url: 'ftp://x'}}\n", "manifest_url", 2),
    ("id: [unclosed\n", "yaml_syntax", 2),
])
def test_problems_name_their_line(text, code, line):
    result = parse_manifest(text, "extension.yaml")
    assert result.manifest is None
    problem = result.errors[0]
    assert problem.code == code and problem.prov.path == "extension.yaml" and problem.prov.line == line


def test_unknown_scope_words_and_events_are_warnings():
    result = parse_manifest("id: com.example.x\nscopes: {read: [issue, spaceship]}\nevents: [intake.submitted]\n")
    assert result.manifest.scopes == ("issues:read",)
    assert {d.code for d in result.diagnostics if d.severity == "warning"} == {"manifest_scope", "manifest_event"}


@pytest.mark.parametrize("word,scope", [
    ("issues:read", "issues:read"), ("issue:read", "issues:read"), ("issues.write", "issues:write"),
    ("read:comment", "comments:read"), ("write:workflow", "issues:transition"), ("comments.write", "comments:write"),
    ("launch:rockets", None), ("issues", None),
])
def test_scope_words(word, scope):
    assert scope_for(word) == scope


def test_scope_lists_split_known_and_unknown():
    assert parse_scope_list(["issues:read", "nope", "issues:read"]) == (["issues:read"], ["nope"])


def test_reply_directives():
    reply = parse_reply({"actions": [
        {"kind": "add_comment", "body": " Hello "},
        {"kind": "set_field", "field": "priority", "value": "high"},
        {"kind": "transition", "to": "done"},
        {"kind": "assign", "assignee": "dev@example.com"},
        {"kind": "notify", "title": "Heads up", "body": "x", "level": "error"},
        {"kind": "launch"},
        {"kind": "add_comment", "body": ""},
    ]})
    assert [(d.kind, d.scope) for d in reply.directives] == [
        ("add_comment", "comments:write"), ("set_field", "issues:write"), ("transition", "issues:transition"),
        ("assign", "issues:write"), ("notify", "notifications:write")]
    assert reply.directives[0].params == {"body": "Hello"}
    assert reply.directives[4].params["level"] == "critical"
    assert reply.ignored == ("unknown action kind 'launch'", "add_comment needs a non-empty body")


def test_reply_decision_shape():
    reply = parse_reply({"status": "allow", "message": "ok", "metadata": {"output_fields": {"score": 7}}})
    assert reply.decision == Decision("allow", "ok", {"score": "7"}) and reply.directives == ()


@pytest.mark.parametrize("body", [None, "", [1, 2], "text", {"status": "maybe"}])
def test_anything_else_is_ignored(body):
    reply = parse_reply(body)
    assert reply.directives == () and reply.decision is None
