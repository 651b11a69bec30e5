"""The account page's API tokens: create (shown once), list, revoke."""

from flask import Blueprint, redirect, request, url_for
from flask_login import current_user, login_required

from app.blueprints.forms import load_form
from app.htmx import is_htmx, render_view
from app.kiket.extensions import SCOPES
from app.services.errors import Invalid
from app.services.gateway import credentials

from .schemas import TokenSchema

bp = Blueprint("account", __name__)


@bp.before_request
@login_required
def require_login():
    """Every account page needs an account."""


def _render(status: int = 200, *, created=None, token=None, form=None, problems=None):
    return render_view("account/tokens.html", "account/_tokens.html", status=status,
                       tokens=credentials.personal_tokens(current_user), scopes=SCOPES, created=created, token=token,
                       form=form or {}, problems=problems or {})


@bp.route("/account/tokens")
def tokens():
    return _render()


@bp.route("/account/tokens", methods=["POST"])
def create_token():
    form = {"name": request.form.get("name", ""), "scopes": request.form.getlist("scopes")}
    try:
        data = load_form(TokenSchema(), request.form)
        key, token = credentials.create_personal_token(current_user, data["name"], request.form.getlist("scopes"))
    except Invalid as error:
        return _render(422, form=form, problems=error.problems)
    # The token exists only in this response: no redirect, so it is never in a URL or a later page.
    return _render(201, created=key, token=token)


@bp.route("/account/tokens/<int:key_id>/revoke", methods=["POST"])
def revoke_token(key_id: int):
    credentials.revoke_personal_token(current_user, key_id)
    if is_htmx():
        return _render()
    return redirect(url_for("account.tokens"), 303)
