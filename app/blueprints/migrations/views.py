"""Workflow migrations: issues pinned to older workflow versions (spec §3), and issues stranded on a workflow the
active configuration lacks (§16). Preview where they go, change any choice, apply."""

from flask import Blueprint, render_template, request
from flask_login import current_user, login_required

from app.services import projects
from app.services.errors import Forbidden, Invalid
from app.services.runtime import stranded, workflow_migration
from app.services.sync import configuration

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


def _choices(prefix: str) -> dict[str, str]:
    return {name[len(prefix):]: value for name, value in request.form.items() if name.startswith(prefix) and value}


@bp.route("/")
def index(key: str):
    project = _project(key)
    return render_template("migrations/index.html", project=project, stranded=stranded.stranded_workflows(project),
                           workflows=configuration.project_config(project).workflows)


@bp.route("/<workflow_id>", methods=["GET", "POST"])
def show(key: str, workflow_id: str):
    project = _project(key)
    if workflow_id not in configuration.project_config(project).workflows:
        return _stranded(project, workflow_id)
    choices = _choices("map-") if request.method == "POST" else {}
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


def _stranded(project, workflow_id: str):
    """Issues on a workflow the active configuration lacks: the mapping, "Preview" recomputes it, "Apply" moves."""
    choices = _choices("") if request.method == "POST" else {}
    choices = {k: v for k, v in choices.items() if k.startswith(("type:", "map:"))}
    if request.method == "POST" and request.form.get("action") == "apply":
        try:
            result = stranded.apply(project, workflow_id, choices, current_user)
        except Invalid as error:
            return render_template("migrations/stranded.html", project=project, plan=None, result=None,
                                   problems=error.problems, workflow_id=workflow_id), 422
        return render_template("migrations/stranded.html", project=project, plan=None, result=result, problems={},
                               workflow_id=workflow_id)
    try:
        plan = stranded.preview(project, workflow_id, choices)
    except Invalid as error:
        return render_template("migrations/stranded.html", project=project, plan=stranded.preview(project, workflow_id),
                               result=None, problems=error.problems, workflow_id=workflow_id), 422
    return render_template("migrations/stranded.html", project=project, plan=plan, result=None, problems={},
                           workflow_id=workflow_id)
