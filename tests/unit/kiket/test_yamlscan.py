"""The structural pre-scan: nesting and node bombs are refused before a tree exists, legitimate files never are."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from app.kiket.diagnostics import Provenance
from app.kiket.yamlload import parse_yaml
from app.kiket.yamlscan import COMPOSE_DEPTH_BOUND, MAX_DEPTH, MAX_NODES, _scan_events, structure_bounds
from bench.generate_repo import generate
from tests.support.fixture_repos import REVISIONS

CORPUS = Path(__file__).resolve().parent / "corpus"


def _exact(text: str) -> tuple[int, int]:
    """Deepest collection nesting and node count, from libyaml's events."""
    depth = deepest = nodes = 0
    for event in yaml.parse(text, Loader=yaml.CSafeLoader):
        if isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent, yaml.CollectionStartEvent)):
            nodes += 1
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            deepest = max(deepest, depth)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return deepest, nodes


def _bomb(style: str, levels: int) -> bytes:
    if style == "flow_sequence":
        return b"a: " + b"[" * levels + b"]" * levels + b"\n"
    if style == "flow_mapping":
        return b"a: " + b"{b: " * levels + b"}" * levels + b"\n"
    if style == "block_sequence":
        return b"a:\n" + b"- " * levels + b"x\n"
    if style == "block_complex_key":
        return b"? " * levels + b"x\n"
    if style == "unclosed":
        return b"a: " + b"[" * levels + b"\n"
    raise AssertionError(style)


STYLES = ("flow_sequence", "flow_mapping", "block_sequence", "block_complex_key", "unclosed")


@pytest.mark.parametrize("levels", [10**3, 10**4, 10**5])
@pytest.mark.parametrize("style", STYLES)
def test_nesting_bombs_are_fatal_at_the_first_level_past_the_limit(style, levels):
    data = _bomb(style, levels)
    doc = parse_yaml(data, ".kiket/workflows/bomb.yaml", Provenance())
    assert not doc.ok
    (diag,) = doc.diagnostics
    assert (diag.code, diag.severity, diag.prov.line) == ("yaml_too_deep", "fatal", 1 + (style == "block_sequence"))
    assert str(MAX_DEPTH) in diag.message


def test_block_mapping_nested_by_indentation_is_refused_by_the_walk():
    data = b"".join(b" " * level + b"k:\n" for level in range(MAX_DEPTH + 5))
    doc = parse_yaml(data, ".kiket/workflows/deep.yaml", Provenance())
    assert [(d.code, d.prov.line) for d in doc.diagnostics] == [("yaml_too_deep", MAX_DEPTH + 1)]


def test_the_walk_and_the_event_scan_agree_on_where_the_limit_is_passed():
    shallow = b"a: " + b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1) + b"\n"
    deep = b"a: " + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"\n"
    assert structure_bounds(deep)[0] <= COMPOSE_DEPTH_BOUND  # composed, then refused by the walk
    assert parse_yaml(shallow, "x.yaml", Provenance()).ok
    walked = parse_yaml(deep, "x.yaml", Provenance()).diagnostics[0]
    scanned = _scan_events(deep.decode())
    assert (walked.code, walked.prov.line, walked.prov.column) == (scanned.code, scanned.line, scanned.column)


def test_too_many_nodes_is_fatal_before_composing():
    data = b"a: [" + b"1," * MAX_NODES + b"1]\n"
    doc = parse_yaml(data, "x.yaml", Provenance())
    assert [(d.code, d.severity) for d in doc.diagnostics] == [("yaml_too_many_nodes", "fatal")]


def test_brackets_in_quotes_comments_and_block_scalars_are_not_nesting():
    text = ("a: '" + "[" * 3000 + "'\n"
            'b: "' + "{" * 3000 + '"\n'
            "# " + "[" * 3000 + "\n"
            "c: |\n  " + "[" * 3000 + "\n"
            "d: plain" + "[" * 3000 + "\n")
    data = text.encode()
    assert structure_bounds(data)[0] > COMPOSE_DEPTH_BOUND  # so the exact scan runs, and must accept it
    doc = parse_yaml(data, "x.yaml", Provenance())
    assert doc.ok, doc.diagnostics
    assert doc.data["c"] == "[" * 3000 + "\n"


def _legitimate_texts(fixture_repos) -> list[tuple[str, str]]:
    texts = []
    for name, branch in REVISIONS:
        texts += [(f"{name}@{branch}:{path}", data.decode("utf-8-sig"))
                  for path, data in fixture_repos.files(name, branch).items() if path.endswith((".yaml", ".yml"))]
    texts += [(path, data.decode()) for path, data in generate().items()]
    for path in sorted(CORPUS.rglob("*.y*ml")):
        try:
            texts.append((str(path), path.read_text(encoding="utf-8")))
        except UnicodeDecodeError:
            continue
    return texts


def test_bounds_hold_and_nothing_legitimate_is_refused(fixture_repos):
    """Fixtures, the generated repository and the malformed corpus: the bounds are upper bounds, the scan accepts."""
    texts = _legitimate_texts(fixture_repos)
    assert len(texts) > 1300
    for name, text in texts:
        try:
            depth, nodes = _exact(text)
        except yaml.YAMLError:
            continue  # the corpus's syntax errors: the scan leaves them to the composer
        depth_bound, node_bound = structure_bounds(text.encode())
        assert depth <= depth_bound and nodes <= node_bound, name
        assert _scan_events(text) is None, name


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(alphabet="ab[{:-?,#'\" \n", max_size=8))
_DATA = st.recursive(_SCALARS, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(st.text(alphabet="ab-?:", max_size=4), children, max_size=4)),
    max_leaves=40)


@settings(max_examples=300, deadline=None)
@given(data=_DATA, flow=st.sampled_from([True, False, None]), indent=st.integers(2, 6))
def test_bounds_are_upper_bounds_of_any_document(data, flow, indent):
    text = yaml.safe_dump(data, default_flow_style=flow, indent=indent, width=40)
    depth, nodes = _exact(text)
    depth_bound, node_bound = structure_bounds(text.encode())
    assert depth <= depth_bound and nodes <= node_bound
