"""In-app notifications (the bell, the list, mark read) and the admins' email outbox."""

from flask import Blueprint, abort, make_response, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.blueprints.automation_decisions import decide_from_form
from app.htmx import is_htmx, render_view
from app.services.projects import visible_projects
from app.services.runtime import automation_runs, notifications
from app.services.runtime.effects import gated_runs

bp = Blueprint("notifications", __name__)

PAGE_SIZE = 50


@bp.before_request
@login_required
def require_login():
    """Every view here is for a signed-in person."""


def _list_context() -> dict:
    before = request.args.get("before", type=int)
    items = notifications.list_for(current_user.id, limit=PAGE_SIZE, before_id=before)
    return {"items": items, "issues": notifications.issue_links(items), "unread": notifications.unread_count(current_user.id),
            "older": items[-1].id if len(items) == PAGE_SIZE else None}


def _approvals_context(message: str | None = None) -> dict:
    """Gated automation runs the signed-in person may approve or deny."""
    projects = {p.id: p for p in visible_projects(current_user) if gated_runs.can_decide_runs(current_user, p)}
    runs = automation_runs.awaiting_approval(list(projects))
    return {"runs": runs, "projects": projects, "message": message}


@bp.route("/notifications")
def index():
    return render_view("notifications/index.html", "notifications/_list.html", **_list_context(),
                       **_approvals_context())


@bp.route("/notifications/automation-runs/<int:run_id>", methods=["POST"])
def decide_run(run_id: int):
    """Approve or deny one gated automation run; HTMX gets the approvals section back."""
    message = decide_from_form(run_id)
    if not is_htmx():
        return redirect(url_for("notifications.index"), 303)
    response = make_response(render_template("notifications/_approvals.html", **_approvals_context(message)))
    response.headers.add("Vary", "HX-Request")
    return response


@bp.route("/notifications/bell")
def bell():
    response = make_response(render_template("notifications/_bell.html", unread=notifications.unread_count(current_user.id),
                                             oob=False))
    response.headers.add("Vary", "HX-Request")
    return response


@bp.route("/notifications/read", methods=["POST"])
def read():
    """Mark one notification (`id`) or all of them (`all`) read; HTMX gets the list back and the bell out of band."""
    if request.form.get("all"):
        notifications.mark_read(current_user.id, "all")
    else:
        ident = request.form.get("id", type=int)
        if ident is None:
            abort(400)
        notifications.mark_read(current_user.id, [ident])
    if not is_htmx():
        return redirect(url_for("notifications.index"), 303)
    context = _list_context()
    response = make_response(render_template("notifications/_list.html", **context)
                             + render_template("notifications/_bell.html", unread=context["unread"], oob=True))
    response.headers.add("Vary", "HX-Request")
    return response


@bp.route("/admin/outbox")
def outbox():
    """Every email the app sent or kept (SMTP unset): organization owners and admins only."""
    if not current_user.is_org_admin:
        abort(403)
    return render_template("admin/outbox.html", emails=notifications.outbox(200))
