"""A project's audit trail (owners and admins): its chained events, filtered, and the chain's verification."""

from flask import Blueprint, redirect, request, url_for
from flask_login import current_user, login_required
from marshmallow import Schema, ValidationError, fields, validate

from app.htmx import is_htmx, render_view
from app.services import audit

bp = Blueprint("audit", __name__)


@bp.before_request
@login_required
def require_login():
    """The audit trail needs an account (and an admin role, checked per project)."""


class AuditFilterSchema(Schema):
    issue = fields.String(load_default=None, validate=validate.Length(max=40))
    actor = fields.String(load_default=None, validate=validate.Length(max=20))
    kind = fields.String(load_default=None, validate=validate.Length(max=64))
    since = fields.Date(load_default=None)
    until = fields.Date(load_default=None)
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))


def _filters() -> tuple[audit.AuditFilters, int, dict[str, str]]:
    """The filters from the URL; a malformed one is dropped and named, the others still apply."""
    schema = AuditFilterSchema()
    values = {k: v for k, v in request.args.items() if k in schema.fields and v.strip()}
    problems: dict[str, str] = {}
    try:
        data = schema.load(values)
    except ValidationError as error:
        problems = {k: " ".join(v) if isinstance(v, list) else str(v) for k, v in error.messages.items()}
        data = schema.load({k: v for k, v in values.items() if k not in problems})
    page = data.pop("page")
    return audit.AuditFilters(**data), page, problems


@bp.route("/projects/<key>/audit")
def index(key: str):
    project = audit.audited_project(current_user, key)
    filters, page, problems = _filters()
    context = {"project": project, "filters": filters, "problems": problems,
               "trail": audit.events_page(project.id, filters, page)}
    if is_htmx():
        return render_view("audit/index.html", "audit/_events.html", **context)
    return render_view("audit/index.html", "audit/_events.html", verification=audit.verify(project.id), **context)


@bp.route("/projects/<key>/audit/verify", methods=["POST"])
def verify(key: str):
    """Recompute the chain now, as `flask kiket audit verify` does."""
    project = audit.audited_project(current_user, key)
    result = audit.verify(project.id)
    if is_htmx():
        return render_view("audit/index.html", "audit/_verification.html", project=project, verification=result,
                           just_checked=True)
    return redirect(url_for("audit.index", key=project.key), 303)
