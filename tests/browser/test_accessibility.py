"""axe-core (tests/browser/vendor, from the npm package) finds no WCAG 2.1 A/AA violation on any page of the app.

The pages hold real content: a project synced from the engineering fixture (with a failed run and two
revisions), issues with comments and history, a template project, notifications. Add a page to PAGES when
you add one to the app; a page that needs more setup gets it in `content` and its id in the returned dict.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.conftest import PASSWORD, sign_in
from tests.support.fixture_projects import sync_again, sync_remote
from tests.support.sync_repos import bare_remote, push_change

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

# (what, path): `{name}` fields come from the dict `content` returns. A path may end with `#open:<selector>`:
# that element is clicked first, to check the state it opens (an inline editor, a details panel).
PAGES = [
    ("log in (signed out)", "/login"),
    ("projects", "/projects"),
    ("new project", "/projects/new"),
    ("template project", "/projects/DEMO"),
    ("template project configuration", "/projects/DEMO/configuration"),
    ("synced project", "/projects/ENG"),
    ("synced project configuration", "/projects/ENG/configuration"),
    ("workflow of the project", "/projects/ENG/configuration/workflows/incident"),
    ("project secrets", "/projects/ENG/secrets"),
    ("project audit trail", "/projects/ENG/audit"),
    ("project audit trail, filtered", "/projects/DEMO/audit?kind=issue.created"),
    ("issues", "/projects/ENG/issues"),
    ("new issue", "/projects/ENG/issues/new"),
    ("issue", "/projects/DEMO/issues/{issue}"),
    ("issue with the title editor open", "/projects/DEMO/issues/{issue}#open:#field-title .edit"),
    ("simulate a transition", "/projects/DEMO/issues/{issue}/simulate?transition={transition}"),
    ("boards", "/projects/ENG/boards"),
    ("board with swimlanes and quick filters", "/projects/ENG/boards/incidents-board"),
    ("board with a card's move menu open", "/projects/DEMO/boards/bugs#open:.move-to"),
    ("board filtered, lanes by assignee", "/projects/DEMO/boards/bugs?q=q1&lanes=assignee"),
    ("workflow repositories", "/repositories/"),
    ("connect a repository", "/repositories/new"),
    ("repository", "/repositories/{repository}"),
    ("failed sync run", "/repositories/runs/{failed_run}"),
    ("failed sync run, errors only", "/repositories/runs/{failed_run}?severity=error"),
    ("revision", "/repositories/revisions/{revision}"),
    ("workflow of a revision", "/repositories/revisions/{revision}/workflows/bug"),
    ("source file", "/repositories/revisions/{revision}/source/.kiket/workflows/bug.yaml?line=3"),
    ("revision diff", "/repositories/revisions/diff?older={older_revision}&newer={revision}"),
    ("notifications", "/notifications"),
    ("administration", "/admin/"),
    ("organization defaults", "/admin/defaults"),
    ("new organization default file", "/admin/defaults/new"),
    ("new project override file", "/projects/DEMO/configuration/overrides/new"),
    ("project override file in the editor", "/projects/DEMO/configuration/overrides/files/project.yaml"),
    ("delete a project override file", "/projects/DEMO/configuration/overrides/delete/project.yaml"),
    ("email outbox", "/admin/outbox"),
    ("change password", "/account/password"),
    ("API tokens", "/account/tokens"),
    ("API reference", "/api/docs"),
    ("project extensions", "/projects/ENG/extensions"),
    ("an installed extension", "/projects/ENG/extensions/{installation}"),
    ("an installed extension, a delivery open", "/projects/ENG/extensions/{installation}#open:#extension-deliveries summary"),
    ("project webhooks", "/projects/ENG/webhooks"),
    ("a webhook subscription, a delivery open", "/projects/ENG/webhooks/{subscription}#open:#extension-deliveries summary"),
]


@pytest.fixture
def content(_schema, tmp_path, fresh_install):
    """An owner with a template project (sample issues, a comment, a transition) and a synced one."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import ConfigRevision, Issue, SyncRun
    from app.services import accounts, projects
    from app.services.gateway import extensions, subscriptions
    from app.services.runtime import issue_page, seeding, transitions
    from app.services.sync import layers
    from app.services.webhooks import delivery as webhook_delivery

    with _schema.app_context():
        owner = accounts.create_user("ada@example.com", PASSWORD, "owner", name="Ada Lovelace")
        demo = projects.create_project(owner, "DEMO", "Demo", "Bugs and fixes.", "bug_tracking",
                                       seed=seeding.seed_issues_once)
        remote = bare_remote(tmp_path, "engineering")
        project, repository = sync_remote(_schema, owner, remote, "ENG")
        older = repository.active_revision_id
        push_change(remote, "main", ".kiket/boards/engineering.yaml", "board: {name: Renamed}\n", "Rename board")
        sync_again(_schema, repository.id)
        push_change(remote, "main", ".kiket/workflows/bug.yaml", "workflow:\n  id: bug\nstates: {}\n", "Break bug")
        failed = sync_again(_schema, repository.id)
        assert failed.status == "failed"
        issue = db.session.scalar(select(Issue).where(Issue.project_id == demo.id).order_by(Issue.number))
        transitions.add_comment(issue.id, owner, "Reproduced on **main**.")
        assert layers.save_layer_file(owner, "project.yaml", "project:\n  name: Demo\n", project=demo).saved
        view = issue_page.issue_view(owner, issue)
        installed = extensions.install(owner, project, EXTENSION, url="https://ext.example.com")
        webhook_delivery.deliver(project.id, "https://ext.example.com/v/v1/webhooks/issue.created", "POST", {},
                                 {"id": "evt_1"}, "issue.created", "whsec_example-secret-value",
                                 installation_id=installed.installation.id, event_id="evt_1")
        subscription, _ = subscriptions.create(owner, project, "https://hooks.example.com/kiket", ["issue.created"])
        webhook_delivery.deliver(project.id, subscription.url, "POST", {}, {"id": "evt_2"}, "issue.created",
                                 "whsec_example-secret-value", subscription_id=subscription.id, event_id="evt_2")
        ids = {
            "issue": issue.number,
            "transition": view.verdicts[0].transition.id,
            "repository": repository.id,
            "failed_run": failed.id,
            "revision": db.session.get(type(repository), repository.id).active_revision_id,
            "older_revision": older,
            "installation": installed.installation.id,
            "subscription": subscription.id,
        }
        assert db.session.get(ConfigRevision, ids["revision"]) and db.session.get(SyncRun, failed.id)
        db.session.remove()
    return ids


