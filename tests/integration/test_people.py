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
    from app.services.sync import configuration

    # Layer rows of earlier tests had the same ids and versions (the tables restart): their cached configurations
    # must not stand in for this test's.
    configuration.clear_cache()
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


PEOPLE = "/projects/ENG/people"


def override_team() -> str | None:
    from app.models import ConfigLayer

    db.session.expire_all()
    row = db.session.scalar(select(ConfigLayer).where(ConfigLayer.path == "team.yaml",
                                                      ConfigLayer.scope.like("project:%")))
    return row.yaml_text if row else None


def row_of(html: str, identity: str) -> str:
    import re

    match = re.search(r'<tr id="person-\d+" data-identity="' + re.escape(identity) + r'">.*?</tr>', html, re.S)
    assert match, html
    return match.group(0)


def test_add_change_and_remove_a_member(app, client, project, make_user, login):
    make_user("bob@example.com", "member")
    page = client.get(PEOPLE).get_data(as_text=True)
    assert 'name="csrf_token"' in page and '<option value="bob@example.com">' in page
    owner_row = row_of(page, "ada@example.com")
    assert "made here" in owner_row and "everything (*)" in owner_row and "Remove" not in owner_row
    # The roles and what they grant, from the configuration.
    assert 'id="role-developer"' in page and "issue.transition" in page

    added = hx_post(client, PEOPLE, {"email": "Bob@example.com", "role": "developer"})
    html = added.get_data(as_text=True)
    assert added.status_code == 200 and "Added bob@example.com as developer." in html and "<html" not in html
    bob = row_of(html, "bob@example.com")
    assert "project override" in bob and 'href="/projects/ENG/configuration/overrides/files/team.yaml"' in bob
    assert ".kiket/team.yaml:" in bob and "issue.transition" in bob
    assert "bob@example.com" in override_team() and "developer" in override_team()
    assert memberships(project)["bob@example.com"] == "member"
    switch(client, login, "bob@example.com")
    assert client.get("/projects/ENG").status_code == 200
    assert client.get(PEOPLE).status_code == 403  # a member, not an admin

    switch(client, login, "ada@example.com")
    changed = hx_post(client, f"{PEOPLE}/role", {"identity": "bob@example.com", "role": "viewer"})
    assert changed.status_code == 200 and "is now viewer" in changed.get_data(as_text=True)
    assert "viewer" in override_team() and memberships(project)["bob@example.com"] == "viewer"
    promoted = hx_post(client, f"{PEOPLE}/role", {"identity": "bob@example.com", "role": "admin"})
    assert promoted.status_code == 200 and memberships(project)["bob@example.com"] == "admin"
    lowered = hx_post(client, f"{PEOPLE}/role", {"identity": "bob@example.com", "role": "developer"})
    assert lowered.status_code == 200 and memberships(project)["bob@example.com"] == "member"

    removed = hx_post(client, f"{PEOPLE}/remove", {"identity": "bob@example.com"})
    assert removed.status_code == 200 and "Removed bob@example.com" in removed.get_data(as_text=True)
    assert "bob@example.com" not in memberships(project) and "bob@example.com" not in override_team()
    switch(client, login, "bob@example.com")
    assert client.get("/projects/ENG").status_code == 404


def test_refusals_keep_everything_as_it_was(app, client, project, make_user):
    make_user("bob@example.com", "member")
    for data, field, text in (
        ({"email": "bob@example.com", "role": "owner"}, "role", "Choose one of the project&#39;s roles"),
        ({"email": "bob@example.com", "role": "nobody"}, "role", "Choose one of the project&#39;s roles"),
        ({"email": "not-an-email", "role": "developer"}, "email", "Enter an email address"),
        ({"email": "ada@example.com", "role": "developer"}, "email", "already in this project"),
    ):
        refused = hx_post(client, PEOPLE, data)
        assert refused.status_code == 422 and text in refused.get_data(as_text=True), (data, refused.get_data(as_text=True))
    assert override_team() is None and memberships(project) == {"ada@example.com": "owner"}
    # The owner stays owner and in the project.
    for url, data in ((f"{PEOPLE}/role", {"identity": "ada@example.com", "role": "viewer"}),
                      (f"{PEOPLE}/remove", {"identity": "ada@example.com"}),
                      (f"{PEOPLE}/remove", {"identity": "nobody@example.com"})):
        assert hx_post(client, url, data).status_code == 422
    assert override_team() is None and memberships(project) == {"ada@example.com": "owner"}


