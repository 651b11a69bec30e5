"""Issue pages: list, create, the detail page with inline edits, transitions, comments, checklists,
approvals, automation runs awaiting approval, attachments and watchers. Views parse, call one service and
render; services decide access."""

from __future__ import annotations

from flask import Blueprint, redirect, request, send_file, url_for
from flask_login import current_user, login_required
from markdown_it import MarkdownIt
from markupsafe import Markup
from marshmallow import Schema, ValidationError

from app.blueprints.automation_decisions import decide_from_form
from app.blueprints.live.views import live_since
from app.extensions import db
from app.htmx import is_htmx, render_view
from app.models.issues import Issue
from app.services import projects
from app.services.errors import Conflict, Forbidden, Invalid, NotFound
from app.services.runtime import access, automation_runs, issue_page, issue_queries, issues, transitions
from app.services.runtime.effects import gated_runs
from app.services.sync import configuration
from app.template_filters import markdown_link

from .schemas import (
    ApprovalSchema, ChecklistTickSchema, CommentSchema, ForceSchema, IssueFilterSchema, IssueSchema, TransitionSchema,
    WatchSchema,
)

bp = Blueprint("issues", __name__)

# "js-default": CommonMark without raw HTML.
_markdown = MarkdownIt("js-default")
# Tighter than markdown-it's own check (which lets ftp:, data:image and any unknown scheme through): http(s),
# mailto and links within the site only; any other link stays text.
_markdown.validateLink = markdown_link
STANDARD_EDITABLE = ("title", "description", "priority", "assignee", "labels", "due_date")


@bp.before_request
@login_required
def require_login():
    """Every issue page needs an account."""


@bp.app_template_filter("markdown")
def render_markdown(source: str | None) -> Markup:
    """Markdown rendered with raw HTML disabled (it shows as text) and unsafe link schemes refused."""
    return Markup(_markdown.render(source or ""))


def _load(schema: Schema, source) -> dict:
    """Parse a form or query string with a schema; empty inputs count as absent."""
    data = {key: source.get(key) for key in schema.fields if source.get(key) not in (None, "")}
    try:
        return schema.load(data)
    except ValidationError as error:
        raise Invalid({name: " ".join(msgs) if isinstance(msgs, list) else str(msgs)
                       for name, msgs in error.messages.items()}) from None


def _custom_field_values(itype, form) -> dict:
    """Custom field inputs (`cf.<key>`) as submitted; the service types and checks them."""
    values = {}
    for fdef in itype.fields if itype else ():
        name = f"cf.{fdef.key}"
        if fdef.type == "multi_enum":
            values[fdef.key] = [v for v in form.getlist(name) if v]
        elif fdef.type == "boolean":
            values[fdef.key] = "true" if "true" in form.getlist(name) else "false"
        elif name in form:
            values[fdef.key] = form.get(name, "")
    return values


# List


@bp.route("/projects/<key>/issues")
def index(key: str):
    project = projects.get_project(current_user, key)
    try:
        filters = _load(IssueFilterSchema(), request.args)
    except Invalid:
        filters = IssueFilterSchema().load({})
    results = issue_queries.list_issues(current_user, project, state=filters["state"], issue_type=filters["type"],
                                        assignee=filters["assignee"], label=filters["label"], text=filters["text"],
                                        page=filters["page"])
    config = configuration.project_config(project)
    return render_view("issues/index.html", "issues/_list.html", project=project, results=results, filters=filters,
                       config=config, states=_all_states(config), members=issue_queries.members(project))


def _all_states(config) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for workflow in config.workflows.values():
        for state in workflow.states.values():
            seen.setdefault(state.key, state.label)
    return list(seen.items())


# Create


def _form_context(project, form, problems):
    config = configuration.project_config(project)
    types = issues.creatable_types(config)
    chosen = form.get("issue_type") or form.get("type") or (types[0].key if types else "")
    itype = config.issue_types.get(chosen)
    return {"project": project, "config": config, "types": types, "itype": itype, "form": form,
            "problems": problems, "members": issue_queries.members(project)}


