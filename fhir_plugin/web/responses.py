"""Answers and errors as Flask responses: a rendered document in the negotiated media type, and
content coding (compressed if the client accepts it, web.compression)."""

from __future__ import annotations

from typing import Any

from flask import Request, Response, current_app, request

from ..fhirversions import FhirVersion
from ..render import document
from ..render.formats import FHIR_JSON, dumps, response_mimetype
from .compression import DEFAULT_MIN_BYTES, encode


def _min_bytes() -> int:
    """FHIR_PLUGIN_GZIP_MIN_BYTES of the plugin serving this request (the default outside one)."""
    state = current_app.extensions.get("fhir_plugin")
    return DEFAULT_MIN_BYTES if state is None else int(state.settings["FHIR_PLUGIN_GZIP_MIN_BYTES"])


def respond(version: FhirVersion, result: object, status: int = 200) -> Response:
    """`result` (a typed result or an internal resource) rendered for `version`, as the client asked."""
    mimetype = response_mimetype(request.args.get("_format"), request.headers.get("Accept"))
    pretty = request.args.get("_pretty") == "true"
    response = Response(dumps(document(result, version), pretty), status=status, mimetype=mimetype)
    return encode(response, request.headers.get("Accept-Encoding"), _min_bytes())


def outcome_response(req: Request, outcome: dict[str, Any], status: int) -> Response:
    """An OperationOutcome. When negotiation itself failed there is nothing better to send than JSON."""
    try:
        mimetype = response_mimetype(req.args.get("_format"), req.headers.get("Accept"))
    except Exception:  # noqa: BLE001 - an unacceptable Accept must not hide the original error
        mimetype = FHIR_JSON
    try:
        pretty = req.args.get("_pretty") == "true"
    except UnicodeDecodeError:  # raw bytes in the query string that are not UTF-8: the error says so
        pretty = False
    response = Response(dumps(outcome, pretty), status=status, mimetype=mimetype)
    # never refused for its coding: an error is sent as it is when nothing else is acceptable
    return encode(response, req.headers.get("Accept-Encoding"), _min_bytes(), refuse=False)