def test_inviting_an_email_gives_a_link_and_the_project_once_accepted(app, client, project, login):
    added = hx_post(client, PEOPLE, {"email": "new@example.com", "role": "developer"})
    html = added.get_data(as_text=True)
    assert added.status_code == 200 and "invited them to the organization" in html
    import re

    link = re.search(r'aria-label="Invitation link" readonly value="([^"]+)"', html).group(1)
    assert "invited, no account yet" in row_of(html, "new@example.com")
    post_form(client, "/logout")
    path = link.split("localhost", 1)[1]
    joined = post_form(client, path, {"email": "new@example.com", "name": "Newt", "password": "correct horse battery"})
    assert joined.status_code == 303, joined.get_data(as_text=True)
    assert client.get("/projects/ENG").status_code == 200
    assert memberships(project)["new@example.com"] == "member"


def test_sources_follow_the_precedence(app, client, project, make_user):
    make_user("bob@example.com", "member")
    make_user("cy@example.com", "member")
    default = "team:\n  members:\n    - {user: cy@example.com, roles: [reviewer]}\n    - {user: bob@example.com, roles: [viewer]}\n"
    assert hx_post(client, "/admin/defaults", {"new": "1", "path": "team.yaml", "yaml_text": default}).status_code == 200
    assert memberships(project) == {"ada@example.com": "owner", "bob@example.com": "viewer", "cy@example.com": "member"}
    hx_post(client, PEOPLE + "/role", {"identity": "bob@example.com", "role": "developer"})
    page = client.get(PEOPLE).get_data(as_text=True)
    cy, bob = row_of(page, "cy@example.com"), row_of(page, "bob@example.com")
    assert "organization default" in cy and 'href="/admin/defaults/files/team.yaml"' in cy and "Remove" not in cy
    assert "From the organization defaults" in cy
    # The override wins over the default for bob, and can be removed (the default's entry then shows again).
    assert "project override" in bob and "developer" in bob and memberships(project)["bob@example.com"] == "member"
    assert page.index('data-identity="bob@example.com"') < page.index('data-identity="cy@example.com"')
    assert hx_post(client, PEOPLE + "/remove", {"identity": "cy@example.com"}).status_code == 422
    assert "cy@example.com" in memberships(project)


def test_routes_refuse_members_and_strangers_and_need_csrf(app, client, project, make_user, login):
    make_user("bob@example.com", "member")
    make_user("eve@example.com", "member")
    cy = make_user("cy@example.com", "member")
    hx_post(client, PEOPLE, {"email": "bob@example.com", "role": "developer"})
    db.session.add(ProjectMembership(project_id=project.id, user_id=cy.id, role="admin"))
    db.session.commit()
    before = (override_team(), memberships(project))
    routes = [("get", PEOPLE, {}), ("post", PEOPLE, {"email": "eve@example.com", "role": "developer"}),
              ("post", f"{PEOPLE}/role", {"identity": "bob@example.com", "role": "viewer"}),
              ("post", f"{PEOPLE}/remove", {"identity": "bob@example.com"})]

    def status(method, url, data):
        if method == "get":
            return client.get(url).status_code
        return client.post(url, data={**data, "csrf_token": csrf_token(client)}, headers=HX).status_code

    for email, expected in (("bob@example.com", 403), ("eve@example.com", 404)):
        switch(client, login, email)
        assert [status(*route) for route in routes] == [expected] * len(routes), email
    assert (override_team(), memberships(project)) == before
    # Without the CSRF token nothing runs, even for an admin.
    switch(client, login, "cy@example.com")
    for _, url, data in routes[1:]:
        assert client.post(url, data=data, headers=HX).status_code == 400
    assert (override_team(), memberships(project)) == before
    # A project admin manages the project's people.
    assert status("get", PEOPLE, {}) == 200
    assert status("post", f"{PEOPLE}/role", {"identity": "bob@example.com", "role": "viewer"}) == 200


