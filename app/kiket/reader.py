"""Per-file normalization context: positions, diagnostics, aliases, unknown keys and typed getters."""

from __future__ import annotations

import re
from collections.abc import Mapping as AbstractMapping, Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from app.kiket.codes import severity_of
from app.kiket.diagnostics import Diagnostic, Provenance, Severity
from app.kiket.suggest import did_you_mean, doc_link
from app.kiket.yamlload import YamlDocument, escape_pointer_token, locator

IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
# Words that make an unknown key look like a gate (§16): dropping it silently would weaken the workflow.
GATE_WORDS = ("require", "approv", "guard", "condition", "block", "gate", "restrict")


def looks_like_gate(key: Any) -> bool:
    """True when an unknown key's name suggests it was meant to guard something."""
    text = str(key).casefold()
    return any(word in text for word in GATE_WORDS)


@dataclass(frozen=True)
class PendingRef:
    """A reference checked once all layers are merged (roles, agents, channels, documents...)."""

    kind: str
    name: str
    prov: Provenance
    context: str = ""
    workflow: str | None = None


def humanize(key: str) -> str:
    """`wont_fix` -> `Wont fix`, `in-progress` -> `In progress`."""
    text = re.sub(r"[_\-.]+", " ", str(key)).strip()
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", text)
    return text[:1].upper() + text[1:].lower() if text else str(key)


def slugify(text: str) -> str:
    """Lowercase `[a-z0-9_]` identifier from a label."""
    slug = re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_")
    return (slug or "item")[:64] if slug[:1].isalpha() else ("item_" + slug)[:64]


def join(pointer: str, *tokens: Any) -> str:
    """Extend a JSON pointer by tokens."""
    for token in tokens:
        if type(token) is not str:
            token = str(token)
        if "~" in token or "/" in token:
            token = escape_pointer_token(token)
        pointer = f"{pointer}/{token}"
    return pointer


