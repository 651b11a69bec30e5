"""The five-field cron matcher of `schedule.cron` (spec §10.2): every field form, names, the day-of-month /
day-of-week OR rule, windows, and daylight-saving transitions. Each matcher is checked against a brute-force
reading of the expression over whole years of minutes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from app.kiket.runtime.cron import CronError, due_minutes, is_valid, parse

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize("expression, field, expected", [
    ("* * * * *", "minutes", set(range(60))),
    ("5 * * * *", "minutes", {5}),
    ("1,2,30 * * * *", "minutes", {1, 2, 30}),
    ("10-15 * * * *", "minutes", set(range(10, 16))),
    ("*/15 * * * *", "minutes", {0, 15, 30, 45}),
    ("10-30/10 * * * *", "minutes", {10, 20, 30}),
    ("50/5 * * * *", "minutes", {50, 55}),
    ("0,*/20,7-8 * * * *", "minutes", {0, 20, 40, 7, 8}),
    ("* */6 * * *", "hours", {0, 6, 12, 18}),
    ("* 23 * * *", "hours", {23}),
    ("* * 1,15,31 * *", "days", {1, 15, 31}),
    ("* * */10 * *", "days", {1, 11, 21, 31}),
    ("* * * JAN,jul *", "months", {1, 7}),
    ("* * * mar-MAY *", "months", {3, 4, 5}),
    ("* * * */3 *", "months", {1, 4, 7, 10}),
    ("* * * * MON-FRI", "weekdays", {1, 2, 3, 4, 5}),
    ("* * * * sat,SUN", "weekdays", {6, 0}),
    ("* * * * 7", "weekdays", {0}),
    ("* * * * 0", "weekdays", {0}),
    ("* * * * 5-7", "weekdays", {5, 6, 0}),
    ("* * * * */2", "weekdays", {0, 2, 4, 6}),
])
def test_field_forms(expression, field, expected):
    assert set(getattr(parse(expression), field)) == expected


@pytest.mark.parametrize("expression", [
    "", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * 32 * *", "* * * 0 *",
    "* * * 13 *", "* * * * 8", "*/0 * * * *", "5-1 * * * *", "a * * * *", "* * * foo *", "* * * * mon-",
    "1-5/ * * * *", "/5 * * * *", "1,,2 * * * *", "-1 * * * *", "* * * * MONDAY",
])
def test_invalid_expressions_are_refused(expression):
    with pytest.raises(CronError):
        parse(expression)
    assert not is_valid(expression)


def test_a_non_string_is_refused():
    with pytest.raises(CronError):
        parse(None)  # type: ignore[arg-type]


def _reference(expression: str, moment: datetime) -> bool:
    """A deliberately naive reading of the expression, for comparison."""
    minute, hour, dom, month, dow = expression.split()

    def hit(spec: str, value: int, low: int, high: int) -> bool:
        for part in spec.split(","):
            base, _, step = part.partition("/")
            step = int(step or 1)
            if base == "*":
                lo, hi = low, high
            elif "-" in base:
                lo, hi = (int(x) for x in base.split("-"))
            else:
                lo = int(base)
                hi = high if _ else lo
            if lo <= value <= hi and (value - lo) % step == 0:
                return True
        return False

    day = hit(dom, moment.day, 1, 31)
    weekday = moment.isoweekday() % 7
    week = hit(dow, weekday, 0, 7) or (weekday == 0 and hit(dow, 7, 0, 7))
    days = day or week
    if dom == "*" and dow == "*":
        days = True
    elif dom == "*":
        days = week
    elif dow == "*":
        days = day
    return hit(minute, moment.minute, 0, 59) and hit(hour, moment.hour, 0, 23) and hit(month, moment.month, 1, 12) \
        and days


def _minutes(start: datetime, days: int, step: timedelta = timedelta(minutes=1)):
    moment = start
    while moment < start + timedelta(days=days):
        yield moment
        moment += step


@pytest.mark.parametrize("expression", [
    "*/7 3-5 * * *", "0 9 * * 1", "30 8 1 * *", "0 0 13 * 5", "15 */4 1-7 * 1", "0 12 * 2 *", "59 23 31 * *",
    "0 0 29 2 *", "*/30 * * * 0,6", "0 0 * * 7", "5/20 10 10-20/5 * *",
])
def test_matches_agree_with_a_naive_reading(expression):
    cron = parse(expression)
    # Every minute of two fortnights (one across a leap day), every 61 minutes for two years, and every day of
    # those years at the expression's first hour and minute (and a minute either side).
    first = datetime(2027, 1, 1, min(cron.hours), min(cron.minutes), tzinfo=UTC)
    daily = [d + timedelta(minutes=delta) for d in _minutes(first, 731, timedelta(days=1)) for delta in (-1, 0, 1)]
    moments = [*_minutes(datetime(2027, 1, 1, tzinfo=UTC), 14), *_minutes(datetime(2028, 2, 20, tzinfo=UTC), 14),
               *_minutes(datetime(2027, 1, 1, tzinfo=UTC), 731, timedelta(minutes=61)), *daily]
    for moment in moments:
        assert cron.matches(moment) == _reference(expression, moment), moment
    assert any(cron.matches(m) for m in moments)


def test_day_of_month_or_day_of_week_when_both_are_restricted():
    cron = parse("0 0 13 * FRI")
    assert cron.matches(datetime(2027, 8, 13, tzinfo=UTC))  # Friday the 13th
    assert cron.matches(datetime(2027, 8, 6, tzinfo=UTC))  # a Friday
    assert cron.matches(datetime(2027, 9, 13, tzinfo=UTC))  # a Monday, the 13th
    assert not cron.matches(datetime(2027, 9, 14, tzinfo=UTC))
    only_fridays = parse("0 0 * * FRI")
    assert not only_fridays.matches(datetime(2027, 9, 13, tzinfo=UTC))


def test_due_minutes_in_a_window_are_the_local_wall_clock_minutes():
    got = due_minutes("*/5 9 * * MON-FRI", datetime(2027, 3, 1, 7, 52, tzinfo=UTC),
                      datetime(2027, 3, 1, 8, 10, tzinfo=UTC), BERLIN)  # 08:52-09:10 in Berlin (CET)
    assert [m.strftime("%H:%M") for m in got] == ["09:00", "09:05", "09:10"]
    assert all(m.tzinfo is BERLIN for m in got)
    # The window is (after, until]: the start minute is excluded, the end included.
    assert due_minutes("0 9 * * *", datetime(2027, 3, 1, 8, 0, tzinfo=UTC), datetime(2027, 3, 1, 8, 0, tzinfo=UTC),
                       BERLIN) == []
    assert due_minutes("0 9 * * *", datetime(2027, 3, 1, 7, 59, 30, tzinfo=UTC),
                       datetime(2027, 3, 1, 8, 0, tzinfo=UTC), "Europe/Berlin")[0].hour == 9
    # A Saturday matches nothing.
    assert due_minutes("*/5 9 * * MON-FRI", datetime(2027, 3, 6, 7, 0, tzinfo=UTC),
                       datetime(2027, 3, 6, 9, 0, tzinfo=UTC), BERLIN) == []


def test_naive_times_are_utc_and_long_windows_are_capped_at_a_day():
    got = due_minutes("0 12 * * *", datetime(2027, 1, 1), datetime(2027, 1, 10, 13), UTC)
    assert [m.date().day for m in got] == [10]  # only the last day: an outage does not replay a week


def test_spring_forward_skips_the_missing_local_hour():
    # 2027-03-28 02:00 CET jumps to 03:00 CEST in Berlin: 02:30 never happens that night.
    start, end = datetime(2027, 3, 27, 23, 0, tzinfo=UTC), datetime(2027, 3, 28, 4, 0, tzinfo=UTC)
    assert due_minutes("30 2 * * *", start, end, BERLIN) == []
    hourly = due_minutes("0 * * * *", start, end, BERLIN)
    assert [m.strftime("%H:%M%z") for m in hourly] == ["01:00+0100", "03:00+0200", "04:00+0200", "05:00+0200",
                                                       "06:00+0200"]


def test_fall_back_fires_a_repeated_local_minute_once():
    # 2027-11-07 02:00 EDT falls back to 01:00 EST in New York: 01:30 happens twice, fires once.
    start, end = datetime(2027, 11, 7, 4, 0, tzinfo=UTC), datetime(2027, 11, 7, 8, 0, tzinfo=UTC)
    got = due_minutes("30 1 * * *", start, end, NEW_YORK)
    assert [m.strftime("%H:%M%z") for m in got] == ["01:30-0400"]
    every_quarter = due_minutes("*/15 1 * * *", start, end, NEW_YORK)
    assert [m.strftime("%H:%M") for m in every_quarter] == ["01:00", "01:15", "01:30", "01:45"]


def test_every_minute_of_a_window():
    start = datetime(2027, 6, 1, 0, 0, tzinfo=UTC)
    got = due_minutes("* * * * *", start, start + timedelta(minutes=5), UTC)
    assert [m.minute for m in got] == [1, 2, 3, 4, 5]
    assert due_minutes(parse("* * * * *"), start, start + timedelta(minutes=1), UTC)[0].minute == 1
