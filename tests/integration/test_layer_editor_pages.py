"""The overrides and defaults editor as a browser (and HTMX) meets it: list, create, edit, validate, delete."""

from __future__ import annotations

import html as htmllib
import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import ConfigLayer, Project, ProjectMembership
from tests.conftest import csrf_token, post_form

HX = {"HX-Request": "true"}
OVERRIDES = "/projects/ENG/configuration/overrides"
WORKFLOW = ("workflow: {id: triage, name: Triage}\nstates:\n  new: {type: initial}\n  closed: {type: final}\n"
            "transitions:\n  - {from: new, to: closed, name: Close}\n")
BROKEN = WORKFLOW.replace("to: closed", "to: nowhere")


@pytest.fixture
def project(make_user, login, client):
    make_user("ada@example.com", "owner")
    login("ada@example.com")
    assert post_form(client, "/projects", {"key": "ENG", "name": "Engineering", "template": "kanban"}).status_code == 303
    return db.session.scalar(select(Project))


def hx_post(client, url, data):
    return client.post(url, data={**data, "csrf_token": csrf_token(client)}, headers=HX)


def textarea(html: str) -> str:
    return htmllib.unescape(re.search(r'<textarea id="f-yaml_text"[^>]*>(.*?)</textarea>', html, re.S).group(1))


def rows(scope_prefix: str = "project:") -> dict[str, str]:
    db.session.expire_all()
    return {r.path: r.yaml_text for r in db.session.scalars(select(ConfigLayer)) if r.scope.startswith(scope_prefix)}


def effective_workflows(project):
    from app.services.sync import configuration

    db.session.expire_all()
    return configuration.project_config(db.session.get(Project, project.id)).workflows


def test_create_edit_and_delete_an_override(app, client, project):
    page = client.get("/projects/ENG/configuration").get_data(as_text=True)
    assert 'id="layer-editor"' in page and "No files yet." in page and f'href="{OVERRIDES}/new"' in page
    new = client.get(f"{OVERRIDES}/new").get_data(as_text=True)
    assert 'name="new" value="1"' in new and 'for="f-path"' in new and 'for="f-yaml_text"' in new

    created = hx_post(client, OVERRIDES, {"new": "1", "path": "workflows/triage.yaml", "yaml_text": WORKFLOW})
    html = created.get_data(as_text=True)
    assert created.status_code == 200, html
    assert "Saved <code>workflows/triage.yaml</code>" in html and 'id="layer-save-status"' in html
    assert re.search(r"added</span> workflow <code>triage</code>", html)
    assert created.headers["HX-Push-Url"] == f"{OVERRIDES}/files/workflows/triage.yaml"
    assert 'hx-swap-oob="true"' in html and textarea(html) == WORKFLOW
    assert effective_workflows(project)["triage"].prov.layer == "project_override"

    listing = client.get("/projects/ENG/configuration").get_data(as_text=True)
    row = re.search(r"<tr>\s*<th scope=\"row\"><a href=\"[^\"]+\"><code>workflows/triage.yaml</code>.*?</tr>", listing, re.S)
    assert row, listing
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(0), re.S)
    assert cells[0].strip() == f"{len(WORKFLOW)} Bytes" and cells[1].strip() == "1"
    assert "ada@example.com" in cells[2] and "v1" in cells[2]

    editor = client.get(f"{OVERRIDES}/files/workflows/triage.yaml").get_data(as_text=True)
    assert textarea(editor) == WORKFLOW and 'name="new"' not in editor
    renamed = hx_post(client, OVERRIDES, {"path": "workflows/triage.yaml", "yaml_text": WORKFLOW.replace("Triage", "Sorting")})
    html = renamed.get_data(as_text=True)
    assert renamed.status_code == 200 and "(version 2)" in html
    assert re.search(r"<code>name</code></dt><dd><del>Triage</del> → <ins>Sorting</ins>", html), html
    assert effective_workflows(project)["triage"].name == "Sorting"

    confirm = client.get(f"{OVERRIDES}/delete/workflows/triage.yaml").get_data(as_text=True)
    assert "Delete <code>workflows/triage.yaml</code>?" in confirm and 'name="csrf_token"' in confirm
    assert "It contributes 1 element" in confirm
    assert rows() != {}
    deleted = post_form(client, f"{OVERRIDES}/delete/workflows/triage.yaml")
    assert deleted.status_code == 303 and deleted.headers["Location"].endswith(
        "/projects/ENG/configuration?deleted=workflows/triage.yaml#layer-editor")
    assert rows() == {} and "triage" not in effective_workflows(project)
    assert "Deleted <code>workflows/triage.yaml</code>" in client.get(deleted.headers["Location"]).get_data(as_text=True)
    assert client.get(f"{OVERRIDES}/files/workflows/triage.yaml").status_code == 404


