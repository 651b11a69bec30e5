"""Workflow Repositories dashboard: repositories, branch picker, sync status, runs, revisions, diff, rollback."""

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.blueprints.forms import load_form
from app.blueprints.repositories.schemas import RepositorySchema, SyncSchema
from app.htmx import is_htmx, render_view
from app.kiket.diagram import layout_workflow
from app.services import projects
from app.services.errors import Conflict, Invalid
from app.services.sync import configuration, repositories, revisions, runs

bp = Blueprint("repositories", __name__, url_prefix="/repositories")


@bp.before_request
@login_required
def require_login():
    """Every dashboard page needs an account; services check the project role."""


def _manageable_projects():
    return [p for p in projects.visible_projects(current_user) if repositories.can_manage(current_user, p)]


@bp.route("/")
def index():
    overview = repositories.repository_overview(current_user)
    connected = {line.repository.project_id for line in overview}
    unconnected = [p for p in projects.visible_projects(current_user) if p.id not in connected]
    return render_template(
        "repositories/index.html", overview=overview, unconnected=unconnected,
        manageable={p.id for p in _manageable_projects()},
    )


@bp.route("/new")
def new():
    form = {"project": request.args.get("project", ""), "branch": "main", "config_path": ".kiket"}
    return render_template("repositories/new.html", projects=_manageable_projects(), form=form, problems={})


@bp.route("/", methods=["POST"])
def create():
    try:
        data = load_form(RepositorySchema(), request.form)
        project = projects.get_project(current_user, data["project"])
        repository, secret = repositories.add_repository(
            project, data["url"], branch=data["branch"], config_path=data["config_path"],
            token=data["token"] or None, actor=current_user,
        )
    except (Invalid, Conflict) as error:
        problems = error.problems if isinstance(error, Invalid) else {"url": error.detail}
        return render_template("repositories/new.html", projects=_manageable_projects(), form=request.form, problems=problems), 422
    return render_template("repositories/created.html", repository=repository, secret=secret)


def _show_context(repository_id: int) -> dict:
    repository = repositories.get_repository(repository_id, current_user)
    recent = runs.list_sync_runs(repository.id)
    return {
        "repository": repository,
        "run": recent[0] if recent else None,
        "runs": recent,
        "revisions": revisions.list_revisions(repository.project_id),
        "active": configuration.active_revision(repository.project_id),
        "can_manage": repositories.can_manage(current_user, repository.project),
    }


@bp.route("/<int:repository_id>")
def show(repository_id: int):
    return render_template("repositories/show.html", **_show_context(repository_id))


@bp.route("/<int:repository_id>/branches")
def branch_picker(repository_id: int):
    repository = repositories.get_repository(repository_id, current_user)
    try:
        branches, problem = repositories.list_branches(repository.id, current_user), None
    except Conflict as error:
        branches, problem = [], error.detail
    if repository.branch not in branches:
        branches = [repository.branch, *branches]
    return render_template(
        "repositories/_branch_picker.html", repository=repository, branches=branches, problem=problem,
        can_manage=repositories.can_manage(current_user, repository.project),
    )


@bp.route("/<int:repository_id>/sync", methods=["POST"])
def sync_now(repository_id: int):
    data = load_form(SyncSchema(), request.form)
    run = runs.request_sync(repository_id, data["branch"], trigger="ui", actor=current_user)
    if is_htmx():
        return render_template("repositories/_sync_status.html", repository=run.repository, run=run,
                               active=configuration.active_revision(run.repository.project_id),
                               can_manage=repositories.can_manage(current_user, run.repository.project))
    return redirect(url_for("repositories.show", repository_id=repository_id), 303)


@bp.route("/<int:repository_id>/status")
def sync_status(repository_id: int):
    """The live status widget; it polls itself while a run is in flight and announces the end."""
    context = _show_context(repository_id)
    response = render_view("repositories/show.html", "repositories/_sync_status.html", **context)
    run = context["run"]
    if run is not None and not run.in_flight and request.args.get("was") == "running":
        response.headers["HX-Trigger"] = "kiket:sync-finished"
    return response


@bp.route("/<int:repository_id>/history")
def history(repository_id: int):
    return render_view("repositories/show.html", "repositories/_history.html", **_show_context(repository_id))


@bp.route("/runs/<int:run_id>/confirm", methods=["POST"])
def confirm(run_id: int):
    """Activate a revision held because it strands issues (§16)."""
    sync_run = runs.confirm_activation(run_id, current_user)
    target = url_for("repositories.show", repository_id=sync_run.repository_id)
    if is_htmx():
        return "", 204, {"HX-Redirect": target}
    return redirect(target, 303)


