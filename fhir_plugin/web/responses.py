"""Answers and errors as Flask responses: a rendered document in the negotiated media type (FHIR
JSON or FHIR XML: render/formats.py negotiates and writes the bytes), and content coding
(compressed if the client accepts it, web.compression)."""

from __future__ import annotations

from typing import Any

from flask import Request, Response, current_app, request

from ..fhirversions import FhirVersion
from ..render import document
from ..render.formats import FHIR_JSON, XML_TYPES, dumps, response_mimetype, write
from .compression import DEFAULT_MIN_BYTES, encode


def _min_bytes() -> int:
    """FHIR_PLUGIN_GZIP_MIN_BYTES of the plugin serving this request (the default outside one)."""
    state = current_app.extensions.get("fhir_plugin")
    return DEFAULT_MIN_BYTES if state is None else int(state.settings["FHIR_PLUGIN_GZIP_MIN_BYTES"])


def respond(req: Request, version: FhirVersion, result: object, status: int = 200) -> Response:
    """`result` (a typed result or an internal resource) rendered for `version`, as `req` asks."""
    # `in` first, and headers from the environ: a werkzeug look-up of what is not there raises
    # and catches an exception (about a microsecond each, four a request)
    args, environ = req.args, req.environ
    mimetype = response_mimetype(args.get("_format") if "_format" in args else None, environ.get("HTTP_ACCEPT"))
    pretty = "_pretty" in args and args.get("_pretty") == "true"
    rendered = document(result, version)
    body = dumps(rendered, pretty) if mimetype not in XML_TYPES else write(rendered, mimetype, version, pretty)
    return encoded(Response(body, status=status, mimetype=mimetype), req)


def encoded(response: Response, req: Request | None = None) -> Response:
    """`response` compressed as the Accept-Encoding of `req` (by default the current request)
    allows (web.compression)."""
    return encode(response, (req or request).environ.get("HTTP_ACCEPT_ENCODING"), _min_bytes())


def _outcome_mimetype(req: Request) -> str:
    """The media type of an error: as negotiated; when `_format` is what failed, as Accept says;
    when that fails too (a 406), JSON, as there is nothing better to send."""
    try:
        accept = req.headers.get("Accept")
        try:
            return response_mimetype(req.args.get("_format"), accept)
        except Exception:  # noqa: BLE001 - a bad _format must not hide the original error
            return response_mimetype(None, accept)
    except Exception:  # noqa: BLE001 - nor an unacceptable Accept, or a query string that is not UTF-8
        return FHIR_JSON


def outcome_response(req: Request, outcome: dict[str, Any], status: int,
                     headers: dict[str, str] | None = None) -> Response:
    """An OperationOutcome (an error, or an admin answer), in the negotiated format. Its version,
    for XML, is the endpoint's (an OperationOutcome is the same in R4 and R5; R5 elsewhere)."""
    mimetype = _outcome_mimetype(req)
    try:
        pretty = req.args.get("_pretty") == "true"
    except UnicodeDecodeError:  # raw bytes in the query string that are not UTF-8: the error says so
        pretty = False
    if mimetype in XML_TYPES:
        given = (req.view_args or {}).get("fhir_version")
        version = FhirVersion(given) if given in ("R4", "R5") else FhirVersion.R5
        body = write(outcome, mimetype, version, pretty)
    else:
        body = dumps(outcome, pretty)
    response = Response(body, status=status, headers=headers, mimetype=mimetype)
    # never refused for its coding: an error is sent as it is when nothing else is acceptable
    return encode(response, req.headers.get("Accept-Encoding"), _min_bytes(), refuse=False)
