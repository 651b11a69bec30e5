"""Workflow diagrams: every real workflow lays out cleanly, fast and deterministically, and renders as safe SVG."""

from __future__ import annotations

import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from app.kiket import bundled
from app.kiket.diagram import ANY_KEY, Diagram, layout_workflow, truncate
from app.kiket.loader import load_revision
from app.kiket.model import Workflow
from tests.support.fixture_repos import REVISIONS

ROOT = Path(__file__).resolve().parents[3]
SVG = "{http://www.w3.org/2000/svg}"
TEMPLATES = ("kanban", "scrum", "bug_tracking")

SYNTHETIC = b"""
workflow: {id: ops, name: Ops}
states:
  open: {type: initial, category: pending}
  doing: {type: active, category: active, wip_limit: 3}
  stuck: {type: active, category: blocked, metadata: {label: "<script>alert(1)</script> and a long tail"}}
  done: {type: final, category: completed}
  dropped: {type: final, category: cancelled}
transitions:
  - {from: open, to: doing, name: Start}
  - {from: doing, to: doing, name: Ping}
  - {from: [doing, stuck], to: done, name: Finish}
  - {from: doing, to: stuck, name: Block}
  - {from: stuck, to: doing, name: Unblock}
  - {from: "*", to: dropped, name: Drop}
  - {from: "*", to: open, name: Reset}
"""


def _workflows_of(result) -> list[Workflow]:
    assert result.revision is not None, [d.format() for d in result.diagnostics if d.severity == "fatal"]
    return list(result.revision.workflows.values())


@pytest.fixture(scope="module")
def synthetic() -> Workflow:
    result = load_revision({".kiket/workflows/ops.yaml": SYNTHETIC})
    return _workflows_of(result)[0]


@pytest.fixture(scope="module")
def env() -> Environment:
    return Environment(loader=FileSystemLoader(str(ROOT / "app" / "templates")), autoescape=True,
                       undefined=StrictUndefined)


def render(env: Environment, diagram: Diagram, workflow_id: str) -> str:
    return env.get_template("repositories/_workflow_diagram.html").render(diagram=diagram, workflow_id=workflow_id)


def all_workflows(loaded, source: str) -> list[Workflow]:
    if source.startswith("template:"):
        return _workflows_of(load_revision(bundled.template_files(source.split(":", 1)[1])))
    name, branch = source.split("@")
    return _workflows_of(loaded(name, branch))


SOURCES = [f"{name}@{branch}" for name, branch in REVISIONS] + [f"template:{key}" for key in TEMPLATES]


def assert_clean_layout(workflow: Workflow, diagram: Diagram) -> None:
    nodes = diagram.nodes
    for i, a in enumerate(nodes):
        assert 0 <= a.y and a.y + a.height <= diagram.height, a.key
        assert diagram.min_x <= a.x and a.x + a.width <= diagram.min_x + diagram.width, a.key
        for b in nodes[i + 1:]:
            apart = (a.x + a.width <= b.x or b.x + b.width <= a.x or a.y + a.height <= b.y or b.y + b.height <= a.y)
            assert apart, f"{workflow.id}: {a.key} overlaps {b.key}"
    layers = {n.key: n.layer for n in nodes}
    assert layers[workflow.initial] == 0
    last = max(layers.values())
    for key in workflow.finals:
        assert layers[key] == last, f"final state {key} is not in the last layer"
    assert {n.key for n in nodes if not n.pseudo} == set(workflow.states)

    drawn = {(e.id.split("--")[0], e.source, e.target) for e in diagram.edges}
    non_final = tuple(k for k, s in workflow.states.items() if not s.is_final)
    for tr in workflow.transitions:
        if tr.sources == "*":
            [edge] = [e for e in diagram.edges if e.id == tr.id]
            assert (edge.source, edge.kind, edge.dashed, edge.sources) == (ANY_KEY, "any", True, non_final)
        else:
            for source in tr.sources:
                assert (tr.id, source, tr.target) in drawn, f"{workflow.id}: no edge for {tr.id} from {source}"
    for edge in diagram.edges:
        assert edge.d.startswith("M") and "nan" not in edge.d, edge.d


@pytest.mark.parametrize("source", SOURCES)
def test_every_workflow_lays_out_without_overlaps_and_with_every_transition(loaded, source):
    for workflow in all_workflows(loaded, source):
        assert_clean_layout(workflow, layout_workflow(workflow))


@pytest.mark.parametrize("source", SOURCES)
def test_layout_and_svg_are_deterministic(loaded, env, source):
    for workflow in all_workflows(loaded, source):
        first, second = layout_workflow(workflow), layout_workflow(workflow)
        assert first == second
        assert render(env, first, workflow.id) == render(env, second, workflow.id)


@pytest.mark.parametrize("source", SOURCES)
def test_layout_takes_under_five_milliseconds(loaded, source):
    for workflow in all_workflows(loaded, source):
        layout_workflow(workflow)
        best = min(_timed(workflow) for _ in range(5))
        assert best < 0.005, f"{workflow.id}: {best * 1000:.2f} ms"


def _timed(workflow: Workflow) -> float:
    start = time.perf_counter()
    layout_workflow(workflow)
    return time.perf_counter() - start


