"""Extension pages of a project: install from a manifest, credentials shown once, rotate, remove,
configuration and secrets, output fields, logs, metrics, deliveries with request and response, redeliver."""

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.blueprints.forms import load_form
from app.htmx import is_htmx, render_view
from app.services import projects
from app.services.errors import Forbidden, Invalid, NotFound
from app.services.gateway import extensions, subscriptions

from .schemas import InstallSchema, SecretSchema, SettingsSchema

bp = Blueprint("extensions", __name__)


@bp.before_request
@login_required
def require_login():
    """Every extension page needs an account."""


def _managed_project(key: str):
    project = projects.get_project(current_user, key)
    if not extensions.can_manage(current_user, project):
        raise Forbidden("Only project owners and admins can install and manage extensions.")
    return project


def _index(project, status: int = 200, **context):
    context.setdefault("form", {})
    context.setdefault("problems", {})
    return render_template("extensions/index.html", project=project,
                           installations=extensions.list_installations(current_user, project), **context), status


@bp.route("/projects/<key>/extensions")
def index(key: str):
    return _index(_managed_project(key))


@bp.route("/projects/<key>/extensions", methods=["POST"])
def install(key: str):
    project = _managed_project(key)
    try:
        data = load_form(InstallSchema(), request.form)
        done = extensions.install(current_user, project, data["manifest"], url=data["url"] or None,
                                  secret=data["secret"] or None)
    except Invalid as error:
        return _index(project, 422, form=request.form, problems=error.problems)
    # Credentials exist only in this response: rendered, never redirected to.
    return render_template("extensions/installed.html", project=project, done=done), 201


def _installation(key: str, installation_id: int):
    installation = extensions.get_installation(current_user, installation_id)
    if installation.project.key != key.upper():
        raise NotFound(f"No extension installation {installation_id} in {key}.")
    return installation


def _show(installation, status: int = 200, fragment: str | None = None, **context):
    context.setdefault("message", None)
    context.setdefault("problems", {})
    context.setdefault("rotated", None)
    page_context = dict(
        project=installation.project, installation=installation, secrets=extensions.secret_rows(installation),
        logs=extensions.logs(installation, 50), metrics=extensions.metric_summary(installation),
        deliveries=subscriptions.recent_deliveries(installation_id=installation.id), manifest=extensions.manifest_of(installation),
        **context)
    if fragment and is_htmx():
        return render_view("extensions/show.html", fragment, status=status, **page_context)
    return render_template("extensions/show.html", **page_context), status


@bp.route("/projects/<key>/extensions/<int:installation_id>")
def show(key: str, installation_id: int):
    return _show(_installation(key, installation_id))


@bp.route("/projects/<key>/extensions/<int:installation_id>/rotate", methods=["POST"])
def rotate(key: str, installation_id: int):
    _installation(key, installation_id)
    rotated = extensions.rotate(current_user, installation_id)
    return _show(rotated.installation, rotated=rotated)


@bp.route("/projects/<key>/extensions/<int:installation_id>/delete", methods=["POST"])
def delete(key: str, installation_id: int):
    _installation(key, installation_id)
    extensions.uninstall(current_user, installation_id)
    target = url_for("extensions.index", key=key.upper())
    if is_htmx():
        return "", 204, {"HX-Redirect": target}
    return redirect(target, 303)


@bp.route("/projects/<key>/extensions/<int:installation_id>/settings", methods=["POST"])
def settings(key: str, installation_id: int):
    installation = _installation(key, installation_id)
    try:
        data = load_form(SettingsSchema(), request.form)
        extensions.update_settings(current_user, installation_id, url=data["url"],
                                   config={k[4:]: v for k, v in request.form.items() if k.startswith("cfg.")})
    except Invalid as error:
        return _show(installation, 422, problems=error.problems)
    return _done(key, installation_id, "Settings saved.")


@bp.route("/projects/<key>/extensions/<int:installation_id>/secrets", methods=["POST"])
def set_secret(key: str, installation_id: int):
    installation = _installation(key, installation_id)
    try:
        data = load_form(SecretSchema(), request.form)
        extensions.set_secret(installation, data["key"], data["value"], current_user.id)
    except Invalid as error:
        return _show(installation, 422, "extensions/_secrets.html", problems=error.problems)
    return _done(key, installation_id, f"Saved {data['key']}.", "extensions/_secrets.html")


@bp.route("/projects/<key>/extensions/<int:installation_id>/secrets/<secret_key>/delete", methods=["POST"])
def delete_secret(key: str, installation_id: int, secret_key: str):
    installation = _installation(key, installation_id)
    extensions.delete_secret(installation, secret_key, current_user.id)
    return _done(key, installation_id, f"Deleted {secret_key}.", "extensions/_secrets.html")


@bp.route("/projects/<key>/extensions/<int:installation_id>/deliveries/<int:delivery_id>/redeliver",
          methods=["POST"])
def redeliver(key: str, installation_id: int, delivery_id: int):
    _installation(key, installation_id)
    row = subscriptions.redeliver(current_user, delivery_id)
    return _done(key, installation_id, f"Event {row.event_id} queued again.", "extensions/_deliveries.html")


def _done(key: str, installation_id: int, message: str, fragment: str | None = None):
    """After a change: the fresh fragment for HTMX, a 303 back to the page otherwise."""
    if is_htmx() and fragment:
        return _show(extensions.get_installation(current_user, installation_id), fragment=fragment, message=message)
    return redirect(url_for("extensions.show", key=key.upper(), installation_id=installation_id), 303)
