"""Issue field values: custom fields typed and checked per their definitions, labels, priority, assignee, parent."""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timezone
from typing import Any, Mapping, Sequence

from sqlalchemy import func, select

from app.extensions import db
from app.kiket import model as km
from app.kiket.issue_types import web_url
from app.models import Project, User
from app.models.issues import Issue
from app.services.projects import project_role

LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/+-]{0,49}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TRUE_WORDS = {"true", "1", "yes", "on", "y"}
FALSE_WORDS = {"false", "0", "no", "off", "n", ""}
MAX_TITLE = 255
MAX_TEXT = 100_000


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or \
        (isinstance(value, (list, tuple)) and not value)


def _bound(fdef: km.FieldDef, number: float, unit: str = "") -> str | None:
    if fdef.min is not None and number < float(fdef.min):
        return f"must be at least {fdef.min}{unit}"
    if fdef.max is not None and number > float(fdef.max):
        return f"must be at most {fdef.max}{unit}"
    return None


def _option_values(fdef: km.FieldDef) -> dict[str, Any]:
    return {str(value).casefold(): value for value, _ in fdef.options}


def coerce_field(fdef: km.FieldDef, raw: Any, organization_id: int | None = None) -> Any:
    """One custom field value, typed per its FieldDef (spec §7); raises ValueError with a message."""
    kind = fdef.type
    if kind in ("string", "text", "markdown", "file"):
        text = str(raw).strip() if kind == "string" else str(raw)
        limit = 255 if kind == "string" else MAX_TEXT
        if len(text) > limit:
            raise ValueError(f"must be at most {limit} characters")
        problem = _bound(fdef, len(text), " characters") if (fdef.min is not None or fdef.max is not None) else None
        if problem:
            raise ValueError(problem)
        return text
    if kind in ("number", "integer"):
        if isinstance(raw, bool):
            raise ValueError("must be a number")
        try:
            number = float(str(raw).strip()) if not isinstance(raw, (int, float)) else float(raw)
        except ValueError:
            raise ValueError("must be a number" if kind == "number" else "must be a whole number") from None
        if not math.isfinite(number):
            raise ValueError("must be a finite number")
        if kind == "integer":
            if number != int(number):
                raise ValueError("must be a whole number")
            value: Any = int(number)
        else:
            value = int(number) if number == int(number) and abs(number) < 2**53 else number
        problem = _bound(fdef, number)
        if problem:
            raise ValueError(problem)
        return value
    if kind == "boolean":
        if isinstance(raw, bool):
            return raw
        word = str(raw).strip().casefold()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValueError("must be true or false")
    if kind == "date":
        try:
            value = raw if isinstance(raw, date) and not isinstance(raw, datetime) else date.fromisoformat(str(raw).strip())
        except ValueError:
            raise ValueError("must be a date like 2026-01-31") from None
        problem = _date_bounds(fdef, value.isoformat())
        if problem:
            raise ValueError(problem)
        return value.isoformat()
    if kind == "datetime":
        try:
            moment = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw).strip())
        except ValueError:
            raise ValueError("must be a date and time like 2026-01-31T14:30") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        value_text = moment.astimezone(timezone.utc).isoformat()
        problem = _date_bounds(fdef, value_text)
        if problem:
            raise ValueError(problem)
        return value_text
    if kind == "enum":
        options = _option_values(fdef)
        key = str(raw).strip().casefold()
        if options and key not in options:
            raise ValueError("must be one of " + ", ".join(str(v) for v, _ in fdef.options))
        return options.get(key, str(raw).strip())
    if kind == "multi_enum":
        items = raw if isinstance(raw, (list, tuple)) else [p for p in str(raw).split(",")]
        options = _option_values(fdef)
        out = []
        for item in items:
            key = str(item).strip().casefold()
            if not key:
                continue
            if options and key not in options:
                raise ValueError(f"{item!s} is not one of " + ", ".join(str(v) for v, _ in fdef.options))
            value = options.get(key, str(item).strip())
            if value not in out:
                out.append(value)
        return out
    if kind == "email":
        text = str(raw).strip()
        if not EMAIL.match(text) or len(text) > 254:
            raise ValueError("must be an email address")
        return text
    if kind == "url":
        text = str(raw).strip()
        if not web_url(text) or len(text) > 2000:
            raise ValueError("must be an http(s) URL like https://example.com/ (no javascript:, data: or other schemes)")
        return text
    if kind == "user":
        text = str(raw).strip()
        user = user_by_email(text, organization_id)
        if user is None:
            raise ValueError("must be the email of a user of this organization")
        return user.email
    return str(raw)


