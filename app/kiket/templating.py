"""Sandboxed `${ expr }` / `{{ expr }}` templates for messages and webhook bodies (spec §12)."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import date, datetime
from urllib.parse import quote

from app.kiket.codes import CODES as REGISTRY
from app.kiket.diagnostics import Diagnostic, KiketError, Provenance, Severity

Locate = Callable[[str], Provenance]

ROOTS = frozenset({"issue", "event", "actor", "project", "transition", "sla", "approval", "context", "now", "env"})
FILTERS = frozenset({"slugify", "lower", "upper", "title", "truncate", "default", "json", "urlencode", "date"})
# Liquid's names for the same filters: the newer repositories' templates are Liquid (§16 "Liquid case scope").
FILTER_ALIASES = {"upcase": "upper", "downcase": "lower", "capitalize": "title", "url_encode": "urlencode",
                  "jsonify": "json", "handleize": "slugify"}
MAX_OUTPUT_BYTES = 64 * 1024
MAX_BODY_DEPTH = 16
MAX_EXPR_LENGTH = 512
MAX_FILTERS = 16
# Enough to point at every real mistake; hostile text must not produce a million diagnostics.
MAX_DIAGNOSTICS = 20
ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,63}")

# The codes templates emit; severities and descriptions live in the registry.
CODES: dict[str, tuple[Severity, str]] = {code: REGISTRY[code] for code in (
    "template_syntax",
    "unknown_template_root",
    "unknown_filter",
    "invalid_filter_argument",
    "unsupported_function",
    "unsupported_template_block",
    "private_name",
    "invalid_env_name",
    "body_too_deep",
    "case_vocabulary",
)}

_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
_INDEX = re.compile(r"\[\s*([0-9]{1,9})\s*\]")
_MISSING = object()
_SPECIAL = re.compile(r"\\(?=\$\{|\{\{)|\$\{|\{\{")


class MissingSecret(KiketError):
    """A webhook template names a project secret that is not set; the action fails before any request."""

    def __init__(self, name: str) -> None:
        super().__init__(f"project secret {name!r} is not set")
        self.name = name


@dataclass(frozen=True)
class Filter:
    """One filter application, e.g. `truncate:20`."""

    name: str
    args: tuple = ()


@dataclass(frozen=True)
class Placeholder:
    """A parsed `${...}`; `error` set means it renders empty (a load-time warning was emitted)."""

    source: str
    path: tuple = ()
    filters: tuple[Filter, ...] = ()
    error: str | None = None

    @property
    def root(self) -> str:
        """First path segment (`issue`, `env`, ...), or empty when invalid."""
        return str(self.path[0]) if self.path else ""

    @property
    def dotted(self) -> str:
        """The path as `issue.custom_fields.severity`."""
        return ".".join(str(p) for p in self.path)


@dataclass(frozen=True)
class RenderResult:
    """Rendered value, the placeholder paths that were missing, and whether output hit a size limit."""

    value: object
    missing: tuple[str, ...] = ()
    truncated: bool = False


@dataclass(frozen=True)
class Template:
    """A template parsed once at load: literal strings and placeholders in order."""

    source: str
    parts: tuple = ()
    prov: Provenance = field(default_factory=Provenance)

    @property
    def placeholders(self) -> tuple[str, ...]:
        """Dotted paths of valid placeholders, in order, without duplicates."""
        seen: dict[str, None] = {}
        for part in self.parts:
            if isinstance(part, Placeholder) and part.error is None:
                seen.setdefault(part.dotted, None)
        return tuple(seen)

    @property
    def env_names(self) -> tuple[str, ...]:
        """Secret names used via `env.NAME` (the loader warns when env is used outside webhooks)."""
        return tuple(dict.fromkeys(str(p.path[1]) for p in self.parts
                                   if isinstance(p, Placeholder) and p.error is None and p.root == "env"))

    @property
    def is_literal(self) -> bool:
        """True when the template has no placeholders at all."""
        return not any(isinstance(p, Placeholder) for p in self.parts)

    def render(
        self, snapshot: Mapping, *, secrets: Mapping[str, str] | None = None, allow_env: bool = False
    ) -> RenderResult:
        """Render against a plain snapshot; a lone placeholder keeps its type, otherwise a string ≤ 64 KiB."""
        missing: list[str] = []
        if len(self.parts) == 1 and isinstance(self.parts[0], Placeholder):
            value = _evaluate(self.parts[0], snapshot, secrets, allow_env, missing)
            value = "" if value is _MISSING else value
            if isinstance(value, str):
                value, truncated = _limit(value)
                return RenderResult(value, tuple(missing), truncated)
            return RenderResult(value, tuple(missing))
        chunks: list[str] = []
        size = 0
        for part in self.parts:
            if isinstance(part, Placeholder):
                value = _evaluate(part, snapshot, secrets, allow_env, missing)
                text = "" if value is _MISSING else stringify(value)
            else:
                text = part
            chunks.append(text)
            size += len(text)
            if size > MAX_OUTPUT_BYTES:
                break
        value, truncated = _limit("".join(chunks))
        return RenderResult(value, tuple(missing), truncated)


def _limit(text: str) -> tuple[str, bool]:
    if len(text) <= MAX_OUTPUT_BYTES // 4:
        return text, False
    encoded = text.encode("utf-8")
    if len(encoded) <= MAX_OUTPUT_BYTES:
        return text, False
    return encoded[:MAX_OUTPUT_BYTES].decode("utf-8", errors="ignore"), True


def stringify(value: object) -> str:
    """Text form used inside strings: null → "", lists joined by ", ", booleans lowercase."""
    if value is None or value is _MISSING:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return ", ".join(stringify(v) for v in value)
    if isinstance(value, Mapping):
        return _json(value)
    return str(value)


def _json(value: object) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return ""


def _diag(code: str, message: str, prov: Provenance, hint: str = "") -> Diagnostic:
    return Diagnostic(code=code, severity=CODES[code][0], message=message, hint=hint, prov=prov)


def parse_template(text: str, pointer: str, locate: Locate) -> tuple[Template, list[Diagnostic]]:
    """Parse `${...}`/`{{...}}` placeholders once; every problem is a warning and the part renders empty."""
    prov = locate(pointer)
    if not isinstance(text, str):
        text = stringify(text)
    parts, problems = _template_parts(text) if len(text) <= _MEMO_TEXT else _template_parts.__wrapped__(text)
    return Template(text, parts, prov), [_diag(code, message, prov, hint) for code, message, hint in problems]


_MEMO_TEXT = 1000  # longer texts are parsed each time, so the memo stays small


@lru_cache(maxsize=4096)
def _template_parts(text: str) -> tuple[tuple, tuple[tuple[str, str, str], ...]]:
    """The parts of a template text and its problems as (code, message, hint): the same text parses the same
    everywhere (a large repository repeats its message templates), only the position differs."""
    diags: list[tuple[str, str, str]] = []
    parts: list[object] = []
    literal: list[str] = []
    warned_block = False
    memo: dict[str, int] = {}
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and (text.startswith("${", i + 1) or text.startswith("{{", i + 1)):
            literal.append(text[i + 1:i + 3])
            i += 3
            continue
        opener = None
        if text.startswith("${", i) and not text.startswith("${{", i):
            opener, closer = "${", "}"
        elif text.startswith("{{", i):
            opener, closer = "{{", "}}"
        if opener is None:
            # Copy plain text up to the next place that could start a placeholder or an escape.
            nxt = _SPECIAL.search(text, i + 1)
            stop = nxt.start() if nxt else n
            literal.append(text[i:stop])
            i = stop
            continue
        start = i + len(opener)
        end = _find_close(text, start, closer, memo)
        if end < 0:
            if len(diags) < MAX_DIAGNOSTICS:
                diags.append((
                    "template_syntax", f"placeholder at offset {i} is not closed; kept as text",
                    f"close it with {closer!r} or escape it as \\{opener}",
                ))
            if text.find("}", start) < 0:
                # Nothing later can close a placeholder: the rest is text.
                literal.append(text[i:])
                break
            literal.append(opener)
            i = start
            continue
        inner = text[start:end]
        raw = text[i:end + len(closer)]
        i = end + len(closer)
        stripped = inner.strip()
        if opener == "{{" and (stripped.startswith(("#", "/")) or stripped == "else"):
            if not warned_block:
                warned_block = True
                diags.append((
                    "unsupported_template_block", f"block {raw[:40]!r} is not supported; kept as text",
                    "use plain placeholders; conditional text belongs in automation conditions",
                ))
            literal.append(raw)
            continue
        if literal:
            parts.append("".join(literal))
            literal = []
        placeholder, problem = _parse_placeholder(inner)
        if problem is None and placeholder.source.startswith("case") and placeholder.root == "issue" \
                and not any(d[0] == "case_vocabulary" for d in diags):
            diags.append(("case_vocabulary", f"{raw[:80]!r} uses the workspace/case vocabulary; it is read as "
                          "issue.", ""))
        if problem is not None and len(diags) < MAX_DIAGNOSTICS:
            code, message = problem
            diags.append((code, f"{message} in {raw[:80]!r}; renders empty", _HINTS.get(code, "")))
        parts.append(placeholder)
    if literal:
        parts.append("".join(literal))
    return tuple(parts), tuple(diags)


_HINTS = {
    "unknown_template_root": "start with one of: " + ", ".join(sorted(ROOTS | {"case"})),
    "unknown_filter": "use one of: " + ", ".join(sorted(FILTERS)),
    "invalid_env_name": "secret names are upper case, e.g. ${env.SLACK_WEBHOOK}",
    "private_name": "names starting with _ are never readable",
}


def _find_close(text: str, start: int, closer: str, memo: dict[str, int]) -> int:
    """Index of the closing delimiter, skipping quoted filter arguments; -1 if none within the length limit.

    `memo` keeps the first closer found after an earlier start, so hostile text stays linear.
    """
    known = memo.get(closer)
    if known is not None and (known == -1 or known >= start):
        end = known
    else:
        end = text.find(closer, start)
        memo[closer] = end
    if end < 0 or end - start > MAX_EXPR_LENGTH:
        end = -1
    segment = text[start:end] if end >= 0 else text[start:start + MAX_EXPR_LENGTH]
    if end >= 0 and not any(c in segment for c in ("'", '"', "${", "{{")):
        return end
    i, limit = start, min(len(text), start + MAX_EXPR_LENGTH + len(closer))
    quote_char = None
    while i < limit:
        ch = text[i]
        # A new opener means this one was never closed; stopping here keeps the scan linear.
        if text.startswith("${", i) or (text.startswith("{{", i) and i > start):
            return -1
        if quote_char:
            if ch == "\\":
                i += 2
                continue
            if ch == quote_char:
                quote_char = None
        elif ch in "'\"":
            quote_char = ch
        elif text.startswith(closer, i):
            return i
        i += 1
    return -1


def _split_top(text: str, sep: str) -> list[str] | None:
    """Split on `sep` outside quotes; None if a quote is unterminated."""
    parts: list[str] = []
    current: list[str] = []
    quote_char = None
    i = 0
    while i < len(text):
        ch = text[i]
        if quote_char:
            current.append(ch)
            if ch == "\\" and i + 1 < len(text):
                current.append(text[i + 1])
                i += 2
                continue
            if ch == quote_char:
                quote_char = None
        elif ch in "'\"":
            quote_char = ch
            current.append(ch)
        elif ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    if quote_char:
        return None
    parts.append("".join(current))
    return parts


def _parse_placeholder(inner: str) -> tuple[Placeholder, tuple[str, str] | None]:
    source = inner.strip()
    if not source:
        return Placeholder(source, error="empty"), ("template_syntax", "empty placeholder")
    if len(source) > MAX_EXPR_LENGTH:
        return Placeholder(source[:40], error="too long"), ("template_syntax", "placeholder is too long")
    pieces = _split_top(source, "|")
    if pieces is None:
        return Placeholder(source, error="quote"), ("template_syntax", "unterminated quote")
    path_text = pieces[0].strip()
    if re.match(r"[A-Za-z_][A-Za-z0-9_.]*\s*\(", path_text):
        return Placeholder(source, error="function"), ("unsupported_function", "function calls are not supported")
    path, problem = _parse_path(path_text)
    if problem is not None:
        return Placeholder(source, error=problem[1]), problem
    filters: list[Filter] = []
    if len(pieces) - 1 > MAX_FILTERS:
        return Placeholder(source, error="filters"), ("template_syntax", f"more than {MAX_FILTERS} filters")
    for piece in pieces[1:]:
        parsed, problem = _parse_filter(piece.strip())
        if problem is not None:
            return Placeholder(source, path, error=problem[1]), problem
        filters.append(parsed)  # type: ignore[arg-type]
    return Placeholder(source, path, tuple(filters)), None


def _parse_path(text: str) -> tuple[tuple, tuple[str, str] | None]:
    if not text:
        return (), ("template_syntax", "placeholder has no path")
    # `a.b[0].c` is read as `a.b.0.c`.
    normalized = _INDEX.sub(lambda m: "." + m.group(1), text)
    segments: list[object] = []
    for segment in normalized.split("."):
        segment = segment.strip()
        if segment.startswith("_"):
            return (), ("private_name", f"name {segment[:40]!r} is private")
        if not _SEGMENT.fullmatch(segment):
            return (), ("template_syntax", f"{text[:60]!r} is not a dotted path")
        segments.append(int(segment) if segment.isdigit() else segment)
    root = segments[0]
    if root == "case" and len(segments) > 1:
        # The workspace/case vocabulary (§16): `{{case.title}}` is `{{issue.title}}`.
        segments[0] = root = "issue"
    if root not in ROOTS:
        return (), ("unknown_template_root", f"unknown root {str(root)[:40]!r}")
    if root == "env" and (len(segments) != 2 or not ENV_NAME.fullmatch(str(segments[1]))):
        return (), ("invalid_env_name", f"{text[:60]!r} is not env.NAME with an upper-case secret name")
    if root == "now" and len(segments) != 1:
        return (), ("template_syntax", "`now` has no fields")
    return tuple(segments), None


def _parse_filter(text: str) -> tuple[Filter | None, tuple[str, str] | None]:
    pieces = _split_top(text, ":")
    if pieces is None:
        return None, ("template_syntax", "unterminated quote in filter")
    name = pieces[0].strip()
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*\s*\(.*", name, re.DOTALL):
        return None, ("unsupported_function", "function calls are not supported")
    name = FILTER_ALIASES.get(name, name)
    if name not in FILTERS:
        return None, ("unknown_filter", f"unknown filter {name[:40]!r}")
    args: list[object] = []
    for raw in pieces[1:]:
        arg = _parse_arg(raw.strip())
        if arg is _MISSING:
            return None, ("invalid_filter_argument", f"argument {raw.strip()[:40]!r} of {name} is not a literal")
        args.append(arg)
    if name == "truncate" and (len(args) != 1 or not isinstance(args[0], int) or isinstance(args[0], bool) or args[0] < 0):
        return None, ("invalid_filter_argument", "truncate needs one non-negative integer, e.g. truncate:40")
    if name == "default" and len(args) != 1:
        return None, ("invalid_filter_argument", 'default needs one value, e.g. default:"n/a"')
    if name == "date" and (len(args) > 1 or (args and (not isinstance(args[0], str) or len(args[0]) > 64))):
        return None, ("invalid_filter_argument", 'date takes one format string, e.g. date:"%Y-%m-%d"')
    if name not in ("truncate", "default", "date") and args:
        return None, ("invalid_filter_argument", f"{name} takes no argument")
    return Filter(name, tuple(args)), None


def _parse_arg(text: str) -> object:
    if len(text) >= 2 and text[0] in "'\"" and text[-1] == text[0]:
        body = text[1:-1]
        return re.sub(r"\\(.)", r"\1", body)
    if re.fullmatch(r"-?[0-9]{1,9}", text):
        return int(text)
    if re.fullmatch(r"[A-Za-z0-9_%./-]{1,64}", text):
        return text
    return _MISSING


def _resolve(snapshot: object, path: tuple) -> object:
    current = snapshot
    for segment in path:
        if isinstance(segment, str) and segment.startswith("_"):
            return _MISSING
        if isinstance(current, Mapping):
            key = segment if segment in current else str(segment)
            if key not in current:
                return _MISSING
            current = current[key]
        elif isinstance(current, (list, tuple)) and isinstance(segment, int):
            if segment >= len(current):
                return _MISSING
            current = current[segment]
        else:
            return _MISSING
    return current


def _evaluate(
    part: Placeholder, snapshot: Mapping, secrets: Mapping[str, str] | None, allow_env: bool, missing: list[str]
) -> object:
    if part.error is not None:
        return _MISSING
    if part.root == "env":
        if not allow_env:
            return _MISSING
        name = str(part.path[1])
        if secrets is None or name not in secrets or secrets[name] is None:
            raise MissingSecret(name)
        value: object = secrets[name]
    else:
        value = _resolve(snapshot, part.path)
    has_default = any(f.name == "default" for f in part.filters)
    if value is _MISSING and not has_default:
        missing.append(part.dotted)
    for flt in part.filters:
        value = _apply_filter(flt, value)
    return value


def _apply_filter(flt: Filter, value: object) -> object:
    name = flt.name
    if name == "default":
        return flt.args[0] if value is _MISSING or value is None or value == "" else value
    if value is _MISSING:
        return _MISSING
    if name == "json":
        return _json(value)
    text = stringify(value)
    if name == "lower":
        return text.lower()
    if name == "upper":
        return text.upper()
    if name == "title":
        return text.title()
    if name == "slugify":
        return slugify(text)
    if name == "truncate":
        return text[: int(flt.args[0])]
    if name == "urlencode":
        return quote(text, safe="")
    if name == "date":
        return _format_date(value, str(flt.args[0]) if flt.args else "%Y-%m-%d")
    return _MISSING


def slugify(text: str) -> str:
    """Lowercase ASCII `[a-z0-9-]`, runs of other characters collapsed to `-`, at most 60 characters."""
    ascii_text = unicodedata.normalize("NFKD", text[:4096]).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")
    return slug[:60].rstrip("-")


def _format_date(value: object, fmt: str) -> str:
    moment: date | None = None
    if isinstance(value, (datetime, date)):
        moment = value
    elif isinstance(value, str) and 10 <= len(value.strip()) <= 40:
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return ""
    if moment is None:
        return ""
    try:
        return moment.strftime(fmt)
    except (ValueError, OverflowError):
        return ""


def render_body(
    obj: object,
    snapshot: Mapping,
    *,
    secrets: Mapping[str, str] | None = None,
    allow_env: bool = False,
) -> RenderResult:
    """Render a nested body (dicts, lists, strings or parsed Templates) recursively, at most 16 levels deep."""
    missing: list[str] = []
    state = {"truncated": False}
    value = _render_node(obj, snapshot, secrets, allow_env, missing, state, 0)
    return RenderResult(value, tuple(missing), state["truncated"])


def _render_node(
    obj: object, snapshot: Mapping, secrets: Mapping[str, str] | None, allow_env: bool,
    missing: list[str], state: dict, depth: int,
) -> object:
    if depth > MAX_BODY_DEPTH:
        state["truncated"] = True
        return None
    if isinstance(obj, str):
        obj, _ = parse_template(obj, "", _no_location)
    if isinstance(obj, Template):
        result = obj.render(snapshot, secrets=secrets, allow_env=allow_env)
        missing.extend(result.missing)
        if result.truncated:
            state["truncated"] = True
        return result.value
    if isinstance(obj, Mapping):
        return {key: _render_node(v, snapshot, secrets, allow_env, missing, state, depth + 1) for key, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_render_node(v, snapshot, secrets, allow_env, missing, state, depth + 1) for v in obj]
    return obj


def _no_location(pointer: str) -> Provenance:
    return Provenance(pointer=pointer)


def parse_body(obj: object, pointer: str, locate: Locate) -> tuple[object, list[Diagnostic]]:
    """Parse every string of a nested body into a Template once, at load; too-deep parts are dropped."""
    diags: list[Diagnostic] = []
    reported = [False]

    def walk(node: object, ptr: str, depth: int) -> object:
        if depth > MAX_BODY_DEPTH:
            if not reported[0]:
                reported[0] = True
                diags.append(_diag(
                    "body_too_deep", f"body is nested deeper than {MAX_BODY_DEPTH} levels; deeper parts dropped",
                    locate(ptr), "flatten the body",
                ))
            return None
        if isinstance(node, str):
            template, template_diags = parse_template(node, ptr, locate)
            diags.extend(template_diags)
            return template
        if isinstance(node, Mapping):
            return {k: walk(v, f"{ptr}/{_escape(k)}", depth + 1) for k, v in node.items()}
        if isinstance(node, (list, tuple)):
            return [walk(v, f"{ptr}/{i}", depth + 1) for i, v in enumerate(node)]
        return node

    return walk(obj, pointer, 0), diags


def _escape(key: object) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")
