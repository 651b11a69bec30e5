"""Projects: list, create from a template, project home, configuration and secrets."""

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.blueprints import layer_editor
from app.blueprints.forms import load_form
from app.blueprints.projects.schemas import ProjectSchema
from app.htmx import is_htmx, render_view
from app.kiket import bundled
from app.kiket.diagram import layout_workflow
from app.services import projects
from app.services.errors import Invalid, NotFound
from app.services.runtime import seeding, stranded
from app.services.sync import configuration, people, repositories
from app.services.webhooks import secrets

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
    return render_template("projects/new.html", templates=bundled.list_templates(), form={"sample_issues": "1"}, problems={})


@bp.route("/projects", methods=["POST"])
def create():
    try:
        data = load_form(ProjectSchema(), request.form)
        project = projects.create_project(
            current_user, data["key"], data["name"], data["description"], data["template"],
            seed=seeding.seed_issues_once if data["sample_issues"] else None,
        )
    except Invalid as error:
        return render_view(
            "projects/new.html", "projects/_form.html", status=422,
            templates=bundled.list_templates(), form=request.form, problems=error.problems,
        )
    # People an organization default's team.yaml names are in it from the start.
    people.apply_configured_team(project)
    target = url_for("projects.show", key=project.key)
    if is_htmx():
        return "", 204, {"HX-Redirect": target}
    return redirect(target, 303)


@bp.route("/projects/<key>")
def show(key: str):
    project = projects.get_project(current_user, key)
    template = next((t for t in bundled.list_templates() if t.key == project.template), None)
    config = configuration.project_config(project)
    role = projects.project_role(current_user, project)
    active = configuration.active_revision(project.id)
    return render_template(
        "projects/show.html", project=project, template=template, role=role,
        # Once a repository's revision is active, the template the project started from no longer shapes it.
        active_revision=active if active is not None and active.repository_id is not None else None,
        can_manage_secrets=secrets.can_manage(current_user, project),
        # The file's own name or key, told and never applied (§16), and issues with no place to run.
        identity_notes=[d for d in config.diagnostics if d.code in ("project_name_mismatch", "project_key_mismatch")],
        stranded=stranded.stranded_workflows(project) if role in ("owner", "admin") else [],
    )


def _overrides(project) -> layer_editor.LayerEditor:
    return layer_editor.LayerEditor(title="Project overrides", endpoint="projects.override",
                                    back_endpoint="projects.configuration", project=project, args={"key": project.key})


def _configuration_context(project) -> dict:
    return {
        "project": project,
        "config": configuration.project_config(project),
        "repository": repositories.repository_for_project(project.id),
        "active": configuration.active_revision(project.id),
        **layer_editor.listing(_overrides(project)),
    }


@bp.route("/projects/<key>/configuration", endpoint="configuration")
def configuration_page(key: str):
    project = projects.get_project(current_user, key)
    return render_template("projects/configuration.html", **_configuration_context(project))


@bp.route("/projects/<key>/configuration/workflows/<workflow_id>")
def workflow(key: str, workflow_id: str):
    project = projects.get_project(current_user, key)
    wf = configuration.project_config(project).workflows.get(workflow_id)
    if wf is None:
        raise NotFound(f"No workflow {workflow_id!r} in {project.key}.")
    return render_template(
        "repositories/workflow.html", workflow=wf, diagram=layout_workflow(wf), revision=None, project=project,
    )


@bp.route("/projects/<key>/configuration/overrides/new", endpoint="override_new")
def new_override(key: str):
    return layer_editor.new_file(_overrides(projects.get_project(current_user, key)))


@bp.route("/projects/<key>/configuration/overrides/files/<path:path>", endpoint="override_edit")
def edit_override(key: str, path: str):
    return layer_editor.edit_file(_overrides(projects.get_project(current_user, key)), path)


@bp.route("/projects/<key>/configuration/overrides/validate", methods=["POST"], endpoint="override_validate")
def validate_override(key: str):
    """Live diagnostics of an override being typed: the save's own check, nothing saved."""
    return layer_editor.validate_file(_overrides(projects.get_project(current_user, key)))


@bp.route("/projects/<key>/configuration/overrides", methods=["POST"], endpoint="override_save")
def save_override(key: str):
    """Save one project-override file; fatal problems keep the old one and come back with the text (422)."""
    return layer_editor.save_file(_overrides(projects.get_project(current_user, key)))


@bp.route("/projects/<key>/configuration/overrides/delete/<path:path>", methods=["GET", "POST"],
          endpoint="override_delete")
def delete_override(key: str, path: str):
    return layer_editor.delete_file(_overrides(projects.get_project(current_user, key)), path)


def _secrets_page(project, status: int = 200, **context):
    context.setdefault("form", {})
    context.setdefault("problems", {})
    context.setdefault("message", None)
    return render_view("projects/secrets.html", "projects/_secrets.html", status=status, project=project,
                       overview=secrets.overview(project), **context)


def _secrets_done(project, message: str):
    """After a change: the fresh list for HTMX, a 303 back to the page otherwise."""
    if is_htmx():
        return _secrets_page(project, message=message)
    return redirect(url_for("projects.secrets", key=project.key), 303)


@bp.route("/projects/<key>/secrets", endpoint="secrets")
def secrets_page(key: str):
    project = secrets.managed_project(current_user, key)
    return _secrets_page(project, form={"name": request.args.get("name", "")})


@bp.route("/projects/<key>/secrets", methods=["POST"])
def set_secret(key: str):
    """Create or replace one secret; the value is never sent back, not even after a refusal."""
    project = secrets.managed_project(current_user, key)
    name = request.form.get("name", "").strip()
    try:
        created = secrets.set_secret(project.id, name, request.form.get("value", ""), current_user.id)
    except Invalid as error:
        return _secrets_page(project, 422, form={"name": name}, problems=error.problems)
    return _secrets_done(project, f"{'Added' if created else 'Replaced'} {name}.")


@bp.route("/projects/<key>/secrets/<name>/delete", methods=["POST"])
def delete_secret(key: str, name: str):
    project = secrets.managed_project(current_user, key)
    secrets.delete_secret(project.id, name, current_user.id)
    return _secrets_done(project, f"Deleted {name}.")
