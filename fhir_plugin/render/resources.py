"""Resources as the REST interface answers with them: searchset Bundles and the $versions answer."""

from __future__ import annotations

from typing import Any

from ..fhirversions import FhirVersion
from ..terminology.models import ResourceEntry

# A search lists what is there; the concepts of a large code system (the complete ICD-10-CM is
# 98,466 concepts, 20 MB of JSON) are read with GET CodeSystem/{id}. Above this many concepts a
# search entry is the resource without them, tagged SUBSETTED as FHIR requires of a summary.
SEARCH_CONCEPT_LIMIT = 1000
_SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED",
              "display": "subsetted"}


def _concept_count(concepts: list[dict[str, Any]]) -> int:
    return sum(1 + _concept_count(c.get("concept", [])) for c in concepts)


def _search_view(resource: dict[str, Any]) -> dict[str, Any]:
    if resource.get("resourceType") != "CodeSystem" or not resource.get("concept"):
        return resource
    if (resource.get("count") or _concept_count(resource["concept"])) <= SEARCH_CONCEPT_LIMIT:
        return resource
    meta = dict(resource.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), _SUBSETTED]
    return {**{k: v for k, v in resource.items() if k != "concept"}, "meta": meta}


def searchset(base: str, resource_type: str, entries: list[ResourceEntry], self_link: str) -> dict[str, Any]:
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


def versions_parameters(version: FhirVersion) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": [
        {"name": "version", "valueCode": version.short},
        {"name": "default", "valueCode": version.short},
    ]}
