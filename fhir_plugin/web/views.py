"""The routes. Each view parses, calls the service, renders: no terminology logic here.

One blueprint serves every FHIR version; extension.py registers it once per endpoint (/r4, /r5,
/fhir) with the version as a URL default. Every rule accepts every method so that a wrong method
is answered here, with an OperationOutcome, instead of by the host application.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from flask import Blueprint, Response, current_app, request, url_for
from werkzeug.exceptions import HTTPException

from .. import codec
from ..conformance import capability_statement, terminology_capabilities
from ..fhirversions import FhirVersion
from ..terminology.errors import MethodNotAllowed, NotFound, TerminologyError, http_outcome, to_outcome
from ..terminology.service import TerminologyService
from . import answers, params, params_expand, params_validate
from .params_expand import too_costly_threshold
from .render import outcome_response, respond, searchset, versions_parameters

log = logging.getLogger(__name__)
bp = Blueprint("fhir_plugin", __name__)
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
# (rule, allowed methods) of every route, for the CapabilityStatement test
ROUTES: list[tuple[str, tuple[str, ...]]] = []
RESOURCE_TYPES = "any(CodeSystem, ValueSet, ConceptMap)"


def _state():
    return current_app.extensions["fhir_plugin"]


# Per-request values live in the WSGI environ, which is the request's own (flask.g belongs to the
# app context, which a host app or a test may keep open across requests).
_SERVICE, _BODY = "fhir_plugin.service", "fhir_plugin.body"


def _service() -> TerminologyService:
    """The service for this request, taken once: content reloaded meanwhile must not give one
    request (or its cached answer) two services."""
    environ = request.environ
    if _SERVICE not in environ:
        environ[_SERVICE] = _state().service
    return environ[_SERVICE]


def _params():
    return params.read_params(request, _state().settings["FHIR_PLUGIN_MAX_REQUEST_BYTES"],
                              request.environ.get(_BODY))


def _service_for(given: list, version: FhirVersion):
    """The service, with the request's tx-resource parameters on top."""
    limit = _state().settings["FHIR_PLUGIN_MAX_TX_RESOURCES"]
    return _service().with_resources(params.tx_resources(given, limit), version)


def _answered(fn: Callable, version: FhirVersion, kwargs: dict) -> Response:
    """fn's answer; for a request answered before, the same bytes again from the answer cache."""
    app = current_app._get_current_object()  # once: every proxy access costs a context look-up
    settings = app.extensions["fhir_plugin"].settings
    cache = answers.cache_for(_service(), app, settings["FHIR_PLUGIN_ANSWER_CACHE"])
    if cache is None:
        return fn(version, **kwargs)
    # The body is part of the key, so it is read here (once) and parsed by the view on a miss.
    req = request._get_current_object()
    body = req.environ[_BODY] = params.read_body(req, settings["FHIR_PLUGIN_MAX_REQUEST_BYTES"])
    key = answers.request_key(req, version, body)
    answer = cache.get(key)
    if answer is not None:
        return answer.response()
    try:
        response = fn(version, **kwargs)
    except TerminologyError as error:
        response = terminology_error(error)  # a 4xx is as deterministic as a 200: kept the same way
    cache.put(key, response)
    return response


def _base_url() -> str:
    configured = _state().settings["FHIR_PLUGIN_BASE_URL"]
    local = url_for(f"{request.blueprint}.metadata", _external=True).removesuffix("/metadata")
    if configured:
        return configured.rstrip("/") + local.split(request.host, 1)[1]
    return local


