"""The project secrets page: owners and admins set, replace and delete secrets by name; values never come back,
every change needs the CSRF token and lands in the audit trail; webhooks' `${env.NAME}` references are shown."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.conftest import post_form
from tests.support.issue_events import save_override

VALUE = "s3cr3t-value-never-shown"
OTHER_VALUE = "an0ther-value-never-shown"

AUTOMATION = """model_version: "1.0"
automations:
  - id: tell-ops
    name: Tell ops
    trigger: comment.created
    actions:
      - type: webhook
        url: "${env.OPS_HOOK_URL}/comments"
        headers: {Authorization: "Bearer ${env.OPS_TOKEN}"}
"""


@pytest.fixture
def project(app, make_user):
    """OPS, owned by ada; bob is a project admin, carol a member, dave an organization member outside it."""
    from app.extensions import db
    from app.models import ProjectMembership
    from app.services import projects

    ada = make_user("ada@example.com", "owner")
    project = projects.create_project(ada, "OPS", "Operations", "", "kanban")
    for email, role in (("bob@example.com", "admin"), ("carol@example.com", "member")):
        user = make_user(email, "member")
        db.session.add(ProjectMembership(project_id=project.id, user_id=user.id, role=role))
    make_user("dave@example.com", "member")
    db.session.commit()
    return project


def stored(project) -> dict[str, str]:
    from app.extensions import db
    from app.services.webhooks import secrets

    db.session.expire_all()
    return secrets.secrets_for(project.id)


def body_of(response) -> str:
    text = response.get_data(as_text=True)
    assert VALUE not in text and OTHER_VALUE not in text
    return text


SECRET_URLS = [("get", "/projects/OPS/secrets"), ("post", "/projects/OPS/secrets"),
               ("post", "/projects/OPS/secrets/OPS_TOKEN/delete")]


@pytest.mark.parametrize(("method", "url"), SECRET_URLS)
def test_strangers_get_404_and_members_403(client, login, project, method, url):
    from app.services.webhooks import secrets

    secrets.set_secret(project.id, "OPS_TOKEN", VALUE, None)
    for email, status in (("dave@example.com", 404), ("carol@example.com", 403)):
        login(email)
        if method == "get":
            response = client.get(url)
        else:
            response = post_form(client, url, {"name": "OPS_TOKEN", "value": OTHER_VALUE})
        assert response.status_code == status, (email, response.status_code)
        body_of(response)
        post_form(client, "/logout")
    assert stored(project) == {"OPS_TOKEN": VALUE}


@pytest.mark.parametrize("email", ["ada@example.com", "bob@example.com"])
def test_owners_and_admins_see_the_page_and_its_link(client, login, project, email):
    login(email)
    response = client.get("/projects/OPS/secrets")
    assert response.status_code == 200 and "No secrets yet." in response.get_data(as_text=True)
    assert "/projects/OPS/secrets" in client.get("/projects/OPS").get_data(as_text=True)
    assert "/projects/OPS/secrets" in client.get("/projects/OPS/configuration").get_data(as_text=True)


def test_members_get_no_link(client, login, project):
    login("carol@example.com")
    assert "/projects/OPS/secrets" not in client.get("/projects/OPS").get_data(as_text=True)


def test_set_replace_and_delete_never_show_the_value(client, login, project):
    from app.extensions import db
    from app.models import AuditEvent

    login("bob@example.com")
    added = post_form(client, "/projects/OPS/secrets", {"name": "OPS_TOKEN", "value": VALUE})
    assert added.status_code == 303 and added.headers["Location"] == "/projects/OPS/secrets"
    assert stored(project) == {"OPS_TOKEN": VALUE}
    page = body_of(client.get("/projects/OPS/secrets"))
    assert 'id="secret-OPS_TOKEN"' in page and "by bob@example.com" in page

    replaced = post_form(client, "/projects/OPS/secrets", {"name": "OPS_TOKEN", "value": OTHER_VALUE},
                         headers={"HX-Request": "true"})
    fragment = body_of(replaced)
    assert replaced.status_code == 200 and 'id="secrets"' in fragment and "<html" not in fragment
    assert "HX-Request" in replaced.headers["Vary"] and "Replaced OPS_TOKEN." in fragment
    assert stored(project) == {"OPS_TOKEN": OTHER_VALUE}

    deleted = post_form(client, "/projects/OPS/secrets/OPS_TOKEN/delete", headers={"HX-Request": "true"})
    fragment = body_of(deleted)
    assert "Deleted OPS_TOKEN." in fragment and 'id="secret-OPS_TOKEN"' not in fragment
    assert stored(project) == {}
    assert post_form(client, "/projects/OPS/secrets/OPS_TOKEN/delete").status_code == 404

    events = list(db.session.scalars(select(AuditEvent).where(AuditEvent.kind.like("secret.%"))
                                     .order_by(AuditEvent.seq)))
    assert [(e.kind, e.data) for e in events] == [
        ("secret.set", {"name": "OPS_TOKEN", "created": True}), ("secret.set", {"name": "OPS_TOKEN", "created": False}),
        ("secret.deleted", {"name": "OPS_TOKEN"})]
    assert all(VALUE not in str(e.data) and OTHER_VALUE not in str(e.data) for e in events)


@pytest.mark.parametrize("name", ["ops_token", "1TOKEN", "OPS-TOKEN", "", "A" * 65])
def test_invalid_names_come_back_with_the_rule_and_without_the_value(client, login, project, name):
    login("ada@example.com")
    response = post_form(client, "/projects/OPS/secrets", {"name": name, "value": VALUE},
                         headers={"HX-Request": "true"})
    assert response.status_code == 422
    fragment = body_of(response)
    assert 'id="secrets"' in fragment and "Use upper-case letters A-Z, digits and _" in fragment
    assert stored(project) == {}


def test_an_empty_value_is_refused(client, login, project):
    login("ada@example.com")
    response = post_form(client, "/projects/OPS/secrets", {"name": "OPS_TOKEN", "value": ""})
    assert response.status_code == 422 and "Enter a value of 1 to 8192 characters." in body_of(response)
    assert stored(project) == {}


def test_without_the_csrf_token_nothing_changes(client, login, project):
    from app.services.webhooks import secrets

    secrets.set_secret(project.id, "OPS_TOKEN", VALUE, None)
    login("ada@example.com")
    for url, data in (("/projects/OPS/secrets", {"name": "OPS_TOKEN", "value": OTHER_VALUE}),
                      ("/projects/OPS/secrets/OPS_TOKEN/delete", {})):
        assert client.post(url, data=data).status_code == 400
        assert client.post(url, data=data, headers={"HX-Request": "true", "X-CSRFToken": "forged"}).status_code == 400
    assert stored(project) == {"OPS_TOKEN": VALUE}


def test_references_from_webhooks_and_missing_names_are_shown(client, login, project):
    from app.extensions import db
    from app.models import User
    from app.services.webhooks import secrets

    ada = db.session.scalar(select(User).where(User.email == "ada@example.com"))
    save_override(ada, project, "automations/ops.yaml", AUTOMATION)
    secrets.set_secret(project.id, "OPS_TOKEN", VALUE, ada.id)
    login("ada@example.com")
    page = body_of(client.get("/projects/OPS/secrets"))
    row = page.split('id="secret-OPS_TOKEN"', 1)[1].split("</tr>", 1)[0]
    assert "automation tell-ops" in row
    missing = page.split('class="notice warn missing-secrets"', 1)[1].split("</div>", 1)[0]
    assert "OPS_HOOK_URL" in missing and "automation tell-ops" in missing and "OPS_TOKEN" not in missing
    assert "1 webhook action(s) are sent unsigned" in page
    secrets.set_secret(project.id, "WEBHOOK_SECRET", OTHER_VALUE, ada.id)
    page = body_of(client.get("/projects/OPS/secrets"))
    assert "signs every webhook" in page and "sent unsigned" not in page
