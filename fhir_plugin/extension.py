"""FhirTerminology: mounts the terminology service into a Flask app without taking it over.

Follows Flask's extension pattern (docs/extensiondev.rst): the app is never stored on the
extension, state lives in app.extensions["fhir_plugin"], settings are FHIR_PLUGIN_* keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask

from .config import content_paths, load_dir, load_settings
from .fhirversions import FhirVersion
from .terminology.live import LiveService
from .terminology.service import TerminologyService


@dataclass(frozen=True)
class PluginState:
    live: LiveService
    settings: dict[str, Any]
    software_version: str

    @property
    def service(self) -> TerminologyService:
        """The service for this request: the start-up content, with what was loaded since on top."""
        return self.live.current()


class FhirTerminology:
    """`FhirTerminology(app)` or `FhirTerminology().init_app(app, url_prefix="/terminology")`.

    Mounts /r4, /r5 and /fhir (the FHIR_PLUGIN_DEFAULT_VERSION endpoint) under `url_prefix`, and
    /admin (off unless FHIR_PLUGIN_ADMIN_TOKEN is set). Pass `service` to serve content you have
    already loaded; otherwise FHIR_PLUGIN_CONTENT (or the bundled content) is loaded. Content loaded
    at run time (FHIR_PLUGIN_LOAD_DIR) is served on top of either.
    """

    def __init__(self, app: Flask | None = None, *, service: TerminologyService | None = None,
                 url_prefix: str = ""):
        self._service = service
        self._url_prefix = url_prefix
        if app is not None:
            self.init_app(app, url_prefix=url_prefix)

    def init_app(self, app: Flask, url_prefix: str | None = None) -> None:
        from . import __version__
        from .content import Limits
        from .content.store import ContentStore
        from .web.admin import admin
        from .web.views import bp

        prefix = (self._url_prefix if url_prefix is None else url_prefix).rstrip("/")
        settings = load_settings(app.config)
        service = self._service or TerminologyService.from_paths(content_paths(settings))
        directory = load_dir(settings)
        store = ContentStore(directory, Limits.from_settings(settings)) if directory else None
        app.extensions["fhir_plugin"] = PluginState(LiveService(service, store), settings, __version__)
        app.register_blueprint(admin, url_prefix=f"{prefix}/admin")
        default = FhirVersion(settings["FHIR_PLUGIN_DEFAULT_VERSION"])
        for path, version in (("r4", FhirVersion.R4), ("r5", FhirVersion.R5), ("fhir", default)):
            app.register_blueprint(bp, url_prefix=f"{prefix}/{path}", name=f"fhir_plugin_{path}",
                                   url_defaults={"fhir_version": version.value})
