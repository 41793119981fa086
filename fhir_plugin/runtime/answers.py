"""Rendered answers of deterministic operations, kept for identical requests.

Validators and interface engines ask the same `$lookup` / `$translate` / `$validate-code` many
times a second. Parsing, running and rendering such a request costs about 0.1 ms of Python; giving
back the bytes rendered the first time costs a dictionary look-up. Reads are kept too: a read of
the complete ICD-10-CM costs 0.8 s on R4 (the conversion copies its 98,466 concepts) and 0.13 s
to gzip its 20 MB, and its gzipped 1.2 MB are kept as sent. `$expand` is not cached (its answer
carries a fresh identifier and timestamp), nor a search (its links name the host asked), nor
anything a server error answered.

An answer depends on the content it was computed with, so its key starts with the token of the
registry that answered (content reloaded at run time gets a new one, and the old answers age out),
and on the app's settings, so each app (each Runtime) has its own cache. The rest of the key is
everything the answer's bytes can depend on: the FHIR version, method, path, raw query string
(parameters, _format, _pretty, _summary, _elements), the headers the views and renderer read
(Accept, Accept-Language, Content-Type, Accept-Encoding) and, for a POST, a digest of the body
(see fhir_plugin.web.views).

The cache holds FHIR_PLUGIN_ANSWER_CACHE slots of 16 KiB: an answer takes a slot per 16 KiB it
holds (most take one), and one larger than a quarter of the cache is not kept, so that its memory
is bounded by the setting times 16 KiB (32 MiB by default) and no one answer can take most of it.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from ..terminology.caching import BoundedCache, CacheStats

SLOT_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class Answer:
    body: bytes
    status: int
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()  # besides Content-Type and Content-Length (set from the body)
    operation: str = ""  # what was asked ("$lookup"): the label of its metrics and access line


def _slots(answer: Answer) -> int:
    return -(-len(answer.body) // SLOT_BYTES)


class AnswerCache:
    """A bounded LRU of Answers in `size` slots of 16 KiB (0 turns it off). Thread-safe."""

    def __init__(self, size: int):
        self.size = size
        self.largest = max(size // 4, 1) * SLOT_BYTES  # bytes of the largest answer kept
        self._answers: BoundedCache[Answer] = BoundedCache("answers", size, sizeof=_slots)

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

    def find(self, key: Hashable) -> Answer | None:
        """Like get, but none found is not yet a miss: the caller counts it (`missed`) once it
        knows the request is one the cache is for (the front door looks for every request)."""
        return self._answers.find(key) if self.size > 0 else None

    def missed(self) -> None:
        self._answers.missed()

    def clear(self) -> None:
        self._answers.clear()

    def put(self, key: Hashable, answer: Answer) -> None:
        """Keep `answer` unless it is a server error or larger than a quarter of the cache."""
        if answer.status < 500 and len(answer.body) <= self.largest:
            self._answers.put(key, answer)
