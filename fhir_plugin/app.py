"""The standalone server's Flask app: the plugin mounted at the root, and FHIR errors everywhere."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from .extension import FhirTerminology
from .terminology.errors import http_outcome
from .terminology.service import TerminologyService
from .web.render import outcome_response


def create_app(config: Mapping[str, Any] | None = None, service: TerminologyService | None = None) -> Flask:
    """The standalone app. `config` overrides FHIR_PLUGIN_* settings (after the environment)."""
    app = Flask("fhir_plugin")
    app.config.update(config or {})
    FhirTerminology(app, service=service)
    app.config["MAX_CONTENT_LENGTH"] = app.extensions["fhir_plugin"].settings["FHIR_PLUGIN_MAX_REQUEST_BYTES"]

    @app.get("/")
    def index() -> Response:
        endpoints = {"r4": "/r4", "r5": "/r5", "default": "/fhir"}
        return Response(json.dumps({"service": "fhir_plugin", "endpoints": endpoints}), mimetype="application/json")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 400
        return outcome_response(request, http_outcome(status, error.description or error.name), status)

    return app