def route(rule: str, methods: tuple[str, ...] = ("GET",), cached: bool = False) -> Callable:
    """Register `fn` for every method (a wrong one gets an OperationOutcome); `cached` for the
    operations whose answer depends on the request and the content only (see answers.py)."""
    def register(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def view(fhir_version: str, **kwargs: str) -> Response:
            operation = next((v for v in kwargs.values() if v.startswith("$")), None)
            if operation is not None:  # e.g. /ValueSet/$compare matched the read route: no such operation
                raise NotFound("NO_SUCH_OPERATION", operation, kwargs.get("resource_type", ""))
            if request.method not in methods + ("HEAD", "OPTIONS"):
                raise MethodNotAllowed("METHOD_NOT_ALLOWED", request.method, request.path)
            params.check_query_string(request)  # first: request.args fails on raw bytes that are not UTF-8
            if cached:
                return _answered(fn, FhirVersion(fhir_version), kwargs)
            return fn(FhirVersion(fhir_version), **kwargs)

        bp.add_url_rule(rule, fn.__name__, view, methods=ALL_METHODS)
        ROUTES.append((rule, methods))
        return view

    return register


@route("/metadata")
def metadata(version: FhirVersion) -> Response:
    state = _state()
    if request.args.get("mode") == "terminology":
        return respond(request, version, terminology_capabilities(version, state.service.registry, state.software_version))
    return respond(request, version, capability_statement(version, _base_url(), state.software_version))


@route("/$versions", ("GET", "POST"))
def versions(version: FhirVersion) -> Response:
    return respond(request, version, versions_parameters(version))


@route("/CodeSystem/$lookup", ("GET", "POST"), cached=True)
def lookup(version: FhirVersion) -> Response:
    given = _params()
    result = _service_for(given, version).lookup(params.lookup_request(given))
    return respond(request, version, codec.lookup_parameters(result, version))


@route("/CodeSystem/<resource_id>/$lookup", ("GET", "POST"), cached=True)
def lookup_instance(version: FhirVersion, resource_id: str) -> Response:
    given = _params()
    service = _service_for(given, version)
    result = service.lookup(params.lookup_request(given, service.code_system_by_id(resource_id)))
    return respond(request, version, codec.lookup_parameters(result, version))


@route("/CodeSystem/$subsumes", ("GET", "POST"), cached=True)
def subsumes(version: FhirVersion) -> Response:
    given = _params()
    result = _service_for(given, version).subsumes(params.subsumes_request(given))
    return respond(request, version, codec.subsumes_parameters(result))


@route("/CodeSystem/<resource_id>/$subsumes", ("GET", "POST"), cached=True)
def subsumes_instance(version: FhirVersion, resource_id: str) -> Response:
    given = _params()
    service = _service_for(given, version)
    result = service.subsumes(params.subsumes_request(given, service.code_system_by_id(resource_id)))
    return respond(request, version, codec.subsumes_parameters(result))


@route("/ConceptMap/$translate", ("GET", "POST"), cached=True)
def translate(version: FhirVersion) -> Response:
    given = _params()
    translate_request, r4_dialect = params.translate_request(given)
    result = _service_for(given, version).translate(translate_request)
    return respond(request, version, codec.translate_parameters(result, version, r4_dialect))


@route("/ConceptMap/<resource_id>/$translate", ("GET", "POST"), cached=True)
def translate_instance(version: FhirVersion, resource_id: str) -> Response:
    given = _params()
    service = _service_for(given, version)
    translate_request, r4_dialect = params.translate_request(given, service.concept_map_by_id(resource_id))
    result = service.translate(translate_request)
    return respond(request, version, codec.translate_parameters(result, version, r4_dialect))


@route("/CodeSystem/$validate-code", ("GET", "POST"), cached=True)
def validate_code_cs(version: FhirVersion) -> Response:
    given = _params()
    service = _service_for(given, version)
    result = service.validate_code(params_validate.codesystem_validate_request(
        given, accept_language=request.headers.get("Accept-Language")))
    return respond(request, version, codec.validate_parameters(result, version))


@route("/CodeSystem/<resource_id>/$validate-code", ("GET", "POST"), cached=True)
def validate_code_cs_instance(version: FhirVersion, resource_id: str) -> Response:
    given = _params()
    service = _service_for(given, version)
    result = service.validate_code(params_validate.codesystem_validate_request(
        given, service.code_system_by_id(resource_id), request.headers.get("Accept-Language")))
    return respond(request, version, codec.validate_parameters(result, version))


@route("/ValueSet/$validate-code", ("GET", "POST"), cached=True)
def validate_code_vs(version: FhirVersion) -> Response:
    given = _params()
    service = _service_for(given, version)
    result = service.validate_code(params_validate.valueset_validate_request(
        given, accept_language=request.headers.get("Accept-Language"), version=version))
    return respond(request, version, codec.validate_parameters(result, version))


@route("/ValueSet/<resource_id>/$validate-code", ("GET", "POST"), cached=True)
def validate_code_vs_instance(version: FhirVersion, resource_id: str) -> Response:
    given = _params()
    service = _service_for(given, version)
    result = service.validate_code(params_validate.valueset_validate_request(
        given, service.value_set_by_id(resource_id), request.headers.get("Accept-Language"), version))
    return respond(request, version, codec.validate_parameters(result, version))


@route("/ValueSet/$batch-validate-code", ("GET", "POST"))
def batch_validate_code(version: FhirVersion) -> Response:
    given = _params()
    service = _service_for(given, version)
    results = service.batch_validate(params_validate.batch_validate_requests(
        given, request.headers.get("Accept-Language"), version))
    return respond(request, version, codec.batch_validate_parameters(results, version))


@route("/ValueSet/<resource_id>/$batch-validate-code", ("GET", "POST"))
def batch_validate_code_instance(version: FhirVersion, resource_id: str) -> Response:
    given = _params()
    service = _service_for(given, version)
    results = service.batch_validate(params_validate.batch_validate_requests(
        given, request.headers.get("Accept-Language"), version, service.value_set_by_id(resource_id)))
    return respond(request, version, codec.batch_validate_parameters(results, version))


def _expand(version: FhirVersion, resource_id: str | None) -> Response:
    given = _params()
    service = _service_for(given, version)
    limit = too_costly_threshold(_state().settings["FHIR_PLUGIN_MAX_EXPANSION"],
                                 request.headers.get("X-TOO-COSTLY-THRESHOLD"))
    instance = service.value_set_by_id(resource_id) if resource_id else None
    expand_request = params_expand.expand_request(given, instance, request.headers.get("Accept-Language"), limit, version)
    return respond(request, version, service.expand(expand_request))


@route("/ValueSet/$expand", ("GET", "POST"))
def expand(version: FhirVersion) -> Response:
    return _expand(version, None)


@route("/ValueSet/<resource_id>/$expand", ("GET", "POST"))
def expand_instance(version: FhirVersion, resource_id: str) -> Response:
    return _expand(version, resource_id)


@route(f"/<{RESOURCE_TYPES}:resource_type>")
def search(version: FhirVersion, resource_type: str) -> Response:
    strict = "handling=strict" in request.headers.get("Prefer", "").replace(" ", "")
    entries = _service().search(resource_type, params.search_criteria(request.args, strict, resource_type))
    return respond(request, version, searchset(_base_url(), resource_type, entries, request.url))


@route(f"/<{RESOURCE_TYPES}:resource_type>/<resource_id>")
def read(version: FhirVersion, resource_type: str, resource_id: str) -> Response:
    return respond(request, version, _service().read(resource_type, resource_id).resource)


@route("/<path:path>", tuple(ALL_METHODS))
def unknown(version: FhirVersion, path: str) -> Response:
    raise NotFound("NO_SUCH_PATH", request.path)


@route("/", tuple(ALL_METHODS))
def base(version: FhirVersion) -> Response:
    raise NotFound("NO_SUCH_PATH", request.path)


@bp.errorhandler(TerminologyError)
def terminology_error(error: TerminologyError) -> Response:
    return outcome_response(request, to_outcome(error), error.status)


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException) -> Response:
    status = error.code or 400
    return outcome_response(request, http_outcome(status, error.description or error.name), status)


@bp.errorhandler(Exception)
def unexpected_error(error: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.path)
    return outcome_response(request, http_outcome(500, "Internal server error; the details are in the server log"), 500)
