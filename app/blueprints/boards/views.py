"""Board pages: the picker, the board, one column page ("load more"), one card, the "Move to…" menu and moves.

The first load renders the whole board on the server; swaps render one cell, one card or the column
headers from the same fragments. Filters, quick filters and the swimlane choice live in the query string.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from urllib.parse import urlencode

from flask import Blueprint, current_app, make_response, redirect, render_template, request, url_for
from markupsafe import Markup
from flask_login import current_user, login_required
from marshmallow import Schema, fields, validate

from app.blueprints.forms import load_form
from app.htmx import is_htmx, render_view
from app.kiket.board_view import dom_safe
from app.services import projects
from app.services.boards import board as boards
from app.services.boards import moves
from app.services.errors import Conflict, Invalid, NotFound

bp = Blueprint("boards", __name__)


STANDARD_CARD_FIELDS = ("title", "assignee", "priority", "due_date", "labels", "issue_type", "status", "sla_status",
                        "reporter", "key")


@bp.app_template_global("board_urls")
def board_urls(view) -> dict:
    """What every card of a board links to, and its fields with their labels: worked out once per render
    (url_for per card costs more than the rest of the card)."""
    cached = getattr(view, "_card_urls", None)
    if cached is None:
        query = view.params.query()
        card = url_for("boards.card", key=view.project.key, board_id=view.layout.id, issue_id=0)
        issue = url_for("issues.show", key=view.project.key, number=1)

        def described(paths):
            out = []
            for path in paths:
                name = path if "." in path or path in STANDARD_CARD_FIELDS else f"custom_fields.{path}"
                label = view.field_labels.get(name) or name.rsplit(".", 1)[-1].replace("_", " ").capitalize()
                out.append((path if name != "title" else "title", name, label))
            return out

        template = view.layout.card
        cached = view._card_urls = {
            "card": card[:-1], "issue": issue[:-1], "query": ("?" + urlencode(query, doseq=True)) if query else "",
            "primary": described(template.primary), "secondary": described(template.secondary),
            "size": template.size, "badges": template.badges,
            # Badges and fields come from the card template: hovering one names where it is declared.
            "source": "Card template, " + (f"{template.prov.path}:{template.prov.line}" if template.prov.path
                                           else "default (spec §11.5)"),
            "parts": [("primary", described(template.primary))] + (
                [("secondary", described(template.secondary))] if template.size != "compact" or template.secondary
                else []),
        }
    return cached


def _value(card, name: str) -> str:
    if name == "assignee":
        return card.assignee or "Unassigned"
    if name == "issue_type":
        return card.type_label
    if name == "status":
        return card.state_label
    if name == "sla_status":
        return card.sla_status
    if name == "key":
        return card.key
    if name.startswith("custom_fields."):
        value = card.custom_fields.get(name[len("custom_fields."):])
    else:
        value = getattr(card, name, None)
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _badge(card, badge: str) -> list[tuple[str, str, str]]:
    if badge == "comments_count":
        return [(badge, "", f"{card.comments} comment{'' if card.comments == 1 else 's'}")]
    if badge == "attachments_count":
        return [(badge, "", f"{card.attachments} attachment{'' if card.attachments == 1 else 's'}")]
    if badge == "sla_status":
        return [(badge, f" sla-{card.sla_status}", f"SLA {card.sla_status}")]
    if badge == "priority":
        return [(badge, " priority", card.priority or "no priority")]
    if badge == "issue_type":
        return [(badge, "", card.type_label)]
    if badge == "due_date":
        return [(badge, "", f"due {card.due_date.isoformat()}" if card.due_date else "no due date")]
    if badge == "labels":
        return [(badge, " label", label) for label in card.labels]
    if badge == "checklist_progress":
        return [(badge, "", f"{card.checklist[0]}/{card.checklist[1]} checked" if card.checklist else "no checklist")]
    return []


_cards_cache: OrderedDict[tuple, tuple[weakref.ref, Markup]] = OrderedDict()
_cards_lock = threading.Lock()
CARDS_CACHE_SIZE = 20_000


@bp.app_template_global("card_html")
def card_html(view, card, oob: bool = False) -> Markup:
    """A card rendered from boards/_card.html, kept per process: a board is drawn over and over with mostly
    the same cards. The key holds everything the card shows: the issue's row version (every change bumps it),
    the counts and SLA status read with it, its column and lane, and the board, filters and configuration."""
    key = (id(view.config), view.project.key, view.layout.id, view.params, view.can_move, oob, card.id,
           card.lock_version, card.assignee, card.sla_status, card.comments, card.attachments, card.checklist,
           card.column, card.lane)
    with _cards_lock:
        found = _cards_cache.get(key)
        if found is not None and found[0]() is view.config:
            _cards_cache.move_to_end(key)
            return found[1]
    html = Markup(current_app.jinja_env.get_template("boards/_card.html").render(view=view, card=card, oob=oob))
    with _cards_lock:
        _cards_cache[key] = (weakref.ref(view.config), html)
        while len(_cards_cache) > CARDS_CACHE_SIZE:
            _cards_cache.popitem(last=False)
    return html


@bp.app_template_global("card_parts")
def card_parts(view, card) -> dict:
    """A card's field values and badges as the card template asks for them (text; the template escapes it)."""
    urls = board_urls(view)
    return {
        "fields": [(part, [(path, label, None if name == "title" else _value(card, name))
                           for path, name, label in fields]) for part, fields in urls["parts"]],
        "badges": [item for badge in urls["badges"] for item in _badge(card, badge)],
    }


@bp.app_template_filter("dom")
def dom_filter(value) -> str:
    """A value usable inside an element id."""
    return dom_safe(value)


