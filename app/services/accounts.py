"""Sign-up, log-in, invitations and passwords."""

from __future__ import annotations

import functools
import hashlib
import secrets
from datetime import timedelta

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from app.extensions import db
from app.models import Invitation, Organization, OrganizationMembership, User
from app.models.accounts import ORG_ROLES
from app.models.base import utcnow
from app.services.errors import Conflict, Invalid, NotFound

MIN_PASSWORD_LENGTH = 10
INVITATION_SALT = "kiket.invitation"


def installation_is_empty() -> bool:
    """True until the first account exists: only then is open sign-up allowed."""
    return db.session.scalar(select(func.count()).select_from(User)) == 0


def the_organization() -> Organization | None:
    """The installation's organization (one per installation; created by the first sign-up)."""
    return db.session.scalar(select(Organization).order_by(Organization.id).limit(1))


def find_user(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalize_email(email)))


def normalize_email(email: str) -> str:
    return email.strip().lower()


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid({"password": f"Use at least {MIN_PASSWORD_LENGTH} characters."})


def _check_new_account(email: str, password: str) -> None:
    if "@" not in email or len(email) > 254:
        raise Invalid({"email": "Enter an email address like name@example.com."})
    if find_user(email) is not None:
        raise Invalid({"email": "An account with this email already exists; log in instead."})
    check_password_rules(password)


def _new_user(email: str, name: str, password: str) -> User:
    _check_new_account(email, password)
    user = User(email=normalize_email(email), name=name.strip())
    user.set_password(password)
    db.session.add(user)
    return user


def sign_up_first_user(email: str, name: str, password: str, organization_name: str) -> User:
    """Create the organization and its owner; refused once the installation has any account."""
    if not installation_is_empty():
        raise Conflict("This installation already has accounts; ask an administrator for an invitation.")
    organization = Organization(name=organization_name.strip() or "My organization")
    user = _new_user(email, name, password)
    db.session.add(OrganizationMembership(organization=organization, user=user, role="owner"))
    db.session.commit()
    return user


def create_user(email: str, password: str, org_role: str = "member", name: str = "") -> User:
    """Create an account in the installation's organization (CLI and demo)."""
    if org_role not in ORG_ROLES:
        raise Invalid({"org_role": f"Choose one of {', '.join(ORG_ROLES)}."})
    organization = the_organization()
    if organization is None:
        organization = Organization(name="My organization")
        org_role = "owner"
    user = _new_user(email, name, password)
    db.session.add(OrganizationMembership(organization=organization, user=user, role=org_role))
    db.session.commit()
    return user


@functools.cache
def _dummy_hash() -> str:
    return generate_password_hash(secrets.token_hex(8))


def authenticate(email: str, password: str) -> User | None:
    """The user whose email and password match, else None (same answer for both failures)."""
    user = find_user(email)
    if user is None:
        # Spend the same time as a real check, so response times do not reveal accounts.
        check_password_hash(_dummy_hash(), password)
        return None
    return user if user.check_password(password) else None


def change_password(user: User, current: str, new: str) -> None:
    """Replace the password after checking the current one; other sessions end."""
    if not user.check_password(current):
        raise Invalid({"current_password": "This is not your current password."})
    check_password_rules(new)
    user.set_password(new)  # a new session generation: other sessions end
    db.session.commit()


def reset_password(email: str, new: str) -> User:
    """Set a new password without the old one (command line); every session of the account ends."""
    user = find_user(email)
    if user is None:
        raise NotFound(f"No account has the email {email}.")
    check_password_rules(new)
    user.set_password(new)
    db.session.commit()
    return user


def sign_out_everywhere(user: User) -> None:
    """End every session and remember cookie of the user (logout, "sign out everywhere")."""
    user.revoke_sessions()
    db.session.commit()


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=INVITATION_SALT)


