"""Business-hours calendar for SLA clocks: weekly opening hours, holidays, DST-correct (spec §5, §8.3)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_ALIASES = {
    **{d: d for d in DAY_NAMES},
    "monday": "mon", "tuesday": "tue", "tues": "tue", "wednesday": "wed", "thursday": "thu",
    "thur": "thu", "thurs": "thu", "friday": "fri", "saturday": "sat", "sunday": "sun",
}
_TIME = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")
_TZ_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+\-/]{0,63}")
# A window of days to scan before giving up: bounds the loops even for absurd inputs.
_MAX_DAYS = 366 * 50


@dataclass(frozen=True)
class BusinessHours:
    """Weekly opening hours in one timezone, minus holidays (local dates)."""

    timezone: str = "UTC"
    days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri")
    start: time = time(9, 0)
    end: time = time(17, 0)
    holidays: tuple[date, ...] = ()

    @property
    def tz(self) -> ZoneInfo:
        """The zoneinfo object for `timezone` (UTC if unknown)."""
        return _zone(self.timezone) or ZoneInfo("UTC")

    @property
    def seconds_per_day(self) -> int:
        """Length of one business day in seconds (ignoring DST shifts)."""
        return (self.end.hour * 3600 + self.end.minute * 60) - (self.start.hour * 3600 + self.start.minute * 60)

    def is_business_day(self, day: date) -> bool:
        """True if `day` (a local date) is an opening day and not a holiday."""
        return DAY_NAMES[day.weekday()] in self.days and day not in self.holidays

    @classmethod
    def parse(cls, node: object) -> tuple[BusinessHours, list[str]]:
        """Build a calendar from a `business_hours` mapping; problems are returned, defaults used instead."""
        problems: list[str] = []
        default = cls()
        if node is None or node is True:
            return default, problems
        if not isinstance(node, Mapping):
            return default, [f"business_hours must be a mapping, got {type(node).__name__}; using the default"]
        known = {"timezone", "days", "start", "end", "holidays"}
        for key in node:
            if key not in known:
                problems.append(f"business_hours: unknown key {key!r} ignored")

        tz_name = default.timezone
        raw_tz = node.get("timezone")
        if raw_tz is not None:
            if isinstance(raw_tz, str) and _zone(raw_tz.strip()) is not None:
                tz_name = raw_tz.strip()
            else:
                problems.append(f"business_hours.timezone {raw_tz!r} is not a known IANA timezone; using UTC")

        days = default.days
        if "days" in node:
            days, day_problems = _parse_days(node.get("days"))
            problems.extend(day_problems)
            if not days:
                problems.append("business_hours.days names no valid day; using mon..fri")
                days = default.days

        start, end = default.start, default.end
        parsed_start = _parse_time(node.get("start"), "start", problems) if "start" in node else default.start
        parsed_end = _parse_time(node.get("end"), "end", problems) if "end" in node else default.end
        if parsed_start is not None and parsed_end is not None:
            if parsed_end > parsed_start:
                start, end = parsed_start, parsed_end
            else:
                problems.append(
                    f"business_hours.end {parsed_end:%H:%M} is not after start {parsed_start:%H:%M} "
                    "(overnight hours are not supported); using 09:00-17:00"
                )

        holidays: list[date] = []
        raw_holidays = node.get("holidays") or []
        if not isinstance(raw_holidays, list):
            problems.append("business_hours.holidays must be a list of dates; ignored")
            raw_holidays = []
        for index, item in enumerate(raw_holidays):
            day = _parse_date(item)
            if day is None:
                problems.append(f"business_hours.holidays[{index}] {item!r} is not a date (YYYY-MM-DD); skipped")
            else:
                holidays.append(day)

        ordered_days = tuple(d for d in DAY_NAMES if d in days)
        return cls(tz_name, ordered_days, start, end, tuple(sorted(set(holidays)))), problems


def _zone(name: str) -> ZoneInfo | None:
    if not isinstance(name, str) or not _TZ_NAME.fullmatch(name) or ".." in name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _parse_days(raw: object) -> tuple[tuple[str, ...], list[str]]:
    problems: list[str] = []
    if isinstance(raw, str):
        items: list[object] = [p.strip() for p in raw.split(",")]
    elif isinstance(raw, list):
        items = list(raw)
    else:
        return (), [f"business_hours.days must be a list of day names, got {raw!r}"]
    days: set[str] = set()
    for item in items:
        name = item.strip().lower() if isinstance(item, str) else None
        if name and "-" in name:
            first, _, last = name.partition("-")
            a, b = _DAY_ALIASES.get(first.strip()), _DAY_ALIASES.get(last.strip())
            if a and b and DAY_NAMES.index(a) <= DAY_NAMES.index(b):
                days.update(DAY_NAMES[DAY_NAMES.index(a): DAY_NAMES.index(b) + 1])
                continue
        if name in _DAY_ALIASES:
            days.add(_DAY_ALIASES[name])
        else:
            problems.append(f"business_hours.days: {item!r} is not a day name (mon..sun); skipped")
    return tuple(d for d in DAY_NAMES if d in days), problems


def _parse_time(raw: object, key: str, problems: list[str]) -> time | None:
    if isinstance(raw, time):
        return raw.replace(tzinfo=None)
    # YAML 1.1 reads unquoted 17:00 as the sexagesimal integer 1020 (minutes).
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < 1440:
        return time(raw // 60, raw % 60)
    if isinstance(raw, str):
        match = _TIME.fullmatch(raw.strip())
        if match:
            return time(int(match.group(1)), int(match.group(2)))
    problems.append(f"business_hours.{key} {raw!r} is not a time (HH:MM); using the default")
    return None


def _parse_date(raw: object) -> date | None:
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw.strip())
        except ValueError:
            return None
    return None


def _require_aware(value: datetime, name: str) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")


def _window(day: date, cal: BusinessHours, tz: ZoneInfo) -> tuple[float, float]:
    """Opening window of one local day as UTC timestamps (aware arithmetic in one tz ignores DST)."""
    opens = datetime.combine(day, cal.start, tzinfo=tz).timestamp()
    closes = datetime.combine(day, cal.end, tzinfo=tz).timestamp()
    return opens, closes


def business_seconds_between(start: datetime, end: datetime, cal: BusinessHours) -> int:
    """Business seconds elapsed from `start` to `end` (0 if `end` is not after `start`)."""
    _require_aware(start, "start")
    _require_aware(end, "end")
    tz = cal.tz
    t0, t1 = start.timestamp(), end.timestamp()
    if t1 <= t0:
        return 0
    day = start.astimezone(tz).date()
    last = end.astimezone(tz).date()
    total = 0.0
    while day <= last:
        if cal.is_business_day(day):
            opens, closes = _window(day, cal, tz)
            lo, hi = max(opens, t0), min(closes, t1)
            if hi > lo:
                total += hi - lo
        day += timedelta(days=1)
    return int(total)


def add_business_seconds(start: datetime, seconds: int, cal: BusinessHours) -> datetime:
    """The moment `seconds` of business time after `start`, in `start`'s timezone."""
    _require_aware(start, "start")
    if seconds <= 0:
        return start
    tz = cal.tz
    cursor = start.timestamp()
    remaining = float(seconds)
    day = start.astimezone(tz).date()
    for _ in range(_MAX_DAYS):
        if cal.is_business_day(day):
            opens, closes = _window(day, cal, tz)
            begin = max(opens, cursor)
            available = closes - begin
            if available > 0:
                if remaining <= available:
                    moment = datetime.fromtimestamp(begin + remaining, tz=timezone.utc)
                    return moment.astimezone(start.tzinfo)
                remaining -= available
        day += timedelta(days=1)
    raise ValueError(f"{seconds} business seconds do not fit in {_MAX_DAYS} days of this calendar")
