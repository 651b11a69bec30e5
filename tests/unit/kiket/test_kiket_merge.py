"""Repository precedence (spec §13): first layer wins per element, inherit limits, bundled fallback, provenance."""

from __future__ import annotations

from collections import Counter

from app.kiket import LayerInput, load_revision

WF = "workflow: {{id: {id}, name: {name}}}\nstates:\n  open: {{type: initial}}\n  done: {{type: final}}\n" \
     "transitions: [{{from: open, to: done}}]\n"


def wf(id_: str, name: str) -> bytes:
    return WF.format(id=id_, name=name).encode()


BOARD = b"id: main\nworkflow: bug\ncolumns:\n  - key: open\n    states: [open]\n  - key: done\n    states: [done]\n"


def layered(**kwargs):
    repo = {".kiket/workflows/bug.yaml": wf("bug", "Repo Bug"), ".kiket/boards/main.yaml": BOARD,
            ".kiket/project.yaml": b"project:\n  name: Repo name\n"}
    override = LayerInput("project_override", {
        ".kiket/workflows/bug.yaml": wf("bug", "Override Bug"),
        ".kiket/workflows/ops.yaml": wf("ops", "Override Ops"),
        ".kiket/project.yaml": b"project:\n  name: Override name\n  priorities: [p3, p2, p1]\n"
                               b"  team:\n    roles: [{name: auditor}, {name: lead}]\n",
    }, "override:7")
    org = LayerInput("organization_default", {
        ".kiket/workflows/ops.yaml": wf("ops", "Org Ops"),
        ".kiket/workflows/sec.yaml": wf("sec", "Org Sec"),
        ".kiket/project.yaml": b"project:\n  description: Org description\n  priorities: [low, high]\n",
    }, "org:3")
    return load_revision(repo, lower_layers=[org, override], **kwargs)


def test_first_layer_wins_each_element_and_records_its_layer():
    result = layered()
    assert result.ok
    workflows = result.revision.workflows
    assert {k: (w.name, w.prov.layer) for k, w in workflows.items()} == {
        "bug": ("Repo Bug", "repository"), "ops": ("Override Ops", "project_override"),
        "sec": ("Org Sec", "organization_default")}
    assert workflows["ops"].prov.record == "override:7" and workflows["sec"].prov.record == "org:3"
    assert workflows["ops"].states["done"].prov.layer == "project_override"
    assert workflows["ops"].states["done"].prov.line == 4


def test_project_settings_merge_per_top_level_key():
    project = layered().revision.project
    assert project.name == "Repo name"
    assert project.priorities == ("p3", "p2", "p1")
    assert project.description == "Org description"


def test_roles_come_from_every_layer_plus_builtins():
    roles = layered().revision.team.roles
    assert {"auditor", "lead", "owner", "admin", "member", "viewer"} <= set(roles)
    assert roles["auditor"].prov.layer == "project_override" and roles["viewer"].builtin


def test_inherit_limits_lower_layers():
    repo = {".kiket/workflows/bug.yaml": wf("bug", "Repo Bug"), ".kiket/boards/main.yaml": BOARD,
            ".kiket/project.yaml": b"project:\n  inherit: {workflows: [sec], roles: none}\n"}
    org = LayerInput("organization_default", {
        ".kiket/workflows/ops.yaml": wf("ops", "Org Ops"), ".kiket/workflows/sec.yaml": wf("sec", "Org Sec"),
        ".kiket/project.yaml": b"project:\n  team:\n    roles: [auditor]\n"}, "org:1")
    result = load_revision(repo, lower_layers=[org])
    assert set(result.revision.workflows) == {"bug", "sec"}
    assert "auditor" not in result.revision.team.roles
    assert Counter(d.code for d in result.diagnostics)["inherit_excluded"] == 2


def test_bundled_layer_is_only_a_fallback_per_kind():
    repo = {".kiket/workflows/bug.yaml": wf("bug", "Repo Bug")}
    result = load_revision(repo)
    revision = result.revision
    assert set(revision.workflows) == {"bug"}
    assert {t.prov.layer for t in revision.issue_types.values()} == {"bundled"}
    assert {t.workflow for t in revision.issue_types.values()} == {"bug"}
    assert set(revision.boards) == {"bug-board"} and revision.boards["bug-board"].generated
    assert result.ok and not [d for d in result.diagnostics if d.severity in ("error", "fatal")]
    assert any(d.code == "bundled_fallback" for d in result.diagnostics)


def test_bundled_layer_supplies_a_whole_config_when_the_repository_has_none_of_a_kind():
    result = load_revision({".kiket/project.yaml": b"project: {name: Empty}\n"}, bundled_template="scrum")
    revision = result.revision
    assert result.ok and set(revision.workflows) == {"scrum"} and set(revision.boards) == {"sprint", "backlog"}
    assert revision.workflows["scrum"].prov.layer == "bundled"
    assert revision.workflows["scrum"].prov.record == "template:scrum"
    assert revision.project.name == "Empty" and not revision.project.seed_issues
    assert not [d for d in result.diagnostics if d.severity in ("error", "fatal", "warning")]


def test_repository_defining_a_kind_hides_the_bundled_elements_of_that_kind():
    result = load_revision({".kiket/workflows/bug.yaml": wf("bug", "Repo Bug"),
                            ".kiket/issue_types.yaml": b"issue_types: [{key: defect}]\n"})
    assert set(result.revision.issue_types) == {"defect"}
    assert "kanban" not in result.revision.workflows


def test_without_bundled_layer_builtin_roles_still_exist():
    result = load_revision({".kiket/workflows/bug.yaml": wf("bug", "B")}, include_bundled=False)
    assert {"owner", "admin", "member", "viewer"} <= set(result.revision.team.roles)


def test_bundled_provenance_reads_as_the_bundled_template_never_as_a_repository_file():
    revision = load_revision({".kiket/workflows/bug.yaml": wf("bug", "Bug")}, bundled_template="kanban").revision
    story = revision.issue_types["story"]
    assert story.prov.layer == "bundled"
    assert story.prov.label == f"bundled template kanban · issue_types.yaml:{story.prov.line}"
    assert revision.workflows["bug"].prov.label == f"repository · bug.yaml:{revision.workflows['bug'].prov.line}"
    # A project with no repository runs on its template as if it were its repository: still named as the template.
    from app.kiket.bundled import template_files
    from app.kiket.model import Source

    alone = load_revision(template_files("scrum"), source=Source(repo="template:scrum")).revision
    workflow = next(iter(alone.workflows.values()))
    assert workflow.prov.label.startswith("bundled template scrum · ")