EXTENSION = """\
name: Notes
vendor: Acme
scopes: {read: [issue], write: [comment]}
configuration:
  properties:
    API_KEY: {secret: true}
    REGION: {default: eu, description: Where the notes live}
"""


def audit(page) -> list[str]:
    """axe's WCAG 2.1 A/AA violations on the page, one line each: rule, impact, first offending nodes."""
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("options => axe.run(document, options)",
                           {"runOnly": {"type": "tag", "values": WCAG_21_AA}, "resultTypes": ["violations"]})
    return [f"{v['id']} ({v['impact']}): {v['help']} at " + ", ".join(" ".join(n["target"]) for n in v["nodes"][:3])
            for v in result["violations"]]


def test_no_wcag_violation_on_any_page(new_page, content):
    page = new_page()
    found = {}
    page.goto("/login")
    found["log in (signed out)"] = audit(page)
    sign_in(page, "ada@example.com")
    for what, path in PAGES[1:]:
        path, _, opener = path.format(**content).partition("#open:")
        response = page.goto(path)
        assert response.ok, f"{what}: {path} answered {response.status}"
        if opener:
            page.locator(opener).first.click()
            page.wait_for_load_state("networkidle")
        found[what] = audit(page)
    problems = [f"{what}: {line}" for what, lines in found.items() for line in lines]
    assert not problems, "WCAG 2.1 A/AA violations:\n" + "\n".join(problems)
