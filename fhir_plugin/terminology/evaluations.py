"""Evaluated value sets, kept per registry.

An $expand of an is-a filter, or of the whole ICD-10-CM under a text filter (a typeahead), spends
nearly all its time listing members: 98,000 Member objects for the whole system, on every page.
The list depends only on the registry (immutable once built), the ValueSet and the request's
version rules, so it is computed once and kept, bounded by the number of members held (a Member
is about 100 bytes). Callers get a copy whose lists they may change; Members are immutable.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

# About 30 MB per process at most: the whole ICD-10-CM three times over.
MAX_MEMBERS = 300_000


class EvaluationCache:
    def __init__(self, max_members: int = MAX_MEMBERS):
        self.max_members = max_members
        self._entries: OrderedDict[tuple, Any] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()
        self.computed = 0  # evaluations actually run (for tests)

    def __getstate__(self) -> dict:
        return {"max_members": self.max_members}  # a pickled registry (the content cache) starts empty

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["max_members"])

    def evaluation(self, value_set: dict, options: object, compute: Callable[[], Any]) -> Any:
        """compute()'s Evaluation, or a copy of the one computed for the same value set and options."""
        try:
            text = json.dumps(value_set, sort_keys=True)
        except (TypeError, ValueError):
            return compute()
        key = (hashlib.sha256(text.encode()).digest(), repr(options))
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
        if found is None:
            found = compute()
            with self._lock:
                self.computed += 1
            self._remember(key, found)
        return _copy(found)

    def _remember(self, key: tuple, evaluation: Any) -> None:
        size = len(evaluation.members)
        if size > self.max_members:
            return
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = evaluation
            self._held += size
            while self._held > self.max_members:
                _, old = self._entries.popitem(last=False)
                self._held -= len(old.members)


def _copy(evaluation: Any) -> Any:
    """Fresh lists (expand appends warnings), the same members list and the same search holder."""
    changes = {f.name: list(getattr(evaluation, f.name)) for f in dataclasses.fields(evaluation)
               if isinstance(getattr(evaluation, f.name), list) and f.name != "members"}
    changes["multi_version_systems"] = set(evaluation.multi_version_systems)
    return dataclasses.replace(evaluation, **changes)
