"""The FHIR endpoints. A view reads the request's parameters, calls the service and answers with
the typed result; parsing, terminology and rendering all live elsewhere.

One blueprint serves every FHIR version; extension.py registers it once per endpoint (/r4, /r5,
/fhir) with the version as a URL default. An operation's view is registered once for the type and
the instance level (`/CodeSystem/$lookup` and `/CodeSystem/{id}/$lookup`). Every rule accepts
every method, so that a wrong method is answered here, with an OperationOutcome and `Allow`,
instead of by the host application; no rule redirects (web/routing.py).

Every request goes through `answer`: check the path and method, then, for the operations whose
answer depends only on the request and the content, the answer cache (runtime/answers.py), then
the view. Flask calls it through `handle`, the view function of every rule; in the standalone app
the lane (web/lane.py) calls it for the operations without Flask's request context, so views take
the request as an argument instead of reading `flask.request`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import partial
from typing import Any

from flask import Blueprint, Request, Response, current_app, request, url_for

from ..fhirversions import FhirVersion
from ..render.capabilities import capability_statement, terminology_capabilities
from ..render.errors import MethodNotAllowed, NoSuchEndpoint
from ..render.resources import ResourceView, searchset, versions_parameters
from ..runtime.answers import Answer
from ..runtime.live import Runtime
from ..terminology.budget import time_budget
from ..terminology.errors import TerminologyError
from ..terminology.service import TerminologyService
from ..ui import resource_page, wants_html
from . import batch, params, params_expand, params_search, params_validate, routing
from .errors import register_error_handlers, terminology_error
from .front import BODY, KEY, SERVICE, answer_key
from .observe import CACHE, operation_of
from .responses import respond

bp = Blueprint("fhir_plugin", __name__)
register_error_handlers(bp)
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
# (rule, allowed methods; None: any) of every route, for the CapabilityStatement test
ROUTES: list[tuple[str, tuple[str, ...] | None]] = []
RESOURCE_TYPES = "any(CodeSystem, ValueSet, ConceptMap)"
View = Callable[..., Response]


@dataclass(frozen=True)
class PluginState:
    """What the plugin keeps in app.extensions["fhir_plugin"]."""

    runtime: Runtime
    settings: dict[str, Any]
    software_version: str

    @property
    def service(self) -> TerminologyService:
        """The start-up content, with what was loaded since on top."""
        return self.runtime.current()

    def service_for(self, version: FhirVersion) -> TerminologyService:
        """The service for a request to the endpoint of `version`: `service`, preferring that FHIR
        release's core content where the content holds several (Runtime.current)."""
        return self.runtime.current(version)


def _state() -> PluginState:
    state: PluginState = current_app.extensions["fhir_plugin"]
    return state


# --- what one request uses ---------------------------------------------------------------------
# Per-request values live in the WSGI environ, which is the request's own (flask.g belongs to the
# app context, which a host app or a test may keep open across requests).
# SERVICE and BODY (web/front.py): the front door may have put them there already.


def _service(req: Request, version: FhirVersion) -> TerminologyService:
    """The service for this request, taken once: content reloaded meanwhile must not give one
    request (or its cached answer) two services."""
    environ = req.environ
    if SERVICE not in environ:
        environ[SERVICE] = _state().service_for(version)
    service: TerminologyService = environ[SERVICE]
    return service


def _operation(req: Request, version: FhirVersion) -> tuple[list[params.Param], TerminologyService]:
    """The request's parameters, and the service with its tx-resource parameters on top."""
    state = _state()
    settings = state.settings
    given = params.read_params(req, settings["FHIR_PLUGIN_MAX_REQUEST_BYTES"], req.environ.get(BODY),
                               settings["FHIR_PLUGIN_MAX_JSON_DEPTH"], version)
    tx_resources = params.tx_resources(given, settings["FHIR_PLUGIN_MAX_TX_RESOURCES"])
    return given, state.runtime.for_request(_service(req, version), tx_resources, version)


