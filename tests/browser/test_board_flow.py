"""The board in two browser contexts (two people) on the kanban template, through the real web and live processes:
a drag shows in the other context within a second; a blocking WIP limit and a guard refuse a move with their
reasons and the card goes back; "Move to…" works with the keyboard alone; a change made while the socket was
cut shows after it comes back; a person who loses access is disconnected."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, sign_in

pytestmark = pytest.mark.browser

BOARD = "/projects/KAN/boards/kanban"


@pytest.fixture
def kanban(_schema, fresh_install):
    """Ada owns KAN, Bob is a member; cards in every column (Review full: 3 of 3, blocking). {title: id}."""
    from app.extensions import db
    from app.models import ProjectMembership
    from app.services import accounts, projects
    from tests.support.issue_events import make_issue

    with _schema.app_context():
        ada = accounts.create_user("ada@example.com", PASSWORD, "owner", name="Ada")
        bob = accounts.create_user("bob@example.com", PASSWORD, "member", name="Bob")
        project = projects.create_project(ada, "KAN", "Kanban", "", "kanban")
        db.session.add(ProjectMembership(project_id=project.id, user_id=bob.id, role="member"))
        db.session.commit()
        cards = {}
        for title, state, assignee in [("Write docs", "backlog", None), ("Fix login", "backlog", None),
                                       ("Ship search", "in_progress", ada), ("Unassigned work", "in_progress", None),
                                       ("Review A", "review", ada), ("Review B", "review", ada),
                                       ("Review C", "review", ada)]:
            cards[title] = make_issue(project, title, issue_type="task", state=state, assignee=assignee,
                                      emit=False).id
        db.session.remove()
    return cards


def card(page, issue_id: int):
    return page.locator(f"#card-{issue_id}")


def column(page, key: str):
    return page.locator(f"#list-{key}-all")


def drag(page, issue_id: int, key: str) -> None:
    """Drag a card by its top corner (its links and buttons do not start a drag) onto a column, as a mouse would."""
    source = card(page, issue_id)
    expect(source).to_be_visible()
    source.scroll_into_view_if_needed()
    box = source.bounding_box()
    target = column(page, key).bounding_box()
    page.mouse.move(box["x"] + box["width"] - 6, box["y"] + 6)
    page.mouse.down()
    page.mouse.move(target["x"] + target["width"] / 2, target["y"] + 20, steps=12)
    page.mouse.move(target["x"] + target["width"] / 2, target["y"] + 30, steps=4)
    page.mouse.up()


def project_seq(page) -> int:
    """The number of the last project message the page has applied (live.js keeps it on <html>)."""
    seen = dict(word.split("=") for word in (page.locator("html").get_attribute("data-live-seen") or "").split())
    return next((int(seq) for channel, seq in seen.items() if channel.startswith("project:")), 0)


def settle(page, other) -> None:
    """Wait until `page` has applied every project message `other` has: a page's own move comes back to it live
    too, and a drag started while that swap lands would hold a card that is no longer in the page."""
    expected = project_seq(other)
    assert expected, "the other page has applied no project message"
    page.wait_for_function(
        """n => (document.documentElement.dataset.liveSeen || "").split(" ").some(
             w => w.startsWith("project:") && parseInt(w.split("=")[1], 10) >= n)""", arg=expected)


def open_board(new_page, email: str):
    page = new_page()
    sign_in(page, email)
    page.goto(BOARD)
    expect(page.locator("#colhead-backlog")).to_be_visible()
    # The socket's first message carries the board as it is: wait for it, so later changes are live ones.
    expect(page.locator("html")).to_have_attribute("data-live", "open")
    return page


def test_moves_show_live_and_refusals_explain_themselves(new_page, kanban):
    ada, bob = open_board(new_page, "ada@example.com"), open_board(new_page, "bob@example.com")

    drag(ada, kanban["Write docs"], "in_progress")
    expect(column(bob, "in_progress").locator(f"#card-{kanban['Write docs']}")).to_be_visible(timeout=1000)
    expect(bob.locator("#colhead-in_progress .wip")).to_contain_text("3 / 5")
    settle(ada, bob)

    drag(ada, kanban["Ship search"], "review")
    expect(ada.locator("#board-alert")).to_contain_text("Column 'Review' is at its WIP limit (3/3)")
    expect(column(ada, "in_progress").locator(f"#card-{kanban['Ship search']}")).to_be_visible()
    expect(column(ada, "review").locator(".board-card")).to_have_count(3)

    # The guard of "Ready for Review" (an assignee) is reported too, as on the issue page.
    drag(ada, kanban["Unassigned work"], "review")
    expect(ada.locator("#board-alert")).to_contain_text("Field 'Assignee' is required")
    expect(column(ada, "in_progress").locator(f"#card-{kanban['Unassigned work']}")).to_be_visible()

    # "Move to…" lists only the columns open to the card, and works from the keyboard.
    bob.get_by_role("button", name="Move to… KAN-2").focus()
    bob.keyboard.press("Enter")
    menu = bob.get_by_role("list", name="Move KAN-2 to")
    expect(menu.get_by_role("button")).to_have_text(["In Progress"])
    menu.get_by_role("button", name="In Progress").focus()
    bob.keyboard.press("Enter")
    expect(column(bob, "in_progress").locator(f"#card-{kanban['Fix login']}")).to_be_visible()
    expect(column(ada, "in_progress").locator(f"#card-{kanban['Fix login']}")).to_be_visible(timeout=1000)


def test_a_cut_socket_heals_and_lost_access_disconnects(new_page, kanban, live_proxy, _schema):
    ada, bob = open_board(new_page, "ada@example.com"), open_board(new_page, "bob@example.com")

    live_proxy.cut()
    expect(bob.locator("html")).not_to_have_attribute("data-live", "open")
    drag(ada, kanban["Write docs"], "in_progress")
    expect(column(ada, "in_progress").locator(f"#card-{kanban['Write docs']}")).to_be_visible()
    live_proxy.restore()
    expect(column(bob, "in_progress").locator(f"#card-{kanban['Write docs']}")).to_be_visible(timeout=15_000)

    with _schema.app_context():
        from app.extensions import db
        from app.models import ProjectMembership, User

        bob_id = db.session.query(User.id).filter_by(email="bob@example.com").scalar()
        db.session.delete(db.session.query(ProjectMembership).filter_by(user_id=bob_id).one())
        db.session.commit()
        db.session.remove()
    expect(bob.get_by_role("alert").filter(has_text="no longer have access")).to_be_visible()
