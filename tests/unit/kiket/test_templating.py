"""Templates (spec §12): `${}` ≡ `{{}}`, filters, sandbox, env secrets, bodies, limits."""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.kiket.codes import CODES as REGISTRY
from app.kiket.diagnostics import KiketError, Provenance
from app.kiket.templating import (
    CODES,
    MAX_OUTPUT_BYTES,
    MissingSecret,
    RenderResult,
    Template,
    parse_body,
    parse_template,
    render_body,
    slugify,
)


def locate(pointer: str) -> Provenance:
    return Provenance(path=".kiket/workflows/bug.yaml", line=9, pointer=pointer)


def parse(text: str):
    return parse_template(text, "/states/fixing/on_enter/0/message", locate)


def render(text: str, snapshot=None, **kw) -> RenderResult:
    template, _ = parse(text)
    return template.render(SNAP if snapshot is None else snapshot, **kw)


class Sneaky:
    title = "attribute, not a key"


SNAP = {
    "issue": {
        "id": 42, "key": "ENG-42", "title": "Login fails: Über bad!", "description": "",
        "status": "fixing", "status_label": "Fixing", "url": "https://kiket.local/issues/42",
        "labels": ["backend", "urgent"], "assignee": None,
        "custom_fields": {"severity": "p1", "affected_services": ["api", "web"], "contract_value": 125000,
                          "root_cause": None, "contract_id": "C-9", "request_type": "erasure", "email": "a@b.c",
                          "rejection_reason": "incomplete", "meta": {"a": 1}, "_secret": "hidden"},
        "created_at": "2026-11-20T10:30:00Z",
    },
    "context": {"incident_duration": 37, "time_in_state": "2h"},
    "sla": {"time_remaining": "3h 20m"},
    "transition": {"from": "triage", "to": "fixing", "name": "Start"},
    "actor": {"name": "Ann"},
    "project": {"key": "ENG"},
    "now": "2026-11-27T10:00:00+00:00",
    "object": Sneaky(),
}


# ---- syntax ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("${issue.title}", "Login fails: Über bad!"),
    ("{{issue.title}}", "Login fails: Über bad!"),
    ("{{ issue.title }}", "Login fails: Über bad!"),
    ("${ issue.title }", "Login fails: Über bad!"),
    ("a ${issue.key} b {{ issue.key }} c", "a ENG-42 b ENG-42 c"),
    ("\\${issue.id}", "${issue.id}"),
    ("\\{{issue.id}}", "{{issue.id}}"),
    ("cost: $5 {not a placeholder} }}", "cost: $5 {not a placeholder} }}"),
    ("Value: ${{issue.custom_fields.contract_value}}", "Value: $125000"),
    ("${issue.labels[1]}", "urgent"),
    ("${issue.labels.0}", "backend"),
    ("{{ transition.from }} → {{ transition.to }}", "triage → fixing"),
    ("{{sla.time_remaining}} remaining", "3h 20m remaining"),
    ("{{ issue.custom_fields.meta }}", {"a": 1}),
    ("x {{ issue.custom_fields.meta }}", 'x {"a": 1}'),
    ("", ""),
    ("plain text", "plain text"),
])
def test_render_syntax(text, expected):
    template, diags = parse(text)
    assert diags == []
    assert template.render(SNAP).value == expected


def test_whole_string_placeholder_keeps_its_type():
    assert render("${issue.id}").value == 42
    assert render("{{ issue.labels }}").value == ["backend", "urgent"]
    assert render("${issue.assignee}").value is None
    assert render("${context.incident_duration}").value == 37
    assert render(" ${issue.id}").value == " 42"


def test_stringified_values():
    assert render("n=${issue.assignee}.").value == "n=."
    assert render("s=${issue.custom_fields.affected_services}").value == "s=api, web"
    snap = {"issue": {"b": True, "f": 1.5, "d": date(2026, 1, 2), "dt": datetime(2026, 1, 2, 3, tzinfo=timezone.utc)}}
    assert render("${issue.b} ${issue.f} ${issue.d} ${issue.dt}", snap).value == \
        "true 1.5 2026-01-02 2026-01-02T03:00:00+00:00"