def test_organization_members_roles_and_removal(app, client, project, make_user, login):
    from app.models import OrganizationMembership, User

    make_user("bob@example.com", "member")
    make_user("cy@example.com", "admin")
    hx_post(client, PEOPLE, {"email": "bob@example.com", "role": "developer"})

    def member_id(email):
        db.session.expire_all()
        return db.session.scalar(select(OrganizationMembership.id).join(User).where(User.email == email))

    def roles():
        db.session.expire_all()
        return {m.user.email: m.role for m in db.session.scalars(select(OrganizationMembership))}

    page = client.get("/admin/").get_data(as_text=True)
    assert "<h1>Organization</h1>" in page and 'id="org-members"' in page and 'name="csrf_token"' in page
    assert 'id="invitations"' in page
    ada = member_id("ada@example.com")
    # The last owner stays owner, and in.
    refused = hx_post(client, f"/admin/members/{ada}/role", {"role": "admin"})
    assert refused.status_code == 422 and "last owner" in refused.get_data(as_text=True)
    assert hx_post(client, f"/admin/members/{ada}/remove", {}).status_code == 422
    assert hx_post(client, f"/admin/members/{member_id('bob@example.com')}/role", {"role": "boss"}).status_code == 422
    changed = hx_post(client, f"/admin/members/{member_id('cy@example.com')}/role", {"role": "owner"})
    assert changed.status_code == 200 and "is now owner" in changed.get_data(as_text=True)
    assert hx_post(client, f"/admin/members/{ada}/role", {"role": "member"}).status_code == 200  # cy owns it now
    assert roles() == {"ada@example.com": "member", "bob@example.com": "member", "cy@example.com": "owner"}

    # An admin changes plain members only; a member or a stranger to the route changes nothing.
    switch(client, login, "cy@example.com")
    assert hx_post(client, f"/admin/members/{ada}/role", {"role": "admin"}).status_code == 200
    switch(client, login, "ada@example.com")
    assert hx_post(client, f"/admin/members/{member_id('cy@example.com')}/remove", {}).status_code == 422
    assert hx_post(client, f"/admin/members/{member_id('bob@example.com')}/role", {"role": "admin"}).status_code == 422
    assert hx_post(client, "/admin/members/999/remove", {}).status_code == 404
    assert client.post(f"/admin/members/{member_id('bob@example.com')}/remove", headers=HX).status_code == 400  # no CSRF
    switch(client, login, "bob@example.com")
    assert client.get("/projects/ENG").status_code == 200
    for url in (f"/admin/members/{ada}/role", f"/admin/members/{ada}/remove"):
        assert hx_post(client, url, {"role": "member"}).status_code == 403
    assert roles()["ada@example.com"] == "admin"

    # Removed by an admin: the project closes and the session ends at once.
    bob = app.test_client()
    post_form(bob, "/login", {"email": "bob@example.com", "password": "correct horse battery"})
    assert bob.get("/projects/ENG").status_code == 200
    switch(client, login, "ada@example.com")
    removed = hx_post(client, f"/admin/members/{member_id('bob@example.com')}/remove", {})
    assert removed.status_code == 200 and "Removed bob@example.com from the organization." in removed.get_data(as_text=True)
    assert "bob@example.com" not in roles() and "bob@example.com" not in memberships(project)
    assert bob.get("/projects/ENG").status_code == 302  # signed out: to the login page