def test_validate_shows_diagnostics_as_typed_without_saving(app, client, project):
    text = "workflow: {id: triage, colour: red}\nstates:\n  new: {type: normal}\n"
    answer = hx_post(client, f"{OVERRIDES}/validate", {"new": "1", "path": "workflows/triage.yaml", "yaml_text": text})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and html.lstrip().startswith('<div id="live-diagnostics"') and "<html" not in html
    assert "this text cannot be saved" in html
    assert ".kiket/workflows/triage.yaml:" in html and 'class="muted"' in html  # file:line and a hint
    severities = re.findall(r'<li class="diag diag-(\w+)', html)
    assert severities[0] == "fatal" and "warning" in severities
    assert severities == sorted(severities, key=["fatal", "error", "warning", "info"].index)
    assert rows() == {}

    fine = hx_post(client, f"{OVERRIDES}/validate", {"new": "1", "path": "workflows/triage.yaml", "yaml_text": WORKFLOW})
    assert "This text can be saved" in fine.get_data(as_text=True) and rows() == {}

    for path in ("../../etc/passwd.yaml", "workflows/../team.yaml", "agents/x.yaml", "/team.yaml"):
        refused = hx_post(client, f"{OVERRIDES}/validate", {"new": "1", "path": path, "yaml_text": "team: {}\n"})
        assert refused.status_code == 200 and "Use project.yaml, team.yaml" in refused.get_data(as_text=True), path
    assert rows() == {}


def test_a_broken_save_keeps_the_working_file_and_returns_the_text(app, client, project):
    assert hx_post(client, OVERRIDES, {"new": "1", "path": "workflows/triage.yaml", "yaml_text": WORKFLOW}).status_code == 200
    for headers in (HX, {}):  # with HTMX (the fragment) and without (the whole page)
        refused = client.post(OVERRIDES, data={"path": "workflows/triage.yaml", "yaml_text": BROKEN,
                                               "csrf_token": csrf_token(client)}, headers=headers)
        html = refused.get_data(as_text=True)
        assert refused.status_code == 422
        assert "Not saved:" in html and 'role="alert"' in html and "diag-fatal" in html
        assert textarea(html) == BROKEN
        assert rows() == {"workflows/triage.yaml": WORKFLOW}
        assert effective_workflows(project)["triage"].transitions[0].target == "closed"
    assert db.session.scalar(select(ConfigLayer)).version == 1


def test_a_new_file_does_not_overwrite_one_with_its_name(app, client, project):
    hx_post(client, OVERRIDES, {"new": "1", "path": "workflows/triage.yaml", "yaml_text": WORKFLOW})
    again = hx_post(client, OVERRIDES, {"new": "1", "path": ".kiket/workflows/triage.yaml", "yaml_text": "x: 1\n"})
    html = again.get_data(as_text=True)
    assert again.status_code == 422 and "already exists" in html and textarea(html) == "x: 1\n"
    bad_name = hx_post(client, OVERRIDES, {"new": "1", "path": "../secrets.yaml", "yaml_text": "x: 1\n"})
    assert bad_name.status_code == 422 and 'aria-invalid="true"' in bad_name.get_data(as_text=True)
    assert rows() == {"workflows/triage.yaml": WORKFLOW}


