"""Every diagnostic code is explained in docs/diagnostics.md, which is generated from the code registry."""

from __future__ import annotations

import re
from pathlib import Path

from app.kiket.code_reference import DOCS, diagnostics_markdown, missing_entries
from app.kiket.codes import CODES

DOCS_DIR = Path(__file__).resolve().parents[3] / "docs"


def test_every_registered_code_has_an_example_and_a_fix():
    assert missing_entries() == [], "add an entry to app/kiket/code_reference.py for each of these codes"
    assert set(DOCS) <= set(CODES), "entries for codes that are not registered"
    for code, entry in DOCS.items():
        assert entry.example.strip() and entry.fix.strip(), code


def test_docs_diagnostics_md_is_generated_from_the_registry():
    text = (DOCS_DIR / "diagnostics.md").read_text(encoding="utf-8")
    assert text == diagnostics_markdown(), \
        "docs/diagnostics.md is stale: run `python -m app.kiket.code_reference docs/diagnostics.md`"
    for code, (severity, _) in CODES.items():
        assert f'<a id="{code}"></a>\n### `{code}` · {severity}' in text


def test_links_to_the_reference_point_at_existing_anchors():
    anchors = set(re.findall(r'<a id="([a-z_]+)"></a>', (DOCS_DIR / "diagnostics.md").read_text(encoding="utf-8")))
    sources = [path.read_text(encoding="utf-8") for path in Path(__file__).resolve().parents[3].glob("app/**/*.py")]
    linked = {code for text in sources for code in re.findall(r"diagnostics\.md#([a-z_]+)", text)}
    linked |= {code for text in sources for code in re.findall(r"doc_link\(['\"]([a-z_]+)['\"]\)", text)}
    assert linked and linked <= anchors


def test_the_configuration_reference_covers_both_vocabularies_and_every_file():
    text = (DOCS_DIR / "configuration.md").read_text(encoding="utf-8")
    for needle in ("project.yaml", "workspace.yaml", "team.yaml", "issue_types.yaml", "case_types.yaml",
                   "workflows/", "automation_recipes/", "automations/", "boards/", "case_templates/",
                   "seed_data.cases", "require_approval", "approval_chain", "{{case.title}}", "case.created",
                   "## Conditions", "## Templates", "## Precedence", "diagnostics.md"):
        assert needle in text, needle
