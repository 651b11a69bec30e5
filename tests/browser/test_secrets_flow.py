"""Project secrets in the browser: the owner opens them from the project page, sets one (its name is listed,
its value never shown), is told a bad name's rule, and deletes it after confirming."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_up_with_project

pytestmark = pytest.mark.browser
VALUE = "hunter2-never-shown"


def test_the_owner_sets_and_deletes_a_secret(new_page):
    page = new_page()
    sign_up_with_project(page)
    page.get_by_role("link", name="Secrets").click()
    expect(page).to_have_url(re.compile(r"/projects/BUG/secrets$"))
    expect(page.get_by_text("No secrets yet.")).to_be_visible()

    page.get_by_label("Name").fill("slack-hook")
    page.get_by_label("Value").fill(VALUE)
    page.get_by_role("button", name="Save secret").click()
    expect(page.locator("#e-name")).to_contain_text("Use upper-case letters A-Z, digits and _")
    expect(page.get_by_label("Value")).to_have_value("")

    page.get_by_label("Name").fill("WEBHOOK_SECRET")
    page.get_by_label("Value").fill(VALUE)
    page.get_by_role("button", name="Save secret").click()
    expect(page.get_by_role("status")).to_have_text("Added WEBHOOK_SECRET.")
    row = page.locator("#secret-WEBHOOK_SECRET")
    expect(row).to_contain_text("WEBHOOK_SECRET")
    expect(row).to_contain_text("by Ada")
    expect(page.locator("body")).not_to_contain_text(VALUE)
    expect(page.get_by_label("Value")).to_have_value("")

    page.reload()
    expect(page.locator("#secret-WEBHOOK_SECRET")).to_be_visible()
    assert VALUE not in page.content()

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete WEBHOOK_SECRET").click()
    expect(page.get_by_role("status")).to_have_text("Deleted WEBHOOK_SECRET.")
    expect(page.locator("#secret-WEBHOOK_SECRET")).to_have_count(0)
    expect(page.get_by_text("No secrets yet.")).to_be_visible()
