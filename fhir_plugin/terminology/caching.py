"""The one bounded cache: a thread-safe LRU that counts its hits, misses and evictions.

Every cache of the service is one of these, so each is bounded and each can say how full it is
and how well it works (`stats`). A cache is bounded by its number of entries, or, given `sizeof`,
by the sum of its entries' sizes (members of an evaluation, estimated bytes): a value larger than
the whole bound is computed and returned but not kept.

Several caches may share one bound (a `Budget`): the resources requests bring and what is
computed from them are kept in caches of their own, and together must stay within one amount of
memory. The least recently used entry of any of them goes first, so that a cache filled by an
attack pushes out its own entries as much as the others', whichever kind the attack grows.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class CacheStats:
    name: str
    entries: int
    size: int  # in the cache's unit: entries, or what `sizeof` measures
    maxsize: int  # of the cache's bound, shared with other caches when it has a Budget
    hits: int
    misses: int
    evictions: int = 0  # entries pushed out to make room


class Budget:
    """A bound that several caches share: the sum of their entries' sizes stays within `limit`.

    It holds the recency order of every entry of those caches, so that the least recently used of
    all of them is dropped first; its lock is the lock of each of them (one lock, so that no two
    caches can wait for each other)."""

    def __init__(self, limit: int):
        self.limit = max(limit, 0)
        self.used = 0
        self.lock = threading.Lock()
        # (cache, key) -> the entry's size, least recently used first
        self.order: OrderedDict[tuple[BoundedCache[Any], Hashable], int] = OrderedDict()


class BoundedCache(Generic[V]):
    def __init__(self, name: str, maxsize: int, sizeof: Callable[[V], int] | None = None,
                 budget: Budget | None = None):
        """`maxsize` bounds this cache alone; with `budget` it is ignored and the budget's limit,
        shared with the other caches of that budget, bounds it (a limit of 0 keeps nothing)."""
        self.name = name
        self._sizeof = sizeof
        self._budget = budget if budget is not None else Budget(maxsize)
        self._entries: dict[Hashable, V] = {}
        self._size = 0
        self._lock = self._budget.lock
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __getstate__(self) -> dict[str, Any]:
        # A pickled holder (the compiled-content cache pickles registries) gets an empty cache
        # back, bounded on its own: a shared budget belongs to the process that made it.
        return {"name": self.name, "maxsize": self.maxsize, "sizeof": self._sizeof}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["name"], state["maxsize"], state["sizeof"])  # type: ignore[misc]  # re-run __init__: locks do not pickle

    @property
    def maxsize(self) -> int:
        return self._budget.limit

    def get(self, key: Hashable) -> V | None:
        """The value kept for `key` (now the most recently used), or None; counted as a hit or a miss."""
        with self._lock:
            try:
                value = self._entries[key]  # not .get(): that looks the key up twice
            except KeyError:
                self.misses += 1
                return None
            self._budget.order.move_to_end((self, key))
            self.hits += 1
            return value

    def find(self, key: Hashable, accept: Callable[[V], bool] | None = None) -> V | None:
        """Like get, for a value that may be in one of several places: a value found (and accepted)
        is a hit, but none is not yet a miss: the caller counts it (`missed`) where it computes it."""
        with self._lock:
            value = self._entries.get(key)
            if value is None or (accept is not None and not accept(value)):
                return None
            self._budget.order.move_to_end((self, key))
            self.hits += 1
            return value

    def missed(self) -> None:
        with self._lock:
            self.misses += 1

    def put(self, key: Hashable, value: V) -> None:
        # outside the lock: it may take a while; at least 1, so that empty values are bounded too
        size = max(self._sizeof(value), 1) if self._sizeof is not None else 1
        budget = self._budget
        with self._lock:
            self._drop(key)
            if size > budget.limit:
                return  # larger than the whole bound: not kept
            while budget.used + size > budget.limit:
                (cache, oldest), _ = next(iter(budget.order.items()))
                cache._drop(oldest)
                cache.evictions += 1
            self._entries[key] = value
            budget.order[(self, key)] = size
            budget.used += size
            self._size += size

    def _drop(self, key: Hashable) -> None:
        """Forget `key` if kept (the lock is held)."""
        if self._entries.pop(key, None) is not None:
            size = self._budget.order.pop((self, key))
            self._budget.used -= size
            self._size -= size

    def get_or_compute(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The value kept for `key`, else compute() (outside the lock), kept for next time."""
        found = self.get(key)
        if found is None:
            found = compute()
            self.put(key, found)
        return found

    def clear(self) -> None:
        with self._lock:
            for key in list(self._entries):
                self._drop(key)

    @property
    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self.name, len(self._entries), self._size, self.maxsize, self.hits, self.misses,
                              self.evictions)
