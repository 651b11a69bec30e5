"""Administration: members and invitations (organization owners and admins)."""

from flask import Blueprint, abort, render_template, request, url_for
from flask_login import current_user, login_required

from app.blueprints import layer_editor
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
    context.setdefault("member_problems", {})
    context.setdefault("member_message", None)
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


def _members(status: int = 200, **context):
    context.setdefault("member_problems", {})
    context.setdefault("member_message", None)
    return render_view("admin/index.html", "admin/_members.html", status=status, form={}, problems={}, link=None,
                       members=accounts.list_members(current_user), invitations=accounts.list_invitations(current_user),
                       **context)


@bp.route("/members/<int:membership_id>/role", methods=["POST"])
def change_member_role(membership_id: int):
    """Change someone's organization role (owners for owners and admins; never the last owner away)."""
    try:
        membership = accounts.change_member_role(current_user, membership_id, request.form.get("role", ""))
    except Invalid as error:
        return _members(422, member_problems=error.problems)
    return _members(member_message=f"{membership.user.display_name} is now {membership.role}.")


@bp.route("/members/<int:membership_id>/remove", methods=["POST"])
def remove_member(membership_id: int):
    """Take someone out of the organization: every project closes to them and their sessions end."""
    try:
        user = accounts.remove_member(current_user, membership_id)
    except Invalid as error:
        return _members(422, member_problems=error.problems)
    return _members(member_message=f"Removed {user.display_name} from the organization.")


def _defaults() -> layer_editor.LayerEditor:
    return layer_editor.LayerEditor(title="Organization defaults", endpoint="admin.default",
                                    back_endpoint="admin.defaults",
                                    organization_id=current_user.membership.organization_id)


@bp.route("/defaults")
def defaults():
    return render_template("admin/defaults.html", **layer_editor.listing(_defaults()))


@bp.route("/defaults/new", endpoint="default_new")
def new_default():
    return layer_editor.new_file(_defaults())


@bp.route("/defaults/files/<path:path>", endpoint="default_edit")
def edit_default(path: str):
    return layer_editor.edit_file(_defaults(), path)


@bp.route("/defaults/validate", methods=["POST"], endpoint="default_validate")
def validate_default():
    """Live diagnostics of a default being typed: the save's own check, nothing saved."""
    return layer_editor.validate_file(_defaults())


@bp.route("/defaults", methods=["POST"], endpoint="default_save")
def save_default():
    """Save one organization-default file; it sits under every project's repository and overrides."""
    return layer_editor.save_file(_defaults())


@bp.route("/defaults/delete/<path:path>", methods=["GET", "POST"], endpoint="default_delete")
def delete_default(path: str):
    return layer_editor.delete_file(_defaults(), path)
