"""content_hash writes canonical JSON directly; it must hash exactly the text its reference definition gives."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings, strategies as st

from app.kiket.model import _hashable, content_hash
from tests.support.fixture_repos import REVISIONS


def reference(value) -> str:
    text = json.dumps(_hashable(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.mark.parametrize("name,branch", REVISIONS)
def test_every_element_of_the_fixtures(loaded, name, branch):
    revision = loaded(name, branch).revision
    elements = [(wf, tuple(wf.states)) for wf in revision.workflows.values()]
    elements += [*revision.boards.values(), *revision.automations.values(), *revision.issue_types.values(),
                 revision.project, revision.team, revision]
    assert [content_hash(element) for element in elements] == [reference(element) for element in elements]


def test_values_json_spells_its_own_way():
    odd = {1: "a", "1": "b", None: 2.5, 2: float("nan"), 3: float("inf"), 4: -float("inf"), 5: -0.0, 6: 1e300,
           7: "é\n\"\x01\u2028\\", 8: frozenset({"b", "a"}), 9: {3, 1}, 10: [True, False, None, 0, -1, 10**30, ()]}
    assert content_hash(odd) == reference(odd)


_plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=3) | st.integers(), inner, max_size=3),
    max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(_plain)
def test_plain_values(value):
    assert content_hash(value) == reference(value)
