"""How every failure becomes an OperationOutcome response: one handler per kind, registered on
whatever serves FHIR (the blueprints, and the standalone app for paths outside them)."""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, Response, request
from werkzeug.exceptions import HTTPException

from ..terminology.errors import TerminologyError
from ..terminology.outcome import error_outcome, http_outcome
from .responses import outcome_response

log = logging.getLogger(__name__)


def terminology_error(error: TerminologyError) -> Response:
    return outcome_response(request, error_outcome(error), error.status)


def http_error(error: HTTPException) -> Response:
    status = error.code or 400
    return outcome_response(request, http_outcome(status, error.description or error.name), status)


def unexpected_error(error: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.path)
    return outcome_response(request, http_outcome(500, "Internal server error; the details are in the server log"), 500)


def register_error_handlers(target: Flask | Blueprint, *, unexpected: bool = True) -> None:
    target.register_error_handler(TerminologyError, terminology_error)
    target.register_error_handler(HTTPException, http_error)
    if unexpected:
        target.register_error_handler(Exception, unexpected_error)