def test_missing_renders_empty_and_is_noted():
    result = render("Hi {{ issue.nope }} / {{ issue.custom_fields.none.x }} / {{ actor.name }}")
    assert result.value == "Hi  /  / Ann"
    assert result.missing == ("issue.nope", "issue.custom_fields.none.x")
    assert render("${issue.nope}").value == ""


@pytest.mark.parametrize(("text", "code"), [
    ("{{ project_slug }}", "unknown_template_root"),
    ("{{ title }}", "unknown_template_root"),
    ("{{ this.id }}", "unknown_template_root"),
    ("${os.environ}", "unknown_template_root"),
    ("{{ issue.title | bogus }}", "unknown_filter"),
    ("{{ issue.title | truncate }}", "invalid_filter_argument"),
    ("{{ issue.title | truncate:abc }}", "invalid_filter_argument"),
    ("{{ issue.title | truncate:-1 }}", "invalid_filter_argument"),
    ("{{ issue.title | upper:1 }}", "invalid_filter_argument"),
    ("{{ issue.title | default }}", "invalid_filter_argument"),
    ("{{ issue.title | date:1 }}", "invalid_filter_argument"),
    ("{{ issue.title | default:(1) }}", "invalid_filter_argument"),
    ("{{ query('x') }}", "unsupported_function"),
    ("{{ issue.title | replace('a') }}", "unsupported_function"),
    ("{{ __import__('os') }}", "unsupported_function"),
    ("{{ issue.__class__ }}", "private_name"),
    ("{{ issue._private }}", "private_name"),
    ("{{ issue.custom_fields._secret }}", "private_name"),
    ("${_}", "private_name"),
    ("${env.home}", "invalid_env_name"),
    ("${env}", "invalid_env_name"),
    ("${env.A.B}", "invalid_env_name"),
    ("${env." + "A" * 70 + "}", "invalid_env_name"),
    ("{{ }}", "template_syntax"),
    ("{{ issue..title }}", "template_syntax"),
    ("{{ now.x }}", "template_syntax"),
    ("{{ issue title }}", "template_syntax"),
])
def test_load_time_warnings_render_empty(text, code):
    template, diags = parse(text)
    assert [d.code for d in diags] == [code]
    assert diags[0].severity == "warning" == CODES[code][0]
    assert diags[0].pointer == "/states/fixing/on_enter/0/message"
    assert template.render(SNAP).value == ""
    assert template.placeholders == ()


def test_unclosed_placeholders_stay_literal():
    template, diags = parse("a ${issue.id and {{ more")
    assert [d.code for d in diags] == ["template_syntax"]
    assert template.render(SNAP).value == "a ${issue.id and {{ more"
    template, diags = parse("${a ${issue.id}")
    assert template.render(SNAP).value == "${a 42"
    template, diags = parse("{{ issue.title | default:'x }}")
    assert [d.code for d in diags] == ["template_syntax"]
    assert template.render(SNAP).value == "{{ issue.title | default:'x }}"


def test_handlebars_blocks_are_kept_literal_with_one_warning():
    text = "{{#if context.account}}\n- Account: {{context.account.email}}\n{{else}}\nNone\n{{/if}}"
    template, diags = parse(text)
    assert [d.code for d in diags] == ["unsupported_template_block"]
    assert template.render({"context": {"account": {"email": "x@y"}}}).value == \
        "{{#if context.account}}\n- Account: x@y\n{{else}}\nNone\n{{/if}}"