def _date_bounds(fdef: km.FieldDef, iso: str) -> str | None:
    if fdef.min is not None and iso < str(fdef.min):
        return f"must be on or after {fdef.min}"
    if fdef.max is not None and iso > str(fdef.max):
        return f"must be on or before {fdef.max}"
    return None


def user_by_email(email: str, organization_id: int | None) -> User | None:
    """The account with this email (case-insensitive), in the organization when one is given."""
    from app.models.accounts import OrganizationMembership

    query = select(User).where(func.lower(User.email) == email.casefold())
    if organization_id is not None:
        query = query.join(OrganizationMembership).where(OrganizationMembership.organization_id == organization_id)
    return db.session.scalar(query)


def validate_custom_fields(itype: km.IssueType, values: Mapping[str, Any] | None, *, organization_id: int | None,
                           partial: bool = False, defaults: bool = True) -> tuple[dict[str, Any], dict[str, str]]:
    """Typed values per the issue type's fields, and problems keyed by field key (`partial`: no required check)."""
    values = dict(values or {})
    known = {f.key: f for f in itype.fields}
    out: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for key in values:
        if key not in known:
            problems[key] = f"is not a field of {itype.label}"
    for fdef in itype.fields:
        present = fdef.key in values
        raw = values.get(fdef.key)
        if not present and defaults and fdef.default is not None:
            raw, present = fdef.default, True
        if _blank(raw) and not (fdef.type == "boolean" and raw is not None and raw != ""):
            if fdef.required and not partial:
                problems[fdef.key] = f"{fdef.label} is required"
            elif present:
                out[fdef.key] = None
            continue
        try:
            value = coerce_field(fdef, raw, organization_id)
        except ValueError as exc:
            problems[fdef.key] = f"{fdef.label} {exc}"
            continue
        if fdef.required and not partial and _blank(value):
            problems[fdef.key] = f"{fdef.label} is required"
            continue
        out[fdef.key] = value
    return out, problems


def clean_labels(labels: Sequence[str] | str | None, problems: dict[str, Any]) -> list[str]:
    """Distinct valid labels from a list or a comma/space separated string; problems go into `problems`."""
    if isinstance(labels, str):
        labels = [p for p in re.split(r"[,\s]+", labels) if p]
    out: list[str] = []
    for label in labels or ():
        label = str(label).strip()
        if not label:
            continue
        if not LABEL.match(label):
            problems["labels"] = (f"'{label[:60]}' is not a valid label: use letters, digits and _ . : / + -, "
                                  "at most 50 characters")
            continue
        if label not in out:
            out.append(label)
    if len(out) > 20:
        problems["labels"] = "At most 20 labels."
    return out


def check_priority(config: km.ConfigRevision, priority: str | None, problems: dict[str, Any]) -> str | None:
    """The configured priority matching `priority` (any case), None when blank; else a problem."""
    if priority is None or not str(priority).strip():
        return None
    wanted = str(priority).strip().casefold()
    for known in config.project.priorities:
        if known.casefold() == wanted:
            return known
    problems["priority"] = "Choose one of " + ", ".join(config.project.priorities)
    return None


def check_due_date(value: Any, problems: dict[str, Any]) -> date | None:
    """A due date from a date or an ISO text ("2026-01-31", a time after it is ignored), None when blank."""
    if value in (None, ""):
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        problems["due_date"] = "must be a date like 2026-01-31"
        return None


def check_assignee(project: Project, assignee_id: int | None, problems: dict[str, Any]) -> User | None:
    if assignee_id in (None, "", 0):
        return None
    user = db.session.get(User, int(assignee_id))
    if user is None or project_role(user, project) is None:
        problems["assignee_id"] = "The assignee must be a member of the project."
        return None
    return user


def check_parent(project: Project, itype: km.IssueType, config: km.ConfigRevision, parent_id: int | None,
                 problems: dict[str, Any], *, issue_id: int | None = None) -> Issue | None:
    if parent_id in (None, "", 0):
        return None
    parent = db.session.get(Issue, int(parent_id))
    if parent is None or parent.project_id != project.id:
        problems["parent_id"] = "The parent must be an issue of this project."
        return None
    if issue_id is not None and parent.id == issue_id:
        problems["parent_id"] = "An issue cannot be its own parent."
        return None
    ptype = config.issue_types.get(parent.issue_type)
    if ptype is not None:
        if not ptype.allow_children:
            problems["parent_id"] = f"{ptype.label} issues cannot have children."
        elif ptype.child_types is not None and itype.key not in ptype.child_types:
            problems["parent_id"] = f"{ptype.label} issues accept only " + ", ".join(ptype.child_types) + " children."
    if itype.parent_types is not None and parent.issue_type not in itype.parent_types:
        problems["parent_id"] = f"{itype.label} issues can only sit under " + ", ".join(itype.parent_types) + "."
    return parent
