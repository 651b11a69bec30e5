"""A template project with issues in every template state connects a repository in the browser (§16): the sync
holds, saying how many issues its workflows have no place for; the owner confirms, maps them on the migration
page, and every issue ends on a live state of the new workflow with a way onwards."""

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tests.browser.conftest import PASSWORD, reload_until, sign_in
from tests.support.fixture_projects import template_project_with_issues
from tests.support.sync_repos import bare_remote, file_url

pytestmark = pytest.mark.browser


@pytest.fixture
def template_project(new_page, _schema, tmp_path):
    """Ada's project ENG on the kanban template with its sample issues plus one, one in each template state."""
    from app.services import accounts

    with _schema.app_context():
        from app.extensions import db

        ada = accounts.create_user("ada@example.com", PASSWORD, "owner", name="Ada")
        _, states = template_project_with_issues(ada)
        db.session.remove()
    return list(states), file_url(bare_remote(tmp_path, "engineering"))


def test_connecting_a_repository_maps_every_template_issue_onto_a_live_state(new_page, worker, _schema,
                                                                            template_project):
    ids, remote = template_project
    ada = new_page()
    sign_in(ada, "ada@example.com")
    ada.goto("/repositories/new?project=ENG")
    ada.get_by_label("Repository URL").fill(remote)
    ada.get_by_role("button", name="Connect").click()
    ada.get_by_role("link", name="Open the repository and sync").click()
    expect(ada.get_by_label("Branch", exact=True).locator("option")).to_have_count(2)
    ada.get_by_label("Branch", exact=True).select_option("main")
    ada.get_by_role("button", name="Sync", exact=True).click()

    # Told before activation: the valid revision waits, saying how many issues it has no workflow for.
    expect(ada.locator("#sync-state")).to_have_text("held", timeout=30_000)
    held = ada.locator(".notice.held")
    expect(held).to_contain_text("Waiting for confirmation")
    expect(held).to_contain_text(f"{len(ids)} issues on workflow kanban, which this revision lacks")
    ada.get_by_role("button", name="Activate and map the issues").click()
    reload_until(ada, ada.get_by_role("link", name="map them onto the new workflows"))
    ada.get_by_role("link", name="map them onto the new workflows").click()
    ada.get_by_role("link", name=f"{len(ids)} issues on workflow kanban, which this configuration lacks").click()

    expect(ada.get_by_role("heading", name="Map the issues of workflow kanban")).to_be_visible()
    expect(ada.get_by_label("Target state for review")).to_have_value("testing")
    ada.get_by_label("Target state for done").select_option("deployed")
    ada.get_by_role("button", name=f"Move {len(ids)} issues").click()
    expect(ada.get_by_role("status")).to_contain_text(f"Moved {len(ids)} issues onto the active configuration")

    with _schema.app_context():
        from app.extensions import db
        from app.kiket.runtime.transitions import outgoing
        from app.models import Issue, Project
        from app.services.sync import configuration

        project = db.session.scalar(select(Project).where(Project.key == "ENG"))
        workflow = configuration.project_config(project).workflows["bug"]
        numbers = []
        for issue_id in ids:
            issue = db.session.get(Issue, issue_id)
            assert issue.workflow_id == "bug" and issue.state in workflow.states and outgoing(workflow, issue.state)
            numbers.append(issue.number)
        db.session.remove()
    for number in numbers:
        ada.goto(f"/projects/ENG/issues/{number}")
        expect(ada.locator("html")).to_have_attribute("data-live", "open")
        expect(ada.locator(".issue-side")).to_contain_text("Bug Tracking")
        expect(ada.locator("section.transitions form.transition, .blocked-transition").first).to_be_visible()
        expect(ada.locator(".notice.held")).to_have_count(0)
        expect(ada.locator("section.history")).to_contain_text("Moved from workflow kanban")