# ---- filters ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("${issue.title | slugify}", "login-fails-uber-bad"),
    ("${issue.title|lower}", "login fails: über bad!"),
    ("${issue.title | upper}", "LOGIN FAILS: ÜBER BAD!"),
    ("${issue.custom_fields.request_type | title}", "Erasure"),
    ("${issue.title | truncate:5}", "Login"),
    ("${issue.title | truncate:0}", ""),
    ("${issue.title | truncate:500}", "Login fails: Über bad!"),
    ("${issue.nope | default:\"n/a\"}", "n/a"),
    ("${issue.nope | default:'n/a'}", "n/a"),
    ("${issue.assignee | default:unassigned}", "unassigned"),
    ("${issue.description | default:'none'}", "none"),
    ("${issue.key | default:'none'}", "ENG-42"),
    ("${issue.nope | default:'A b' | slugify}", "a-b"),
    ("${issue.custom_fields.meta | json}", '{"a": 1}'),
    ("${issue.labels | json}", '["backend", "urgent"]'),
    ("${issue.title | json}", '"Login fails: Über bad!"'),
    ("${issue.assignee | json}", "null"),
    ("${issue.title | urlencode}", "Login%20fails%3A%20%C3%9Cber%20bad%21"),
    ("${issue.created_at | date:\"%Y-%m-%d\"}", "2026-11-20"),
    ("${issue.created_at | date}", "2026-11-20"),
    ("${now | date:'%H:%M'}", "10:00"),
    ("${issue.title | date:'%Y'}", ""),
    ("${issue.title | lower | truncate:5 | upper}", "LOGIN"),
    ("${issue.labels | upper}", "BACKEND, URGENT"),
    ("${issue.id | truncate:1}", "4"),
])
def test_filters(text, expected):
    template, diags = parse(text)
    assert diags == []
    assert template.render(SNAP).value == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("Hello World", "hello-world"),
    ("  --Ünïcödé  Ça va?--  ", "unicode-ca-va"),
    ("a_b.c/d", "a-b-c-d"),
    ("日本語", ""),
    ("x" * 100, "x" * 60),
    ("a" * 59 + " b", "a" * 59),
    ("", ""),
])
def test_slugify(text, expected):
    assert slugify(text) == expected
    assert len(slugify(text)) <= 60


def test_default_filter_does_not_note_missing():
    assert render("${issue.nope | default:'x'}").missing == ()
    assert render("${issue.nope | upper}").missing == ("issue.nope",)


# ---- sandbox ----------------------------------------------------------------------------------

def test_sandbox_reads_dict_keys_and_indices_only():
    assert render("${object.title}").value == ""
    assert render("${issue.title.upper}").value == ""
    assert render("${issue.labels.5}").value == ""
    assert render("${issue.id.real}").value == ""
    snap = {"issue": {"x": {"0": "zero-key"}, "l": ("t0",)}}
    assert render("${issue.x.0}", snap).value == "zero-key"
    assert render("${issue.l.0}", snap).value == "t0"


def test_private_keys_in_snapshot_are_never_read():
    template = Template("x", (), Provenance())
    assert template.render(SNAP).value == ""
    text, diags = parse("${issue.custom_fields._secret}")
    assert text.render(SNAP).value == "" and diags


# ---- env and secrets --------------------------------------------------------------------------

FIXTURE_ENV = ["${env.GITHUB_WEBHOOK}", "${env.CHANGELOG_WEBHOOK}", "${env.SLACK_WEBHOOK}", "${env.STATUS_PAGE_WEBHOOK}"]


@pytest.mark.parametrize("text", FIXTURE_ENV)
def test_env_outside_webhooks_renders_empty(text):
    template, diags = parse(text)
    assert diags == []
    assert template.env_names == (text[6:-1],)
    assert template.render(SNAP).value == ""
    assert template.render(SNAP, secrets={text[6:-1]: "https://hooks"}).value == ""


@pytest.mark.parametrize("text", FIXTURE_ENV)
def test_env_in_webhooks_reads_project_secrets(text):
    name = text[6:-1]
    template, _ = parse(text)
    assert template.render(SNAP, secrets={name: "https://hooks/x"}, allow_env=True).value == "https://hooks/x"
    with pytest.raises(MissingSecret) as info:
        template.render(SNAP, secrets={}, allow_env=True)
    assert info.value.name == name
    assert isinstance(info.value, KiketError)
    with pytest.raises(MissingSecret):
        template.render(SNAP, allow_env=True)


