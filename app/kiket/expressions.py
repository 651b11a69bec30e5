"""Expression strings such as `priority == 'high' && assignee != null`: hand-written tokenizer and parser (spec §9)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from app.kiket.conditions import (
    All,
    Any,
    Compare,
    Condition,
    Never,
    Not,
    canonical_operator,
    case_vocabulary,
    contains_never,
    diagnostic,
    normalize_path,
    uses_case_words,
)
from app.kiket.diagnostics import Diagnostic, Provenance

MAX_LENGTH = 4096
MAX_NODES = 256
MAX_DEPTH = 32
MAX_TOKENS = 1024

_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null", "none", "nil"}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_][A-Za-z0-9_-]*)*")
_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "/": "/", "0": "\0"}
_COMPARE_OPS = {"==": "eq", "=": "eq", "!=": "ne", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
_MIRROR = {"eq": "eq", "ne": "ne", "gt": "lt", "gte": "lte", "lt": "gt", "lte": "gte"}


class _Fail(Exception):
    """Internal: stop parsing with a diagnostic code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Token:
    """One lexical token: kind is str, num, ident, kw, op, or punct."""

    kind: str
    value: object
    pos: int


@dataclass(frozen=True)
class _Path:
    name: str


@dataclass(frozen=True)
class _Literal:
    value: object


def tokenize(text: str) -> list[Token]:
    """Split an expression into tokens; raise ValueError with position on bad input."""
    try:
        return _tokenize(text)
    except _Fail as fail:
        raise ValueError(fail.message) from None


def _tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        if len(tokens) > MAX_TOKENS:
            raise _Fail("expression_too_complex", f"expression has more than {MAX_TOKENS} tokens")
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "'\"":
            value, i = _read_string(text, i)
            tokens.append(Token("str", value, i))
            continue
        two = text[i:i + 2]
        if two in ("==", "!=", ">=", "<=", "&&", "||"):
            tokens.append(Token("op", two, i))
            i += 2
            continue
        if ch in "=<>!":
            tokens.append(Token("op", ch, i))
            i += 1
            continue
        if ch in "()[],":
            tokens.append(Token("punct", ch, i))
            i += 1
            continue
        number = _NUMBER.match(text, i)
        if number and (ch != "-" or _negative_allowed(tokens)):
            literal = number.group(0)
            try:
                value: object = float(literal) if any(c in literal for c in ".eE") else int(literal)
            except (ValueError, OverflowError):
                value = math.inf
            if isinstance(value, float) and not math.isfinite(value):
                raise _Fail("expression_syntax", f"number {literal[:20]!r} at {i} is out of range")
            tokens.append(Token("num", value, i))
            i = number.end()
            continue
        ident = _IDENT.match(text, i)
        if ident:
            word = ident.group(0)
            if word.lower() in _KEYWORDS:
                tokens.append(Token("kw", word.lower(), i))
            else:
                tokens.append(Token("ident", word, i))
            i = ident.end()
            continue
        raise _Fail("expression_syntax", f"unexpected character {ch!r} at position {i}")
    return tokens


def _negative_allowed(tokens: list[Token]) -> bool:
    return not tokens or tokens[-1].kind in ("op", "kw") or tokens[-1].value in ("(", "[", ",")


def _read_string(text: str, start: int) -> tuple[str, int]:
    quote = text[start]
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 >= len(text):
                break
            nxt = text[i + 1]
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[i + 2:i + 6]):
                out.append(chr(int(text[i + 2:i + 6], 16)))
                i += 6
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        if ch == quote:
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise _Fail("expression_syntax", f"string starting at position {start} is not closed")


