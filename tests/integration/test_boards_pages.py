"""Board pages over HTTP, read as a browser reads them (ids, attributes): every board of the four fixture
repositories and the generated fallback boards render their columns, states, WIP limits and policies,
swimlanes, quick filters, card fields, badges and automation hints as declared; a render issues the same
number of queries whatever the number of issues; moves and their refusals; access."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from tests.conftest import post_form
from tests.support.fixture_projects import member, synced_project
from tests.support.html import parse

HX = {"HX-Request": "true"}
FIXTURES = ("engineering", "scrum", "kanban", "legal")


@pytest.fixture
def owner(make_user, login):
    user = make_user("owner@example.com", "owner")
    login()
    return user


def board_page(client, key: str, board_id: str, query: str = ""):
    response = client.get(f"/projects/{key}/boards/{board_id}{query}")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return parse(response.get_data(as_text=True))


def issue_for(config, board):
    """An issue type shown by the board (its filters, its workflows) and a state its first column maps."""
    for itype in sorted(config.issue_types.values(), key=lambda t: t.position):
        workflow = config.workflow_for(itype.key)
        if workflow is None or workflow.id not in board.workflows:
            continue
        if board.filters.issue_types and itype.key not in board.filters.issue_types:
            continue
        for column in board.columns:
            if any(state in workflow.states for state in column.states):
                return itype.key, next(s for s in column.states if s in workflow.states), column.key
    raise AssertionError(f"no issue type fits board {board.id}")


def check_board(client, project, config, board, revision_id):
    from app.kiket.board_view import materialize
    from app.kiket.conditions import normalize_path
    from tests.support.issue_events import make_issue

    layout = materialize(config, board.id)
    itype, state, column_key = issue_for(config, board)
    lane_value = board.swimlanes.values[0].value if board.swimlanes and board.swimlanes.values else None
    custom = {"severity": lane_value} if board.swimlanes and board.swimlanes.field.endswith("severity") else {}
    issue = make_issue(project, f"Card of {board.id}", issue_type=itype, state=state, custom_fields=custom,
                       emit=False)
    page = board_page(client, project.key, board.id)
    root = page.by_id(f"board-{board.id}")
    assert root is not None and root.get("ws-connect", "").endswith(f"project={project.key}&board={board.id}")
    heads = page.find_all("section", cls="column-head")
    assert [h.get("data-column") for h in heads if "unmapped" not in h.classes()] == [c.key for c in board.columns]
    for column, expected in zip(heads, layout.columns):
        states = [s.get("data-state") for s in column.find_all("span", cls="state")]
        assert states == list(expected.states), (board.id, expected.key)
        wip = column.find("p", cls="wip", data_wip_limit=True)
        if expected.wip_limit is None:
            assert wip is None
        else:
            assert (int(wip.get("data-wip-limit")), wip.get("data-wip-policy")) == (expected.wip_limit,
                                                                                   expected.wip_policy)
        hints = [h.find("strong").text for h in column.find_all("li", cls="hint")]
        assert hints == [h.title for h in expected.hints], (board.id, expected.key)
        source = column.find("details", cls="prov")
        assert f"{expected.prov.path.rsplit('/', 1)[-1]}:{expected.prov.line}" in source.find("summary").text
    # Quick filters: label and field, in order.
    chips = page.find_all("a", cls="chip")
    assert [(c.text, c.get("data-field")) for c in chips] == \
        [(q.label, normalize_path(q.field) or q.field) for q in board.quick_filters]
    # Swimlanes: declared lanes, then Other/Unassigned.
    lanes = [h.find("span", cls="lane-label").text for h in page.find_all("h2", cls="lane-head")]
    if board.swimlanes is not None:
        assert lanes == [lane.label for lane in board.swimlanes.values] + [board.swimlanes.other_label]
    else:
        assert lanes == []
    # The card: in its column, with the template's fields and badges.
    card = page.by_id(f"card-{issue.id}")
    assert card is not None, board.id
    list_node = card.parent
    assert list_node.get("data-column") == column_key
    shown = [d.get("data-field") for d in card.find_all("dd", data_field=True)]
    assert shown == [f for f in (*board.card.primary, *board.card.secondary)]
    assert [b.get("data-badge") for b in card.find_all("span", data_badge=True)] == \
        [b for b in board.card.badges if b != "labels"]
    if revision_id is not None and layout.columns[0].prov.layer == "repository":
        assert page.find("a", href=f"/repositories/revisions/{revision_id}/source/{layout.columns[0].prov.path}"
                                   f"?line={layout.columns[0].prov.line}#L{layout.columns[0].prov.line}")


@pytest.mark.parametrize("name", FIXTURES)
def test_every_fixture_board_renders_as_declared(app, client, owner, tmp_path, name):
    from app.services.sync import configuration

    project, repository, _ = synced_project(app, owner, tmp_path, name, key=name[:3].upper())
    config = configuration.project_config(project)
    assert config.boards
    revision_id = configuration.active_revision(project.id).id
    index = parse(client.get(f"/projects/{project.key}/boards").get_data(as_text=True))
    assert [a.text for a in index.find("ul", cls="board-picker").find_all("a")] == \
        [b.name for b in sorted(config.boards.values(), key=lambda b: (b.generated, b.prov.path or "", b.prov.line or 0, b.id))]
    for board in config.boards.values():
        check_board(client, project, config, board, revision_id)


def test_generated_fallback_boards_show_every_state_of_their_workflow(app, client, owner, tmp_path):
    from app.services.sync import configuration
    from tests.support.deals_repo import DEALS_FILES
    from tests.support.fixture_projects import sync_remote
    from tests.support.sync_repos import new_remote

    files = {path: text for path, text in DEALS_FILES.items() if "boards/" not in path}
    project, _ = sync_remote(app, owner, new_remote(tmp_path, "deals", files), "DEAL")
    config = configuration.project_config(project)
    board = config.boards["deal-board"]
    assert board.generated
    check_board(client, project, config, board, configuration.active_revision(project.id).id)
    page = board_page(client, "DEAL", "deal-board")
    heads = page.find_all("section", cls="column-head")
    assert [h.get("data-column") for h in heads] == list(config.workflows["deal"].states)


@pytest.fixture
def kanban(owner):
    """Project KAN on the kanban template (Review blocks at 3)."""
    from app.services import projects

    return projects.create_project(owner, "KAN", "Kanban", "", "kanban")


def count_queries(app):
    from app.extensions import db

    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    return statements, lambda: event.remove(engine, "before_cursor_execute", record)


def test_a_render_issues_the_same_queries_for_ten_issues_and_for_two_hundred(app, client, kanban, owner):
    from tests.support.issue_events import make_issue

    for n in range(10):
        make_issue(kanban, f"Card {n}", issue_type="task", state=("backlog", "in_progress", "done")[n % 3],
                   assignee=owner, emit=False)
    client.get("/projects/KAN/boards/kanban?lanes=assignee")  # warm the configuration cache
    counts = []
    for total in (10, 200):
        for n in range(len(counts) and 190):
            make_issue(kanban, f"More {n}", issue_type="task", state=("backlog", "in_progress", "done")[n % 3],
                       emit=False)
        for query in ("", "?lanes=assignee", "?q=q0"):
            statements, stop = count_queries(app)
            response = client.get(f"/projects/KAN/boards/kanban{query}")
            stop()
            assert response.status_code == 200
            counts.append((query, len(statements)))
    assert counts[:3] == counts[3:], counts
    page = board_page(client, "KAN", "kanban")
    backlog = page.by_id("colhead-backlog")
    assert backlog.find("span", cls="count").text == str(4 + 64)
    assert len(page.by_id("list-backlog-all").find_all("li", cls="board-card")) == 50
    more = page.find("li", cls="load-more")
    nxt = client.get(more.find("button").get("hx-get"), headers=HX)
    rest = parse(nxt.get_data(as_text=True))
    assert len(rest.find_all("li", cls="board-card")) == 68 - 50 and rest.find("li", cls="load-more") is None


def test_quick_filters_and_url_filters_narrow_the_cards_not_the_wip_figures(app, client, kanban, owner, make_user):
    from tests.support.issue_events import make_issue

    other = member(make_user, kanban, "other@example.com")
    mine = make_issue(kanban, "Mine", issue_type="task", state="in_progress", assignee=owner, emit=False)
    theirs = make_issue(kanban, "Theirs", issue_type="task", state="in_progress", assignee=other, emit=False)
    page = board_page(client, "KAN", "kanban")
    quick = {c.text: c for c in page.find_all("a", cls="chip")}
    filtered = board_page(client, "KAN", "kanban", "?" + quick["Mine"].get("href").split("?", 1)[1])
    assert filtered.by_id(f"card-{mine.id}") and not filtered.by_id(f"card-{theirs.id}")
    head = filtered.by_id("colhead-in_progress")
    assert head.find("span", cls="count").text == "1"
    assert head.find("p", cls="wip").get("data-wip-count") == "2"
    by_text = board_page(client, "KAN", "kanban", "?text=theirs")
    assert by_text.by_id(f"card-{theirs.id}") and not by_text.by_id(f"card-{mine.id}")
    lanes = board_page(client, "KAN", "kanban", "?lanes=assignee")
    assert [h.find("span", cls="lane-label").text for h in lanes.find_all("h2", cls="lane-head")] == \
        ["other@example.com", "owner@example.com", "Unassigned"]


def test_moves_go_through_the_transition_service_and_refusals_name_every_gate(app, client, kanban, owner):
    from app.extensions import db
    from app.models.issues import Issue
    from tests.support.issue_events import make_issue

    reviews = [make_issue(kanban, f"Review {n}", issue_type="task", state="review", assignee=owner, emit=False)
               for n in range(3)]
    ready = make_issue(kanban, "Ready", issue_type="task", state="in_progress", assignee=owner, emit=False)
    moved = post_form(client, f"/projects/KAN/boards/kanban/cards/{ready.id}/move", {"column": "review"},
                      headers=HX)
    assert moved.status_code == 422
    refused = parse(moved.get_data(as_text=True))
    assert [li.text for li in refused.find("ul", cls="reasons").find_all("li")] == \
        ["Column 'Review' is at its WIP limit (3/3)"]
    assert refused.find(id="cell-in_progress-all", hx_swap_oob="true").find(id=f"card-{ready.id}")
    backlog = post_form(client, f"/projects/KAN/boards/kanban/cards/{reviews[0].id}/move", {"column": "in_progress"},
                        headers=HX)
    assert backlog.status_code == 200
    swapped = parse(backlog.get_data(as_text=True))
    assert swapped.find(id="cell-in_progress-all", hx_swap_oob="true").find(id=f"card-{reviews[0].id}")
    db.session.expire_all()
    assert db.session.get(Issue, reviews[0].id).state == "in_progress"
    menu = parse(client.get(f"/projects/KAN/boards/kanban/cards/{ready.id}/moves", headers=HX).get_data(as_text=True))
    assert [b.text for b in menu.find("ul", cls="move-menu").find_all("button")] == ["Backlog", "Review"]


def test_strangers_cannot_see_boards_nor_move_cards(app, kanban, make_user):
    from tests.support.issue_events import make_issue

    issue = make_issue(kanban, "Secret", issue_type="task", emit=False)
    make_user("stranger@example.com", "member")
    stranger = app.test_client()
    assert post_form(stranger, "/login", {"email": "stranger@example.com",
                                          "password": "correct horse battery"}).status_code == 303
    assert stranger.get("/projects/KAN/boards/kanban").status_code == 404
    assert stranger.get("/projects/KAN/boards").status_code == 404
    assert post_form(stranger, f"/projects/KAN/boards/kanban/cards/{issue.id}/move",
                     {"column": "in_progress"}).status_code == 404
    assert stranger.get(f"/projects/KAN/boards/kanban/cards/{issue.id}/moves").status_code == 404
