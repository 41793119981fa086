"""The admin endpoints: load content into the running server, list it, unload it; the caches' figures.

Off unless FHIR_PLUGIN_ADMIN_TOKEN is set (403), and then only with that bearer token (401): no
endpoint that changes what the server serves is open by default. They are not FHIR operations, so
they live beside /r4 and /r5 rather than in them; their errors are OperationOutcomes all the same.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from flask import Blueprint, Response, current_app, request

from ..content.errors import LoadTooCostly
from ..render.errors import RequestTooLarge
from ..runtime.errors import Forbidden, Unauthorized
from ..runtime.store import checked_name
from ..terminology.errors import TerminologyError
from .errors import register_error_handlers, terminology_error
from .params import check_query_string, raw_body
from .responses import outcome_response
from .routing import allow, refuse_method
from .views import ALL_METHODS, PluginState

admin = Blueprint("fhir_plugin_admin", __name__)
register_error_handlers(admin)


def _authorized() -> PluginState:
    check_query_string(request)  # request.args fails on raw bytes that are not UTF-8
    state: PluginState = current_app.extensions["fhir_plugin"]
    token = state.settings["FHIR_PLUGIN_ADMIN_TOKEN"]
    if not token or state.runtime.store is None:
        raise Forbidden("ADMIN_DISABLED")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # compare_digest: the time taken must not tell how much of a guessed token was right
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Unauthorized("ADMIN_UNAUTHORIZED")
    return state


def _allow(*methods: str) -> Response | None:
    """None if the request's method is one of `methods` (HEAD where GET is); else the answer to
    OPTIONS, or a 405 with Allow."""
    if request.method in methods or (request.method == "HEAD" and "GET" in methods):
        return None
    return refuse_method(allow(methods))


def _json(document: dict[str, Any]) -> Response:
    """What is not FHIR (the list of loaded files, the caches' figures) is plain JSON, whatever Accept says."""
    return Response(json.dumps(document, indent=2), 200, mimetype="application/json")


def _information(texts: list[str], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """An OperationOutcome of information: FHIR, so in the negotiated format (JSON or XML)."""
    outcome = {"resourceType": "OperationOutcome",
               "issue": [{"severity": "information", "code": "informational", "details": {"text": t}} for t in texts]}
    return outcome_response(request, outcome, status, headers)


@admin.route("/content", methods=[*ALL_METHODS, "OPTIONS"], strict_slashes=False, merge_slashes=False)
def content() -> Response:
    """GET: what was loaded at run time. POST: load the body (FHIR JSON, a Bundle, .json.gz or a FHIR
    package) as the file `?name=` (default: named by its digest), replacing a file of that name."""
    state = _authorized()
    if (refused := _allow("GET", "POST")) is not None:
        return refused
    if request.method != "POST":
        return _json(state.runtime.summary())
    name = request.args.get("name") or None
    change = state.runtime.load(_body(state, name), name)
    layer = change.layer
    file = layer.file(change.name)
    held = [(item, layer.also_in(item)) for item in (file.resources if file else ())]
    served = [item for item, also in held if not also]
    texts = [f"{change.name}: loaded {len(served)} resource(s); every worker serves them from the next request"]
    texts += [item.label for item in served]
    texts += [f"{item.label}: also in {', '.join(also)} (served once)" for item, also in held if also]
    headers = {"Location": f"{request.base_url}/{change.name}"}
    return _information(texts, 201 if change.created else 200, headers)


def _body(state: PluginState, name: str | None) -> bytes:
    """The body of a load: refused before it is read if it is larger than a load may be (too-costly),
    or than a package (413)."""
    bounds = state.runtime.require_store().bounds
    origin = checked_name(name) if name else "the request body"  # a bad name is told first, as it is
    if request.content_length is not None:
        bounds.check_size(request.content_length, origin)
    limit = state.settings["FHIR_PLUGIN_MAX_PACKAGE_BYTES"]
    request.max_content_length = limit  # a package may be larger than an operation's body
    if bounds.max_bytes >= limit:
        return raw_body(request, limit)
    try:
        return raw_body(request, bounds.max_bytes)
    except RequestTooLarge:  # a body without Content-Length, read until it was too long
        raise LoadTooCostly("LOAD_TOO_LARGE", origin=origin, limit=bounds.max_bytes,
                            setting="FHIR_PLUGIN_MAX_LOAD_BYTES") from None


@admin.route("/content/<name>", methods=[*ALL_METHODS, "OPTIONS"], strict_slashes=False, merge_slashes=False)
def content_file(name: str) -> Response:
    """DELETE: unload one file loaded at run time."""
    state = _authorized()
    if (refused := _allow("DELETE")) is not None:
        return refused
    change = state.runtime.unload(name)
    return _information([f"{change.name}: unloaded; every worker stops serving it from the next request"])


@admin.route("/caches", methods=[*ALL_METHODS, "OPTIONS"], strict_slashes=False, merge_slashes=False)
def caches() -> Response:
    """GET: the figures of every cache of the worker that answers (each worker has its own)."""
    state = _authorized()
    if (refused := _allow("GET")) is not None:
        return refused
    return _json({name: {"entries": s.entries, "size": s.size, "maxsize": s.maxsize, "hits": s.hits,
                         "misses": s.misses, "evictions": s.evictions}
                  for name, s in state.runtime.cache_stats().items()})


@admin.errorhandler(TerminologyError)
def admin_error(error: TerminologyError) -> Response:
    response = terminology_error(error)
    if isinstance(error, Unauthorized):
        response.headers["WWW-Authenticate"] = 'Bearer realm="fhir_plugin admin"'
    return response
