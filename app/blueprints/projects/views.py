"""Projects: list, create from a template, project home."""

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.blueprints.forms import load_form
from app.blueprints.projects.schemas import ProjectSchema
from app.htmx import is_htmx, render_view
from app.kiket import bundled
from app.services import projects
from app.services.errors import Invalid

bp = Blueprint("projects", __name__)


@bp.before_request
@login_required
def require_login():
    """Every project page needs an account."""


@bp.route("/")
def home():
    return redirect(url_for("projects.index"))


@bp.route("/projects")
def index():
    return render_template("projects/index.html", projects=projects.visible_projects(current_user))


@bp.route("/projects/new")
def new():
    return render_template("projects/new.html", templates=bundled.list_templates(), form={}, problems={})


@bp.route("/projects", methods=["POST"])
def create():
    try:
        data = load_form(ProjectSchema(), request.form)
        project = projects.create_project(current_user, data["key"], data["name"], data["description"], data["template"])
    except Invalid as error:
        return render_view(
            "projects/new.html", "projects/_form.html", status=422,
            templates=bundled.list_templates(), form=request.form, problems=error.problems,
        )
    target = url_for("projects.show", key=project.key)
    if is_htmx():
        return "", 204, {"HX-Redirect": target}
    return redirect(target, 303)


@bp.route("/projects/<key>")
def show(key: str):
    project = projects.get_project(current_user, key)
    template = next((t for t in bundled.list_templates() if t.key == project.template), None)
    return render_template(
        "projects/show.html", project=project, template=template, role=projects.project_role(current_user, project)
    )
