"""Rendered answers of deterministic operations, kept for identical requests.

Validators and interface engines ask the same `$lookup` / `$translate` / `$validate-code` many
times a second. Parsing, running and rendering such a request costs about 0.1 ms of Python; giving
back the bytes rendered the first time costs a dictionary look-up. `$expand` is not cached (its
answer carries a fresh identifier and timestamp), nor anything a server error answered.

Where the answers live decides when they must be forgotten. They depend on the content, so they
are kept on the TerminologyService they were computed with: a service swapped in (content
reloaded at run time) starts with none. They also depend on the app's settings (the FHIR version
of /fhir, limits), so each app has its own store on that service.

The key is everything the answer's bytes can depend on: the FHIR version, method, path, the raw
query string (parameters, _format, _pretty), the headers the views and renderer read (Accept,
Accept-Language, Content-Type) and, for a POST, a digest of the body.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

from flask import Flask, Request, Response

from ..fhirversions import FhirVersion
from ..terminology.service import TerminologyService

# A larger answer is not kept, so that the cache's memory is bounded by its size times this.
MAX_ANSWER_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class Answer:
    body: bytes
    status: int
    content_type: str
    other_headers: tuple[tuple[str, str], ...]  # besides Content-Type and Content-Length (set from the body)

    def response(self) -> Response:
        """A new Response each time: the host app's after_request hooks may change it."""
        response = Response(self.body, status=self.status, content_type=self.content_type)
        if self.other_headers:
            response.headers.extend(self.other_headers)
        return response


class AnswerCache:
    """A bounded LRU of Answers. Thread-safe: a host app may serve requests in threads."""

    def __init__(self, size: int):
        self.size = size
        self._answers: OrderedDict[tuple, Answer] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._answers)

    def get(self, key: tuple) -> Answer | None:
        with self._lock:
            answer = self._answers.get(key)
            if answer is not None:
                self._answers.move_to_end(key)
            return answer

    def put(self, key: tuple, response: Response) -> None:
        """Keep `response` if it is a complete, small, non-server-error answer."""
        if response.status_code >= 500 or response.is_streamed or response.direct_passthrough:
            return
        body = response.get_data()
        if len(body) > MAX_ANSWER_BYTES:
            return
        others = tuple((k, v) for k, v in response.headers.items() if k not in ("Content-Type", "Content-Length"))
        answer = Answer(body, response.status_code, response.headers["Content-Type"], others)
        with self._lock:
            self._answers[key] = answer
            self._answers.move_to_end(key)
            while len(self._answers) > self.size:
                self._answers.popitem(last=False)


def cache_for(service: TerminologyService, app: Flask, size: int) -> AnswerCache | None:
    """`app`'s cache on `service`, None when caching is off (size 0)."""
    if size <= 0:
        return None
    cache = service.answer_caches.get(app)
    if cache is None or cache.size != size:
        cache = service.answer_caches[app] = AnswerCache(size)
    return cache


def request_key(request: Request, version: FhirVersion, body: bytes | None) -> tuple:
    # Read from the WSGI environ: the same values as request.path and request.headers, for less.
    environ = request.environ
    digest = hashlib.sha256(body).digest() if body else None
    return (version.value, environ["REQUEST_METHOD"], environ.get("SCRIPT_NAME"), environ.get("PATH_INFO"),
            environ.get("QUERY_STRING"), environ.get("HTTP_ACCEPT"), environ.get("HTTP_ACCEPT_LANGUAGE"),
            environ.get("CONTENT_TYPE"), digest)