def test_env_never_reads_the_process_environment(monkeypatch):
    monkeypatch.setenv("HOME", "/root")
    monkeypatch.setenv("KIKET_TOKEN", "t")
    assert render("${env.HOME}").value == ""
    with pytest.raises(MissingSecret):
        render("${env.HOME}", allow_env=True, secrets={})
    assert render("${env.KIKET_TOKEN}", allow_env=True, secrets={"KIKET_TOKEN": "s3"}).value == "s3"


def test_env_with_filters():
    result = render("Bearer ${env.TOKEN | urlencode}", allow_env=True, secrets={"TOKEN": "a b"})
    assert result.value == "Bearer a%20b"


# ---- bodies -----------------------------------------------------------------------------------

FIXTURE_BODY = {
    "text": "🚨 New incident: ${issue.title}",
    "attachments": [{"fields": [{"title": "Severity", "value": "${issue.custom_fields.severity}"},
                                {"title": "Services", "value": "${issue.custom_fields.affected_services}"}]}],
    "issue_id": "${issue.id}",
    "branch_name": "fix/${issue.id}-${issue.title | slugify}",
    "duration_minutes": "${context.incident_duration}",
    "root_cause": "${issue.custom_fields.root_cause}",
    "count": 3,
    "flag": True,
    "none": None,
}


def test_render_body_recursively_keeps_types():
    result = render_body(FIXTURE_BODY, SNAP)
    assert result.value == {
        "text": "🚨 New incident: Login fails: Über bad!",
        "attachments": [{"fields": [{"title": "Severity", "value": "p1"},
                                    {"title": "Services", "value": ["api", "web"]}]}],
        "issue_id": 42,
        "branch_name": "fix/42-login-fails-uber-bad",
        "duration_minutes": 37,
        "root_cause": None,
        "count": 3,
        "flag": True,
        "none": None,
    }
    json.dumps(result.value)
    assert result.missing == () and not result.truncated


def test_parse_body_once_then_render():
    body, diags = parse_body({"url": "${env.HOOK}", "x": ["{{ bad.root }}", {"y": "${issue.id}"}]}, "/on_enter/0/body",
                             locate)
    assert [d.code for d in diags] == ["unknown_template_root"]
    assert diags[0].pointer == "/on_enter/0/body/x/0"
    assert isinstance(body["x"][1]["y"], Template)
    result = render_body(body, SNAP, secrets={"HOOK": "https://h"}, allow_env=True)
    assert result.value == {"url": "https://h", "x": ["", {"y": 42}]}


def test_body_nesting_is_limited_to_16_levels():
    deep: object = "${issue.id}"
    for _ in range(40):
        deep = {"k": deep}
    body, diags = parse_body(deep, "/b", locate)
    assert [d.code for d in diags] == ["body_too_deep"]
    result = render_body(deep, SNAP)
    assert result.truncated
    level, depth = result.value, 0
    while isinstance(level, dict):
        level, depth = level["k"], depth + 1
    assert depth <= 17 and level is None


def test_ten_thousand_deep_body_list_returns():
    deep: object = ["x"]
    for _ in range(10_000):
        deep = [deep]
    assert render_body(deep, SNAP).truncated
    _, diags = parse_body(deep, "/b", locate)
    assert [d.code for d in diags] == ["body_too_deep"]


# ---- limits -----------------------------------------------------------------------------------

def test_output_is_limited_to_64_kib():
    snap = {"issue": {"description": "é" * 100_000}}
    result = render("Body: ${issue.description}", snap)
    assert result.truncated and len(result.value.encode()) <= MAX_OUTPUT_BYTES
    result = render("${issue.description}", snap)
    assert result.truncated and len(result.value.encode()) <= MAX_OUTPUT_BYTES
    small = render("${issue.description | truncate:10}", snap)
    assert small.value == "é" * 10 and not small.truncated


