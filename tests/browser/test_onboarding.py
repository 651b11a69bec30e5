"""A fresh installation as people meet it: sign up, create a project, invite a colleague."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, create_organization

pytestmark = pytest.mark.browser


def test_sign_up_create_project_and_invite(new_page):
    owner = new_page()
    owner.goto("/")
    expect(owner.get_by_role("heading", name="Set up Kiket")).to_be_visible()
    create_organization(owner)

    owner.get_by_role("link", name="New project").first.click()
    owner.get_by_label("Name").fill("Engineering")
    owner.get_by_label("Key").fill("ENG")
    owner.get_by_label(re.compile("Scrum")).check()
    owner.get_by_role("button", name="Create project").click()
    expect(owner).to_have_url(re.compile(r"/projects/ENG$"))
    expect(owner.get_by_text("Scrum").first).to_be_visible()
    owner.get_by_role("link", name="Projects").click()
    expect(owner.get_by_role("list", name="Projects")).to_contain_text("Engineering")

    owner.get_by_role("link", name="Administration").click()
    owner.get_by_label("Email (optional)").fill("grace@example.com")
    owner.get_by_role("button", name="Create invitation link").click()
    link = owner.get_by_label("Invitation link")
    expect(link).to_have_value(re.compile(r"/join/"))
    invitation_url = link.input_value()

    guest = new_page()
    guest.goto(invitation_url)
    expect(guest.get_by_role("heading", name="Join Analytical Engines")).to_be_visible()
    expect(guest.get_by_label("Email")).to_have_value("grace@example.com")
    guest.get_by_label("Your name").fill("Grace")
    guest.get_by_label("Password").fill(PASSWORD)
    guest.get_by_role("button", name="Create account").click()
    expect(guest.get_by_role("heading", name="Projects")).to_be_visible()
    expect(guest.get_by_role("link", name="Administration")).to_have_count(0)

    owner.reload()
    expect(owner.locator("#invitations")).to_contain_text("used")


def test_invalid_project_key_is_explained_in_place(new_page):
    page = new_page()
    page.goto("/signup")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create organization").click()
    page.goto("/projects/new")
    page.get_by_label("Name").fill("Ops")
    page.get_by_label("Key").fill("O")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_text("Use 2 to 10 capital letters")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/projects/new$"))


def test_anonymous_visitor_is_sent_to_log_in(new_page):
    owner = new_page()
    owner.goto("/signup")
    owner.get_by_label("Email").fill("ada@example.com")
    owner.get_by_label("Password").fill(PASSWORD)
    owner.get_by_role("button", name="Create organization").click()
    expect(owner.get_by_role("heading", name="Projects")).to_be_visible()

    visitor = new_page()
    visitor.goto("/projects/new")
    expect(visitor.get_by_role("heading", name="Log in")).to_be_visible()
    visitor.get_by_label("Email").fill("ada@example.com")
    visitor.get_by_label("Password").fill(PASSWORD)
    visitor.get_by_role("button", name="Log in").click()
    expect(visitor).to_have_url(re.compile(r"/projects/new$"))