def _inline(version: FhirVersion) -> params.Inline:
    runtime = _state().runtime
    return lambda resource, origin: runtime.inline(resource, origin, version)


def _base_url() -> str:
    configured = _state().settings["FHIR_PLUGIN_BASE_URL"]
    local = url_for(f"{request.blueprint}.metadata", _external=True).removesuffix("/metadata")
    if configured:
        return str(configured).rstrip("/") + local.split(request.host, 1)[1]
    return str(local)


# --- the request flow --------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    view: View
    methods: tuple[str, ...] | None  # None: the view answers any method
    cached: bool  # the answer depends only on the request and the content
    allow: tuple[str, ...] = ()  # the Allow header: methods, HEAD with GET, OPTIONS
    accepted: frozenset[str] = frozenset()  # methods that reach the view: methods, HEAD with GET
    lane: bool = False  # the view needs nothing of Flask's request context: web/lane.py may call it


def handle(endpoint: Endpoint, fhir_version: str, **kwargs: str) -> Response:
    """The Flask view of every rule."""
    # Taken from the proxy once: each proxy access costs a context look-up.
    req: Request = request._get_current_object()  # type: ignore[attr-defined]  # flask types the proxy as a Request
    return answer(req, endpoint, FhirVersion(fhir_version), kwargs)


def answer(req: Request, endpoint: Endpoint, version: FhirVersion, kwargs: dict[str, str]) -> Response:
    """The answer to `req` (routed to `endpoint` with `kwargs`), from Flask (`handle`) or from the
    standalone app's lane (web/lane.py), which pushes an app context but no request context."""
    operation = next((v for v in kwargs.values() if v.startswith("$")), None)
    if operation is not None:  # e.g. /ValueSet/$compare matched the read route: no such operation
        raise routing.no_such_operation(operation, kwargs.get("resource_type", ""))
    if req.method not in endpoint.accepted and endpoint.methods is not None:
        if req.method == "OPTIONS":
            return routing.options_response(endpoint.allow)
        raise MethodNotAllowed("METHOD_NOT_ALLOWED", method=req.method, path=req.path, allow=endpoint.allow)
    params.check_query_string(req)  # first: request.args fails on raw bytes that are not UTF-8
    state = _state()
    answers = state.runtime.answers
    budget = state.settings["FHIR_PLUGIN_TIME_BUDGET_MS"]
    if not endpoint.cached or not answers.size:
        with time_budget(budget):  # the engine looks at the clock
            return endpoint.view(req, version, **kwargs)
    looked = KEY in req.environ  # by the front door, which found nothing
    key = _answer_key(req, state, version)
    kept = None if looked else answers.get(key)
    if looked:
        answers.missed()
    if kept is not None:  # nothing to spend a budget on
        req.environ[CACHE] = "hit"
        return _response(kept)
    req.environ[CACHE] = "miss"
    with time_budget(budget):
        try:
            response = endpoint.view(req, version, **kwargs)
        except TerminologyError as error:
            if not error.deterministic:  # over the time budget: another time it may be answered
                raise
            response = terminology_error(error, req)  # a 4xx is as deterministic as a 200: kept the same way
    # A page of the UI (a read asked for as text/html) links to this host by name: kept, it would
    # give one client's Host to the next; it is not a FHIR answer, and it is not kept.
    if not (response.is_streamed or response.direct_passthrough or response.mimetype == "text/html"):
        headers = tuple((k, v) for k, v in response.headers.items() if k not in ("Content-Type", "Content-Length"))
        answers.put(key, Answer(response.get_data(), response.status_code, response.content_type or "", headers,
                                operation_of(req.endpoint)))
    return response


def _answer_key(req: Request, state: PluginState, version: FhirVersion) -> Hashable:
    """The request's key in the answer cache (front.answer_key): the one the front door computed,
    if it did. The body is read here, once, inflated if it came compressed, and parsed by the view
    on a miss."""
    environ = req.environ
    body = environ[BODY] = params.read_body(req, state.settings["FHIR_PLUGIN_MAX_REQUEST_BYTES"])
    if KEY in environ:
        known: Hashable = environ[KEY]
        return known
    service = environ.get(SERVICE) or environ.setdefault(SERVICE, state.service_for(version))  # as _service() takes it
    return answer_key(environ, service.registry.token, version, body)


