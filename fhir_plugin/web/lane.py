"""The standalone app's lane for operations: a GET or POST to an operation's exact path (`/r4/
CodeSystem/$lookup`, `/r5/ValueSet/{id}/$expand`, ...) answered by the view of its rule without
Flask's request machinery.

Why: around a view that does nothing, Flask's request context (binding the URL map to the
environ, matching, pushing and popping the contexts, the session, the signals, the teardown)
costs about 35 µs a request, measured; a werkzeug Request and Response about 15. That is a fifth
of an uncached `$lookup`. The lane builds the request Flask would have built, with the rule Flask
would have matched and its view arguments, pushes only an app context (2 µs: the views read the
plugin's settings through `current_app`), and calls `views.answer`, the same function Flask's view
calls; an exception becomes the OperationOutcome the same error handlers make, and the request is
observed as Flask's `process_response` would observe it (web/observe.py).

Only what is certain to reach the same rule comes this way: GET or POST, a path of plain ASCII
equal to a rule's (an id segment neither empty nor starting with `$`, no trailing slash), and only
the rules `route(..., lane=True)` marks, whose views read nothing but the request they are given.
Everything else, and everything in a host app that mounts the plugin, goes through Flask. What the
lane does not run, because nothing of the plugin registers them for its FHIR bases: before- and
after-request hooks, Flask's request signals, sessions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from flask import Flask, got_request_exception, request_finished, request_started, request_tearing_down
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Rule

from ..fhirversions import FhirVersion
from ..terminology.errors import TerminologyError
from . import views
from .errors import http_error, terminology_error, unexpected_error
from .front import StartResponse
from .observe import observed, start


@dataclass(frozen=True)
class Lane:
    rule: Rule
    endpoint: views.Endpoint


class Lanes:
    """The lane rules of `app`'s plugin blueprints, by path."""

    def __init__(self, app: Flask):
        self.app = app
        self.exact: dict[str, Lane] = {}
        self.instance: dict[tuple[str, str], Lane] = {}  # ("/r4/CodeSystem", "$lookup") for /r4/CodeSystem/{id}/$lookup
        self.max_content_length = app.config.get("MAX_CONTENT_LENGTH")
        for rule in app.url_map.iter_rules():
            view = app.view_functions.get(rule.endpoint)
            endpoint = view.args[0] if isinstance(view, partial) and view.func is views.handle else None
            if not isinstance(endpoint, views.Endpoint) or not endpoint.lane:
                continue
            if "<" not in rule.rule:
                self.exact[rule.rule] = Lane(rule, endpoint)
            elif rule.rule.count("<") == 1 and "/<resource_id>/" in rule.rule:
                head, _, operation = rule.rule.partition("/<resource_id>/")
                self.instance[(head, operation)] = Lane(rule, endpoint)

    def find(self, path: str) -> tuple[Lane, dict[str, str]] | None:
        """The lane of `path` (a PATH_INFO) and its view arguments, or None: Flask's to route."""
        found = self.exact.get(path)
        kwargs = {}
        if found is None:
            head, _, rest = path.rpartition("/")
            if not rest.startswith("$"):
                return None
            base, _, resource_id = head.rpartition("/")
            found = self.instance.get((base, rest))
            if found is None or not resource_id or resource_id.startswith("$") or not path.isascii():
                return None
            kwargs = {"resource_id": resource_id}
        return None if self._hooked(found.rule.endpoint.partition(".")[0]) else (found, kwargs)

    def _hooked(self, blueprint: str) -> bool:
        """Whether something was registered that the lane would not run: a request hook of the app
        or of the rule's blueprint (a test's, or one an embedder added to the standalone app), or
        a receiver of Flask's request signals. Then Flask answers, and runs it."""
        app = self.app
        for registered in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs,
                           app.url_value_preprocessors):
            if registered.get(None) or registered.get(blueprint):
                return True
        return bool(request_started.receivers or request_finished.receivers or got_request_exception.receivers
                    or request_tearing_down.receivers)

    def answer(self, environ: dict[str, Any], start_response: StartResponse, version: FhirVersion, lane: Lane,
               kwargs: dict[str, str], started: float) -> Iterable[bytes]:
        """Answer the request of `environ` through `lane`, as Flask would have."""
        start(environ, started)
        app = self.app
        with app.app_context():
            req = app.request_class(environ)
            req.max_content_length = self.max_content_length  # what Flask's request reads from the config
            req.url_rule, req.view_args = lane.rule, {"fhir_version": version.value, **kwargs}
            try:
                response = views.answer(req, lane.endpoint, version, kwargs)
            except TerminologyError as error:
                response = terminology_error(error, req)
            except HTTPException as error:
                response = http_error(error, req)
            except Exception as error:  # noqa: BLE001 - as Flask's handler of Exception: a 500, logged
                response = unexpected_error(error, req)
            response = observed(response, req, app)
        return response(environ, start_response)