class MoveSchema(Schema):
    column = fields.String(required=True, validate=validate.Length(max=100),
                           error_messages={"required": "Choose a column."})
    lane = fields.String(load_default=None, validate=validate.Length(max=200))
    lock_version = fields.Integer(load_default=None)


@bp.before_request
@login_required
def require_login():
    """Boards are for signed-in people; the service checks board.read."""


def view_params(args) -> boards.ViewParams:
    """Board parameters from a query string (unknown quick filters are ignored by the service)."""
    def text(name: str, limit: int = 200) -> str | None:
        value = (args.get(name) or "").strip()
        return value[:limit] or None

    lanes = text("lanes", 40)
    return boards.ViewParams(quick=tuple(q[:20] for q in args.getlist("q") if q)[:20], assignee=text("assignee", 254),
                             issue_type=text("type", 64), label=text("label", 50), text=text("text"),
                             lanes=lanes if lanes in (*boards.LANE_CHOICES, "none") else None)


@bp.route("/projects/<key>/boards")
def index(key: str):
    project = projects.get_project(current_user, key)
    return render_template("boards/index.html", project=project, boards=boards.project_boards(current_user, project))


@bp.route("/projects/<key>/boards/<board_id>")
def show(key: str, board_id: str):
    project = projects.get_project(current_user, key)
    view = boards.board_view(current_user, project, board_id, view_params(request.args))
    return render_view("boards/show.html", "boards/_board.html", view=view)


@bp.route("/projects/<key>/board")
def for_issue(key: str):
    """"Show on board": the first board showing the issue's workflow, scrolled to its card."""
    from app.services.runtime import issue_queries
    from app.services.sync import configuration

    project = projects.get_project(current_user, key)
    number = request.args.get("issue", type=int)
    workflow = None
    if number is not None:
        issue = issue_queries.get_issue(current_user, key, number)
        workflow = issue.workflow_id
    board = boards.default_board(configuration.project_config(project), workflow)
    if board is None:
        raise NotFound("This project has no board.")
    target = url_for("boards.show", key=project.key, board_id=board.id)
    if number is not None:
        target += f"#card-{issue.id}"
    return redirect(target, 303)


@bp.route("/projects/<key>/boards/<board_id>/cells/<column>")
def cell(key: str, board_id: str, column: str):
    """A page of one column (and lane): "load more" appends the next cards."""
    project = projects.get_project(current_user, key)
    lane = request.args.get("lane") or None
    view, page = boards.cell_page(current_user, project, board_id, view_params(request.args), column, lane,
                                  request.args.get("offset", 0, type=int))
    template = "boards/_cards.html" if page.offset else "boards/_cell.html"
    response = make_response(render_template(template, view=view, cell=page))
    response.headers.add("Vary", "HX-Request")
    return response


@bp.route("/projects/<key>/boards/<board_id>/cards/<int:issue_id>")
def card(key: str, board_id: str, issue_id: int):
    project = projects.get_project(current_user, key)
    view = boards.board_view_shell(current_user, project, board_id, view_params(request.args))
    found = boards.card_on_board(view, issue_id)
    if found is None:
        raise NotFound("That issue is not on this board (or its filters hide it).")
    response = make_response(render_template("boards/_card.html", view=view, card=found))
    response.headers.add("Vary", "HX-Request")
    return response


@bp.route("/projects/<key>/boards/<board_id>/cards/<int:issue_id>/moves")
def move_menu(key: str, board_id: str, issue_id: int):
    """The "Move to…" menu: only the columns the card may move to now."""
    project = projects.get_project(current_user, key)
    view, issue, targets = moves.move_targets(current_user, project, board_id, issue_id)
    return render_template("boards/_move_menu.html", view=view, issue=issue, targets=targets,
                           params=view_params(request.args))


@bp.route("/projects/<key>/boards/<board_id>/cards/<int:issue_id>/move", methods=["POST"])
def move(key: str, board_id: str, issue_id: int):
    """Move a card to a column: 200 with the changed cells and headers, or 422 with every failing gate."""
    project = projects.get_project(current_user, key)
    params = view_params(request.args)
    data = load_form(MoveSchema(), request.form)
    try:
        done = moves.move_card(current_user, project, board_id, issue_id, data["column"], lane=data["lane"],
                               lock_version=data["lock_version"])
    except moves.MoveRefused as refused:
        return _refused(project, board_id, issue_id, params, refused.column.name, refused.verdict.reasons)
    except (Invalid, Conflict) as error:
        reasons = [r for v in error.problems.values() for r in ([v] if isinstance(v, str) else v)] \
            if isinstance(error, Invalid) else [error.detail]
        return _refused(project, board_id, issue_id, params, None, reasons)
    if not is_htmx():
        return redirect(url_for("boards.show", key=project.key, board_id=board_id, **params.query()), 303)
    view = boards.board_view(current_user, project, board_id, params)
    touched = {done.from_column, done.to_column}
    response = make_response(render_template("boards/_changes.html", view=view, columns=touched))
    response.headers.add("Vary", "HX-Request")
    return response


def _refused(project, board_id: str, issue_id: int, params, column: str | None, reasons):
    """The move was refused: the card goes back (its cell and the target's re-rendered), every reason shown."""
    if not is_htmx():
        raise Invalid({"transition": list(reasons)})
    view = boards.board_view(current_user, project, board_id, params)
    card = boards.card_on_board(view, issue_id)
    touched = {view.layout.column_of(card.state).key} if card is not None else set()
    target = request.form.get("column")
    if target and view.layout.column(target) is not None:
        touched.add(target)
    response = make_response(render_template("boards/_refused.html", view=view, card=card, column=column,
                                             reasons=list(reasons), columns=touched), 422)
    response.headers.add("Vary", "HX-Request")
    return response
