"""People and access in the browser: the owner adds an organization member to a template project as developer on
the people page; the member can then open the project and transition an issue; removed, they lose it at once."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, sign_in, sign_up_with_project

pytestmark = pytest.mark.browser


def make_bob(app) -> None:
    from app.services import accounts

    with app.app_context():
        from app.extensions import db

        accounts.create_user("bob@example.com", PASSWORD, "member", name="Bob")
        db.session.remove()


def test_an_added_developer_gains_access_and_a_removed_one_loses_it(new_page, _schema):
    ada = new_page()
    sign_up_with_project(ada, sample_issues=True)
    make_bob(_schema)
    bob = new_page()
    sign_in(bob, "bob@example.com")
    assert bob.goto("/projects/BUG").status == 404

    ada.get_by_role("link", name="People and access").click()
    expect(ada).to_have_url(re.compile(r"/projects/BUG/people$"))
    expect(ada.locator('tr[data-identity="ada@example.com"]')).to_contain_text("made here")
    ada.get_by_label("Email").fill("bob@example.com")
    ada.get_by_label("Role", exact=True).select_option("developer")
    ada.get_by_role("button", name="Add to BUG").click()
    expect(ada.locator("#people-status")).to_contain_text("Added Bob as developer.")
    row = ada.locator('tr[data-identity="bob@example.com"]')
    expect(row).to_contain_text("project override")
    expect(row).to_contain_text("issue.transition")
    expect(row.locator("a.prov-link")).to_have_text(re.compile(r"^.kiket.team.yaml:[0-9]+$"))

    assert bob.goto("/projects/BUG").status == 200
    bob.goto("/projects/BUG/issues")
    bob.get_by_role("link", name="Typo on the settings page").click()
    bob.get_by_role("button", name="Start Triage", exact=True).click()
    expect(bob.locator(".issue-side")).to_contain_text("Triaging")

    ada.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Remove bob@example.com").click()
    expect(ada.locator("#people-status")).to_contain_text("Removed bob@example.com from BUG.")
    expect(ada.locator('tr[data-identity="bob@example.com"]')).to_have_count(0)
    assert bob.goto("/projects/BUG").status == 404
