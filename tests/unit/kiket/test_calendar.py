"""Business-hours calendar (spec §5, §8.3): parsing, business time between moments, adding business time."""

from __future__ import annotations

import time as clock
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from app.kiket.calendar import BusinessHours, add_business_seconds, business_seconds_between

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
DEFAULT = BusinessHours()
HOUR = 3600


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_timezone_database_is_available():
    assert ZoneInfo("Europe/Berlin").utcoffset(datetime(2026, 7, 1)) == timedelta(hours=2)


# ---- parse ------------------------------------------------------------------------------------

def test_defaults_match_the_spec():
    assert DEFAULT == BusinessHours("UTC", ("mon", "tue", "wed", "thu", "fri"), time(9), time(17), ())
    assert BusinessHours.parse(None) == (DEFAULT, [])
    assert BusinessHours.parse(True) == (DEFAULT, [])
    assert BusinessHours.parse({}) == (DEFAULT, [])
    assert DEFAULT.seconds_per_day == 8 * HOUR


def test_parse_full_yaml_block():
    node = yaml.safe_load("""
        timezone: Europe/Berlin
        days: [Monday, tue, WED, thu]
        start: "08:30"
        end: 17:00
        holidays: [2026-12-25, "2026-12-24", 2026-12-25]
    """)
    assert node["end"] == 1020  # YAML 1.1 sexagesimal: why _parse_time accepts minutes
    cal, problems = BusinessHours.parse(node)
    assert problems == []
    assert cal == BusinessHours("Europe/Berlin", ("mon", "tue", "wed", "thu"), time(8, 30), time(17),
                                (date(2026, 12, 24), date(2026, 12, 25)))


@pytest.mark.parametrize(("days", "expected"), [
    ("mon-fri", ("mon", "tue", "wed", "thu", "fri")),
    ("mon, wed", ("mon", "wed")),
    (["sun", "sat"], ("sat", "sun")),
    (["mon-wed", "fri"], ("mon", "tue", "wed", "fri")),
])
def test_parse_day_forms(days, expected):
    cal, problems = BusinessHours.parse({"days": days})
    assert cal.days == expected and problems == []


@pytest.mark.parametrize(("node", "fragment", "field", "value"), [
    ({"timezone": "Mars/Base"}, "not a known IANA timezone", "timezone", "UTC"),
    ({"timezone": "../../etc/passwd"}, "not a known IANA timezone", "timezone", "UTC"),
    ({"timezone": 5}, "not a known IANA timezone", "timezone", "UTC"),
    ({"days": ["mon", "funday"]}, "'funday' is not a day name", "days", ("mon",)),
    ({"days": []}, "names no valid day", "days", DEFAULT.days),
    ({"days": 5}, "must be a list", "days", DEFAULT.days),
    ({"start": "9am"}, "not a time", "start", time(9)),
    ({"start": "25:00"}, "not a time", "start", time(9)),
    ({"end": 99999}, "not a time", "end", time(17)),
    ({"start": "18:00", "end": "08:00"}, "overnight", "start", time(9)),
    ({"start": "10:00", "end": "10:00"}, "not after start", "end", time(17)),
    ({"holidays": ["2026-02-30", "x", 5]}, "is not a date", "holidays", ()),
    ({"holidays": "2026-12-25"}, "must be a list", "holidays", ()),
    ({"tz": "UTC"}, "unknown key 'tz'", "timezone", "UTC"),
])
def test_parse_problems_fall_back_to_defaults(node, fragment, field, value):
    cal, problems = BusinessHours.parse(node)
    assert any(fragment in p for p in problems), problems
    assert getattr(cal, field) == value


@pytest.mark.parametrize("node", ["9-5", 3, ["mon"]])
def test_parse_non_mapping(node):
    cal, problems = BusinessHours.parse(node)
    assert cal == DEFAULT and len(problems) == 1


# ---- business_seconds_between ------------------------------------------------------------------

MON = utc(2026, 11, 23, 9)  # a Monday

BETWEEN = [
    (MON, MON, 0),
    (MON, MON - timedelta(hours=1), 0),
    (MON, utc(2026, 11, 23, 17), 8 * HOUR),
    (utc(2026, 11, 23, 7), utc(2026, 11, 23, 20), 8 * HOUR),
    (utc(2026, 11, 23, 16), utc(2026, 11, 24, 10), 2 * HOUR),
    (utc(2026, 11, 27, 16), utc(2026, 11, 30, 10), 2 * HOUR),  # Friday to Monday skips the weekend
    (utc(2026, 11, 28, 10), utc(2026, 11, 29, 23), 0),  # weekend only
    (MON, utc(2026, 11, 30, 9), 40 * HOUR),
    (MON, utc(2026, 11, 30, 17), 48 * HOUR),
    (utc(2026, 11, 23, 12, 30), utc(2026, 11, 23, 12, 45, 30), 15 * 60 + 30),
]


@pytest.mark.parametrize(("start", "end", "seconds"), BETWEEN)
def test_business_seconds_between(start, end, seconds):
    assert business_seconds_between(start, end, DEFAULT) == seconds


def test_holidays_are_skipped():
    cal = BusinessHours(holidays=(date(2026, 11, 24),))
    assert business_seconds_between(MON, utc(2026, 11, 26, 9), cal) == 16 * HOUR


def test_mixed_input_timezones():
    start = datetime(2026, 11, 23, 10, tzinfo=BERLIN)  # 09:00 UTC
    end = datetime(2026, 11, 23, 12, tzinfo=NEW_YORK)  # 17:00 UTC
    assert business_seconds_between(start, end, DEFAULT) == 8 * HOUR