@pytest.mark.parametrize("source", SOURCES)
def test_every_sla_approval_checklist_and_wip_limit_has_a_marker(loaded, source):
    for workflow in all_workflows(loaded, source):
        diagram = layout_workflow(workflow)
        for key, state in workflow.states.items():
            node = diagram.node(key)
            kinds = {b.kind for b in node.badges}
            assert node.sla == ("sla" in kinds) == (state.sla is not None), key
            assert node.approval == ("approval" in kinds) == (state.approval is not None), key
            assert node.checklist == ("checklist" in kinds) == bool(state.checklists), key
            assert (node.wip_limit is not None) == ("wip" in kinds), key


def test_marker_texts_on_engineering_and_legal(loaded):
    engineering = loaded("engineering", "main").revision.workflows
    legal = loaded("legal", "main").revision.workflows
    triaging = layout_workflow(engineering["bug"]).node("triaging")
    # The default rule gives the badge; the two severity rules are counted and listed in the tooltip.
    assert triaging.sla_text == "SLA 24h/3d +2"
    assert "conditional warning/breach 1h/4h" in triaging.badges[0].title
    assert layout_workflow(engineering["incident"]).node("investigating").sla
    legal_review = layout_workflow(legal["contract"]).node("legal_review")
    assert (legal_review.sla_text, legal_review.approval_text) == ("SLA 2d/5d", "1 approval")
    assert legal_review.origin == ".kiket/workflows/contract.yaml:51"
    gdpr = layout_workflow(legal["gdpr"])
    assert gdpr.node("legal_review").approval and gdpr.node("received").sla
    assert gdpr.node("processing").checklist


def test_cycles_go_back_up_and_parallel_opposite_edges_do_not_share_a_line(loaded):
    diagram = layout_workflow(loaded("engineering", "main").revision.workflows["bug"])
    kinds = {e.id: e.kind for e in diagram.edges}
    assert kinds["fixing__triaging"] == kinds["testing__fixing"] == kinds["deployed__fixing"] == "back"
    assert kinds["triaging__fixing"] == "forward"
    paths = {e.id: e.d for e in diagram.edges}
    assert paths["triaging__fixing"] != paths["fixing__triaging"]
    assert paths["triaging__fixing"].split("C")[0] != paths["fixing__triaging"].split("C")[0].strip()


def test_any_state_self_loops_and_sources_lists(synthetic):
    diagram = layout_workflow(synthetic)
    assert_clean_layout(synthetic, diagram)
    any_edges = [e for e in diagram.edges if e.source == ANY_KEY]
    assert sorted(e.target for e in any_edges) == ["dropped", "open"]
    assert diagram.node(ANY_KEY).pseudo
    [loop] = [e for e in diagram.edges if e.kind == "self"]
    assert (loop.source, loop.target, loop.name) == ("doing", "doing", "Ping")
    finish = sorted(e.id for e in diagram.edges if e.name == "Finish")
    assert finish == ["doing_stuck__done--doing", "doing_stuck__done--stuck"]
    assert diagram.node("doing").wip_limit == 3


def test_long_labels_are_truncated_with_an_ellipsis(synthetic):
    node = layout_workflow(synthetic).node("stuck")
    assert node.label == truncate(node.full_label) and node.label.endswith("…") and len(node.label) == 22
    assert truncate("Short") == "Short"


def test_fragment_is_well_formed_svg_with_ids_titles_and_escaped_text(env, synthetic):
    html = render(env, layout_workflow(synthetic), "ops")
    assert "<script>" not in html and "&lt;script&gt;" in html
    root = ET.fromstring(html)
    assert root.tag == "figure" and root.get("id") == "wf-ops-diagram"
    svg = root.find(f"{SVG}svg")
    assert svg is not None and svg.get("role") == "img" and svg.get("width").isdigit()
    assert svg.get("viewBox").count(" ") == 3
    ids = {el.get("id"): el for el in root.iter() if el.get("id")}
    for label_id in svg.get("aria-labelledby").split():
        assert label_id in ids
    assert f"{SVG}marker" in {el.tag for el in svg.iter()}
    for key in ("open", "doing", "stuck", "done", "dropped", "any"):
        assert f"wf-ops-state-{key}" in ids
    stuck_title = ids["wf-ops-state-stuck"].find(f"{SVG}title").text
    assert stuck_title.startswith("<script>alert(1)</script> and a long tail (stuck)")
    assert "from .kiket/workflows/ops.yaml:" in stuck_title
    for edge_id in ("open__doing", "any__dropped", "doing__doing", "doing_stuck__done--stuck"):
        group = ids[f"wf-ops-tr-{edge_id}"]
        assert "from .kiket/workflows/ops.yaml:" in group.find(f"{SVG}title").text
    assert "wf-cat-blocked" in ids["wf-ops-state-stuck"].get("class")
    assert "wf-kind-initial" in ids["wf-ops-state-open"].get("class")


def test_real_workflow_renders_with_provenance_tooltips(env, loaded):
    workflow = loaded("engineering", "main").revision.workflows["bug"]
    root = ET.fromstring(render(env, layout_workflow(workflow), "bug"))
    ids = {el.get("id"): el for el in root.iter() if el.get("id")}
    title = ids["wf-bug-state-triaging"].find(f"{SVG}title").text
    assert title.endswith("from .kiket/workflows/bug.yaml:28")
    badge_titles = [t.text for t in ids["wf-bug-state-triaging"].iter(f"{SVG}title")]
    assert any(t.startswith("SLA: ") for t in badge_titles)
    assert "wf-bug-tr-deployed__fixing" in ids


def test_diagram_module_imports_no_framework():
    code = ("import sys, app.kiket.diagram\n"
            "frameworks = ('flask', 'sqlalchemy', 'redis', 'jinja2')\n"
            "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in frameworks)))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