@bp.route("/runs/<int:run_id>")
def run(run_id: int):
    sync_run = runs.get_sync_run(run_id)
    repository = repositories.get_repository(sync_run.repository_id, current_user)  # project access check
    return render_template("repositories/run.html", run=sync_run, repository=repository,
                           seeds=runs.seed_outcome(sync_run),
                           can_manage=repositories.can_manage(current_user, repository.project))


def _source_page(lines: list[str], path: str, diagnostics: list[dict], commit_sha: str | None, back: str, back_label: str):
    """One file with its line numbers, the `?line=` one highlighted and its diagnostics inline."""
    return render_template(
        "repositories/source.html", lines=lines, path=path, commit_sha=commit_sha, back=back, back_label=back_label,
        diagnostics=[d for d in diagnostics if d.get("file") == path], highlight=request.args.get("line", type=int),
    )


@bp.route("/runs/<int:run_id>/source/<path:path>")
def run_source(run_id: int, path: str):
    lines = revisions.run_source(run_id, path, current_user)
    sync_run = runs.get_sync_run(run_id)
    return _source_page(lines, path, sync_run.diagnostics, sync_run.commit_sha,
                        url_for("repositories.run", run_id=run_id), f"Sync run #{run_id}")


@bp.route("/revisions/<int:revision_id>")
def revision(revision_id: int):
    return _revision_page(revision_id)


def _revision_page(revision_id: int, status: int = 200, would_strand=None):
    rev = revisions.get_revision(revision_id, current_user)
    config = configuration.revision_config(rev)
    if would_strand is None and request.args.get("confirm_rollback"):
        would_strand = revisions.stranded_by(revision_id, current_user)
    return render_template(
        "repositories/revision.html", revision=rev, config=config,
        files=revisions.revision_files(revision_id, current_user),
        can_manage=repositories.can_manage(current_user, rev.project), would_strand=would_strand or [],
    ), status


@bp.route("/revisions/<int:revision_id>/source/<path:path>")
def source(revision_id: int, path: str):
    rev = revisions.get_revision(revision_id, current_user)
    lines = revisions.revision_source(revision_id, path, current_user)
    return _source_page(lines, path, rev.diagnostics, rev.commit_sha,
                        url_for("repositories.revision", revision_id=revision_id), f"Revision {rev.short_sha}")


@bp.route("/revisions/<int:revision_id>/workflows/<workflow_id>")
def workflow(revision_id: int, workflow_id: str):
    rev = revisions.get_revision(revision_id, current_user)
    config = configuration.revision_config(rev)
    wf = config.workflows.get(workflow_id) or abort(404)
    return render_template(
        "repositories/workflow.html", workflow=wf, diagram=layout_workflow(wf), revision=rev, project=rev.project,
    )


@bp.route("/revisions/diff")
def diff():
    older, newer = request.args.get("older", type=int), request.args.get("newer", type=int)
    if not older or not newer:
        raise Invalid({"revision": "Choose two revisions to compare."})
    if older > newer:
        older, newer = newer, older
    comparison = revisions.diff_revisions(older, newer, current_user)
    return render_template("repositories/diff.html", comparison=comparison)


@bp.route("/revisions/<int:revision_id>/rollback", methods=["POST"])
def rollback(revision_id: int):
    rev = revisions.get_revision(revision_id, current_user)
    try:
        revisions.rollback(rev.project, revision_id, current_user, confirm=bool(request.form.get("confirm")))
    except revisions.WouldStrand as refusal:
        # Told before the rollback (§16): how many issues it would strand, and a button to go on anyway.
        if is_htmx():
            return "", 204, {"HX-Redirect": url_for("repositories.revision", revision_id=revision_id,
                                                    confirm_rollback=1)}
        return _revision_page(revision_id, 409, refusal.stranded)
    if request.form.get("confirm"):
        target = url_for("migrations.index", key=rev.project.key)
    elif rev.repository_id is not None and is_htmx():
        # In place, no reload: the history, and out of band the status card and the branch picker.
        context = _show_context(rev.repository_id)
        response = render_view("repositories/show.html", "repositories/_history.html", **context)
        response.set_data(response.get_data(as_text=True)
                          + render_template("repositories/_sync_status.html", oob=True, **context)
                          + render_template("repositories/_branch_picker_loader.html", oob=True, **context))
        return response
    elif rev.repository_id is None:
        return redirect(url_for("repositories.revision", revision_id=revision_id), 303)
    else:
        target = url_for("repositories.show", repository_id=rev.repository_id)
    if is_htmx():
        return "", 204, {"HX-Redirect": target}
    return redirect(target, 303)
