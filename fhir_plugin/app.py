"""The standalone server's Flask app: the plugin mounted at the root, and FHIR answers everywhere
(`/` names the FHIR bases; web/routing.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from .extension import FhirTerminology
from .terminology.service import TerminologyService
from .web.errors import register_error_handlers


def create_app(config: Mapping[str, Any] | None = None, service: TerminologyService | None = None,
               *, server: bool = False) -> Flask:
    """The standalone app. `config` overrides FHIR_PLUGIN_* settings (after the environment);
    `server` is for `fhir-plugin serve`, which caches compiled content in the user's cache
    directory unless FHIR_PLUGIN_CACHE_DIR says where."""
    app = Flask("fhir_plugin")
    app.config.update(config or {})
    FhirTerminology(app, service=service, server=server, own_root=True)
    app.config["MAX_CONTENT_LENGTH"] = app.extensions["fhir_plugin"].settings["FHIR_PLUGIN_MAX_REQUEST_BYTES"]
    register_error_handlers(app)
    return app
