"""Workflow Repositories dashboard: where each project's configuration comes from."""

from flask import Blueprint, render_template
from flask_login import current_user, login_required

from app.kiket import bundled
from app.services import projects

bp = Blueprint("repositories", __name__, url_prefix="/repositories")


@bp.before_request
@login_required
def require_login():
    """Every dashboard page needs an account."""


@bp.route("/")
def index():
    templates = {t.key: t for t in bundled.list_templates()}
    return render_template("repositories/index.html", projects=projects.visible_projects(current_user), templates=templates)