def test_many_placeholders_are_limited_too():
    text = "${issue.title}" * 10_000
    template, diags = parse(text)
    assert diags == []
    result = template.render({"issue": {"title": "x" * 100}})
    assert result.truncated and len(result.value) <= MAX_OUTPUT_BYTES


def test_one_megabyte_templates_parse_quickly():
    started = time.perf_counter()
    for text in ["x" * 1_000_000, "{" * 1_000_000, "${" * 500_000, "$" * 1_000_000, "\\" * 1_000_000,
                 "{{" + "a" * 1_000_000 + "}}", "${'" * 300_000]:
        template, _ = parse(text)
        template.render(SNAP)
    assert time.perf_counter() - started < 5.0


# ---- every template in the fixture repositories ------------------------------------------------

FIXTURE_TEMPLATES = [
    ("${context.incident_duration}", 37),
    ("${issue.custom_fields.affected_services}", ["api", "web"]),
    ("${issue.custom_fields.root_cause}", None),
    ("${issue.custom_fields.severity}", "p1"),
    ("${issue.id}", 42),
    ("${issue.title}", "Login fails: Über bad!"),
    ("Bug #${issue.id} has been fixed and deployed!", "Bug #42 has been fixed and deployed!"),
    ("Data Subject Request Received - Reference #{{issue.id}}", "Data Subject Request Received - Reference #42"),
    ("SLA BREACH: {{issue.title}} exceeded 48h in Review", "SLA BREACH: Login fails: Über bad! exceeded 48h in Review"),
    ("Your GDPR request has been completed. Reference: #{{issue.id}}",
     "Your GDPR request has been completed. Reference: #42"),
    ("Your request could not be processed. Reason: {{issue.custom_fields.rejection_reason}}",
     "Your request could not be processed. Reason: incomplete"),
    ("fix/${issue.id}-${issue.title | slugify}", "fix/42-login-fails-uber-bad"),
    ("{{issue.custom_fields.contract_id}}", "C-9"),
    ("{{issue.custom_fields.request_type}}", "erasure"),
    ("{{issue.id}}", 42),
    ("{{issue.title}} approaching SLA in Review", "Login fails: Über bad! approaching SLA in Review"),
    ("{{now}}", "2026-11-27T10:00:00+00:00"),
    ("⏰ Postmortem still pending for incident #{{issue.id}}", "⏰ Postmortem still pending for incident #42"),
    ("⚠️ Contract {{issue.title}} approaching SLA in Legal Review",
     "⚠️ Contract Login fails: Über bad! approaching SLA in Legal Review"),
    ("⚠️ GDPR deadline approaching: Request #{{issue.id}} ({{sla.time_remaining}} remaining)",
     "⚠️ GDPR deadline approaching: Request #42 (3h 20m remaining)"),
    ("⛔ SLA BREACHED: Bug #{{issue.id}} ({{issue.custom_fields.severity}})", "⛔ SLA BREACHED: Bug #42 (p1)"),
    ("✅ Contract executed: {{issue.title}}", "✅ Contract executed: Login fails: Über bad!"),
    ("✅ Incident resolved: ${issue.title}", "✅ Incident resolved: Login fails: Über bad!"),
    ("📋 Contract ready for signature: {{issue.title}}", "📋 Contract ready for signature: Login fails: Über bad!"),
    ("📝 Postmortem needed for incident #{{issue.id}}: {{issue.title}}",
     "📝 Postmortem needed for incident #42: Login fails: Über bad!"),
    ("🔐 New GDPR request: {{issue.custom_fields.request_type}} from {{issue.custom_fields.email}}",
     "🔐 New GDPR request: erasure from a@b.c"),
    ("🔴 Critical bug reported: {{issue.title}}", "🔴 Critical bug reported: Login fails: Über bad!"),
    ("🚨 GDPR DEADLINE BREACHED: Request #{{issue.id}} - Regulatory risk!",
     "🚨 GDPR DEADLINE BREACHED: Request #42 - Regulatory risk!"),
    ("🚨 INCIDENT: ${issue.title} - Severity: ${issue.custom_fields.severity}",
     "🚨 INCIDENT: Login fails: Über bad! - Severity: p1"),
    ("🚨 New incident: ${issue.title}", "🚨 New incident: Login fails: Über bad!"),
    ("🚨 SLA BREACH: Contract {{issue.title}} exceeded 120h in Legal Review",
     "🚨 SLA BREACH: Contract Login fails: Über bad! exceeded 120h in Legal Review"),
    ("🚨 {{issue.custom_fields.severity}} Incident: {{issue.title}}", "🚨 p1 Incident: Login fails: Über bad!"),
    ("- Value: ${{issue.custom_fields.contract_value}}", "- Value: $125000"),
]


