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
    return Response(dumps(outcome, request.args.get("_pretty") == "true"), status=status, mimetype=mimetype)


def searchset(base: str, resource_type: str, entries: list[ResourceEntry], self_link: str) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(entries),
        "link": [{"relation": "self", "url": self_link}],
        "entry": [
            {"fullUrl": f"{base}/{resource_type}/{e.id}", "resource": e.resource, "search": {"mode": "match"}}
            for e in entries
        ],
    }


def versions_parameters(version: FhirVersion) -> dict:
    return {"resourceType": "Parameters", "parameter": [
        {"name": "version", "valueCode": version.short},
        {"name": "default", "valueCode": version.short},
    ]}