@bp.route("/projects/<key>/issues/new")
def new(key: str):
    project = projects.get_project(current_user, key)
    access.require_project_permission(current_user, project, "issue.create", "create issues")
    return render_view("issues/new.html", "issues/_form.html", **_form_context(project, request.args, {}))


@bp.route("/projects/<key>/issues", methods=["POST"])
def create(key: str):
    project = projects.get_project(current_user, key)
    try:
        data = _load(IssueSchema(), request.form)
        itype = configuration.project_config(project).issue_types.get(data["issue_type"])
        parent_id = None
        if data["parent"] is not None:
            try:
                parent_id = issue_queries.get_issue(current_user, project.key, data["parent"]).id
            except NotFound:
                raise Invalid({"parent": f"No issue {project.key}-{data['parent']}."}) from None
        issue = issues.create_issue(
            project, current_user, issue_type=data["issue_type"], title=data["title"],
            description=data["description"], priority=data["priority"], assignee_id=data["assignee_id"],
            labels=data["labels"], due_date=data["due_date"], custom_fields=_custom_field_values(itype, request.form),
            parent_id=parent_id,
        )
    except Invalid as error:
        return render_view("issues/new.html", "issues/_form.html", status=422,
                           **_form_context(project, request.form, error.problems))
    target = url_for("issues.show", key=project.key, number=issue.number)
    if is_htmx():
        return "", 204, {"HX-Redirect": target}
    return redirect(target, 303)


# Detail


def _issue(key: str, number: int) -> Issue:
    return issue_queries.get_issue(current_user, key, number)


def _pending_runs(issue: Issue, message: str | None = None) -> dict:
    """The issue's automation runs awaiting approval, and whether the signed-in person may decide them."""
    runs = automation_runs.awaiting_approval([issue.project_id], issue_id=issue.id)
    return {"pending_runs": runs, "run_message": message,
            "can_decide_runs": bool(runs) and gated_runs.can_decide_runs(current_user, issue.project)}


def _show(issue: Issue, status: int = 200, *, problems: dict | None = None, message: str | None = None,
          verdict=None, run_message: str | None = None, live_since: str = ""):
    view = issue_page.issue_view(current_user, issue)
    response = render_view("issues/show.html", "issues/_issue.html", status=status, view=view,
                           problems=problems or {}, message=message, verdict=verdict, live_since=live_since,
                           **_pending_runs(issue, run_message))
    if is_htmx() and status != 200:
        # A refusal re-renders the whole issue, wherever the request came from.
        response.headers["HX-Retarget"] = f"#issue-{issue.id}"
        response.headers["HX-Reswap"] = "outerHTML"
    return response


def _done(issue: Issue):
    """After a successful change: the fresh issue fragment for HTMX, a 303 to the page otherwise."""
    if is_htmx():
        return _show(issue)
    return redirect(url_for("issues.show", key=issue.project.key, number=issue.number), 303)


def _mutate(issue: Issue, change):
    """Run a change; refusals come back as the issue with the reasons (422) or a conflict notice (409)."""
    try:
        change()
    except transitions.TransitionBlocked as blocked:
        return _show(_reload(issue), 422, problems=blocked.problems, verdict=blocked.verdict)
    except Invalid as error:
        return _show(_reload(issue), 422, problems=error.problems)
    except Conflict as conflict:
        return _show(_reload(issue), 409, message=conflict.detail)
    return _done(_reload(issue))


def _reload(issue: Issue) -> Issue:
    from app.extensions import db

    db.session.rollback()
    db.session.expire_all()
    return db.session.get(Issue, issue.id)