@pytest.mark.parametrize(("text", "expected"), FIXTURE_TEMPLATES)
def test_fixture_templates(text, expected):
    template, diags = parse(text)
    assert diags == []
    assert template.placeholders
    assert template.render(SNAP).value == expected


# Preserved sections (intakes, agents) use roots we do not have; they must still parse without raising.
PRESERVED_TEMPLATES = [
    ("[Bug] {{title}}", ["unknown_template_root"]),
    ("[Contract] {{contract_type}} - {{counterparty}}", ["unknown_template_root"] * 2),
    ("[GDPR] {{request_type}} - {{email}}", ["unknown_template_root"] * 2),
    ("{{email}}", ["unknown_template_root"]),
    ("🐛 New bug reported: {{title}} ({{severity}})", ["unknown_template_root"] * 2),
    ("📋 New contract request: {{contract_type}} with {{counterparty}} (${{contract_value}})",
     ["unknown_template_root"] * 3),
    ("https://kiket.dev/projects/{{ project_slug }}/dashboards/flow-health", ["unknown_template_root"]),
    ("{{#each context.recent_bugs}}\n- #{{this.id}}: {{this.title}} ({{this.status}})\n{{/each}}",
     ["unsupported_template_block", "unknown_template_root", "unknown_template_root", "unknown_template_root"]),
]


@pytest.mark.parametrize(("text", "expected_codes"), PRESERVED_TEMPLATES)
def test_preserved_section_templates(text, expected_codes):
    template, diags = parse(text)
    assert [d.code for d in diags] == expected_codes
    assert isinstance(template.render(SNAP).value, str)


def test_placeholders_lists_paths_once():
    template, _ = parse("${issue.id} {{issue.id}} ${issue.title|slugify} ${env.X}")
    assert template.placeholders == ("issue.id", "issue.title", "env.X")
    assert template.env_names == ("X",)
    assert not template.is_literal and parse("x")[0].is_literal


# ---- properties -------------------------------------------------------------------------------

pieces = st.sampled_from(["${", "{{", "}}", "}", "\\", "|", ":", "'", '"', "issue", ".", "title", "id", "_x",
                          "env", "A", "slugify", "truncate", "default", "(", ")", " ", "#if", "/if", "[0]", "x"])


@settings(max_examples=400, deadline=None)
@given(text=st.one_of(st.text(max_size=80), st.lists(pieces, max_size=40).map("".join)))
def test_random_templates_always_parse_and_render(text):
    template, diags = parse(text)
    for d in diags:
        assert d.code in CODES
    result = template.render(SNAP)
    assert isinstance(result, RenderResult)
    try:
        template.render(SNAP, allow_env=True, secrets={"A": "s"})
    except MissingSecret:
        pass


json_like = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
                         lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                 st.dictionaries(st.text(max_size=4), inner, max_size=3)),
                         max_leaves=15)


@settings(max_examples=150, deadline=None)
@given(body=json_like)
def test_random_bodies_render(body):
    result = render_body(body, SNAP)
    parsed, _ = parse_body(body, "/b", locate)
    assert render_body(parsed, SNAP).value == result.value


def test_codes_match_the_registry():
    for code, (severity, _) in CODES.items():
        assert REGISTRY[code][0] == severity, code
