"""Administration: members and invitations (organization owners and admins)."""

from flask import Blueprint, abort, render_template, request, url_for
from flask_login import current_user, login_required

from app.blueprints.admin.schemas import InvitationSchema
from app.blueprints.forms import load_form
from app.htmx import render_view
from app.services import accounts
from app.services.errors import Invalid

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
@login_required
def require_admin():
    if not current_user.is_org_admin:
        abort(403)


def _page(status: int = 200, **context):
    context.setdefault("form", {})
    context.setdefault("problems", {})
    context.setdefault("link", None)
    return render_view(
        "admin/index.html", "admin/_invitations.html", status=status,
        members=accounts.list_members(current_user), invitations=accounts.list_invitations(current_user), **context,
    )


@bp.route("/")
def index():
    return _page()


@bp.route("/invitations", methods=["POST"])
def create_invitation():
    form = {key: value for key, value in request.form.items() if value != ""}
    try:
        data = load_form(InvitationSchema(), form)
        _, token = accounts.create_invitation(current_user, data["email"], data["role"])
    except Invalid as error:
        return _page(422, form=request.form, problems=error.problems)
    return _page(link=url_for("auth.join", token=token, _external=True))