def test_organization_defaults_editor(app, client, project):
    assert 'href="/admin/defaults/new"' in client.get("/admin/defaults").get_data(as_text=True)
    live = hx_post(client, "/admin/defaults/validate", {"new": "1", "path": "workflows/triage.yaml", "yaml_text": BROKEN})
    assert "diag-fatal" in live.get_data(as_text=True) and rows("organization:") == {}
    refused = hx_post(client, "/admin/defaults", {"new": "1", "path": "workflows/triage.yaml", "yaml_text": BROKEN})
    assert refused.status_code == 422 and textarea(refused.get_data(as_text=True)) == BROKEN
    saved = hx_post(client, "/admin/defaults", {"new": "1", "path": "workflows/triage.yaml", "yaml_text": WORKFLOW})
    assert saved.status_code == 200 and saved.headers["HX-Push-Url"] == "/admin/defaults/files/workflows/triage.yaml"
    assert effective_workflows(project)["triage"].prov.layer == "organization_default"
    listing = client.get("/admin/defaults").get_data(as_text=True)
    assert "<code>workflows/triage.yaml</code>" in listing
    assert textarea(client.get("/admin/defaults/files/workflows/triage.yaml").get_data(as_text=True)) == WORKFLOW
    assert "Delete <code>workflows/triage.yaml</code>?" in client.get(
        "/admin/defaults/delete/workflows/triage.yaml").get_data(as_text=True)
    assert post_form(client, "/admin/defaults/delete/workflows/triage.yaml").status_code == 303
    assert rows("organization:") == {} and "triage" not in effective_workflows(project)


def test_members_get_403_and_strangers_404(app, client, project, make_user, login):
    hx_post(client, OVERRIDES, {"new": "1", "path": "workflows/triage.yaml", "yaml_text": WORKFLOW})
    hx_post(client, "/admin/defaults", {"new": "1", "path": "boards/main.yaml", "yaml_text": "board: {name: Main}\n"})
    member = make_user("bob@example.com", "member")
    admin = make_user("cy@example.com", "member")
    make_user("eve@example.com", "member")
    db.session.add_all([ProjectMembership(project_id=project.id, user_id=member.id, role="member"),
                        ProjectMembership(project_id=project.id, user_id=admin.id, role="admin")])
    db.session.commit()
    before = (rows(), rows("organization:"))
    editing = [("get", f"{OVERRIDES}/new"), ("get", f"{OVERRIDES}/files/workflows/triage.yaml"),
               ("get", f"{OVERRIDES}/delete/workflows/triage.yaml"), ("post", f"{OVERRIDES}/delete/workflows/triage.yaml"),
               ("post", f"{OVERRIDES}/validate"), ("post", OVERRIDES)]
    defaults = [("get", "/admin/defaults"), ("get", "/admin/defaults/new"), ("get", "/admin/defaults/files/boards/main.yaml"),
                ("get", "/admin/defaults/delete/boards/main.yaml"), ("post", "/admin/defaults/delete/boards/main.yaml"),
                ("post", "/admin/defaults/validate"), ("post", "/admin/defaults")]
    form = {"path": "workflows/triage.yaml", "yaml_text": "x: 1\n"}

    def status(method, url):
        if method == "get":
            return client.get(url).status_code
        return client.post(url, data={**form, "csrf_token": csrf_token(client)}, headers=HX).status_code

    for email, project_status in (("bob@example.com", 403), ("eve@example.com", 404)):
        post_form(client, "/logout")
        login(email)
        assert [status(m, u) for m, u in editing] == [project_status] * len(editing), email
        assert [status(m, u) for m, u in defaults] == [403] * len(defaults), email
    post_form(client, "/logout")
    login("bob@example.com")
    page = client.get("/projects/ENG/configuration").get_data(as_text=True)
    assert "<code>workflows/triage.yaml</code>" in page and f"{OVERRIDES}/new" not in page and "/delete/" not in page
    # A project admin edits the project's overrides, not the organization's defaults.
    post_form(client, "/logout")
    login("cy@example.com")
    assert status("get", f"{OVERRIDES}/files/workflows/triage.yaml") == 200
    assert status("post", f"{OVERRIDES}/validate") == 200
    assert [status(m, u) for m, u in defaults] == [403] * len(defaults)
    assert (rows(), rows("organization:")) == before


def test_every_change_needs_the_csrf_token(app, client, project):
    hx_post(client, OVERRIDES, {"new": "1", "path": "workflows/triage.yaml", "yaml_text": WORKFLOW})
    before = rows()
    for url in (OVERRIDES, f"{OVERRIDES}/validate", f"{OVERRIDES}/delete/workflows/triage.yaml",
                "/admin/defaults", "/admin/defaults/validate"):
        answer = client.post(url, data={"path": "workflows/triage.yaml", "yaml_text": "x: 1\n"})
        assert answer.status_code == 400, url
    assert rows() == before and rows("organization:") == {}


