"""The time budget of a request: long work stops with a too-costly error before a worker timeout.

The caller (the web layer, for every request; a library user, if it wants one) runs the work
inside `time_budget(seconds)`. The engine calls `check()` between steps and `checked(items)`
inside the loops that can be long (members of a whole code system, filters, batches). Outside a
budget both cost a context-variable read and do nothing.

A context variable, not a parameter: the loops sit several calls below the operation, and the
deadline belongs to the request, not to any of the objects in between. Work that stops leaves
nothing half-done behind: evaluations and answers are kept only once complete.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from itertools import islice
from typing import TypeVar

from .errors import OverBudget

T = TypeVar("T")

# (deadline on the monotonic clock, the budget in milliseconds for the message); None: no budget
_DEADLINE: ContextVar[tuple[float, int] | None] = ContextVar("fhir_plugin_deadline", default=None)

# Items between two looks at the clock in a loop: time.monotonic() costs about as much as a
# step of the cheapest loop, so this keeps the check well under 1% of the loop, and even the
# slowest step (a regular expression over a long display) times this is a few milliseconds.
STRIDE = 1024


@contextmanager
def time_budget(milliseconds: int | None) -> Iterator[None]:
    """Run the body with `milliseconds` to spend (None or 0: no budget). Nested budgets: the earlier
    deadline applies inside, so asking again can only give less. A batch Bundle relies on it: its
    one budget covers every entry, although each entry opens the budget of a single request."""
    outer = _DEADLINE.get()
    limit = (time.monotonic() + milliseconds / 1000, milliseconds) if milliseconds else None
    if outer is not None and (limit is None or outer[0] < limit[0]):
        limit = outer
    token = _DEADLINE.set(limit)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def check() -> None:
    """Raise OverBudget if the current budget is spent."""
    limit = _DEADLINE.get()
    if limit is not None and time.monotonic() > limit[0]:
        raise OverBudget("REQUEST_OVER_BUDGET", milliseconds=limit[1])


def checked(items: Iterable[T]) -> Iterator[T]:
    """The items, with a look at the clock before each STRIDE of them."""
    if _DEADLINE.get() is None:
        yield from items
        return
    iterator = iter(items)
    while True:
        check()
        chunk = list(islice(iterator, STRIDE))
        if not chunk:
            return
        yield from chunk  # the items of a chunk pass through without a Python-level step each
