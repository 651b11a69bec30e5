"""Pause Python's cyclic garbage collector while a configuration loads.

A load allocates hundreds of thousands of objects and frees few of them until it ends, so every
collection it triggers walks the whole heap, including what the process keeps alive (a worker's
caches, a benchmark's inputs): in a big process that made `load_revision` three times slower.
Reference counting still frees everything acyclic during the pause; cycles wait for the next collection.
"""

from __future__ import annotations

import gc
import threading
from functools import wraps
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_lock = threading.Lock()
_running = 0
_reenable = False


def collection_paused(function: F) -> F:
    """Run `function` with automatic collection off; it comes back on when the last paused call ends."""

    @wraps(function)
    def paused(*args: Any, **kwargs: Any) -> Any:
        global _running, _reenable
        with _lock:
            if _running == 0:
                _reenable = gc.isenabled()
                gc.disable()
            _running += 1
        try:
            return function(*args, **kwargs)
        finally:
            with _lock:
                _running -= 1
                if _running == 0 and _reenable:
                    gc.enable()

    return paused  # type: ignore[return-value]
