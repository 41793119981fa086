"""The answer cache's front door: a request whose answer is kept (runtime/answers.py) is answered
straight from the WSGI environ, before Flask makes a request object, a context and a route match
for it.

Validators and interface engines send the same `$lookup` or `$validate-code` many times a second.
Through Flask such a hit costs about 60 µs of Python, 49 of them Flask's own (a hello-world view
costs as much); here it costs the key, one dictionary look-up and the observation (web/observe.py),
about a fifth of that. Only the standalone app (app.py) has this door: in a host app, requests
belong to the host's own WSGI stack, and there the cache is looked up in `views.answer`.

The door answers only what `views.answer` would answer with the same bytes: the key is the one
`answer` stores answers under (`answer_key`: content token, FHIR version, method, path, raw query,
the headers that are read, the body's digest), so a request is answered here only if an identical
one was answered before, with the same content. Anything else passes through: HEAD, methods
other than GET and POST, a POST whose body is compressed, chunked or larger than the request limit
(not looked for), paths outside the FHIR bases, and every miss: to the lane (web/lane.py) if it is
an operation's, else to Flask. The UI's concept pages and type-ahead
answers, which ui/kept.py keeps under its own key (`page_key`: the Host is part of it), are given
here the same way, for a GET below the UI's path. A POST body read here is handed on as it was
read.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, Protocol

from werkzeug.http import HTTP_STATUS_CODES

from ..fhirversions import FhirVersion
from ..runtime.answers import Answer
from ..ui.kept import page_key
from .compression import coding_key
from .observe import record_hit

StartResponse = Callable[..., Any]


class Lanes(Protocol):
    """web/lane.Lanes, as the door uses it (lane.py imports the views, which import this module)."""

    def find(self, path: str) -> tuple[Any, dict[str, str]] | None: ...

    def answer(self, environ: dict[str, Any], start_response: StartResponse, version: FhirVersion, lane: Any,
               kwargs: dict[str, str], started: float) -> Iterable[bytes]: ...


KEY = "fhir_plugin.answer_key"  # environ: the key computed here, so that views.answer does not again
SERVICE, BODY = "fhir_plugin.service", "fhir_plugin.body"  # environ: the request's service and body

# The operations whose answers views.answer keeps (route(..., cached=True)); besides them only reads
# (`/{base}/{type}/{id}`) are kept. A request for anything else ($expand, searches, metadata, a
# Bundle) is not looked for: on its way to Flask it would only pay for a key (tests pin the two
# lists together).
KEPT_OPERATIONS = frozenset({"$lookup", "$subsumes", "$translate", "$validate-code"})


def may_be_kept(path: str) -> bool:
    """Whether an answer to `path` (a PATH_INFO below a FHIR base) can be in the answer cache."""
    last = path[path.rfind("/") + 1:]
    return last in KEPT_OPERATIONS if last.startswith("$") else path.count("/") == 3


_STATUS = {code: f"{code} {phrase.upper()}" for code, phrase in HTTP_STATUS_CODES.items()}  # as werkzeug says them


def answer_key(environ: Mapping[str, Any], token: Hashable, version: FhirVersion, body: bytes | None) -> Hashable:
    """Everything an answer's bytes depend on (runtime/answers.py): the content (its registry's
    token), the version, method, path, raw query, the headers that are read (Accept-Encoding as
    what it chooses: an answer is kept as sent, compressed or not), and the body's digest."""
    return (token, version.value, environ["REQUEST_METHOD"], environ.get("SCRIPT_NAME"),
            environ.get("PATH_INFO"), environ.get("QUERY_STRING"), environ.get("HTTP_ACCEPT"),
            environ.get("HTTP_ACCEPT_LANGUAGE"), environ.get("CONTENT_TYPE"),
            coding_key(environ.get("HTTP_ACCEPT_ENCODING")), hashlib.sha256(body).digest() if body else None)


class AnswerFront:
    """Answers kept answers of `state` (a views.PluginState) for the bases `bases` (first path
    segment -> FHIR version), or says None to pass the request on."""

    def __init__(self, state: Any, bases: Mapping[str, FhirVersion], ui: str | None = None,
                 lanes: Lanes | None = None):
        """`ui`: the path the UI's pages start with ("/ui/"), whose kept pages this door gives too.
        `lanes` (web/lane.py): where an operation's request goes when nothing is kept for it,
        instead of to Flask."""
        self.state = state
        self.bases = dict(bases)
        self.ui = ui
        self.lanes = lanes
        self.max_bytes: int = state.settings["FHIR_PLUGIN_MAX_REQUEST_BYTES"]

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes] | None:
        started = time.perf_counter()
        answers = self.state.runtime.answers
        path: str = environ.get("PATH_INFO", "")
        version = self.bases.get(path[1:path.find("/", 1)] if path.count("/") > 1 else path[1:])
        method = environ["REQUEST_METHOD"]
        if version is None:
            if self.ui is not None and method == "GET" and path.startswith(self.ui) and answers.size:
                return self._page(environ, start_response, answers, started)
            return None
        if method != "GET" and method != "POST":
            return None
        if answers.size and may_be_kept(path):  # a hit pays for nothing of the lane
            body = None if method == "GET" else self._body(environ)
            if method == "GET" or body is not None:
                service = self.state.service_for(version)
                environ[SERVICE] = service  # the one service of this request, if it is answered after all
                key = environ[KEY] = answer_key(environ, service.registry.token, version, body)
                given = self._give(answers.find(key), version.value, environ, start_response, started)
                if given is not None:
                    return given
        lane = self.lanes.find(path) if self.lanes is not None else None
        if lane is None or self.lanes is None:
            return None
        return self.lanes.answer(environ, start_response, version, lane[0], lane[1], started)

    def _page(self, environ: dict[str, Any], start_response: StartResponse, answers: Any,
              started: float) -> Iterable[bytes] | None:
        """A kept UI page or type-ahead answer (ui/kept.py), under the key the UI kept it with."""
        kept = answers.find(page_key(environ, self.state.service.registry.token))
        return self._give(kept, "", environ, start_response, started)

    def _give(self, kept: Answer | None, version: str, environ: dict[str, Any], start_response: StartResponse,
              started: float) -> Iterable[bytes] | None:
        """`kept` sent and observed as werkzeug would send it; None if nothing was kept."""
        if kept is None:
            return None
        headers = [("Content-Type", kept.content_type), ("Content-Length", str(len(kept.body))), *kept.headers]
        record_hit(environ, headers, kept, version, self.state, started)
        start_response(_STATUS.get(kept.status) or f"{kept.status} UNKNOWN", headers)
        return [kept.body]

    def _body(self, environ: dict[str, Any]) -> bytes | None:
        """A POST's body, read whole and handed on to Flask; None (nothing read) for one this door
        leaves to Flask: compressed, chunked, without a length or beyond the request limit."""
        length = environ.get("CONTENT_LENGTH")
        if (not length or not length.isdigit() or int(length) > self.max_bytes
                or environ.get("HTTP_CONTENT_ENCODING") or environ.get("HTTP_TRANSFER_ENCODING")):
            return None
        stream = environ["wsgi.input"]
        wanted, data = int(length), bytearray()
        while len(data) < wanted:
            chunk = stream.read(wanted - len(data))
            if not chunk:
                break
            data += chunk
        body = bytes(data)
        # Flask reads the body again from here; a body cut short stays short, and Flask's reading
        # of it against Content-Length fails as it would have.
        environ["wsgi.input"] = io.BytesIO(body)
        return body if len(body) == wanted else None
