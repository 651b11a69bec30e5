from datetime import timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Invitation, Organization, OrganizationMembership, User
from app.models.base import utcnow
from tests.conftest import post_form

PASSWORD = "correct horse battery"


def sign_up(client, email="ada@example.com", organization="Analytical Engines"):
    return post_form(client, "/signup", {"email": email, "name": "Ada", "password": PASSWORD, "organization": organization})


def invite(client, email=None, role="member") -> str:
    response = post_form(client, "/admin/invitations", {"email": email or "", "role": role}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'id="invitations"' in html and "<html" not in html
    start = html.index("http://localhost/join/")
    return html[start:html.index('"', start)].removeprefix("http://localhost")


def test_first_sign_up_creates_the_organization_and_its_owner(client):
    response = sign_up(client)
    assert response.status_code == 303
    user = db.session.scalar(select(User))
    assert user.email == "ada@example.com" and user.password_hash.startswith("scrypt:")
    assert user.org_role == "owner"
    assert db.session.scalar(select(Organization)).name == "Analytical Engines"
    assert client.get("/projects").status_code == 200


def test_sign_up_is_closed_once_anyone_has_an_account(client):
    sign_up(client)
    other = client.application.test_client()
    response = sign_up(other, email="mallory@example.com")
    assert response.status_code == 403
    assert db.session.scalar(select(db.func.count()).select_from(User)) == 1


def test_short_password_is_refused_with_the_rule(client):
    response = post_form(client, "/signup", {"email": "a@example.com", "password": "short"})
    assert response.status_code == 422
    assert "at least 10 characters" in response.get_data(as_text=True)
    assert db.session.scalar(select(User)) is None


def test_login_logout_and_wrong_password(client, make_user):
    make_user("ada@example.com")
    wrong = post_form(client, "/login", {"email": "ada@example.com", "password": "not the password"})
    assert wrong.status_code == 422
    assert "do not match" in wrong.get_data(as_text=True)
    unknown = post_form(client, "/login", {"email": "nobody@example.com", "password": PASSWORD})
    assert unknown.status_code == 422
    ok = post_form(client, "/login", {"email": "ADA@example.com", "password": PASSWORD, "next": "/projects/new"})
    assert ok.status_code == 303 and ok.headers["Location"] == "/projects/new"
    assert post_form(client, "/logout").status_code == 303
    assert client.get("/projects").status_code == 302


def test_login_never_redirects_off_site(client, make_user):
    make_user("ada@example.com")
    response = post_form(client, "/login", {"email": "ada@example.com", "password": PASSWORD, "next": "//evil.example/x"})
    assert response.headers["Location"] == "/projects"


def test_invited_person_joins_once(client, make_user, login):
    make_user("ada@example.com")
    login("ada@example.com")
    link = invite(client, "grace@example.com")
    newcomer = client.application.test_client()
    assert "Join" in newcomer.get(link).get_data(as_text=True)
    joined = post_form(newcomer, link, {"email": "grace@example.com", "name": "Grace", "password": PASSWORD})
    assert joined.status_code == 303
    grace = db.session.scalar(select(User).where(User.email == "grace@example.com"))
    assert grace.org_role == "member"
    again = client.application.test_client()
    reused = post_form(again, link, {"email": "grace2@example.com", "password": PASSWORD})
    assert reused.status_code == 410
    assert "already been used" in reused.get_data(as_text=True)


def test_invitation_for_an_address_refuses_another(client, make_user, login):
    make_user("ada@example.com")
    login("ada@example.com")
    link = invite(client, "grace@example.com")
    response = post_form(client.application.test_client(), link, {"email": "eve@example.com", "password": PASSWORD})
    assert response.status_code == 422
    assert db.session.scalar(select(User).where(User.email == "eve@example.com")) is None


def test_expired_and_tampered_invitations_are_refused(client, make_user, login):
    make_user("ada@example.com")
    login("ada@example.com")
    link = invite(client)
    tampered = client.application.test_client().get(link[:-3] + "xyz")
    assert tampered.status_code == 410 and "not valid" in tampered.get_data(as_text=True)
    invitation = db.session.scalar(select(Invitation))
    invitation.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    expired = client.application.test_client().get(link)
    assert expired.status_code == 410 and "expired" in expired.get_data(as_text=True)


@pytest.mark.parametrize("role", ["member"])
def test_members_cannot_invite(client, make_user, login, role):
    make_user("ada@example.com", "owner")
    make_user("bob@example.com", role)
    login("bob@example.com")
    response = post_form(client, "/admin/invitations", {"role": "member"})
    assert response.status_code == 403
    assert db.session.scalar(select(Invitation)) is None


def test_only_owners_invite_admins(client, make_user, login):
    make_user("ada@example.com", "owner")
    make_user("ann@example.com", "admin")
    login("ann@example.com")
    response = post_form(client, "/admin/invitations", {"role": "admin"})
    assert response.status_code == 422
    assert db.session.scalar(select(Invitation)) is None


def test_password_change_ends_other_sessions(client, make_user, login):
    make_user("ada@example.com")
    login("ada@example.com")
    other = client.application.test_client()
    post_form(other, "/login", {"email": "ada@example.com", "password": PASSWORD})
    assert other.get("/projects").status_code == 200
    response = post_form(client, "/account/password", {"current_password": PASSWORD, "new_password": "a much longer secret"})
    assert response.status_code == 200 and "has been changed" in response.get_data(as_text=True)
    assert client.get("/projects").status_code == 200
    assert other.get("/projects").status_code == 302
    wrong = post_form(client, "/account/password", {"current_password": PASSWORD, "new_password": "another long secret"})
    assert wrong.status_code == 422


def test_memberships_are_unique_per_organization(app, make_user):
    user = make_user("ada@example.com")
    db.session.add(OrganizationMembership(organization_id=user.membership.organization_id, user_id=user.id, role="admin"))
    with pytest.raises(Exception):
        db.session.commit()
    db.session.rollback()


def test_a_pending_invitation_gets_a_new_link_and_the_old_one_stops(client, make_user, login):
    make_user("ada@example.com")
    login("ada@example.com")
    old_link = invite(client, "grace@example.com")
    invitation = db.session.scalar(select(Invitation))
    response = post_form(client, f"/admin/invitations/{invitation.id}/link", headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    start = html.index("http://localhost/join/")
    new_link = html[start:html.index('"', start)].removeprefix("http://localhost")
    assert new_link != old_link
    stranger = client.application.test_client()
    assert stranger.get(old_link).status_code == 410
    joined = post_form(stranger, new_link, {"email": "grace@example.com", "password": PASSWORD})
    assert joined.status_code == 303
    used = post_form(client, f"/admin/invitations/{invitation.id}/link")
    assert used.status_code == 422 and "already been used" in used.get_data(as_text=True)


def test_a_removed_member_comes_back_through_a_new_invitation(client, make_user, login):
    make_user("ada@example.com")
    grace = make_user("grace@example.com", "member")
    login("ada@example.com")
    assert post_form(client, f"/admin/members/{grace.membership.id}/remove", {}).status_code == 200
    db.session.expire_all()
    assert grace.membership is None
    link = invite(client, "grace@example.com")

    returning = client.application.test_client()
    wrong = post_form(returning, link, {"email": "grace@example.com", "name": "Grace", "password": "not her password"})
    assert wrong.status_code == 422
    assert "enter that account&#39;s password" in wrong.get_data(as_text=True)
    assert db.session.scalar(select(Invitation).where(Invitation.email == "grace@example.com")).accepted_at is None
    back = post_form(returning, link, {"email": "grace@example.com", "name": "Grace", "password": PASSWORD})
    assert back.status_code == 303
    db.session.expire_all()
    assert db.session.scalar(select(db.func.count()).select_from(User).where(User.email == "grace@example.com")) == 1
    assert grace.org_role == "member"
    assert returning.get("/projects").status_code == 200


def test_a_member_of_the_organization_cannot_take_an_invitation_with_their_password(client, make_user, login):
    make_user("ada@example.com")
    make_user("grace@example.com", "member")
    login("ada@example.com")
    link = invite(client, "grace@example.com", role="admin")
    response = post_form(client.application.test_client(), link,
                         {"email": "grace@example.com", "name": "Grace", "password": PASSWORD})
    assert response.status_code == 422 and "already exists" in response.get_data(as_text=True)
    assert db.session.scalar(select(User).where(User.email == "grace@example.com")).org_role == "member"
