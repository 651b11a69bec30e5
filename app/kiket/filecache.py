"""Content-addressed cache of parsed and normalized files, keyed by git blob id.

A sync of a 1,000-file repository where one file changed should parse and normalize one file. While a
`FileCache` is active (`with cache.active(): load_revision(...)`), `parse_yaml` returns the document it
parsed before for the same bytes at the same path, and each per-file normalizer decorated with
`per_file` returns its earlier result for the same document and arguments, replaying the diagnostics
and references it recorded. The fold across files (duplicates, merge, resolve) always runs in full.

Provenance inside a reused result names the commit at which that blob was first read (its file, line
and content are the same at every commit that holds it): use a cache for validation, and load the
revision that gets activated without one, so every active element names its own commit.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections import OrderedDict
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import fields, is_dataclass
from functools import wraps
from operator import attrgetter
from typing import Any, Callable, Hashable, Iterator, TypeVar

_ACTIVE: ContextVar[FileCache | None] = ContextVar("kiket_file_cache", default=None)
# FileContext fields that are outputs or derived, not inputs of a normalizer.
_CONTEXT_OUTPUTS = frozenset({"doc", "prov", "diagnostics", "refs", "locate"})
_INPUT_FIELDS: dict[type, Callable[[Any], Any]] = {}

F = TypeVar("F", bound=Callable[..., Any])


def blob_id(data: bytes) -> str:
    """Git's object id of a blob with these bytes (`git hash-object`)."""
    digest = hashlib.sha1(b"blob %d\0" % len(data))
    digest.update(data)
    return digest.hexdigest()


class FileCache:
    """Least-recently-used entries within `max_bytes` and `max_entries`; thread-safe.

    Each entry counts the source bytes it stands for: a file's parse and its normalization count its size
    once each. Parsed and normalized, a file takes about 30 times its size in memory; the default holds
    one tree of the largest size a revision may have (8 MiB) in about 250 MB.
    """

    def __init__(self, max_bytes: int = 16 * 1024 * 1024, max_entries: int = 20_000) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Any:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return found[0]

    def recall(self, key: Hashable) -> Any:
        """Like `get`, for results derived from files (resolution steps): not counted as file hits or misses."""
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            self._entries.move_to_end(key)
            return found[0]

    def blob_id(self, data: bytes) -> str:
        """`blob_id(data)`, remembered for the same bytes object (a sync hands the loader the blobs it cached)."""
        found = self.recall(("blob_id", id(data)))
        if found is not None and found[0] is data:
            return found[1]
        sha = blob_id(data)
        self.put(("blob_id", id(data)), (data, sha))
        return sha

    def put(self, key: Hashable, value: Any, size: int = 0) -> None:
        """Keep `value`, which stands for `size` bytes of source, evicting the least recently used."""
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._bytes -= previous[1]
            self._entries[key] = (value, size)
            self._bytes += size
            while self._entries and (self._bytes > self.max_bytes or len(self._entries) > self.max_entries):
                self._bytes -= self._entries.popitem(last=False)[1][1]

    def __len__(self) -> int:
        return len(self._entries)

    @contextmanager
    def active(self) -> Iterator[FileCache]:
        """Use this cache for parses and normalizations in this thread (or task) until the block ends."""
        token = _ACTIVE.set(self)
        try:
            yield self
        finally:
            _ACTIVE.reset(token)


def active_cache() -> FileCache | None:
    """The cache of the current context, if any."""
    return _ACTIVE.get()


def per_file(normalizer: F) -> F:
    """Memoize `normalizer(ctx, *args)` per cached document while a FileCache is active.

    The key is the document's cache key (blob id, path, provenance without commit), the context's other
    inputs and the arguments; a hit replays the diagnostics and references the first call recorded.
    Results that are not frozen dataclasses are copied at their top level (see `_private`).
    """

    @wraps(normalizer)
    def cached(ctx: Any, *args: Any) -> Any:
        cache = _ACTIVE.get()
        doc_key = getattr(ctx.doc, "cache_key", None)
        if cache is None or doc_key is None:
            return normalizer(ctx, *args)
        inputs = _INPUT_FIELDS.get(type(ctx))
        if inputs is None:
            names = [f.name for f in fields(ctx) if f.name not in _CONTEXT_OUTPUTS]
            inputs = _INPUT_FIELDS[type(ctx)] = attrgetter(*names) if names else lambda _: ()
        key = (normalizer.__module__, normalizer.__qualname__, doc_key, inputs(ctx), args)
        try:
            found = cache.get(key)
        except TypeError:  # an unhashable input: nothing to key on
            return normalizer(ctx, *args)
        if found is None:
            first_diag, first_ref = len(ctx.diagnostics), len(ctx.refs)
            result = normalizer(ctx, *args)
            found = (_private(result), tuple(ctx.diagnostics[first_diag:]), tuple(ctx.refs[first_ref:]),
                     _immutable(result))
            cache.put(key, found, len(ctx.doc.text))
            return result
        result, diagnostics, refs, shared = found
        ctx.diagnostics.extend(diagnostics)
        ctx.refs.extend(refs)
        return result if shared else _private(result)

    return cached  # type: ignore[return-value]


def _private(value: Any) -> Any:
    """A copy the caller may change at its top level: the fold stores and replaces results, never edits inside."""
    if _immutable(value):
        return value
    if isinstance(value, list) and all(map(_immutable, value)):
        return list(value)
    if is_dataclass(value) and not isinstance(value, type):
        return copy.copy(value)
    return copy.deepcopy(value)


def _immutable(value: Any) -> bool:
    if value is None or isinstance(value, (str, int, float, bool, frozenset)):
        return True
    if isinstance(value, tuple):
        return all(map(_immutable, value))
    if isinstance(value, list):
        return False
    if is_dataclass(value) and not isinstance(value, type):
        return type(value).__dataclass_params__.frozen  # type: ignore[attr-defined]
    return False
