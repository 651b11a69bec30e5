"""The bundled global templates are complete and clean."""

from __future__ import annotations

import pytest

from app.kiket import list_templates, load_revision, template_files


def test_three_templates_are_listed():
    assert [t.key for t in list_templates()] == ["kanban", "scrum", "bug_tracking"]
    assert all(t.name and t.description for t in list_templates())


@pytest.mark.parametrize("key", ["kanban", "scrum", "bug_tracking"])
def test_template_loads_with_nothing_above_info(key):
    files = template_files(key)
    assert all(path.startswith(".kiket/") for path in files)
    assert {".kiket/project.yaml", ".kiket/issue_types.yaml"} <= set(files)
    result = load_revision(files, include_bundled=False)
    assert [d.format() for d in result.diagnostics if d.severity != "info"] == []
    revision = result.revision
    assert revision.workflows and revision.boards and revision.issue_types
    assert not any(board.generated for board in revision.boards.values())
    assert len(revision.project.seed_issues) >= 3
    assert revision.project.default_workflow in revision.workflows


def test_unknown_template_is_a_key_error():
    with pytest.raises(KeyError):
        template_files("waterfall")