def test_a_repository_member_is_shown_read_only_with_its_file_and_line(app, client, project, make_user, tmp_path):
    import re

    from app.models import User
    from tests.support.fixture_projects import sync_remote
    from tests.support.sync_repos import new_remote

    make_user("bob@example.com", "member")
    team = "team:\n  members:\n    - {user: bob@example.com, roles: [developer]}\n"
    ada = db.session.scalar(select(User).where(User.email == "ada@example.com"))
    synced, _ = sync_remote(app, ada, new_remote(tmp_path, "team", {".kiket/team.yaml": team}), "REPO")
    assert memberships(synced)["bob@example.com"] == "member"
    page = client.get("/projects/REPO/people").get_data(as_text=True)
    bob = row_of(page, "bob@example.com")
    revision = re.search(r'href="/repositories/revisions/(\d+)/source/.kiket/team.yaml\?line=3#L3">.kiket/team.yaml:3</a>', bob)
    assert revision, bob
    assert "repository team.yaml" in bob and "Defined by the repository" in bob
    assert "<form" not in bob and "issue.transition" in bob
    source = client.get(f"/repositories/revisions/{revision.group(1)}/source/.kiket/team.yaml?line=3")
    assert source.status_code == 200 and "bob@example.com" in source.get_data(as_text=True)
    # Neither re-roled, removed nor added again here: the repository wins.
    for url, data in (("/projects/REPO/people/role", {"identity": "bob@example.com", "role": "viewer"}),
                      ("/projects/REPO/people/remove", {"identity": "bob@example.com"}),
                      ("/projects/REPO/people", {"email": "bob@example.com", "role": "viewer"})):
        refused = hx_post(client, url, data)
        assert refused.status_code == 422, url
    assert "repository team.yaml" in refused.get_data(as_text=True)
    assert memberships(synced)["bob@example.com"] == "member" and override_team() is None


def test_a_sync_that_drops_someone_from_team_yaml_ends_their_membership(app, client, project, make_user, tmp_path):
    from app.models import User
    from tests.support.fixture_projects import sync_again, sync_remote
    from tests.support.sync_repos import new_remote, push_change

    make_user("bob@example.com", "member")
    make_user("cy@example.com", "member")
    team = "team:\n  members:\n    - {user: bob@example.com, roles: [developer]}\n    - {user: cy@example.com, roles: [developer]}\n"
    ada = db.session.scalar(select(User).where(User.email == "ada@example.com"))
    remote = new_remote(tmp_path, "team", {".kiket/team.yaml": team})
    synced, repository = sync_remote(app, ada, remote, "REPO")
    assert {"bob@example.com", "cy@example.com"} <= memberships(synced).keys()
    push_change(remote, "main", ".kiket/team.yaml",
                "team:\n  members:\n    - {user: cy@example.com, roles: [developer]}\n", "Bob moved on")
    assert sync_again(app, repository.id).status == "active"
    after = memberships(synced)
    assert "bob@example.com" not in after and after["cy@example.com"] == "member"
    assert after["ada@example.com"] == "owner"


def test_a_new_project_takes_in_the_people_a_default_team_names(app, client, project, make_user, login):
    make_user("bob@example.com", "member")
    default = "team:\n  members:\n    - {user: bob@example.com, roles: [reviewer]}\n"
    assert hx_post(client, "/admin/defaults", {"new": "1", "path": "team.yaml", "yaml_text": default}).status_code == 200
    assert post_form(client, "/projects", {"key": "OPS", "name": "Operations", "template": "kanban"}).status_code == 303
    switch(client, login, "bob@example.com")
    assert client.get("/projects/OPS").status_code == 200 and client.get("/projects/ENG").status_code == 200