def _response(answer: Answer) -> Response:
    """A new Response each time: the host app's after_request hooks may change it."""
    response = Response(answer.body, status=answer.status, content_type=answer.content_type)
    if answer.headers:
        response.headers.extend(answer.headers)
    return response


def route(rule: str, methods: tuple[str, ...] | None = ("GET",), *, instance_of: str | None = None,
          cached: bool = False, lane: bool = False) -> Callable[[View], View]:
    """Register a view for `rule` under every method (`methods`: those it takes; None: the view
    answers any); with `instance_of` (a resource type) also for the instance level,
    `/{type}/<resource_id>/...`, where the view gets `resource_id`."""
    def register(view: View) -> View:
        allowed = routing.allow(methods or ())
        endpoint = Endpoint(view, methods, cached, allowed, frozenset(allowed) - {"OPTIONS"}, lane)
        rules = [rule]
        if instance_of is not None:
            rules.append(rule.replace(f"/{instance_of}/", f"/{instance_of}/<resource_id>/", 1))
        for each in rules:
            # OPTIONS named, so that Flask leaves it to handle; routing.install opens the rule to
            # every other method too
            bp.add_url_rule(each, f"{view.__name__}{'_instance' if each != rule else ''}", partial(handle, endpoint),
                            methods=[*ALL_METHODS, "OPTIONS"], strict_slashes=False, merge_slashes=False)
            ROUTES.append((each, methods))
        return view

    return register


# --- the views ---------------------------------------------------------------------------------

OPERATION = ("GET", "POST")


@route("/metadata")
def metadata(req: Request, version: FhirVersion) -> Response:
    state = _state()
    if req.args.get("mode") == "terminology":
        registry = state.service_for(version).registry
        return respond(req, version, terminology_capabilities(version, registry, state.software_version))
    return respond(req, version, capability_statement(version, _base_url(), state.software_version))


@route("/$versions", OPERATION, lane=True)
def versions(req: Request, version: FhirVersion) -> Response:
    return respond(req, version, versions_parameters(version))


@route("/CodeSystem/$lookup", OPERATION, instance_of="CodeSystem", cached=True, lane=True)
def lookup(req: Request, version: FhirVersion, resource_id: str | None = None) -> Response:
    given, service = _operation(req, version)
    instance = service.code_system_by_id(resource_id) if resource_id else None
    return respond(req, version, service.lookup(params.lookup_request(given, instance)))


@route("/CodeSystem/$subsumes", OPERATION, instance_of="CodeSystem", cached=True, lane=True)
def subsumes(req: Request, version: FhirVersion, resource_id: str | None = None) -> Response:
    given, service = _operation(req, version)
    instance = service.code_system_by_id(resource_id) if resource_id else None
    return respond(req, version, service.subsumes(params.subsumes_request(given, instance)))


@route("/ConceptMap/$translate", OPERATION, instance_of="ConceptMap", cached=True, lane=True)
def translate(req: Request, version: FhirVersion, resource_id: str | None = None) -> Response:
    given, service = _operation(req, version)
    instance = service.concept_map_by_id(resource_id) if resource_id else None
    # An inline ConceptMap is tried as R5 first on every endpoint: an R4 one is told by its shape
    # (fhirversions.looks_like_r4), as only ConceptMap differs between the two.
    return respond(req, version, service.translate(params.translate_request(given, instance, _inline(FhirVersion.R5))))


@route("/CodeSystem/$validate-code", OPERATION, instance_of="CodeSystem", cached=True, lane=True)
def validate_code_cs(req: Request, version: FhirVersion, resource_id: str | None = None) -> Response:
    given, service = _operation(req, version)
    instance = service.code_system_by_id(resource_id) if resource_id else None
    typed = params_validate.codesystem_validate_request(given, instance, req.headers.get("Accept-Language"))
    return respond(req, version, service.validate_code(typed))


