"""The pages and commands around the API: personal tokens on the account page and the CLI, extension pages."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from app.extensions import db
from app.models.gateway import ApiKey, ExtensionInstallation
from app.services import projects as project_service
from tests.conftest import csrf_token, post_form

MANIFEST = """\
name: Notes
vendor: Acme
version: 2.0.0
scopes: {read: [issue], write: [comment]}
events: [issue.created]
configuration:
  properties:
    API_KEY: {secret: true}
    REGION: {default: eu}
"""


@pytest.fixture
def project(owner):
    return project_service.create_project(owner, "ENG", "Engineering", "", "kanban")


def test_account_page_creates_shows_once_and_revokes(client, owner, login):
    login()
    page = client.get("/account/tokens")
    assert page.status_code == 200 and b"New token" in page.data
    created = post_form(client, "/account/tokens", {"name": "CI", "scopes": ["issues:read", "comments:write"]})
    assert created.status_code == 201
    token = re.search(r'id="new-token">([^<]+)<', created.get_data(as_text=True)).group(1)
    assert token.startswith("kiket_pat_")
    assert token not in client.get("/account/tokens").get_data(as_text=True)
    key = db.session.scalar(select(ApiKey))
    assert key.scopes == ["issues:read", "comments:write"] and key.secret_hash != token
    assert client.get("/api/v1/issues", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    revoked = post_form(client, f"/account/tokens/{key.id}/revoke")
    assert revoked.status_code == 303
    assert client.get("/api/v1/issues", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_account_page_refuses_without_csrf_or_scopes(client, owner, login):
    login()
    assert client.post("/account/tokens", data={"name": "x", "scopes": "*"}).status_code == 400
    refused = post_form(client, "/account/tokens", {"name": "no scopes"})
    assert refused.status_code == 422 and b"at least one scope" in refused.data


def test_cli_prints_the_token_alone_on_the_last_line(app, owner):
    result = CliRunner().invoke(app.cli, ["kiket", "token", "create", owner.email, "--scopes", "issues:read,issues:write"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert re.fullmatch(r"kiket_pat_\S+", token)
    with app.test_client() as client:
        assert client.get("/api/v1/issues", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    bad = CliRunner().invoke(app.cli, ["kiket", "token", "create", owner.email, "--scopes", "launch:rockets"])
    assert bad.exit_code != 0 and "Unknown scope" in bad.output


def test_keys_rotate_command(app):
    result = CliRunner().invoke(app.cli, ["kiket", "keys", "rotate"])
    assert result.exit_code == 0 and "previous key is still published" in result.output


def test_extension_pages(app, client, owner, login, project):
    app.config["KIKET_WEBHOOK_ALLOW_PRIVATE"] = True
    login()
    assert client.get("/projects/ENG/extensions").status_code == 200
    broken = post_form(client, "/projects/ENG/extensions", {"manifest": "id: [", "url": "https://ext.example.com"})
    assert broken.status_code == 422 and b"extension.yaml:" in broken.data
    done = post_form(client, "/projects/ENG/extensions", {"manifest": MANIFEST, "url": "https://ext.example.com"})
    assert done.status_code == 201
    text = done.get_data(as_text=True)
    assert "kiket_ext_" in text and "kiket_cs_" in text and "whsec_" in text
    installation = db.session.scalar(select(ExtensionInstallation))
    assert (installation.extension_id, installation.config) == ("acme.notes", {"REGION": "eu"})
    url = f"/projects/ENG/extensions/{installation.id}"
    page = client.get(url).get_data(as_text=True)
    assert "Notes" in page and "kiket_ext_" not in page and "API_KEY" in page
    assert post_form(client, f"{url}/secrets", {"key": "API_KEY", "value": "s3cr3t-value"}).status_code == 303
    assert "s3cr3t-value" not in client.get(url).get_data(as_text=True)
    rotated = post_form(client, f"{url}/rotate").get_data(as_text=True)
    assert "kiket_ext_" in rotated
    assert post_form(client, f"{url}/settings", {"url": "https://ext2.example.com", "cfg.REGION": "us"}).status_code == 303
    db.session.expire_all()
    assert (installation.base_url, installation.config["REGION"]) == ("https://ext2.example.com", "us")
    assert post_form(client, f"{url}/delete").status_code == 303
    assert db.session.scalar(select(ExtensionInstallation)) is None


def test_extension_pages_are_for_project_admins(client, make_user, login, project):
    from app.models import ProjectMembership

    member = make_user("member@example.com", "member")
    db.session.add(ProjectMembership(project_id=project.id, user_id=member.id, role="member"))
    db.session.commit()
    login("member@example.com")
    assert client.get("/projects/ENG/extensions").status_code == 403
    assert csrf_token(client)


def test_extension_page_redelivers_in_place(app, client, owner, login, project):
    from app.services.gateway import extensions
    from app.services.webhooks import delivery as webhook_delivery

    installed = extensions.install(owner, project, MANIFEST, url="https://ext.example.com")
    row = webhook_delivery.deliver(project.id, "https://ext.example.com/v/v1/webhooks/issue.created", "POST", {},
                                   {"id": "evt_1"}, "issue.created", "whsec_example-secret-value",
                                   installation_id=installed.installation.id, event_id="evt_1")
    login()
    url = f"/projects/ENG/extensions/{installed.installation.id}"
    assert f'hx-post="{url}/deliveries/{row.id}/redeliver"' in client.get(url).get_data(as_text=True)
    again = post_form(client, f"{url}/deliveries/{row.id}/redeliver", headers={"HX-Request": "true"})
    fragment = again.get_data(as_text=True)
    assert again.status_code == 200 and "Event evt_1 queued again." in fragment
    assert fragment.lstrip().startswith('<section id="extension-deliveries"') and "hx-target" in fragment