@bp.route("/projects/<key>/issues/<int:number>")
def show(key: str, number: int):
    issue = _issue(key, number)
    since = live_since(issue.project_id)
    db.session.expire(issue)  # what the page shows is read after the live sequence number
    return _show(issue, live_since=since)


@bp.route("/projects/<key>/issues/<int:number>/fields/<path:field>")
def field_value(key: str, number: int, field: str):
    view = issue_page.issue_view(current_user, _issue(key, number))
    return render_view("issues/show.html", "issues/_field_value.html", view=view, field=_field(view, field),
                       problems={}, message=None, verdict=None, **_pending_runs(view.issue))


@bp.route("/projects/<key>/issues/<int:number>/fields/<path:field>/edit")
def field_form(key: str, number: int, field: str):
    view = issue_page.issue_view(current_user, _issue(key, number))
    if not view.can_update:
        raise Forbidden("You cannot edit issues in this project.")
    return render_view("issues/show.html", "issues/_field_form.html", view=view, field=_field(view, field),
                       form={}, problems={}, message=None, verdict=None, **_pending_runs(view.issue))


def _field(view, name: str) -> dict:
    """What the inline editor needs to know about a field: its name, label and custom definition."""
    if name in STANDARD_EDITABLE:
        return {"name": name, "label": name.replace("_", " ").capitalize(), "fdef": None, "dom": name}
    if name.startswith("custom_fields."):
        fdef = next((f for f in view.fields if f.key == name.split(".", 1)[1]), None)
        if fdef is not None:
            return {"name": name, "label": fdef.label, "fdef": fdef, "dom": name.replace(".", "-")}
    raise NotFound(f"No field {name!r} to edit.")


@bp.route("/projects/<key>/issues/<int:number>", methods=["POST"])
def update(key: str, number: int):
    issue = _issue(key, number)
    name = request.form.get("field", "")
    lock_version = request.form.get("lock_version", type=int)
    view = issue_page.issue_view(current_user, issue)
    field = _field(view, name)
    try:
        changes = _field_change(field, request.form)
        issues.update_issue(issue.id, current_user, lock_version, **changes)
    except Invalid as error:
        if not is_htmx():
            return _show(_reload(issue), 422, problems=error.problems)
        message = "; ".join(str(v) for v in error.problems.values())
        response = render_view("issues/show.html", "issues/_field_form.html", status=422, view=view, field=field,
                               form=request.form, problems={"value": message}, message=None, verdict=None,
                               **_pending_runs(issue))
        response.headers["HX-Retarget"] = f"#field-{field['dom']}"
        response.headers["HX-Reswap"] = "outerHTML"
        return response
    except Conflict as conflict:
        return _show(_reload(issue), 409, message=conflict.detail)
    return _done(_reload(issue))


def _field_change(field: dict, form) -> dict:
    value = form.get("value", "")
    name = field["name"]
    if field["fdef"] is not None:
        fdef = field["fdef"]
        if fdef.type == "multi_enum":
            raw = [v for v in form.getlist("value") if v]
        elif fdef.type == "boolean":
            raw = "true" if "true" in form.getlist("value") else "false"
        else:
            raw = value
        return {"custom_fields": {fdef.key: raw}}
    if name == "assignee":
        if value in ("", None):
            return {"assignee_id": None}
        if not str(value).isdigit():
            raise Invalid({"value": "Choose a member of the project."})
        return {"assignee_id": int(value)}
    if name == "due_date":
        if not value:
            return {"due_date": None}
        from datetime import date

        try:
            return {"due_date": date.fromisoformat(value)}
        except ValueError:
            raise Invalid({"value": "Use a date like 2026-01-31."}) from None
    return {name: value}


@bp.route("/projects/<key>/issues/<int:number>/simulate")
def simulate(key: str, number: int):
    issue = _issue(key, number)
    data = _load(TransitionSchema(), request.args)
    verdict = transitions.simulate(issue.id, current_user, transition=data["transition"], target=data["target"],
                                   comment=data["comment"])
    return render_view("issues/simulate.html", "issues/_verdict.html", issue=issue, verdict=verdict,
                       handle=data["transition"] or data["target"] or "")


