"""Workflow version migration (spec §3): preview where pinned issues go, choose targets, apply."""

from flask import Blueprint, render_template, request
from flask_login import current_user, login_required

from app.services import projects
from app.services.errors import Forbidden, Invalid
from app.services.runtime import workflow_migration

bp = Blueprint("migrations", __name__, url_prefix="/projects/<key>/migrations")


@bp.before_request
@login_required
def require_login():
    """Signed-in people only; project admins for the pages themselves."""


def _project(key: str):
    project = projects.get_project(current_user, key)
    if projects.project_role(current_user, project) not in ("owner", "admin"):
        raise Forbidden("Only project owners and admins migrate issues between workflow versions.")
    return project


def _choices() -> dict[str, str]:
    return {name[len("map-"):]: value for name, value in request.form.items() if name.startswith("map-") and value}


@bp.route("/<workflow_id>", methods=["GET", "POST"])
def show(key: str, workflow_id: str):
    project = _project(key)
    choices = _choices() if request.method == "POST" else {}
    problems: dict = {}
    result = None
    status = 200
    try:
        if request.method == "POST":
            result = workflow_migration.apply(project, workflow_id, choices, current_user)
        plan = workflow_migration.preview(project, workflow_id, choices if result is None else None)
    except Invalid as error:
        problems = error.problems
        status = 422
        plan = workflow_migration.preview(project, workflow_id)
    return render_template("migrations/show.html", project=project, plan=plan, choices=choices,
                           problems=problems, result=result), status
