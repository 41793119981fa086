"""Rendered answers of deterministic operations, kept for identical requests.

Validators and interface engines ask the same `$lookup` / `$translate` / `$validate-code` many
times a second. Parsing, running and rendering such a request costs about 0.1 ms of Python; giving
back the bytes rendered the first time costs a dictionary look-up. `$expand` is not cached (its
answer carries a fresh identifier and timestamp), nor anything a server error answered.

An answer depends on the content it was computed with, so its key starts with the token of the
registry that answered (content reloaded at run time gets a new one, and the old answers age out),
and on the app's settings, so each app (each Runtime) has its own cache. The rest of the key is
everything the answer's bytes can depend on: the FHIR version, method, path, raw query string
(parameters, _format, _pretty), the headers the views and renderer read (Accept, Accept-Language,
Content-Type) and, for a POST, a digest of the body (see fhir_plugin.web.views).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from ..terminology.caching import BoundedCache, CacheStats

# A larger answer is not kept, so that the cache's memory is bounded by its size times this.
MAX_ANSWER_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class Answer:
    body: bytes
    status: int
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()  # besides Content-Type and Content-Length (set from the body)


class AnswerCache:
    """A bounded LRU of Answers (`size` of them; 0 turns it off). Thread-safe."""

    def __init__(self, size: int):
        self.size = size
        self._answers: BoundedCache[Answer] = BoundedCache("answers", size)

    def __len__(self) -> int:
        return len(self._answers)

    @property
    def enabled(self) -> bool:
        return self.size > 0

    @property
    def stats(self) -> CacheStats:
        return self._answers.stats

    def get(self, key: Hashable) -> Answer | None:
        return self._answers.get(key) if self.size > 0 else None

    def clear(self) -> None:
        self._answers.clear()

    def put(self, key: Hashable, answer: Answer) -> None:
        """Keep `answer` if it is small and not a server error."""
        if answer.status < 500 and len(answer.body) <= MAX_ANSWER_BYTES:
            self._answers.put(key, answer)