class _Parser:
    def __init__(self, tokens: list[Token], prov: Provenance) -> None:
        self.tokens = tokens
        self.pos = 0
        self.prov = prov
        self.nodes = 0
        self.depth = 0
        self.functions: list[str] = []
        self.unsupported: list[str] = []
        self.case_words: list[str] = []

    def peek(self, offset: int = 0) -> Token | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise _Fail("expression_syntax", "expression ends too early")
        self.pos += 1
        return token

    def at(self, kind: str, *values: object, offset: int = 0) -> bool:
        token = self.peek(offset)
        return token is not None and token.kind == kind and (not values or token.value in values)

    def expect(self, kind: str, value: object) -> None:
        token = self.peek()
        if token is None or token.kind != kind or token.value != value:
            where = f"at position {token.pos}" if token else "at the end"
            raise _Fail("expression_syntax", f"expected {value!r} {where}")
        self.pos += 1

    def node(self, cond: Condition) -> Condition:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _Fail("expression_too_large", f"expression has more than {MAX_NODES} nodes")
        return cond

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Fail("expression_too_complex", f"expression is nested deeper than {MAX_DEPTH} levels")

    def parse(self) -> Condition:
        cond = self.parse_or()
        token = self.peek()
        if token is not None:
            raise _Fail("expression_syntax", f"unexpected {_show(token)} at position {token.pos}")
        return cond

    def parse_or(self) -> Condition:
        items = [self.parse_and()]
        while self.at("op", "||") or self.at("kw", "or"):
            self.take()
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else self.node(Any(tuple(items), self.prov))

    def parse_and(self) -> Condition:
        items = [self.parse_unary()]
        while self.at("op", "&&") or self.at("kw", "and"):
            self.take()
            items.append(self.parse_unary())
        return items[0] if len(items) == 1 else self.node(All(tuple(items), self.prov))

    def parse_unary(self) -> Condition:
        negations = 0
        # Loop rather than recurse so "!!!!…" cannot exhaust the stack.
        while self.at("op", "!") or self.at("kw", "not"):
            self.take()
            negations += 1
            if negations > MAX_DEPTH:
                raise _Fail("expression_too_complex", f"more than {MAX_DEPTH} negations in a row")
        cond = self.parse_primary()
        for _ in range(negations % 2):
            cond = self.node(Not(cond, self.prov))
        return cond

    def parse_primary(self) -> Condition:
        if self.at("punct", "("):
            self.take()
            self.enter()
            cond = self.parse_or()
            self.depth -= 1
            self.expect("punct", ")")
            return cond
        return self.parse_comparison()

    def parse_comparison(self) -> Condition:
        left = self.parse_operand()
        token = self.peek()
        op: str | None = None
        if token is not None and token.kind == "op" and token.value in _COMPARE_OPS:
            self.take()
            op = _COMPARE_OPS[token.value]  # type: ignore[index]
        elif self.at("kw", "in"):
            self.take()
            op = "in"
        elif self.at("kw", "not") and self.at("kw", "in", offset=1):
            self.take()
            self.take()
            op = "not_in"
        elif token is not None and token.kind == "ident" and not isinstance(left, _Literal) \
                and canonical_operator(token.value) is not None:
            # Word operators from the YAML form (`status equals 'done'`, `assignee is_present`).
            self.take()
            op = canonical_operator(token.value)
            if op == "eq" and str(token.value).lower() == "is" and self.at("kw", "not"):
                self.take()
                op = "ne"
            if op in ("is_present", "is_blank"):
                return self.compare(left, op, _Literal(None))
        if op is None:
            return self.truthy(left)
        right = self.parse_operand()
        return self.compare(left, op, right)

    def truthy(self, operand: object) -> Condition:
        if isinstance(operand, _Literal):
            value = operand.value
            if value is True:
                return self.node(All((), self.prov))
            return self.node(Never(f"constant {value!r} is not a condition", self.prov))
        if isinstance(operand, _Path):
            return self.node(Compare(operand.name, "is_present", None, self.prov))
        return self.node(Never("not a condition", self.prov))

    def compare(self, left: object, op: str, right: object) -> Condition:
        if isinstance(left, Never) or isinstance(right, Never):
            return self.node(left if isinstance(left, Never) else right)  # type: ignore[arg-type]
        if isinstance(left, _Path) and isinstance(right, _Literal):
            return self.node(Compare(left.name, op, right.value, self.prov))
        if isinstance(left, _Literal) and isinstance(right, _Path):
            if op in _MIRROR:
                return self.node(Compare(right.name, _MIRROR[op], left.value, self.prov))
            if op in ("in", "not_in"):
                flipped = "contains" if op == "in" else "not_contains"
                return self.node(Compare(right.name, flipped, left.value, self.prov))
        self.unsupported.append(f"{_describe(left)} {op} {_describe(right)}")
        return self.node(Never("comparison needs a field and a literal", self.prov))

    def parse_operand(self) -> object:
        token = self.take()
        if token.kind in ("str", "num"):
            return _Literal(token.value)
        if token.kind == "kw" and token.value in ("true", "false"):
            return _Literal(token.value == "true")
        if token.kind == "kw" and token.value in ("null", "none", "nil"):
            return _Literal(None)
        if token.kind == "punct" and token.value == "[":
            return _Literal(self.parse_list())
        if token.kind == "ident":
            if self.at("punct", "("):
                self.skip_call(str(token.value))
                return self.node(Never(f"function {token.value}() is not supported", self.prov))
            name = normalize_path(str(token.value))
            if name is not None and uses_case_words(str(token.value)):
                self.case_words.append(str(token.value))
            if name is None:
                raise _Fail("invalid_path", f"field {str(token.value)[:40]!r} at position {token.pos} is not allowed")
            return _Path(name)
        raise _Fail("expression_syntax", f"unexpected {_show(token)} at position {token.pos}")

    def parse_list(self) -> tuple:
        items: list[object] = []
        while not self.at("punct", "]"):
            token = self.take()
            if token.kind in ("str", "num"):
                items.append(token.value)
            elif token.kind == "kw" and token.value in ("true", "false"):
                items.append(token.value == "true")
            elif token.kind == "kw" and token.value in ("null", "none", "nil"):
                items.append(None)
            elif token.kind == "ident":
                # Bare words in lists (`[P1, P2]`) are taken as strings, as YAML would.
                items.append(str(token.value))
            else:
                raise _Fail("expression_syntax", f"lists may hold only literals; got {_show(token)} at {token.pos}")
            self.nodes += 1
            if self.nodes > MAX_NODES:
                raise _Fail("expression_too_large", f"expression has more than {MAX_NODES} nodes")
            if self.at("punct", ","):
                self.take()
            elif not self.at("punct", "]"):
                token = self.peek()
                raise _Fail("expression_syntax", f"expected ',' or ']' {'at position ' + str(token.pos) if token else 'at the end'}")
        self.take()
        return tuple(items)

    def skip_call(self, name: str) -> None:
        self.functions.append(name)
        self.take()
        level = 1
        while level:
            token = self.take()
            if token.kind == "punct" and token.value == "(":
                level += 1
            elif token.kind == "punct" and token.value == ")":
                level -= 1