@dataclass
class FileContext:
    """Everything a normalizer needs for one file, and where its diagnostics go."""

    doc: YamlDocument
    prov: Provenance
    diagnostics: list[Diagnostic] = field(default_factory=list)
    refs: list[PendingRef] = field(default_factory=list)
    allow_privileged: bool = False
    locate: Callable[[str], Provenance] = field(init=False)

    def __post_init__(self) -> None:
        self.locate = locator(self.doc, self.prov)

    @property
    def path(self) -> str:
        return self.doc.path

    @property
    def stem(self) -> str:
        name = self.doc.path.rsplit("/", 1)[-1]
        return name.rsplit(".", 1)[0]

    def diag(self, code: str, message: str, hint: str = "", pointer: str = "",
             severity: Severity | None = None) -> Diagnostic:
        """Record a diagnostic at the node `pointer` of this file."""
        diagnostic = Diagnostic(code, severity or severity_of(code), message, hint, self.locate(pointer))
        self.diagnostics.append(diagnostic)
        return diagnostic

    def ref(self, kind: str, name: str, pointer: str, context: str = "", workflow: str | None = None) -> None:
        """Remember a reference to check after merging."""
        self.refs.append(PendingRef(kind, str(name), self.locate(pointer), context, workflow))

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        """Take diagnostics produced by a helper module."""
        self.diagnostics.extend(diagnostics)

    def pick(self, node: Mapping[str, Any], pointer: str, key: str, *aliases: str, default: Any = None) -> tuple[Any, str]:
        """Value of `key` or its first present alias (canonical wins, warning) and its pointer."""
        for alias in aliases:
            if alias in node:
                break
        else:  # no alias present: the common case (keys named by the code need no escaping)
            return (node[key] if key in node else default), (
                f"{pointer}/{key}" if "/" not in key and "~" not in key else join(pointer, key))
        present = [name for name in (key, *aliases) if name in node]
        chosen = present[0]
        if len(present) > 1:
            self.diag("alias_conflict",
                      f"Both '{chosen}' and its alias '{present[1]}' are set; '{chosen}' is used.",
                      f"Remove '{present[1]}'.", join(pointer, present[1]))
        return node[chosen], join(pointer, chosen)

    def extra(self, node: Mapping[str, Any], pointer: str, known: Iterable[str], what: str,
              gate: str | None = None) -> dict[str, Any]:
        """Unknown keys of a mapping: kept in `extra`, one warning each.

        Under a gate-bearing element (`gate` names it), a key that looks like a gate is an `ignored_gate`
        error instead: the element is now less guarded than its author meant (§16).
        """
        known_set = known if isinstance(known, (set, frozenset)) else set(known)
        extra: dict[str, Any] = {}
        for key, value in node.items():
            if key not in known_set:
                extra[key] = value
                if gate is not None and looks_like_gate(key):
                    self.ignored_gate(key, join(pointer, key), gate, known_set)
                    continue
                guess = did_you_mean(str(key), sorted(known_set))
                self.diag("unknown_key", f"Unknown key '{key}' in {what}; it is kept but has no effect.",
                          (guess + " " if guess else "") + "Check the spelling against the documentation, or "
                          "remove it.", join(pointer, key))
        return extra

    def ignored_gate(self, key: Any, pointer: str, gate: str, known: Iterable[str]) -> None:
        """Report a gate-like key that is not understood: what it leaves unguarded, and the nearest known key."""
        guess = did_you_mean(str(key), sorted(k for k in known if looks_like_gate(k)) or sorted(known))
        self.diag("ignored_gate", f"'{key}' under {gate} looks like a gate but is not one Kiket knows: it is not "
                  f"enforced, so {gate} is not guarded by it.",
                  (guess + " " if guess else "") + f"Use a supported gate; see {doc_link('ignored_gate')}.", pointer)

    def vocabulary(self, pointer: str, word: str) -> None:
        """Note a workspace/case word; the loader keeps one `case_vocabulary` per file (§16)."""
        self.diag("case_vocabulary", f"This file uses the workspace/case vocabulary ('{word}'); it is read as "
                  "project/issue.", "", pointer)

    def mapping(self, value: Any, pointer: str, what: str) -> dict[str, Any] | None:
        """A mapping, else None with a warning (absent values pass silently)."""
        if value is None:
            return None
        if isinstance(value, dict):
            return value
        self.diag("invalid_value", f"{what} should be a mapping of keys, not {type_name(value)}; it is ignored.",
                  "Write it as `key: value` lines.", pointer)
        return None

    def listing(self, value: Any, pointer: str, what: str) -> list[Any]:
        """A list (a single value becomes a one-item list); None gives []."""
        if value is None:
            return []
        if isinstance(value, list):
            return value
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return [value]
        self.diag("invalid_value", f"{what} should be a list, not {type_name(value)}; it is ignored.",
                  "Write it as a YAML list.", pointer)
        return []

    def text(self, value: Any, pointer: str, what: str, default: str | None = None) -> str | None:
        """A text value; numbers are accepted and stringified, other types warn."""
        if value is None:
            return default
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        self.diag("invalid_value", f"{what} should be text, not {type_name(value)}; the default is used.",
                  "Write a plain text value.", pointer)
        return default

    def boolean(self, value: Any, pointer: str, what: str, default: bool) -> bool:
        """A boolean, else the default with a warning."""
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        self.diag("invalid_value", f"{what} should be true or false, not {value!r}; {str(default).lower()} is used.",
                  "Write true or false.", pointer)
        return default

    def integer(self, value: Any, pointer: str, what: str, minimum: int | None = None) -> int | None:
        """An integer ≥ minimum, else None with a warning."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
            bound = f" of at least {minimum}" if minimum is not None else ""
            self.diag("invalid_value", f"{what} should be a whole number{bound}, not {value!r}; it is ignored.",
                      "Write a whole number.", pointer)
            return None
        return value

    def identifier(self, value: Any, pointer: str, what: str) -> str | None:
        """A valid identifier, else None with an error (the element is dropped)."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and IDENTIFIER.fullmatch(value):
            return value
        self.diag("invalid_identifier",
                  f"{what} {value!r} is not a valid identifier; the element is dropped.",
                  "Use a letter followed by up to 63 letters, digits, '_', '.' or '-'.", pointer)
        return None

    def strings(self, value: Any, pointer: str, what: str) -> tuple[str, ...]:
        """A list of texts (a single text allowed)."""
        out = []
        for index, item in enumerate(self.listing(value, pointer, what)):
            text = self.text(item, join(pointer, index), f"An entry of {what}")
            if text is not None:
                out.append(text)
        return tuple(out)


def type_name(value: Any) -> str:
    """User words for a YAML value's type."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if value is None:
        return "empty"
    return f"the text {value!r}"


def resolve_key(name: str, keys: Iterable[str], labels: Mapping[str, str] | None = None,
                stems: Mapping[str, str] | None = None) -> tuple[str | None, str]:
    """Resolve a reference: exact, unique case-insensitive key, unique label, file stem; returns (key, how)."""
    if isinstance(keys, (dict, AbstractSet, AbstractMapping)) and name in keys:  # the common case, without a copy
        return name, "exact"
    keys = list(keys)
    if name in keys:
        return name, "exact"
    lowered = str(name).lower()
    matches = [k for k in keys if k.lower() == lowered]
    if len(matches) == 1:
        return matches[0], "case-insensitive key"
    if labels:
        matches = [k for k, label in labels.items() if label and str(label).lower() == lowered]
        if len(matches) == 1:
            return matches[0], "label"
    if stems:
        matches = [k for k, stem in stems.items() if stem == name or stem.lower() == lowered]
        if len(matches) == 1:
            return matches[0], "file name"
    return None, ""
