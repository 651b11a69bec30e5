"""flask-login wiring: loading users from the session, and what anonymous requests get."""

from flask import Flask, redirect, request, url_for
from flask_login import AnonymousUserMixin

from app.extensions import db, login_manager
from app.htmx import is_htmx
from app.models import User


class Anonymous(AnonymousUserMixin):
    is_org_admin = False
    org_role = None
    membership = None


def init_app(app: Flask) -> None:
    login_manager.anonymous_user = Anonymous
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(user_id: str):
        # The id carries the session version: a password change ends other sessions.
        ident, _, version = user_id.partition(":")
        if not ident.isdigit() or not version.isdigit():
            return None
        user = db.session.get(User, int(ident))
        return user if user is not None and user.session_version == int(version) else None

    @login_manager.unauthorized_handler
    def unauthorized():
        login_url = url_for("auth.login", next=request.full_path if request.method == "GET" else None)
        if is_htmx() or request.headers.get("HX-Request") == "true":
            return "", 401, {"HX-Redirect": login_url}
        return redirect(login_url)
