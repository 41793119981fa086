"""The UI's pages. A page reads its few query parameters, asks ui.data, and renders a template;
every page names the FHIR request that gives the same answer (`fhir_request`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, make_response, render_template, request, url_for
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

from ..fhirversions import FhirVersion
from ..render.errors import InvalidBody
from ..terminology.errors import TerminologyError
from ..terminology.models import ExpandRequest
from ..terminology.service import TerminologyService
from . import data
from .kept import kept
from .safety import secure_headers

ui = Blueprint("fhir_plugin_ui", __name__, template_folder="templates", static_folder="static")
ui.after_request(secure_headers)
_HTML = "text/html"
_OFFERED = ("application/fhir+json", "application/json", _HTML)  # on a tie, FHIR JSON
_MAX_QUERY = 200  # longer search text finds nothing a person typed


def wants_html(environ: dict[str, Any]) -> bool:
    """The one check the FHIR views make: a browser asks for text/html; every other client gets FHIR,
    and so does a browser that names a format (`_format=json`)."""
    accept = environ.get("HTTP_ACCEPT", "")
    if _HTML not in accept or "_format" in environ.get("QUERY_STRING", ""):
        return False  # the cheap test every FHIR client passes through
    weighed = parse_accept_header(accept, MIMEAccept)  # HTML named: is it preferred to JSON?
    return weighed.best_match(_OFFERED) == _HTML


def service() -> TerminologyService:
    """What the R4 endpoint serves (its core content, its copy of an id both releases give): every
    page names the R4 request that gives the same answer (`fhir_url`)."""
    found: TerminologyService = current_app.extensions["fhir_plugin"].service_for(FhirVersion.R4)
    return found


def fhir_url(endpoint: str, **values: Any) -> str:
    """The R4 endpoint's URL of a FHIR view, absolute, for a person to copy."""
    return url_for(f"fhir_plugin_r4.{endpoint}", _external=True, **values)


def page(template: str, status: int = 200, **context: Any) -> Response:
    return make_response(render_template(f"ui/{template}", **context), status)


def _page_number() -> int:
    try:
        return max(0, min(int(request.args.get("page", "0")), 100_000))
    except ValueError:
        return 0


@ui.before_request
def utf8_query() -> None:
    """Raw bytes in the query string that are not UTF-8 are a 400 page: request.args would fail on
    them (a 500). Percent-escaped ones are not (werkzeug leaves them escaped)."""
    raw = request.query_string
    if not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidBody("BODY_BAD_PARAMETERS", reason="the query string is not valid UTF-8") from None


@ui.errorhandler(TerminologyError)
def error_page(error: TerminologyError) -> Response:
    return page("error.html", error.status, error=error, fhir_request=None)


@ui.get("/")
def home() -> Response:
    svc = service()
    return page("home.html", code_systems=data.code_systems(svc), value_sets=data.resources(svc, "ValueSet"),
                concept_maps=data.resources(svc, "ConceptMap"),
                endpoints=[(v, url_for(f"fhir_plugin_{v}.metadata", _external=True).removesuffix("/metadata"))
                           for v in ("r4", "r5", "fhir")],
                fhir_request=fhir_url("metadata"))


@ui.get("/CodeSystem/<resource_id>")
def code_system(resource_id: str) -> Response:
    svc = service()
    cs = svc.code_system_by_id(resource_id)
    text = request.args.get("q", "").strip()[:_MAX_QUERY]
    number = _page_number()
    found = data.search(svc, cs, text, number) if text else None
    if found is not None:
        fhir_request = fhir_url("expand", url=f"{cs.url}?fhir_vs", filter=text, offset=number * data.PAGE_SIZE,
                                count=data.PAGE_SIZE)
    else:
        fhir_request = fhir_url("read", resource_type="CodeSystem", resource_id=resource_id)
    return page("codesystem.html", cs=cs, resource=cs.resource, text=text, found=found, page_number=number,
                page_size=data.PAGE_SIZE, roots=data.roots(cs) if found is None else [], fhir_request=fhir_request,
                concept_count=len(cs.concepts))


@ui.get("/CodeSystem/<resource_id>/suggest")
@kept
def suggest(resource_id: str) -> Response:
    """Type-ahead: the first matches of the text as JSON ([{code, display, href}])."""
    svc = service()
    cs = svc.code_system_by_id(resource_id)
    text = request.args.get("q", "").strip()[:_MAX_QUERY]
    found = data.suggestions(svc, cs, text) if text else []
    return current_app.response_class(
        current_app.json.dumps([{"code": code, "display": display,
                                 "href": url_for(".concept", resource_id=resource_id, code=code)}
                                for code, display in found]),
        mimetype="application/json")


@ui.get("/CodeSystem/<resource_id>/concept/<path:code>")
@kept
def concept(resource_id: str, code: str) -> Response:
    svc = service()
    cs = svc.code_system_by_id(resource_id)
    view = data.concept(svc, cs, code, current_app.extensions["fhir_plugin"].runtime.value_set_systems(svc))
    return page("concept.html", view=view, fhir_request=fhir_url("lookup", system=cs.url, code=view.code))


@ui.get("/ValueSet/<resource_id>")
def value_set(resource_id: str) -> Response:
    svc = service()
    entry = svc.read("ValueSet", resource_id)
    number = _page_number()
    expansion = svc.expand(ExpandRequest(url=entry.url, value_set_version=entry.version,
                                              offset=number * data.PAGE_SIZE, count=data.PAGE_SIZE))
    return page("valueset.html", entry=entry, resource=entry.resource, expansion=expansion, page_number=number,
                page_size=data.PAGE_SIZE, links={s.url: s.id for s in data.code_systems(svc)},
                fhir_request=fhir_url("expand", url=entry.url, offset=number * data.PAGE_SIZE, count=data.PAGE_SIZE))


@ui.get("/ConceptMap/<resource_id>")
def concept_map(resource_id: str) -> Response:
    svc = service()
    entry = svc.read("ConceptMap", resource_id)
    return page("conceptmap.html", entry=entry, resource=entry.resource, rows=data.map_rows(svc, entry.resource),
                fhir_request=fhir_url("read", resource_type="ConceptMap", resource_id=resource_id))


_PAGES = {"CodeSystem": code_system, "ValueSet": value_set, "ConceptMap": concept_map}


def resource_page(resource_type: str, resource_id: str | None) -> Response:
    """The page of a FHIR resource URL asked for as text/html (the home page for a type's search)."""
    try:
        return secure_headers(_PAGES[resource_type](resource_id) if resource_id else home())
    except TerminologyError as error:
        return secure_headers(error_page(error))
