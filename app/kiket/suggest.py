"""Did-you-mean hints: the closest known names to a misspelled one, by edit distance."""

from __future__ import annotations

from typing import Iterable

DOCS = "docs/diagnostics.md"


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions), case-insensitive."""
    a, b = a.casefold(), b.casefold()
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, left in enumerate(a, start=1):
        current = [i]
        for j, right in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (left != right)))
        previous = current
    return previous[-1]


def closest(name: str, candidates: Iterable[str], limit: int = 3) -> list[str]:
    """The candidates nearest to `name`, if near enough to be what was meant (ties keep the given order)."""
    name = str(name)
    allowed = max(2, len(name) // 3)
    scored = []
    for index, candidate in enumerate(dict.fromkeys(candidates)):
        distance = edit_distance(name, candidate)
        # A known name inside a longer one (`require_approvals_v2`) is a likely intent too.
        if distance > allowed and not (len(candidate) > 3 and candidate.casefold() in name.casefold()):
            continue
        scored.append((distance, index, candidate))
    if not scored:
        return []
    best = min(distance for distance, _, _ in scored)
    return [candidate for distance, _, candidate in sorted(scored) if distance == best][:limit]


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`Did you mean 'x'?` (or 'x' or 'y'), or an empty string when nothing is close."""
    found = closest(name, candidates)
    if not found:
        return ""
    return "Did you mean " + " or ".join(f"'{c}'" for c in found) + "?"


def catalogue_hint(name: str, candidates: Iterable[str], what: str) -> str:
    """A hint naming the nearest candidates first, then the whole catalogue."""
    candidates = list(candidates)
    guess = did_you_mean(name, candidates)
    listing = f"{what}: " + ", ".join(candidates) + "."
    return f"{guess} {listing}" if guess else listing


def doc_link(code: str) -> str:
    """Where the reference explains a diagnostic code."""
    return f"{DOCS}#{code}"
