"""An issue's life in the browser: create it with custom fields, read why a transition is blocked,
satisfy the gate, transition, comment, and the assignee sees the notification arrive."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, reload_until, sign_in, sign_up_with_project

pytestmark = pytest.mark.browser


def make_ada_a_developer(app) -> None:
    """The bug workflow's "Accept" is for triagers and developers: a project override grants Ada the role."""
    from sqlalchemy import select

    from app.models import Project, User
    from app.services.sync import layers

    with app.app_context():
        from app.extensions import db

        ada = db.session.scalar(select(User).where(User.email == "ada@example.com"))
        project = db.session.scalar(select(Project).where(Project.key == "BUG"))
        result = layers.save_layer_file(
            ada, "team.yaml", "team:\n  members:\n    - {user: ada@example.com, roles: [developer]}\n",
            project=project)
        assert result.saved, result.diagnostics
        db.session.remove()


def add_grace_to_the_project(app) -> None:
    """A second person, a developer on the project, to be the issue's assignee."""
    from sqlalchemy import select

    from app.models import Project, ProjectMembership
    from app.services import accounts

    with app.app_context():
        from app.extensions import db

        grace = accounts.create_user("grace@example.com", PASSWORD, "member", name="Grace")
        project = db.session.scalar(select(Project).where(Project.key == "BUG"))
        db.session.add(ProjectMembership(project_id=project.id, user_id=grace.id, role="developer"))
        db.session.commit()
        db.session.remove()


def test_create_block_satisfy_transition_and_comment(new_page, worker, _schema):
    page = new_page()
    sign_up_with_project(page)
    make_ada_a_developer(_schema)
    add_grace_to_the_project(_schema)

    page.get_by_role("link", name="New issue").click()
    expect(page.get_by_label("Severity")).to_be_visible()
    # The form shows before the deferred scripts have run; htmx listens to the Type select only after them.
    page.wait_for_load_state()
    page.get_by_label("Type").select_option("task")
    expect(page.get_by_label("Severity")).to_have_count(0)
    # The swapped-in select only listens once htmx has settled it.
    page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')")
    page.get_by_label("Type").select_option("bug")
    expect(page.get_by_label("Severity")).to_be_visible()  # the swap is done before typing into the form
    page.get_by_label("Title").fill("Crash when saving an empty draft")
    page.get_by_role("button", name="Create issue").click()
    expect(page.get_by_text("Severity is required")).to_be_visible()
    page.get_by_label("Severity").select_option("critical")
    page.get_by_label("Steps to reproduce").fill("1. Open a draft\n2. Clear it\n3. Save")
    page.get_by_role("button", name="Create issue").click()
    expect(page).to_have_url(re.compile(r"/projects/BUG/issues/1$"))
    expect(page.locator("#field-custom_fields-severity")).to_contain_text("critical")

    # A second tab renames the issue: the first tab's transition meets a stale lock version and says so.
    other = page.context.new_page()
    other.goto(page.url)
    other.get_by_role("button", name="Edit Title").click()
    other.get_by_role("textbox", name="Title").fill("Crash when saving an empty draft (Safari)")
    other.get_by_role("button", name="Save").click()
    expect(other.locator(".issue-head")).to_contain_text("(Safari)")
    # Chromium throttles animation frames in a background tab; the first tab comes back to the front.
    other.close()
    page.get_by_role("button", name="Start Triage", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("changed by someone else")
    expect(page.locator(".issue-head")).to_contain_text("(Safari)")
    expect(page.locator(".issue-side")).to_contain_text("Reported")
    page.get_by_role("button", name="Start Triage", exact=True).click()
    expect(page.locator(".issue-side")).to_contain_text("Triaging")
    blocked = page.locator(".blocked-transition", has_text="Accept")
    expect(blocked).to_contain_text("Field 'Assignee' is required")
    page.get_by_role("button", name="Simulate Accept").click()
    verdict = page.locator("#verdict-1-triaging__fixing")
    expect(verdict).to_contain_text("would be refused")
    expect(verdict.locator("tr.fail")).to_have_count(1)
    expect(verdict.locator("tr.fail")).to_contain_text("required fields")

    page.get_by_role("button", name="Edit Assignee").click()
    page.get_by_role("combobox", name="Assignee").select_option(label="Grace")
    page.locator("#field-assignee").get_by_role("button", name="Save").click()
    expect(page.locator("#field-assignee")).to_contain_text("Grace")
    expect(page.locator(".blocked-transition", has_text="Accept")).to_have_count(0)
    page.get_by_role("button", name="Accept", exact=True).click()
    expect(page.locator(".issue-side")).to_contain_text("Fixing")

    page.get_by_label("Add a comment").fill("Fixed by **guarding** the empty case <script>alert(1)</script>")
    page.get_by_role("button", name="Comment", exact=True).click()
    comment = page.locator(".comment").last
    expect(comment.locator(".markdown strong")).to_have_text("guarding")
    expect(comment).to_contain_text("<script>alert(1)</script>")
    expect(page.locator(".history")).to_contain_text("moved it from Triaging to Fixing (Accept)")

    # The assignee, in a browser of her own, sees the worker's notification of the comment arrive.
    grace = new_page()
    sign_in(grace, "grace@example.com")
    bell = grace.locator("#bell")
    message = "ada@example.com commented on BUG-1 Crash when saving an empty draft (Safari)"
    reload_until(grace, bell.locator(".badge"))  # the bell polls every 30 s; reload while the worker catches up
    expect(bell.locator(".badge")).to_have_text("1")
    bell.click()
    expect(grace.get_by_role("heading", name="1 unread")).to_be_visible()
    item = grace.locator(".notification.unread")
    expect(item.locator(".message")).to_have_text(message)
    item.get_by_role("button", name="Mark read").click()
    expect(grace.get_by_role("heading", name="0 unread")).to_be_visible()
    expect(grace.locator("#bell .badge")).to_have_count(0)
    expect(grace.locator(".notification.unread")).to_have_count(0)