@route("/ValueSet/$validate-code", OPERATION, instance_of="ValueSet", cached=True, lane=True)
def validate_code_vs(req: Request, version: FhirVersion, resource_id: str | None = None) -> Response:
    given, service = _operation(req, version)
    instance = service.value_set_by_id(resource_id) if resource_id else None
    typed = params_validate.valueset_validate_request(given, instance, req.headers.get("Accept-Language"),
                                                      _inline(version))
    return respond(req, version, service.validate_code(typed))


@route("/ValueSet/$batch-validate-code", OPERATION, instance_of="ValueSet", lane=True)
def batch_validate_code(req: Request, version: FhirVersion, resource_id: str | None = None) -> Response:
    given, service = _operation(req, version)
    instance = service.value_set_by_id(resource_id) if resource_id else None
    typed = params_validate.batch_validate_requests(given, req.headers.get("Accept-Language"), _inline(version),
                                                    instance)
    return respond(req, version, service.batch_validate(typed))


@route("/ValueSet/$expand", OPERATION, instance_of="ValueSet", lane=True)
def expand(req: Request, version: FhirVersion, resource_id: str | None = None) -> Response:
    given, service = _operation(req, version)
    instance = service.value_set_by_id(resource_id) if resource_id else None
    settings = _state().settings
    limit = params_expand.too_costly_threshold(settings["FHIR_PLUGIN_MAX_EXPANSION"],
                                               req.headers.get("X-TOO-COSTLY-THRESHOLD"))
    filter_limits = settings["FHIR_PLUGIN_MAX_FILTER_WORDS"], settings["FHIR_PLUGIN_MAX_FILTER_WORD_LENGTH"]
    typed = params_expand.expand_request(given, instance, req.headers.get("Accept-Language"), limit,
                                         _inline(version), filter_limits,
                                         params_expand.max_nesting(settings["FHIR_PLUGIN_MAX_JSON_DEPTH"]))
    return respond(req, version, service.expand(typed))


@route(f"/<{RESOURCE_TYPES}:resource_type>")
def search(req: Request, version: FhirVersion, resource_type: str) -> Response:
    if wants_html(req.environ):  # a browser: the UI's page (ui/), every other client FHIR JSON
        return resource_page(resource_type, None)
    strict = params_search.strict_handling(req.headers.get("Prefer"))
    criteria, page = params_search.search_request(req.args, resource_type, version, strict,
                                                  _state().settings["FHIR_PLUGIN_SEARCH_PAGE_SIZE"])
    entries = _service(req, version).search(resource_type, criteria)
    return respond(req, version, searchset(_base_url(), resource_type, entries, page, version))


@route(f"/<{RESOURCE_TYPES}:resource_type>/<resource_id>", cached=True)
def read(req: Request, version: FhirVersion, resource_type: str, resource_id: str) -> Response:
    if wants_html(req.environ):
        return resource_page(resource_type, resource_id)
    subset = params_search.read_subset(req.args, resource_type, version)
    return respond(req, version, ResourceView(_service(req, version).read(resource_type, resource_id).resource, subset))


@route("/<path:path>", None)
def unknown(req: Request, version: FhirVersion, path: str) -> Response:
    raise routing.no_such_path(req.path)


@route("/", ("GET", "POST"))
def base(req: Request, version: FhirVersion) -> Response:
    """POST: a batch or transaction Bundle (web/batch.py). GET: there is nothing to read at a base
    (as HAPI and tx.fhir.org answer, an OperationOutcome), which says where the CapabilityStatement is."""
    if req.method == "POST":
        return batch.answer(version, _state().settings, _base_url(), {SERVICE: _service(req, version)})
    here = req.path.rstrip("/")
    raise NoSuchEndpoint("BASE_NOT_READABLE", path=here, version=version.value, metadata=f"{here}/metadata")