def _digest(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def create_invitation(actor: User, email: str | None, role: str) -> tuple[Invitation, str]:
    """Create an invitation; returns it with the token for the link (shown once, stored hashed)."""
    if not actor.is_org_admin:
        raise Invalid({"role": "Only owners and admins can invite people."})
    if role not in ("admin", "member"):
        raise Invalid({"role": "Invite as admin or member."})
    if role == "admin" and actor.org_role != "owner":
        raise Invalid({"role": "Only owners can invite admins."})
    nonce = secrets.token_urlsafe(24)
    max_age = current_app.config["KIKET_INVITATION_MAX_AGE"]
    invitation = Invitation(
        organization_id=actor.membership.organization_id,
        email=normalize_email(email) if email else None,
        role=role,
        nonce_hash=_digest(nonce),
        created_by=actor,
        expires_at=utcnow() + timedelta(seconds=max_age),
    )
    db.session.add(invitation)
    db.session.commit()
    token = _serializer().dumps({"id": invitation.id, "nonce": nonce})
    return invitation, token


def renew_invitation(actor: User, invitation_id: int) -> tuple[Invitation, str]:
    """A fresh link for an unused invitation (the old link stops working); e.g. for team.yaml members."""
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None or invitation.organization_id != actor.membership.organization_id:
        raise Invalid({"invitation": "No such invitation."})
    if invitation.accepted_at is not None:
        raise Invalid({"invitation": "This invitation has already been used."})
    if invitation.role == "admin" and actor.org_role != "owner":
        raise Invalid({"invitation": "Only owners can invite admins."})
    nonce = secrets.token_urlsafe(24)
    invitation.nonce_hash = _digest(nonce)
    invitation.expires_at = utcnow() + timedelta(seconds=current_app.config["KIKET_INVITATION_MAX_AGE"])
    db.session.commit()
    return invitation, _serializer().dumps({"id": invitation.id, "nonce": nonce})


def open_invitation(token: str) -> Invitation:
    """The invitation a link names, if it is still valid; else `Invalid` saying why."""
    max_age = current_app.config["KIKET_INVITATION_MAX_AGE"]
    try:
        payload = _serializer().loads(token, max_age=max_age)
    except SignatureExpired:
        raise Invalid({"token": "This invitation has expired; ask for a new one."}) from None
    except BadSignature:
        raise Invalid({"token": "This invitation link is not valid; check that you copied all of it."}) from None
    invitation = db.session.get(Invitation, payload.get("id")) if isinstance(payload, dict) else None
    if invitation is None or not secrets.compare_digest(invitation.nonce_hash, _digest(str(payload.get("nonce")))):
        raise Invalid({"token": "This invitation link is not valid; check that you copied all of it."})
    if invitation.accepted_at is not None:
        raise Invalid({"token": "This invitation has already been used; log in instead."})
    if invitation.expires_at <= utcnow():
        raise Invalid({"token": "This invitation has expired; ask for a new one."})
    return invitation


WRONG_RETURNING_PASSWORD = "You had an account here: enter that account's password to come back."


def accept_invitation(token: str, email: str, name: str, password: str) -> User:
    """Create the account an invitation allows and use the invitation up. Someone removed from the organization
    comes back with the account they had, by giving its password."""
    invitation = open_invitation(token)
    if invitation.email and normalize_email(email) != invitation.email:
        raise Invalid({"email": f"This invitation is for {invitation.email}."})
    returning = find_user(email)
    if returning is None or returning.membership is not None:
        _check_new_account(email, password)
    elif not returning.check_password(password):
        raise Invalid({"password": WRONG_RETURNING_PASSWORD})
    # Mark it used with a conditional update, so two concurrent accepts cannot both win.
    used = db.session.execute(
        db.update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.accepted_at.is_(None))
        .values(accepted_at=utcnow())
    )
    if used.rowcount != 1:
        db.session.rollback()
        raise Invalid({"token": "This invitation has already been used; log in instead."})
    user = returning or _new_user(email, name, password)
    db.session.flush()
    invitation.accepted_by_id = user.id
    db.session.add(OrganizationMembership(organization_id=invitation.organization_id, user=user, role=invitation.role))
    db.session.commit()
    return user


def list_invitations(actor: User) -> list[Invitation]:
    return list(
        db.session.scalars(
            select(Invitation)
            .where(Invitation.organization_id == actor.membership.organization_id)
            .order_by(Invitation.created_at.desc())
        )
    )


def list_members(actor: User) -> list[OrganizationMembership]:
    return list(
        db.session.scalars(
            select(OrganizationMembership)
            .where(OrganizationMembership.organization_id == actor.membership.organization_id)
            .order_by(OrganizationMembership.id)
        )
    )


def can_change_member(actor: User, membership: OrganizationMembership) -> bool:
    """Owners change anyone; admins only plain members (owners and admins are an owner's call)."""
    if not actor.is_org_admin or membership.user.kind != "person":
        return False
    return actor.org_role == "owner" or membership.role == "member"


def _managed_membership(actor: User, membership_id: int) -> OrganizationMembership:
    membership = db.session.get(OrganizationMembership, membership_id)
    if membership is None or actor.membership is None or membership.organization_id != actor.membership.organization_id:
        raise NotFound("No such member of your organization.")
    if not can_change_member(actor, membership):
        raise Invalid({"member": "Only owners can change or remove owners and admins."})
    return membership


def _check_not_last_owner(membership: OrganizationMembership) -> None:
    if membership.role != "owner":
        return
    owners = db.session.scalar(select(func.count()).select_from(OrganizationMembership).where(
        OrganizationMembership.organization_id == membership.organization_id, OrganizationMembership.role == "owner"))
    if owners <= 1:
        raise Invalid({"member": f"{membership.user.display_name} is the organization's last owner: make someone "
                                 "else owner first."})


def change_member_role(actor: User, membership_id: int, role: str) -> OrganizationMembership:
    """Give a member another organization role; only owners grant or take away owner and admin."""
    membership = _managed_membership(actor, membership_id)
    if role not in ORG_ROLES:
        raise Invalid({"role": "Choose owner, admin or member."})
    if role in ("owner", "admin") and actor.org_role != "owner":
        raise Invalid({"role": "Only owners can make someone an owner or admin."})
    if role != "owner":
        _check_not_last_owner(membership)
    membership.role = role
    db.session.commit()
    return membership


def remove_member(actor: User, membership_id: int) -> User:
    """Take someone out of the organization: its projects close to them and their sessions end at once."""
    from app.models import Project, ProjectMembership

    membership = _managed_membership(actor, membership_id)
    _check_not_last_owner(membership)
    user = membership.user
    for row in db.session.scalars(select(ProjectMembership).join(Project, Project.id == ProjectMembership.project_id)
                                  .where(ProjectMembership.user_id == user.id,
                                         Project.organization_id == membership.organization_id)):
        db.session.delete(row)
    db.session.delete(membership)
    user.revoke_sessions()
    db.session.commit()
    return user
