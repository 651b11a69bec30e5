"""Keyset pages: newest first by id, the cursor holding the last id seen, so inserts never shift a page."""

from __future__ import annotations

import json
from typing import Any, Callable, Sequence

from sqlalchemy import Select

from app.extensions import db
from app.services.gateway import cursors


def _listing(name: str, query: dict) -> str:
    filters = {k: v for k, v in query.items() if k not in ("cursor", "limit")}
    return name + json.dumps(filters, sort_keys=True, default=str)


def _after(name: str, query: dict) -> int | None:
    if not query.get("cursor"):
        return None
    after = cursors.decode(query["cursor"], _listing(name, query))
    if not isinstance(after, int):
        raise cursors.BadCursor("The cursor is not one this API made; start again without it.")
    return after


def _page(name: str, query: dict, rows: Sequence[Any], present: Callable[[Any], Any]) -> dict:
    limit = query["limit"]
    page = rows[:limit]
    more = len(rows) > limit
    return {"items": [present(row) for row in page],
            "next_cursor": cursors.encode(page[-1].id, _listing(name, query)) if more and page else None}


def listing_page(name: str, query: dict, rows: Sequence[Any], present: Callable[[Any], Any]) -> dict:
    """A page of rows already in memory, sorted by id descending."""
    after = _after(name, query)
    if after is not None:
        rows = [row for row in rows if row.id < after]
    return _page(name, query, rows, present)


def query_page(name: str, query: dict, statement: Select, id_column, present: Callable[[Any], Any]) -> dict:
    """A page of a query's rows by `id_column` descending, read with one extra row to know if more follow."""
    after = _after(name, query)
    if after is not None:
        statement = statement.where(id_column < after)
    rows = list(db.session.scalars(statement.order_by(id_column.desc()).limit(query["limit"] + 1)))
    return _page(name, query, rows, present)
