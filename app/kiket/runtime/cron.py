"""Five-field cron expressions for `schedule.cron` automations (spec §10.2), evaluated in the project timezone.

Fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12 or JAN-DEC), day of week (0-7 or
SUN-SAT, 0 and 7 both Sunday). Each field is `*`, a value, a range `a-b`, a step `*/n`, `a-b/n` or `a/n`
(from a to the field's maximum), or a comma list of those. As in Vixie cron, when both day of month and
day of week are restricted, a day matches if EITHER does.

Time zones: `due_minutes` walks the real (UTC) minutes of an interval and reads each one's wall-clock time
in the zone. A local minute skipped by a spring-forward transition never happens, so nothing fires for it;
a local minute repeated by a fall-back transition fires once, at its first occurrence, because the
returned minutes are wall-clock minutes and the caller fires once per wall-clock minute.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

MONTHS = {name: n for n, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
DAYS = {name: n for n, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
# (low, high, names) per field, in expression order.
FIELDS = ((0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, MONTHS), (0, 7, DAYS))
# Walking more than this many minutes at once (a sweep after a long outage) starts at the limit instead.
MAX_WINDOW = timedelta(days=1)


class CronError(ValueError):
    """The expression is not a valid five-field cron expression."""


@dataclass(frozen=True)
class Cron:
    """A parsed expression: the allowed values per field, and whether each day field was `*`."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday … 6 = Saturday (7 is folded into 0)
    any_day: bool
    any_weekday: bool

    def matches(self, moment: datetime) -> bool:
        """True when the wall-clock minute of `moment` (in its own zone) is one of the expression's."""
        if moment.minute not in self.minutes or moment.hour not in self.hours or moment.month not in self.months:
            return False
        day_ok = moment.day in self.days
        weekday_ok = (moment.isoweekday() % 7) in self.weekdays
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return weekday_ok
        if self.any_weekday:
            return day_ok
        return day_ok or weekday_ok


def _value(text: str, low: int, high: int, names: dict[str, int]) -> int:
    folded = text.strip().lower()
    if folded in names:
        return names[folded]
    if not folded.isdigit():
        raise CronError(f"{text!r} is not a number or a name")
    number = int(folded)
    if not low <= number <= high:
        raise CronError(f"{number} is outside {low}-{high}")
    return number


def _field(text: str, low: int, high: int, names: dict[str, int]) -> tuple[frozenset[int], bool]:
    """(values, was it `*`) for one field."""
    if not text:
        raise CronError("empty field")
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        if _ and not step_text.isdigit():
            raise CronError(f"step in {part!r} must be a positive number")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise CronError(f"step in {part!r} must be at least 1")
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _value(first, low, high, names), _value(last, low, high, names)
            if start > end:
                raise CronError(f"range {base!r} runs backwards")
        else:
            start = _value(base, low, high, names)
            end = high if step_text else start
        values.update(range(start, end + 1, step))
    return frozenset(values), text == "*"


def parse(expression: str) -> Cron:
    """Parse a five-field expression; raises CronError naming what is wrong."""
    if not isinstance(expression, str):
        raise CronError("a cron expression is a string")
    parts = expression.split()
    if len(parts) != 5:
        raise CronError(f"expected 5 fields, got {len(parts)}")
    parsed = [_field(part, low, high, names) for part, (low, high, names) in zip(parts, FIELDS)]
    weekdays = frozenset(d % 7 for d in parsed[4][0])
    return Cron(parsed[0][0], parsed[1][0], parsed[2][0], parsed[3][0], weekdays, parsed[2][1], parsed[4][1])


def is_valid(expression: str) -> bool:
    try:
        parse(expression)
    except CronError:
        return False
    return True


def due_minutes(expression: str | Cron, after: datetime, until: datetime, zone: ZoneInfo | str) -> list[datetime]:
    """Wall-clock minutes in `zone` (aware, seconds zeroed) that match, for the real minutes in (after, until].

    Each wall-clock minute appears once, even when a fall-back transition repeats it."""
    cron = parse(expression) if isinstance(expression, str) else expression
    tz = ZoneInfo(zone) if isinstance(zone, str) else zone
    after, until = _utc(after), _utc(until)
    after = max(after, until - MAX_WINDOW)
    minute = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    seen: set[tuple[int, int, int, int, int]] = set()
    out = []
    while minute <= until:
        local = minute.astimezone(tz)
        wall = (local.year, local.month, local.day, local.hour, local.minute)
        if wall not in seen and cron.matches(local):
            seen.add(wall)
            out.append(local)
        minute += timedelta(minutes=1)
    return out


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)
