"""Notifications: in-app rows (the bell) and email (SMTP when configured, otherwise the outbox)."""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from flask import current_app
from sqlalchemy import func, select, update

from app.extensions import db
from app.models.accounts import User
from app.models.issues import Issue
from app.models.projects import Project
from app.models.base import utcnow
from app.models.notifications import EmailOutbox, NOTIFICATION_LEVELS, Notification
from app.services import live
from app.services.errors import Invalid, NotFound

log = logging.getLogger(__name__)

CHANNELS = ("in_app", "email")
SMTP_TIMEOUT = 10


def notify(user_ids: Iterable[int], project_id: int | None, issue_id: int | None, message: str,
           level: str = "info", channel: str = "in_app", emails: Sequence[str] = ()) -> list[Notification]:
    """Notify users in-app; with `channel="email"` also email them (and any plain `emails`).

    Every recipient gets a bell entry whatever the channel, so the in-app list is complete.
    Emails are written to the outbox in the same commit, then sent over SMTP when
    KIKET_SMTP_URL is set (a failed send stays in the outbox with its error).
    """
    level = "critical" if level == "error" else level
    if level not in NOTIFICATION_LEVELS:
        raise Invalid({"level": f"must be one of {', '.join(NOTIFICATION_LEVELS)}"})
    if channel not in CHANNELS:
        raise Invalid({"channel": f"must be one of {', '.join(CHANNELS)}"})
    ids = sorted(set(user_ids))
    users = db.session.execute(select(User).where(User.id.in_(ids))).scalars().all() if ids else []
    rows = [Notification(user_id=u.id, project_id=project_id, issue_id=issue_id, level=level, message=message)
            for u in users]
    db.session.add_all(rows)
    outbox: list[EmailOutbox] = []
    if channel == "email":
        addresses = dict.fromkeys([u.email for u in users] + [e.strip() for e in emails if e and "@" in e])
        subject = _subject(message, level)
        outbox = [EmailOutbox(to=address, subject=subject, body=message, project_id=project_id) for address in addresses]
        db.session.add_all(outbox)
    db.session.commit()
    log.info("notified users=%d emails=%d project=%s issue=%s level=%s", len(rows), len(outbox), project_id, issue_id, level)
    if outbox and current_app.config.get("KIKET_SMTP_URL"):
        for email in outbox:
            send_email(email.id)
    return rows


def _subject(message: str, level: str) -> str:
    first = (message.strip().splitlines() or [""])[0]
    prefix = "[Kiket]" if level in ("info", "success") else f"[Kiket {level}]"
    return f"{prefix} {first[:200]}".strip()


def send_email(email_id: int) -> bool:
    """Send one outbox email over SMTP now; record sent_at or the error. True when sent."""
    email = db.session.get(EmailOutbox, email_id)
    if email is None:
        raise NotFound(f"no email {email_id}")
    if email.sent_at is not None:
        return True
    url = current_app.config.get("KIKET_SMTP_URL")
    if not url:
        return False
    try:
        _smtp_send(url, email.to, email.subject, email.body)
    except (OSError, smtplib.SMTPException) as error:
        email.error = f"{type(error).__name__}: {error}"[:1000]
        db.session.commit()
        log.warning("email %s not sent: %s", email.id, type(error).__name__)
        return False
    email.sent_at = utcnow()
    email.error = None
    db.session.commit()
    log.info("email %s sent", email.id)
    return True


def _smtp_send(url: str, to: str, subject: str, body: str) -> None:
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    sender = parse_qs(parts.query).get("from", [f"kiket@{host}"])[0]
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message.set_content(body)
    if parts.scheme == "smtps":
        client: smtplib.SMTP = smtplib.SMTP_SSL(host, parts.port or 465, timeout=SMTP_TIMEOUT)
    else:
        client = smtplib.SMTP(host, parts.port or 25, timeout=SMTP_TIMEOUT)
    with client:
        if parts.scheme == "smtp+starttls":
            client.starttls()
        if parts.username:
            client.login(unquote(parts.username), unquote(parts.password or ""))
        client.send_message(message)


def unread_count(user_id: int) -> int:
    """How many of the user's notifications are unread (the bell's number)."""
    return db.session.execute(
        select(func.count(Notification.id)).where(Notification.user_id == user_id, Notification.read_at.is_(None))
    ).scalar_one()


def list_for(user_id: int, *, unread_only: bool = False, limit: int = 50, before_id: int | None = None) -> list[Notification]:
    """The user's notifications, newest first; `before_id` pages backwards."""
    query = select(Notification).where(Notification.user_id == user_id)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    if before_id is not None:
        query = query.where(Notification.id < before_id)
    return list(db.session.execute(query.order_by(Notification.id.desc()).limit(limit)).scalars())


def mark_read(user_id: int, ids: Iterable[int] | Literal["all"]) -> int:
    """Mark the user's notifications read (given ids, or "all"); other users' ids are ignored. Returns the count."""
    query = update(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
    if ids != "all":
        wanted = list(ids)
        if not wanted:
            return 0
        query = query.where(Notification.id.in_(wanted))
    count = db.session.execute(query.values(read_at=utcnow()), execution_options={"synchronize_session": False}).rowcount
    if count:
        live.notify_user(db.session(), user_id)
    db.session.commit()
    return count


def outbox(limit: int = 100) -> list[EmailOutbox]:
    """The latest emails, sent or kept, newest first (for admins)."""
    return list(db.session.execute(select(EmailOutbox).order_by(EmailOutbox.id.desc()).limit(limit)).scalars())


@dataclass(frozen=True)
class IssueLink:
    """What a notification's issue is called by and where it lives."""

    project_key: str
    number: int
    key: str
    title: str


def issue_links(items: Iterable[Notification]) -> dict[int, IssueLink]:
    """The issues these notifications are about, by id: key, title and where to link."""
    ids = {n.issue_id for n in items if n.issue_id is not None}
    if not ids:
        return {}
    rows = db.session.execute(select(Issue.id, Project.key, Issue.number, Issue.key, Issue.title)
                              .join(Project, Project.id == Issue.project_id).where(Issue.id.in_(ids))).all()
    return {row[0]: IssueLink(row[1], row[2], row[3], row[4]) for row in rows}
