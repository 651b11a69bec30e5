"""People and access: who is in a project and why, adding, re-roling and removing them, and the organization page."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Project, ProjectMembership
from tests.conftest import csrf_token, post_form

HX = {"HX-Request": "true"}
OVERRIDES = "/projects/ENG/configuration/overrides"


@pytest.fixture
def project(make_user, login, client):
    make_user("ada@example.com", "owner")
    login("ada@example.com")
    assert post_form(client, "/projects", {"key": "ENG", "name": "Engineering", "template": "kanban"}).status_code == 303
    return db.session.scalar(select(Project))


def hx_post(client, url, data):
    return client.post(url, data={**data, "csrf_token": csrf_token(client)}, headers=HX)


def switch(client, login, email):
    post_form(client, "/logout")
    login(email)


def memberships(project) -> dict[str, str]:
    db.session.expire_all()
    return {m.user.email: m.role for m in db.session.scalars(
        select(ProjectMembership).where(ProjectMembership.project_id == project.id))}


def test_a_team_override_naming_a_member_opens_a_template_project_to_them(app, client, project, make_user, login):
    make_user("bob@example.com", "member")
    text = "team:\n  members:\n    - {user: bob@example.com, roles: [developer]}\n"
    saved = hx_post(client, OVERRIDES, {"new": "1", "path": "team.yaml", "yaml_text": text})
    assert saved.status_code == 200, saved.get_data(as_text=True)
    switch(client, login, "bob@example.com")
    assert client.get("/projects/ENG").status_code == 200
    assert memberships(project)["bob@example.com"] == "member"
    # Taking them out of the override closes the project again.
    switch(client, login, "ada@example.com")
    assert post_form(client, f"{OVERRIDES}/delete/team.yaml").status_code == 303
    switch(client, login, "bob@example.com")
    assert client.get("/projects/ENG").status_code == 404
    assert "bob@example.com" not in memberships(project)
