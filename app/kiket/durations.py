"""Durations for SLA thresholds and reminders: `15m`, `1d12h`, ISO-8601 `PT4H` (spec §8.3)."""

from __future__ import annotations

import re
from functools import lru_cache

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

# [0-9] rather than \d: \d also matches non-ASCII digits such as "٣".
_COMPOUND = re.compile(r"[0-9]+[smhdw](?:\s*[0-9]+[smhdw])*")
_PART = re.compile(r"([0-9]+)([smhdw])")
_ISO = re.compile(
    r"P(?:(?P<w>[0-9]+)W)?(?:(?P<d>[0-9]+)D)?"
    r"(?:T(?:(?P<h>[0-9]+)H)?(?:(?P<m>[0-9]+)M)?(?:(?P<s>[0-9]+)S)?)?"
)
_SHARE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*%")

MAX_TEXT = 64
# Ten years: anything longer is a typo, and it keeps datetime arithmetic far from overflow.
MAX_SECONDS = 10 * 366 * 86400

_HINT = "write an integer with a unit (s, m, h, d, w), e.g. '15m', '48h' or '1d12h'"


def parse_duration(value: object) -> int:
    """Parse a duration such as `15m`, `1d12h` or `PT4H` into seconds; raise ValueError on anything else."""
    if isinstance(value, bool) or isinstance(value, (int, float)):
        raise ValueError(f"duration {value!r} has no unit: {_HINT}")
    if not isinstance(value, str):
        raise ValueError(f"duration must be a string, got {type(value).__name__}: {_HINT}")
    return _parse_text(value)


@lru_cache(maxsize=1024)
def _parse_text(value: str) -> int:
    """`parse_duration` of a text: the same few durations recur across a repository's files."""
    text = value.strip()
    if not text:
        raise ValueError(f"duration is empty: {_HINT}")
    if len(text) > MAX_TEXT:
        raise ValueError(f"duration is too long ({len(text)} characters): {_HINT}")
    if text.startswith("P"):
        seconds = _parse_iso(text)
    elif _COMPOUND.fullmatch(text):
        seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(text))
    else:
        raise ValueError(_explain_bad(text))
    if seconds <= 0:
        raise ValueError(f"duration {text!r} must be greater than zero")
    if seconds > MAX_SECONDS:
        raise ValueError(f"duration {text!r} is longer than ten years")
    return seconds


def _parse_iso(text: str) -> int:
    match = _ISO.fullmatch(text)
    if not match or not any(match.groupdict().values()) or text.endswith("T"):
        raise ValueError(
            f"duration {text!r} is not a supported ISO-8601 duration: use weeks, days, hours, "
            "minutes and seconds only, e.g. 'PT4H' or 'P1DT2H'"
        )
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    return sum(n * _UNIT_SECONDS[k] for k, n in parts.items())


def _explain_bad(text: str) -> str:
    if re.fullmatch(r"[+-]?[0-9]+(?:\.[0-9]+)?", text):
        return f"duration {text!r} has no unit: {_HINT}"
    if text.startswith("-"):
        return f"duration {text!r} must not be negative"
    if re.fullmatch(r"[0-9]+[SMHDW](?:[0-9]+[smhdwSMHDW])*", text):
        return f"duration {text!r} uses an uppercase unit: units are lowercase ({_HINT})"
    if re.fullmatch(r"[0-9]*\.[0-9]+[smhdw]", text):
        return f"duration {text!r} is fractional: use a smaller unit, e.g. '90m' for 1.5h"
    return f"duration {text!r} is not understood: {_HINT}"


def format_duration(seconds: int | float) -> str:
    """Humanize seconds as the two largest units, e.g. `3h 20m`, `2d 4h`, `45s`; negative gets a `-`."""
    total = int(seconds)
    sign = "-" if total < 0 else ""
    total = abs(total)
    if total == 0:
        return "0m"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count or parts:
            parts.append((count, unit))
    # Two most significant units; seconds only matter below a minute or next to minutes.
    shown = [f"{n}{u}" for n, u in parts[:2] if n]
    return sign + " ".join(shown)


def parse_share(value: object) -> float | None:
    """Return `0.8` for `"80%"`; None when the value is not a percentage; ValueError outside (0, 100]."""
    if not isinstance(value, str):
        return None
    match = _SHARE.fullmatch(value.strip())
    if not match:
        if value.strip().endswith("%"):
            raise ValueError(f"share {value!r} is not a percentage: write e.g. '80%'")
        return None
    share = float(match.group(1)) / 100
    if not 0 < share <= 1:
        raise ValueError(f"share {value!r} must be above 0% and at most 100%")
    return share
