"""Fragments the live hub sends: the page's own fragments (`boards/_cell.html`, `boards/_card.html`,
`issues/_issue.html`, the bell, the sync status), marked for out-of-band swapping."""

from __future__ import annotations

import logging

from flask import render_template
from sqlalchemy import select

from app.blueprints.live.hub import BoardGroup, Viewer, as_viewer
from app.extensions import db
from app.kiket.board_view import ME
from app.models import OrganizationMembership, Project, ProjectMembership, User
from app.services.runtime import notifications
from app.services.boards import board as boards
from app.services.errors import ServiceError

log = logging.getLogger(__name__)
ADMIN_ROLES = ("owner", "admin")


class NeedsReload(Exception):
    """The board's shape changed (a column appeared or went): the page fetches it again."""


# Access


def project_for(viewer: Viewer) -> Project | None:
    """The project the viewer's page belongs to, if the viewer may see it."""
    from app.services import projects
    from app.services.runtime import issue_queries

    user = db.session.get(User, viewer.user_id)
    if user is None:
        return None
    sub = viewer.subscription
    try:
        if sub.issue:
            issue = issue_queries.load_issue(user, sub.issue)
            return issue.project
        return projects.get_project(user, sub.project_key)
    except ServiceError:
        return None


def group_key(viewer: Viewer, project: Project) -> tuple | None:
    """Viewers sharing a key see the same board: same filters, same `@me` (if used), same right to move."""
    from app.services.runtime import access
    from app.services.sync import configuration

    user = db.session.get(User, viewer.user_id)
    try:
        runtime = access.runtime_actor(user, project, configuration.project_config(project))
        access.require(runtime, "board.read", "view boards")
    except ServiceError:
        return None
    params = viewer.subscription.params
    layout_quick = _uses_me(project, viewer.subscription.board, params)
    me = viewer.user_id if (params.assignee == "@me" or layout_quick) else None
    return (project.id, viewer.subscription.board, params, me, runtime.can("issue.transition"))


def _uses_me(project: Project, board_id: str, params) -> bool:
    from app.kiket.board_view import materialize
    from app.services.sync import configuration

    layout = materialize(configuration.project_config(project), board_id)
    if layout is None:
        return False
    return any(ME in q.values for q in layout.quick_filters if q.key in params.quick)


def without_access(project_id: int, viewers: list[Viewer]) -> set[Viewer]:
    """Viewers who may no longer see the project (membership gone, signed out everywhere): one query."""
    project = db.session.get(Project, project_id)
    ids = {v.user_id for v in viewers}
    rows = db.session.execute(
        select(User.id, User.session_version, OrganizationMembership.organization_id, OrganizationMembership.role,
               ProjectMembership.role)
        .outerjoin(OrganizationMembership, OrganizationMembership.user_id == User.id)
        .outerjoin(ProjectMembership, (ProjectMembership.user_id == User.id)
                   & (ProjectMembership.project_id == project_id))
        .where(User.id.in_(ids))).all()
    allowed = {user_id: version for user_id, version, org_id, org_role, role in rows
               if project is not None and org_id == project.organization_id and (org_role in ADMIN_ROLES or role)}
    return {v for v in viewers if allowed.get(v.user_id) != v.session_version}


def without_org_access(organization_id: int, viewers: list[Viewer]) -> set[Viewer]:
    members = set(db.session.scalars(select(OrganizationMembership.user_id).where(
        OrganizationMembership.organization_id == organization_id)))
    return {v for v in viewers if v.user_id not in members}


# Boards


def group_view(group: BoardGroup, issue_id: int | None = None):
    """The group's board as its representative viewer sees it (None if that is no longer possible); with
    `issue_id`, only the cells the issue was or is in are read (every count is)."""
    user = db.session.get(User, group.user_id)
    project = db.session.get(Project, group.project_id)
    if user is None or project is None:
        return None
    only = None
    if issue_id is not None:
        only = {key for key, (ids, _) in group.cells.items() if issue_id in ids}
    try:
        return boards.board_view(user, project, group.board_id, group.params, only=only, issue_id=issue_id)
    except ServiceError:
        return None


def board_parts(view) -> str:
    """Every column head, lane head and cell, for out-of-band swaps."""
    return render_template("boards/_oob.html", view=view, columns={c.layout.key for c in view.columns})


def snapshot(view) -> tuple[dict, dict, dict]:
    """What a render showed: card ids per cell (and whether more follow), counts per column and per lane."""
    cells = {(c.layout.key, cell.lane): ([card.id for card in cell.cards], cell.more)
             for c in view.columns for cell in c.cells.values()}
    counts = {c.layout.key: (c.count, c.wip_count) for c in view.columns}
    lanes = {lane.key: lane.count for lane in view.lanes}
    return cells, counts, lanes


