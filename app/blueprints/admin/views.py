"""Administration: members and invitations (organization owners and admins)."""

from flask import Blueprint, abort, request, url_for
from flask_login import current_user, login_required

from app.blueprints.admin.schemas import InvitationSchema
from app.blueprints.forms import load_form
from app.blueprints.repositories.schemas import LayerFileSchema
from app.htmx import render_view
from app.services import accounts
from app.services.errors import Invalid
from app.services.sync import layers

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


@bp.route("/invitations/<int:invitation_id>/link", methods=["POST"])
def renew_invitation(invitation_id: int):
    try:
        _, token = accounts.renew_invitation(current_user, invitation_id)
    except Invalid as error:
        return _page(422, problems=error.problems)
    return _page(link=url_for("auth.join", token=token, _external=True))


def _defaults_page(status: int = 200, **editor):
    editor.setdefault("form", {})
    editor.setdefault("problems", {})
    editor.setdefault("diagnostics", [])
    editor.setdefault("saved", None)
    organization_id = current_user.membership.organization_id
    return render_view(
        "admin/defaults.html", "repositories/_layer_editor.html", status=status,
        layer_title="Organization defaults", layer_files=layers.list_layer_files(organization_id=organization_id),
        editor_action=url_for("admin.save_default"), can_manage=True, **editor,
    )


@bp.route("/defaults")
def defaults():
    return _defaults_page()


@bp.route("/defaults", methods=["POST"])
def save_default():
    """Save one organization-default file; it sits under every project's repository and overrides."""
    try:
        data = load_form(LayerFileSchema(), request.form)
        result = layers.save_layer_file(
            current_user, data["path"], data["yaml_text"], organization_id=current_user.membership.organization_id,
        )
    except Invalid as error:
        return _defaults_page(422, form=request.form, problems=error.problems)
    return _defaults_page(
        200 if result.saved else 422, form={} if result.saved else request.form,
        diagnostics=result.diagnostics, saved=result.saved,
    )
