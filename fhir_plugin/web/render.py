"""Internal (R5) FHIR dicts -> the response body and headers for the endpoint's version."""

from __future__ import annotations

from flask import Request, Response

from ..fhirversions import FhirVersion, resource_for
from ..terminology.models import ResourceEntry
from .formats import dumps, response_mimetype


def respond(request: Request, version: FhirVersion, resource: dict, status: int = 200) -> Response:
    mimetype = response_mimetype(request.args.get("_format"), request.headers.get("Accept"))
    pretty = request.args.get("_pretty") == "true"
    body = dumps(resource_for(version, resource), pretty)
    return Response(body, status=status, mimetype=mimetype)


def outcome_response(request: Request, outcome: dict, status: int) -> Response:
    """Errors are always JSON: when negotiation itself failed there is nothing better to send."""
    try:
        mimetype = response_mimetype(request.args.get("_format"), request.headers.get("Accept"))
    except Exception:  # noqa: BLE001 - an unacceptable Accept must not hide the original error
        mimetype = "application/fhir+json"
    try:
        pretty = request.args.get("_pretty") == "true"
    except UnicodeDecodeError:  # raw bytes in the query string that are not UTF-8: the error says so
        pretty = False
    return Response(dumps(outcome, pretty), status=status, mimetype=mimetype)


# A search lists what is there; the concepts of a large code system (the complete ICD-10-CM is
# 98,466 concepts, 20 MB of JSON) are read with GET CodeSystem/{id}. Above this many concepts a
# search entry is the resource without them, tagged SUBSETTED as FHIR requires of a summary.
SEARCH_CONCEPT_LIMIT = 1000
_SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED",
              "display": "subsetted"}


def _concept_count(concepts: list[dict]) -> int:
    return sum(1 + _concept_count(c.get("concept", [])) for c in concepts)


def _search_view(resource: dict) -> dict:
    if resource.get("resourceType") != "CodeSystem" or not resource.get("concept"):
        return resource
    if (resource.get("count") or _concept_count(resource["concept"])) <= SEARCH_CONCEPT_LIMIT:
        return resource
    meta = dict(resource.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), _SUBSETTED]
    return {**{k: v for k, v in resource.items() if k != "concept"}, "meta": meta}


def searchset(base: str, resource_type: str, entries: list[ResourceEntry], self_link: str) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(entries),
        "link": [{"relation": "self", "url": self_link}],
        "entry": [
            {"fullUrl": f"{base}/{resource_type}/{e.id}", "resource": _search_view(e.resource),
             "search": {"mode": "match"}}
            for e in entries
        ],
    }


def versions_parameters(version: FhirVersion) -> dict:
    return {"resourceType": "Parameters", "parameter": [
        {"name": "version", "valueCode": version.short},
        {"name": "default", "valueCode": version.short},
    ]}
