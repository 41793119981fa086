"""How every failure becomes an OperationOutcome response: one handler per kind, registered on
whatever serves FHIR (the blueprints, and the standalone app for paths outside them).

What reaches the log: a client's error (every TerminologyError, every werkzeug HTTPException: the
4xx) is answered and never logged, so no client can write to the log by asking badly. An
unexpected exception (the 500) is logged through `ErrorLog`, which keeps a failure that every
request can trigger from flooding the log: see its docstring.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from flask import Blueprint, Flask, Request, Response, current_app, request
from werkzeug.exceptions import HTTPException

from ..render.errors import MethodNotAllowed
from ..terminology.errors import TerminologyError
from ..terminology.outcome import error_outcome, http_outcome
from .observe import REQUEST_ID
from .responses import outcome_response

log = logging.getLogger(__name__)


# Each handler answers for `req`, by default Flask's current request: web/lane.py names the request
# it answers without a request context.


def terminology_error(error: TerminologyError, req: Request | None = None) -> Response:
    response = outcome_response(req or _current(), error_outcome(error), error.status)
    response.headers.extend(getattr(error, "headers", ()))  # e.g. the codings a 415 would have taken
    if isinstance(error, MethodNotAllowed) and error.allow:
        response.headers["Allow"] = ", ".join(error.allow)
    return response


def http_error(error: HTTPException, req: Request | None = None) -> Response:
    status = error.code or 400
    response = outcome_response(req or _current(), http_outcome(status, error.description or error.name), status)
    for name, value in error.get_headers():  # werkzeug's 405 names the methods the path takes
        if name == "Allow":
            response.headers["Allow"] = value
    return response


@dataclass
class _Site:
    traceback_at: float  # when this site's traceback was last written
    summary_at: float  # when anything about it was last written
    unreported: int = 0  # failures since then that wrote nothing


def _one_line(text: str, limit: int) -> str:
    """`text` as one log line of at most about `limit` characters: a path or an exception's message
    may hold anything a client sent, line breaks included, which must not forge log lines."""
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= limit else text[:limit] + f"... ({len(text) - limit} more characters)"


def _site(error: BaseException) -> tuple[str, str]:
    """Where `error` was raised: its type and the innermost frame of its traceback."""
    frames = traceback.extract_tb(error.__traceback__) if error.__traceback__ else []
    place = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
    return type(error).__name__, place


class ErrorLog:
    """The log of unexpected errors (500s) of one app, bounded whatever the request rate.

    A failure site (the exception's type and the line that raised it) writes its traceback at most
    once every `traceback_interval` seconds (10 minutes), cut to `max_traceback` characters (a
    RecursionError's is otherwise about 200 KB); in between, at most one line every
    `summary_interval` seconds (10 s) names the request, the error and the site, and how many
    failures of that site went unreported since the last line. So one site writes at most about
    16 KB and 60 short lines in 10 minutes, however many requests fail there; at most `max_sites`
    sites are remembered (the least recently seen is forgotten first)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, traceback_interval: float = 600.0,
                 summary_interval: float = 10.0, max_traceback: int = 16_384, max_sites: int = 256):
        self._clock = clock
        self.traceback_interval, self.summary_interval = traceback_interval, summary_interval
        self.max_traceback, self.max_sites = max_traceback, max_sites
        self._sites: OrderedDict[tuple[str, str], _Site] = OrderedDict()
        self._lock = threading.Lock()

    def report(self, error: BaseException, method: str, path: str, request_id: str = "") -> None:
        site = _site(error)
        now = self._clock()
        with self._lock:
            state = self._sites.get(site)
            if state is None or now - state.traceback_at >= self.traceback_interval:
                kind, unreported = "traceback", state.unreported if state else 0
                self._sites[site] = _Site(now, now)
            elif now - state.summary_at >= self.summary_interval:
                kind, unreported = "summary", state.unreported
                state.summary_at, state.unreported = now, 0
            else:
                state.unreported += 1
                return
            self._sites.move_to_end(site)
            while len(self._sites) > self.max_sites:
                self._sites.popitem(last=False)
        named = f" (request {_one_line(request_id, 128)})" if request_id else ""
        headline = (f"unexpected error on {_one_line(method, 16)} {_one_line(path, 200)}{named}: {site[0]}: "
                    f"{_one_line(str(error), 300)} (at {site[1]})")
        if unreported:
            headline += f"; {unreported} more there since the last report"
        if kind == "summary":
            log.error("%s; its traceback is written at most every %d s", headline, self.traceback_interval)
            return
        text = "".join(traceback.format_exception(error))
        if len(text) > self.max_traceback:
            half = self.max_traceback // 2
            text = f"{text[:half]}\n... ({len(text) - 2 * half} characters left out) ...\n{text[-half:]}"
        log.error("%s\n%s", headline, text.rstrip("\n"))


_ERROR_LOG = "fhir_plugin.error_log"


def error_log(app: Flask) -> ErrorLog:
    """The app's ErrorLog, made on first use (an app without the plugin's extension has one too)."""
    found = app.extensions.get(_ERROR_LOG)
    if not isinstance(found, ErrorLog):
        found = app.extensions[_ERROR_LOG] = ErrorLog()
    return found


def unexpected_error(error: Exception, req: Request | None = None) -> Response:
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]  # flask types the proxy as a Flask
    req = req or _current()
    error_log(app).report(error, req.method, req.path, req.environ.get(REQUEST_ID, ""))
    return outcome_response(req, http_outcome(500, "Internal server error; the details are in the server log"), 500)


def _current() -> Request:
    found: Request = request._get_current_object()  # type: ignore[attr-defined]  # flask types the proxy as a Request
    return found


def register_error_handlers(target: Flask | Blueprint, *, unexpected: bool = True) -> None:
    target.register_error_handler(TerminologyError, terminology_error)
    target.register_error_handler(HTTPException, http_error)
    if unexpected:
        target.register_error_handler(Exception, unexpected_error)
