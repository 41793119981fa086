"""The standalone server's Flask app: the plugin mounted at the root, and FHIR answers everywhere
(`/` names the FHIR bases; web/routing.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flask import Flask, Response, request

from .content.progress import ProgressCallback
from .extension import FhirTerminology
from .fhirversions import FhirVersion
from .terminology.service import TerminologyService
from .web.errors import register_error_handlers
from .web.front import AnswerFront
from .web.lane import Lanes
from .web.observe import OBSERVED, begin, observed


class StandaloneApp(Flask):
    """The standalone app. Every request is observed (web/observe.py), also those to paths no route
    matches, by the two methods Flask calls for every request rather than by hooks (a hook goes
    through `ensure_sync` and a loop over the blueprints: about 1.5 µs a call, a tenth of what the
    observation costs); kept answers are given by the answer cache's front door (web/front.py)
    before Flask sees the request, and the door sends an operation it has no answer for down the
    lane (web/lane.py), which calls the view without Flask's request context."""

    front: AnswerFront | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.extensions[OBSERVED] = True

    def wsgi_app(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if self.front is not None:
            answered = self.front(environ, start_response)
            if answered is not None:
                return answered
        return super().wsgi_app(environ, start_response)

    def preprocess_request(self) -> Response | None:
        begin()
        return super().preprocess_request()  # type: ignore[return-value]  # flask: ResponseReturnValue

    def process_response(self, response: Response) -> Response:
        response = super().process_response(response)
        return observed(response, request._get_current_object(), self)  # type: ignore[attr-defined]


def create_app(config: Mapping[str, Any] | None = None, service: TerminologyService | None = None,
               *, server: bool = False, progress: ProgressCallback | None = None) -> StandaloneApp:
    """The standalone app. `config` overrides FHIR_PLUGIN_* settings (after the environment);
    `progress` gets the load's progress (else it is logged). `server` is for `fhir-plugin serve`, which caches compiled content in the user's cache
    directory unless FHIR_PLUGIN_CACHE_DIR says where."""
    app = StandaloneApp("fhir_plugin")
    app.config.update(config or {})
    FhirTerminology(app, service=service, server=server, own_root=True, progress=progress)
    state = app.extensions["fhir_plugin"]
    app.config["MAX_CONTENT_LENGTH"] = state.settings["FHIR_PLUGIN_MAX_REQUEST_BYTES"]
    register_error_handlers(app)
    default = FhirVersion(state.settings["FHIR_PLUGIN_DEFAULT_VERSION"])
    app.front = AnswerFront(state, {**{v.value.lower(): v for v in FhirVersion}, "fhir": default}, ui="/ui/",
                            lanes=Lanes(app))
    return app