def board_changes(view, issue_id: int, old_cells: dict, old_counts: dict, old_lanes: dict):
    """The smallest swaps turning what was sent into `view`: cards deleted and inserted after their new
    predecessor, the changed card replaced, and the heads whose figures changed. Raises NeedsReload."""
    read, counts, lanes = snapshot(view)
    if set(counts) != set(old_counts) or set(lanes) != set(old_lanes):
        raise NeedsReload()
    # The view holds the cells the issue was or is in; the others are as they were sent.
    cells = {**old_cells, **read}
    by_key = {(c.layout.key, cell.lane): cell for c in view.columns for cell in c.cells.values()}
    cards = {card.id: card for cell in by_key.values() for card in cell.cards}
    deletes: list[int] = []
    inserts: list[tuple[int, str]] = []
    replaced: list[int] = []
    whole: list = []
    touched_columns = set()
    for key in [k for k in read if issue_id in read[k][0] or issue_id in old_cells.get(k, ((), False))[0]]:
        old_ids, old_more = old_cells.get(key, ([], False))
        new_ids, more = cells[key]
        touched_columns.add(key[0])
        if more != old_more:
            whole.append(by_key[key])
            continue
        if old_ids == new_ids:
            replaced.append(issue_id)
            continue
        before = {card: (old_ids[i - 1] if i else None) for i, card in enumerate(old_ids)}
        after = {card: (new_ids[i - 1] if i else None) for i, card in enumerate(new_ids)}
        moved = {card for card in new_ids if card in before and before[card] != after[card]} | {issue_id} & set(new_ids)
        deletes.extend(card for card in old_ids if card not in after or card in moved)
        for card in new_ids:
            if card not in before or card in moved:
                pred = after[card]
                inserts.append((card, f"afterend:#card-{pred}" if pred is not None
                                else f"afterbegin:#list-{boards_dom(key)}"))
    # A card that left every first page (filtered out, or pushed past PAGE) goes too.
    if issue_id not in cards and not any(issue_id == d for d in deletes):
        deletes.append(issue_id)
    changed_heads = [c for c in view.columns
                     if c.layout.key in touched_columns or counts[c.layout.key] != old_counts.get(c.layout.key)]
    changed_lanes = [lane for lane in view.lanes if lanes[lane.key] != old_lanes.get(lane.key)]
    body = render_template("boards/_live_changes.html", view=view, deletes=list(dict.fromkeys(deletes)),
                           inserts=[(cards[c], where) for c, where in inserts], replaced=[cards[c] for c in replaced],
                           cells=whole, heads=changed_heads, lanes=changed_lanes)
    return body, cells, counts, lanes


def boards_dom(key) -> str:
    from app.kiket.board_view import dom_safe

    column, lane = key
    return f"{dom_safe(column)}-{dom_safe(lane or 'all')}"


# Issue page, bell, repositories


def issue(viewer: Viewer, issue_id: int, actor_id: int | None) -> str:
    """The issue as this viewer sees it, and a notice when someone else changed it."""
    from app.blueprints.issues.views import _pending_runs
    from app.models.issues import Issue
    from app.services.runtime import issue_page

    user = as_viewer(viewer)
    found = db.session.get(Issue, issue_id)
    if user is None or found is None:
        return ""
    try:
        view = issue_page.issue_view(user, found)
    except ServiceError:
        return ""
    by = db.session.get(User, actor_id) if actor_id and actor_id != viewer.user_id else None
    return render_template("issues/_live.html", view=view, changed_by=by, problems={}, message=None, verdict=None,
                           **_pending_runs(found))


def bell(viewer: Viewer) -> str:
    return render_template("notifications/_bell.html", unread=notifications.unread_count(viewer.user_id), oob=True)


def overview_row(viewer: Viewer, repository_id: int | None) -> str:
    from app.services.sync import repositories

    user = as_viewer(viewer)
    if user is None:
        return ""
    line = next((l for l in repositories.repository_overview(user) if l.repository.id == repository_id), None)
    return render_template("repositories/_overview_row.html", line=line, oob=True) if line else ""


def sync_status(viewer: Viewer, repository_id: int) -> str:
    from app.services.sync import configuration, repositories, revisions, runs

    user = as_viewer(viewer)
    if user is None:
        return ""
    try:
        repository = repositories.get_repository(repository_id, user)
    except ServiceError:
        return ""
    recent = runs.list_sync_runs(repository.id)
    run = recent[0] if recent else None
    can_manage = repositories.can_manage(user, repository.project)
    active = configuration.active_revision(repository.project_id)
    html = render_template("repositories/_sync_status.html", repository=repository, run=run, oob=True,
                           can_manage=can_manage, active=active)
    if run is None or not run.in_flight:
        # A finished run (or a rollback) also changes the history and the tracked branch, as the page's own
        # poll would show.
        html += render_template("repositories/_history.html", repository=repository, runs=recent, active=active,
                                revisions=revisions.list_revisions(repository.project_id), can_manage=can_manage)
        html += render_template("repositories/_branch_picker_loader.html", repository=repository, oob=True)
    return html
