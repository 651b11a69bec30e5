"""Per-project issue numbers (`ENG-42`), allocated without gaps or duplicates under concurrency."""

from __future__ import annotations

from sqlalchemy import update

from app.extensions import db
from app.models.issues import ProjectCounter
from app.services.projects import ensure_counter


def allocate_number(project_id: int) -> int:
    """Take the project's next issue number, inside the caller's transaction (the caller commits).

    `UPDATE … RETURNING` holds the counter row's lock until commit on PostgreSQL, and SQLite
    runs one writer at a time, so two transactions never get the same number; a rollback
    returns the number, so there are no gaps either.
    """
    ensure_counter(project_id)
    statement = (
        update(ProjectCounter)
        .where(ProjectCounter.project_id == project_id)
        .values(next_issue_number=ProjectCounter.next_issue_number + 1)
        .returning(ProjectCounter.next_issue_number)
    )
    return db.session.execute(statement).scalar_one() - 1


def issue_key(project_key: str, number: int) -> str:
    """`ENG` and 42 → `ENG-42`."""
    return f"{project_key}-{number}"