@bp.route("/projects/<key>/issues/<int:number>/transition", methods=["POST"])
def transition(key: str, number: int):
    issue = _issue(key, number)
    try:
        data = _load(TransitionSchema(), request.form)
    except Invalid as error:
        return _show(issue, 422, problems=error.problems)
    return _mutate(issue, lambda: transitions.apply_transition(
        issue.id, current_user, transition=data["transition"], target=data["target"], comment=data["comment"],
        lock_version=data["lock_version"]))


@bp.route("/projects/<key>/issues/<int:number>/force", methods=["POST"])
def force(key: str, number: int):
    """An organization owner or admin moves the issue past its failing gates, saying why (§16)."""
    issue = _issue(key, number)

    def forced():
        data = _load(ForceSchema(), request.form)
        transitions.force_transition(issue.id, current_user, reason=data["reason"], transition=data["transition"],
                                     target=data["target"], lock_version=data["lock_version"])

    return _mutate(issue, forced)


@bp.route("/projects/<key>/issues/<int:number>/comments", methods=["POST"])
def comment(key: str, number: int):
    issue = _issue(key, number)
    return _mutate(issue, lambda: transitions.add_comment(issue.id, current_user,
                                                          _load(CommentSchema(), request.form)["body"]))


@bp.route("/projects/<key>/issues/<int:number>/checklists/<checklist_id>/<item_id>", methods=["POST"])
def checklist(key: str, number: int, checklist_id: str, item_id: str):
    issue = _issue(key, number)
    return _mutate(issue, lambda: transitions.tick_checklist(
        issue.id, current_user, checklist_id, item_id, _load(ChecklistTickSchema(), request.form)["checked"]))


@bp.route("/projects/<key>/issues/<int:number>/approvals", methods=["POST"])
def approval(key: str, number: int):
    issue = _issue(key, number)

    def decide():
        data = _load(ApprovalSchema(), request.form)
        transitions.decide_approval(issue.id, current_user, data["decision"], data["reason"])

    return _mutate(issue, decide)


@bp.route("/projects/<key>/issues/<int:number>/automation-runs/<int:run_id>", methods=["POST"])
def automation_run(key: str, number: int, run_id: int):
    """Approve or deny one of the issue's gated automation runs; HTMX gets the issue back, with what happened."""
    issue = _issue(key, number)
    automation_runs.run_of_issue(run_id, issue.id)
    message = decide_from_form(run_id)
    if not is_htmx():
        return redirect(url_for("issues.show", key=issue.project.key, number=issue.number), 303)
    return _show(_reload(issue), run_message=message)


@bp.route("/projects/<key>/issues/<int:number>/watchers", methods=["POST"])
def watchers(key: str, number: int):
    issue = _issue(key, number)
    return _mutate(issue, lambda: issues.watch(issue.id, current_user,
                                               watching=_load(WatchSchema(), request.form)["watching"]))


@bp.route("/projects/<key>/issues/<int:number>/attachments", methods=["POST"])
def attachments(key: str, number: int):
    issue = _issue(key, number)

    def upload():
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            raise Invalid({"file": "Choose a file to upload."})
        transitions.upload_attachment(issue.id, current_user, upload.stream, upload.filename, upload.mimetype,
                                      request.form.get("document_key") or None)

    return _mutate(issue, upload)


@bp.route("/projects/<key>/issues/<int:number>/attachments/<int:attachment_id>")
def attachment(key: str, number: int, attachment_id: int):
    issue = _issue(key, number)
    found, path = transitions.attachment_for_download(issue.id, current_user, attachment_id)
    response = send_file(path, mimetype=found.content_type, as_attachment=True, download_name=found.filename,
                         max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