def test_calendar_timezone_decides_the_window():
    cal = BusinessHours("Europe/Berlin")
    # 09:00-17:00 Berlin in winter is 08:00-16:00 UTC.
    assert business_seconds_between(utc(2026, 11, 23, 0), utc(2026, 11, 23, 12), cal) == 4 * HOUR


def test_dst_spring_forward_day_is_one_hour_shorter_at_night():
    cal = BusinessHours("Europe/Berlin", days=("sun",), start=time(0, 0), end=time(23, 59))
    day_start = datetime(2026, 3, 29, 0, 0, tzinfo=BERLIN)
    day_end = datetime(2026, 3, 29, 23, 59, tzinfo=BERLIN)
    assert business_seconds_between(day_start, day_end, cal) == (22 * 60 + 59) * 60


def test_dst_fall_back_day_is_one_hour_longer_at_night():
    cal = BusinessHours("Europe/Berlin", days=("sun",), start=time(0, 0), end=time(23, 59))
    day_start = datetime(2026, 10, 25, 0, 0, tzinfo=BERLIN)
    day_end = datetime(2026, 10, 25, 23, 59, tzinfo=BERLIN)
    assert business_seconds_between(day_start, day_end, cal) == (24 * 60 + 59) * 60


def test_office_hours_are_eight_hours_across_dst_in_local_time():
    cal = BusinessHours("America/New_York")
    before = datetime(2026, 3, 6, 9, tzinfo=NEW_YORK)  # Friday before DST starts on Sunday 8 March
    after = datetime(2026, 3, 9, 17, tzinfo=NEW_YORK)  # Monday after
    assert business_seconds_between(before, after, cal) == 16 * HOUR


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError):
        business_seconds_between(datetime(2026, 1, 1), MON, DEFAULT)
    with pytest.raises(ValueError):
        add_business_seconds(datetime(2026, 1, 1), 10, DEFAULT)


# ---- add_business_seconds ---------------------------------------------------------------------

ADD = [
    (MON, 0, MON),
    (MON, -5, MON),
    (MON, 1, MON + timedelta(seconds=1)),
    (MON, 8 * HOUR, utc(2026, 11, 23, 17)),
    (MON, 8 * HOUR + 1, utc(2026, 11, 24, 9, 0, 1)),
    (MON, 48 * HOUR, utc(2026, 11, 30, 17)),  # six 8-hour days: Mon..Fri plus next Monday
    (utc(2026, 11, 23, 6), HOUR, utc(2026, 11, 23, 10)),
    (utc(2026, 11, 23, 20), HOUR, utc(2026, 11, 24, 10)),
    (utc(2026, 11, 27, 16), 2 * HOUR, utc(2026, 11, 30, 10)),
    (utc(2026, 11, 28, 12), HOUR, utc(2026, 11, 30, 10)),
]


@pytest.mark.parametrize(("start", "seconds", "expected"), ADD)
def test_add_business_seconds(start, seconds, expected):
    assert add_business_seconds(start, seconds, DEFAULT) == expected


def test_add_returns_in_the_start_timezone():
    start = datetime(2026, 11, 23, 10, tzinfo=BERLIN)
    result = add_business_seconds(start, HOUR, DEFAULT)
    assert result.tzinfo is BERLIN and result == utc(2026, 11, 23, 10)


def test_add_skips_holidays_and_handles_dst():
    cal = BusinessHours("Europe/Berlin", holidays=(date(2026, 3, 30),))
    start = datetime(2026, 3, 27, 16, tzinfo=BERLIN)  # Friday, CET; DST starts Sunday 29 March
    result = add_business_seconds(start, 2 * HOUR, cal)
    assert result == datetime(2026, 3, 31, 10, tzinfo=BERLIN)  # Monday is a holiday
    assert result.utcoffset() == timedelta(hours=2)


def test_long_spans_are_fast():
    started = clock.perf_counter()
    assert business_seconds_between(utc(2000, 1, 1), utc(2030, 1, 1), DEFAULT) > 0
    assert add_business_seconds(MON, 5 * 365 * 8 * HOUR, DEFAULT) > MON
    assert clock.perf_counter() - started < 1.0


moments = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1),
                       timezones=st.sampled_from([UTC, BERLIN, NEW_YORK]))
calendars = st.sampled_from([DEFAULT, BusinessHours("Europe/Berlin"), BusinessHours("America/New_York",
                             days=("mon", "wed", "sat"), start=time(8), end=time(12, 30),
                             holidays=(date(2026, 1, 5),))])


@settings(max_examples=200, deadline=None)
@given(start=moments, seconds=st.integers(min_value=1, max_value=200 * HOUR), cal=calendars)
def test_add_then_measure_round_trips(start, seconds, cal):
    end = add_business_seconds(start, seconds, cal)
    assert end > start
    assert business_seconds_between(start, end, cal) == seconds


near_moments = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 6, 1),
                            timezones=st.sampled_from([UTC, BERLIN, NEW_YORK]))


@settings(max_examples=150, deadline=None)
@given(a=near_moments, b=near_moments, c=near_moments, cal=calendars)
def test_business_time_is_additive(a, b, c, cal):
    a, b, c = sorted([a, b, c])
    total = business_seconds_between(a, c, cal)
    split = business_seconds_between(a, b, cal) + business_seconds_between(b, c, cal)
    assert abs(total - split) <= 1
    assert 0 <= total <= (c - a).total_seconds() + 1
