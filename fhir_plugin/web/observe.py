"""What every request leaves behind: its request id, one JSON line in the access log, and its
counts in the metrics. Registered (`observe`) as before/after-request hooks of the plugin's blueprints in a host app
(an embedding app's own routes are its own business), or of the whole standalone app (which also
sees the paths no route matches); never both, since each Flask hook call costs about a
microsecond and a half.

The log line is bounded whatever the client sends: the path is cut to 256 characters, a query
string (only with FHIR_PLUGIN_ACCESS_LOG=query) to 1,024, the method to 16, and an X-Request-ID
is used only when it is 1-128 characters of a safe set (else a new one is made), so that a line is
never longer than about 1.6 KB and never more than one per request; JSON escapes line breaks, so
no client can forge a line. No request body is ever written.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from typing import Any

import orjson
from flask import Flask, Request, Response, current_app, request

from ..runtime.answers import Answer
from ..runtime.metrics import metrics

access_log = logging.getLogger("fhir_plugin.access")
REQUEST_ID, START, CACHE = "fhir_plugin.request_id", "fhir_plugin.start", "fhir_plugin.cache"
HEADER = "X-Request-ID"
MAX_REQUEST_ID, MAX_PATH, MAX_QUERY, MAX_METHOD = 128, 256, 1024, 16
# What proxies and tracing systems put in request ids (UUIDs, hex, base64, dotted or colon-separated
# ids); nothing that needs escaping in a header or a log.
_GOOD_ID = re.compile(r"[A-Za-z0-9._:+/=@-]+")
# A view's name -> the operation it answers, for the metrics' `operation` label and the log.
OPERATIONS = {"lookup": "$lookup", "subsumes": "$subsumes", "translate": "$translate",
              "validate_code_cs": "CodeSystem/$validate-code", "validate_code_vs": "ValueSet/$validate-code",
              "batch_validate_code": "$batch-validate-code", "expand": "$expand", "search": "search",
              "read": "read", "metadata": "metadata", "versions": "$versions", "unknown": "unknown", "base": "unknown",
              "healthz": "healthz", "readyz": "readyz", "metrics_view": "metrics"}
_labels: dict[str | None, str] = {}  # request.endpoint -> operation, filled as endpoints are met
# Where access lines go: None, the `fhir_plugin.access` logger (an embedding app's logging decides);
# the server writes them to a file descriptor instead (`write_access_lines_to`).
_sink: int | None = None
_second: tuple[int, str] = (-1, "")  # the last second formatted, and its text: strftime costs 2 µs


def write_access_lines_to(fd: int | None) -> None:
    """Write access lines straight to `fd` (the server: stderr), one os.write each, instead of
    through `logging` (13 µs a line, against 1-2 µs). A write of under 4 KB to a pipe is atomic,
    and a line is at most about 1.6 KB: the lines of several workers never interleave."""
    global _sink
    _sink = fd


def _now() -> str:
    global _second
    now = time.time()
    whole = int(now)
    if _second[0] != whole:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{int((now - whole) * 1000):03d}Z"


def _new_prefix() -> None:
    global _prefix, _serial
    _prefix, _serial = os.urandom(8).hex() + "-", itertools.count(1)


_prefix, _serial = "", itertools.count(1)
_new_prefix()
os.register_at_fork(after_in_child=_new_prefix)  # every worker its own prefix


def request_id(given: str | None) -> str:
    """The client's X-Request-ID if it is a sensible one, else a new one: 16 random hex digits of
    this process (drawn again in every forked worker), a dash, and a serial number in hex; unique
    without a random draw per request (os.urandom costs about as much as the rest of this)."""
    if given and len(given) <= MAX_REQUEST_ID and _GOOD_ID.fullmatch(given):
        return given
    return f"{_prefix}{next(_serial):x}"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}...({len(text) - limit} more)"


def operation_of(endpoint: str | None) -> str:
    """The operation label of a Flask endpoint (metrics and access log)."""
    found = _labels.get(endpoint)
    if found is None:
        view = (endpoint or "").rsplit(".", 1)[-1].removesuffix("_instance")
        blueprint = (endpoint or "").rsplit(".", 1)[0]
        found = _labels[endpoint] = OPERATIONS.get(view, "admin" if blueprint.endswith("_admin") else "other")
    return found


_metrics_broken = False


def _metrics_failed(error: OSError) -> None:
    """Said once per process, not once per request."""
    global _metrics_broken
    if not _metrics_broken:
        _metrics_broken = True
        logging.getLogger("fhir_plugin").error("metrics cannot be written, requests are answered without them: %s",
                                               error)


OBSERVED = "fhir_plugin.observed"  # app.extensions key: the app observes every request itself


def observe(app: Flask, blueprints: list[str]) -> None:
    """Observe the requests of `blueprints` in `app` (a host app) through its request hooks, unless
    the app observes all of its own (app.StandaloneApp)."""
    if app.extensions.get(OBSERVED):
        return
    for name in blueprints:
        app.before_request_funcs.setdefault(name, []).append(begin)
        app.after_request_funcs.setdefault(name, []).append(finish)


def begin() -> None:
    start(request.environ, time.perf_counter())


def start(environ: dict[str, Any], started: float) -> None:
    """The request of `environ` began at `started` (time.perf_counter): its id is chosen."""
    environ[START] = started
    environ[REQUEST_ID] = request_id(environ.get("HTTP_X_REQUEST_ID"))


def finish(response: Response) -> Response:
    """The after-request hook of the blueprints of a host app."""
    return observed(response, request._get_current_object(), current_app)  # type: ignore[attr-defined]


def observed(response: Response, req: Request, app: Flask) -> Response:
    """`response` counted, logged and given its request id."""
    environ = req.environ
    started = environ.get(START)
    if started is None:  # a request that failed before `begin` could run
        return response
    rid = environ[REQUEST_ID]
    response.headers[HEADER] = rid
    view_args = req.view_args
    state: Any = app.extensions.get("fhir_plugin")
    _record(environ, rid, operation_of(req.endpoint), view_args.get("fhir_version", "") if view_args else "",
            response.status_code, environ.get(CACHE, "none"), time.perf_counter() - started,
            response.headers.get("Content-Length"), state)
    return response


def record_hit(environ: dict[str, Any], headers: list[tuple[str, str]], answer: Answer, version: str,
               state: Any, started: float) -> None:
    """Observe an answer the answer cache's front door (web/front.py) gave without Flask: its
    request id added to `headers`."""
    rid = request_id(environ.get("HTTP_X_REQUEST_ID"))
    headers.append((HEADER, rid))
    _record(environ, rid, answer.operation, version, answer.status, "hit", time.perf_counter() - started,
            str(len(answer.body)), state)


def _record(environ: dict[str, Any], rid: str, operation: str, version: str, status: int, cache: str,
            seconds: float, length: str | None, state: Any) -> None:
    """Count the request in the metrics and write its access line."""
    try:
        counts = metrics()
        counts.request(operation, version, status, cache, seconds)
        now = time.monotonic()
        if state is not None and counts.caches_due(now):
            counts.note_caches(state.runtime.cache_stats().values(), now)
    except OSError as error:  # the metrics directory removed or full: the request is answered all the same
        _metrics_failed(error)
    chosen = state.settings["FHIR_PLUGIN_ACCESS_LOG"] if state is not None else "on"
    if chosen == "off" or (_sink is None and not access_log.isEnabledFor(logging.INFO)):
        return
    line: dict[str, Any] = {
        "time": _now(), "requestId": rid, "method": _cut(environ.get("REQUEST_METHOD", ""), MAX_METHOD),
        "path": _cut(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""), MAX_PATH),
        "operation": operation, "fhirVersion": version, "status": status, "ms": round(seconds * 1000, 3),
        "bytes": int(length) if length and length.isdigit() else None, "cache": cache}
    if chosen == "query":
        line["query"] = _cut(environ.get("QUERY_STRING", ""), MAX_QUERY)
    if _sink is None:
        access_log.info("%s", orjson.dumps(line).decode())
        return
    try:
        os.write(_sink, orjson.dumps(line) + b"\n")
    except OSError:
        pass  # a closed stderr must not fail the request it logs
