"""The one bounded cache: a thread-safe LRU (cachetools) that counts its hits and misses.

Every cache of the service is one of these, so each is bounded and each can say how full it is
and how well it works (`stats`). A cache is bounded by its number of entries, or, given `sizeof`,
by the sum of its entries' sizes (members of an evaluation, bytes of an answer): a value larger
than the whole cache is computed and returned but not kept.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from cachetools import LRUCache

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class CacheStats:
    name: str
    entries: int
    size: int  # in the cache's unit: entries, or what `sizeof` measures
    maxsize: int
    hits: int
    misses: int


class BoundedCache(Generic[V]):
    def __init__(self, name: str, maxsize: int, sizeof: Callable[[V], int] | None = None):
        self.name = name
        self._sizeof = sizeof
        self._entries: LRUCache[Hashable, V] = LRUCache(max(maxsize, 1), getsizeof=sizeof)
        self._enabled = maxsize > 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __getstate__(self) -> dict[str, Any]:
        # A pickled holder (the compiled-content cache pickles registries) gets an empty cache back.
        return {"name": self.name, "maxsize": self.maxsize, "sizeof": self._sizeof}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["name"], state["maxsize"], state["sizeof"])  # type: ignore[misc]  # re-run __init__: locks do not pickle

    @property
    def maxsize(self) -> int:
        return int(self._entries.maxsize) if self._enabled else 0

    def get(self, key: Hashable) -> V | None:
        """The value kept for `key` (now the most recently used), or None; counted as a hit or a miss."""
        with self._lock:
            try:
                value = self._entries[key]  # not .get(): that looks the key up twice
            except KeyError:
                self.misses += 1
                return None
            self.hits += 1
            return value

    def put(self, key: Hashable, value: V) -> None:
        if not self._enabled:
            return
        with self._lock:
            try:
                self._entries[key] = value
            except ValueError:  # larger than the whole cache: not kept
                pass

    def get_or_compute(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The value kept for `key`, else compute() (outside the lock), kept for next time."""
        found = self.get(key)
        if found is None:
            found = compute()
            self.put(key, found)
        return found

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    @property
    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self.name, len(self._entries), int(self._entries.currsize), self.maxsize, self.hits,
                              self.misses)
