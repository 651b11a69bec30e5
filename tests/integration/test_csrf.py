"""Every state-changing request needs the CSRF token; without it nothing changes."""

from sqlalchemy import func, select

from app.extensions import db
from app.models import Invitation, Project, User


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_sign_up_without_token_gets_400_and_creates_nothing(client):
    response = client.post("/signup", data={"email": "a@example.com", "password": "correct horse battery"})
    assert response.status_code == 400
    assert count(User) == 0


def test_htmx_post_without_header_changes_nothing(client, make_user, login):
    make_user("ada@example.com")
    login("ada@example.com")
    response = client.post(
        "/projects", data={"key": "ENG", "name": "Engineering", "template": "kanban"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 400
    assert count(Project) == 0
    forged = client.post("/admin/invitations", data={"role": "member"}, headers={"X-CSRFToken": "forged"})
    assert forged.status_code == 400
    assert count(Invitation) == 0


def test_htmx_post_with_header_token_works(client, make_user, login):
    from tests.conftest import csrf_token

    make_user("ada@example.com")
    login("ada@example.com")
    response = client.post(
        "/projects", data={"key": "ENG", "name": "Engineering", "template": "kanban"},
        headers={"HX-Request": "true", "X-CSRFToken": csrf_token(client)},
    )
    assert response.status_code == 204 and response.headers["HX-Redirect"] == "/projects/ENG"
    assert count(Project) == 1
