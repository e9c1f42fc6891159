"""A short-lived, thread-safe result cache for the dashboard's queries.

Several browser sessions refresh every few seconds; within one refresh period
they all want the same answer, so each query result is kept for a few seconds
and shared. Errors are never cached: a service that comes back is seen at once.
Plain Python rather than `st.cache_data` so the query module works (and is
benchmarked) outside Streamlit too.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Hashable
from typing import ParamSpec, TypeVar

__all__ = ["clear_caches", "ttl_cache"]

P = ParamSpec("P")
R = TypeVar("R")

_MAX_ENTRIES = 512
_registry: list[Callable[[], None]] = []


def ttl_cache(seconds: float) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function whose arguments are hashable so its results are reused for `seconds`."""

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        lock = threading.Lock()
        entries: dict[Hashable, tuple[float, R]] = {}

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            key = (args, tuple(sorted(kwargs.items())))
            now = time.monotonic()
            with lock:
                hit = entries.get(key)
                if hit is not None and now - hit[0] < seconds:
                    return hit[1]
            value = func(*args, **kwargs)
            with lock:
                if len(entries) >= _MAX_ENTRIES:
                    # Drop the expired ones first; if none expired, start again (a burst of distinct queries).
                    for k in [k for k, (t, _) in entries.items() if now - t >= seconds] or list(entries):
                        del entries[k]
                entries[key] = (time.monotonic(), value)
            return value

        def clear() -> None:
            with lock:
                entries.clear()

        wrapper.cache_clear = clear  # type: ignore[attr-defined]
        _registry.append(clear)
        return wrapper

    return decorate


def clear_caches() -> None:
    """Forget every cached result (tests that change the data between two page runs)."""
    for clear in _registry:
        clear()