def test_deleting_a_workflow_keeps_its_recipe_file(app, client, project):
    # The recipe of a deleted workflow no longer resolves: an error (dropped), not fatal, so the delete goes through.
    hx_post(client, OVERRIDES, {"new": "1", "path": "workflows/triage.yaml", "yaml_text": WORKFLOW})
    recipe = ("recipe:\n  key: closed_note\n  name: Closed note\n  trigger: issue.transitioned\n"
              "  actions:\n    - {type: comment, body: Closed}\n")
    hx_post(client, OVERRIDES, {"new": "1", "path": "workflows/triage/automation_recipes/closed.yaml", "yaml_text": recipe})
    assert post_form(client, f"{OVERRIDES}/delete/workflows/triage.yaml").status_code == 303
    assert set(rows()) == {"workflows/triage/automation_recipes/closed.yaml"}


def test_a_delete_is_refused_while_the_rest_would_not_load(app, client, project):
    # A broken file stored before today's checks (written straight to the table): deleting another file is refused
    # with the reason, deleting the broken one is what fixes the layer.
    hx_post(client, OVERRIDES, {"new": "1", "path": "workflows/triage.yaml", "yaml_text": WORKFLOW})
    db.session.add(ConfigLayer(scope=f"project:{project.id}", layer="project_override", organization_id=project.organization_id,
                               project_id=project.id, path="workflows/old.yaml", yaml_text="workflow: {id: old}\nstates: {}\n"))
    db.session.commit()
    refused = post_form(client, f"{OVERRIDES}/delete/workflows/triage.yaml")
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "Not deleted:" in html and "diag-fatal" in html and "workflows/old.yaml" in html
    assert set(rows()) == {"workflows/triage.yaml", "workflows/old.yaml"}
    assert post_form(client, f"{OVERRIDES}/delete/workflows/old.yaml").status_code == 303
    assert set(rows()) == {"workflows/triage.yaml"}


@pytest.mark.parametrize("path", ["..%2F..%2Fproject.yaml", "workflows/..%2F..%2Fx.yaml", "nope.yaml"])
def test_unknown_or_traversing_paths_are_not_found(app, client, project, path):
    assert client.get(f"{OVERRIDES}/files/{path}").status_code == 404
    assert post_form(client, f"{OVERRIDES}/delete/{path}").status_code == 404


def test_a_save_over_a_newer_version_is_refused_with_the_text_kept(app, client, project):
    from app.services.sync import layers

    hx_post(client, OVERRIDES, {"new": "1", "path": "workflows/triage.yaml", "yaml_text": WORKFLOW})
    editor = client.get(f"{OVERRIDES}/files/workflows/triage.yaml").get_data(as_text=True)
    assert 'name="version" value="1"' in editor
    # Meanwhile someone else saves version 2.
    layers.save_layer_file(_ada(), "workflows/triage.yaml", WORKFLOW.replace("Triage", "Theirs"), project=project)
    mine = WORKFLOW.replace("Triage", "Mine")
    refused = hx_post(client, OVERRIDES, {"path": "workflows/triage.yaml", "yaml_text": mine, "version": "1"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "was changed by" in html and "now version 2" in html
    assert textarea(html) == mine and 'name="version" value="1"' in html
    assert rows() == {"workflows/triage.yaml": WORKFLOW.replace("Triage", "Theirs")}
    # Reopened, it saves over version 2.
    assert 'name="version" value="2"' in client.get(f"{OVERRIDES}/files/workflows/triage.yaml").get_data(as_text=True)
    saved = hx_post(client, OVERRIDES, {"path": "workflows/triage.yaml", "yaml_text": mine, "version": "2"})
    assert saved.status_code == 200 and 'name="version" value="3"' in saved.get_data(as_text=True)
    assert rows() == {"workflows/triage.yaml": mine}


def _ada():
    from app.models import User

    return db.session.scalar(select(User).where(User.email == "ada@example.com"))