def _describe(operand: object) -> str:
    if isinstance(operand, _Path):
        return operand.name
    if isinstance(operand, _Literal):
        return repr(operand.value)
    return "?"


def _show(token: Token) -> str:
    return {"str": "string", "num": "number"}.get(token.kind, repr(token.value))


def parse_expression(text: str, pointer: str, locate: Callable[[str], Provenance]) -> tuple[Condition, list[Diagnostic]]:
    """Parse an expression string into a Condition; problems become diagnostics and a `Never`."""
    prov = locate(pointer)
    if not isinstance(text, str):
        return Never("not an expression", prov), [diagnostic("expression_syntax", "expression must be a string", prov)]
    if len(text) > MAX_LENGTH:
        return Never("expression too long", prov), [diagnostic(
            "expression_too_complex", f"expression is {len(text)} characters long (at most {MAX_LENGTH})", prov,
            "split it into several conditions",
        )]
    if not text.strip():
        return Never("empty expression", prov), [diagnostic("expression_syntax", "expression is empty", prov)]
    parser = None
    try:
        parser = _Parser(_tokenize(text), prov)
        cond = parser.parse()
    except _Fail as fail:
        hint = "write e.g. priority == 'high' && assignee != null" if fail.code == "expression_syntax" else \
            "split it into several conditions"
        return Never(fail.message, prov), [diagnostic(fail.code, f"{fail.message} in {_clip(text)}", prov, hint)]
    diags: list[Diagnostic] = []
    if parser.functions:
        names = ", ".join(sorted(set(parser.functions)))
        diags.append(diagnostic(
            "unsupported_function", f"function calls ({names}) are not supported in {_clip(text)}; it never holds",
            prov, "compare fields with literals instead",
        ))
    if parser.unsupported:
        diags.append(diagnostic(
            "unsupported_comparison",
            f"{parser.unsupported[0]!s} compares two fields or two literals; it never holds", prov,
            "put a field on one side and a literal on the other",
        ))
    # Any unsupported piece makes the whole expression fail closed: `!query(...)` must not turn true.
    if diags or (contains_never(cond) and _has_not(cond)):
        return Never("expression uses unsupported constructs", prov), diags
    if parser.case_words:
        diags.append(case_vocabulary(parser.case_words[0], prov))
    return cond, diags


def _has_not(cond: object) -> bool:
    stack = [cond]
    while stack:
        item = stack.pop()
        if isinstance(item, Not):
            return True
        if isinstance(item, (All, Any)):
            stack.extend(item.items)
    return False


def _clip(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")
