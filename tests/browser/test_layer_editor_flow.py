"""The overrides editor in the browser: a broken line shows its diagnostic as it is typed (nothing submitted), a
save of it is refused with the text kept, and once fixed it saves, says what changed, and the project uses it."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_up_with_project

pytestmark = pytest.mark.browser
HEAD = "workflow: {id: triage, name: Triage}\nstates:\n  new: {type: initial}\n  closed: {type: final}\n"


def test_diagnostics_appear_as_typed_and_a_fixed_file_saves(new_page):
    page = new_page()
    sign_up_with_project(page)
    page.goto("/projects/BUG/configuration")
    expect(page.locator("#layer-editor")).to_contain_text("No files yet.")
    page.get_by_role("link", name="New file").click()
    expect(page).to_have_url(re.compile(r"/projects/BUG/configuration/overrides/new$"))

    saves = []
    page.on("request", lambda request: saves.append(request.url)
            if request.method == "POST" and request.url.endswith("/configuration/overrides") else None)
    page.get_by_label("File name under .kiket/").fill("workflows/triage.yaml")
    editor = page.get_by_label("YAML")
    editor.click()
    editor.press_sequentially(HEAD + "transitions: [{from: new, to: nowhere}]")
    live = page.locator("#live-diagnostics")
    expect(live.locator(".diag-fatal")).to_contain_text("nowhere")
    expect(live.locator(".diag-fatal .loc")).to_have_text(re.compile(r"\.kiket/workflows/triage\.yaml:5"))
    expect(page.locator("#live-diagnostics-summary")).to_contain_text("cannot be saved")
    assert saves == []  # only the validate endpoint was asked
    expect(editor).to_be_focused()

    page.get_by_role("button", name="Create file").click()
    expect(page.get_by_role("alert")).to_contain_text("Not saved")
    expect(page.get_by_label("YAML")).to_have_value(HEAD + "transitions: [{from: new, to: nowhere}]")
    expect(page.locator("#layer-save-status")).to_be_focused()
    assert len(saves) == 1

    editor = page.get_by_label("YAML")
    editor.click()
    editor.press("Control+End")
    for _ in range(len("nowhere}]")):
        editor.press("Backspace")
    editor.press_sequentially("closed, name: Close}]")
    expect(page.locator("#live-diagnostics-summary")).to_contain_text("This text can be saved")
    expect(live.locator(".diag-fatal")).to_have_count(0)
    assert len(saves) == 1

    page.get_by_role("button", name="Create file").click()
    status = page.locator("#layer-save-status")
    expect(status).to_contain_text("Saved workflows/triage.yaml")
    expect(status).to_contain_text("added workflow triage")
    expect(status).to_be_focused()
    expect(page).to_have_url(re.compile(r"/overrides/files/workflows/triage\.yaml$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("workflows/triage.yaml")
    expect(page.get_by_role("link", name="Delete file…")).to_be_visible()

    page.goto("/projects/BUG/configuration")
    expect(page.locator("#layer-editor")).to_contain_text("workflows/triage.yaml")
    expect(page.get_by_role("link", name=re.compile("Triage"))).to_be_visible()
