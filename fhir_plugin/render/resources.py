"""Resources as the REST interface answers with them: a read (whole, or cut by _summary or
_elements), searchset Bundles with their paging links, and the $versions answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from ..fhirversions import FhirVersion
from ..terminology.entries import ResourceEntry
from .subset import Subset, subset_resource, tagged

# A search lists what is there; the concepts of a large code system (the complete ICD-10-CM is
# 98,466 concepts, 20 MB of JSON) are read with GET CodeSystem/{id}. Above this many concepts a
# search entry is the resource without them, tagged SUBSETTED as FHIR requires of a summary,
# whatever _summary or _elements ask: a page of such entries could otherwise be gigabytes.
SEARCH_CONCEPT_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class ResourceView:
    """A resource to answer a read with: `resource` (internal, R5) cut to `subset` if one is given."""

    resource: dict[str, Any]
    subset: Subset | None = None


def resource_view(view: ResourceView, version: FhirVersion) -> dict[str, Any]:
    """The R5 document of a read, still to be converted for `version` (render.document does)."""
    return view.resource if view.subset is None else subset_resource(view.resource, version, view.subset)


@dataclass(frozen=True, slots=True)
class Page:
    """What a search answers with, as its request asked: `query`, the parameters that were applied
    (normalised: criteria, then _summary/_elements, then _format/_pretty), for the links; `count`
    matches from `offset` on (`count_only`: the total alone, and `query` says why); each cut to
    `subset`."""

    query: tuple[tuple[str, str], ...]
    count: int
    offset: int = 0
    count_only: bool = False
    count_given: bool = False  # whether the request named _count (the self link says so again)
    subset: Subset | None = None


def _concept_count(concepts: list[dict[str, Any]]) -> int:
    return sum(1 + _concept_count(c.get("concept", [])) for c in concepts)


def _search_view(resource: dict[str, Any]) -> dict[str, Any]:
    if resource.get("resourceType") != "CodeSystem" or not resource.get("concept"):
        return resource
    if (resource.get("count") or _concept_count(resource["concept"])) <= SEARCH_CONCEPT_LIMIT:
        return resource
    return tagged({k: v for k, v in resource.items() if k != "concept"})


def _link(base: str, resource_type: str, pairs: list[tuple[str, str]], relation: str) -> dict[str, str]:
    # ':' and '/' (in names with modifiers, in URLs) and ',' (between alternatives) read better
    # as they are, and mean the same; everything else that is not plain is percent-encoded.
    query = urlencode(pairs, quote_via=quote, safe=":/,")
    return {"relation": relation, "url": f"{base}/{resource_type}" + (f"?{query}" if query else "")}


def _links(base: str, resource_type: str, total: int, page: Page) -> list[dict[str, str]]:
    query = list(page.query)
    own = query + ([("_count", str(page.count))] if page.count_given else [])
    own += [("_offset", str(page.offset))] if page.offset else []
    links = [_link(base, resource_type, own, "self")]
    if page.count_only or (page.offset == 0 and total <= page.count):
        return links
    last = (total - 1) // page.count * page.count if total else 0

    def at(offset: int, relation: str) -> dict[str, str]:
        return _link(base, resource_type, query + [("_count", str(page.count)), ("_offset", str(offset))], relation)

    links.append(at(0, "first"))
    if page.offset > 0:
        links.append(at(max(0, min(page.offset - page.count, last)), "previous"))
    if page.offset + page.count < total:
        links.append(at(page.offset + page.count, "next"))
    links.append(at(last, "last"))
    return links


def searchset(base: str, resource_type: str, entries: list[ResourceEntry], page: Page,
              version: FhirVersion) -> dict[str, Any]:
    """The searchset Bundle (R5, for render.document to convert) of `entries`, every match of a
    search in order: the page that `page` asks for, its links, and the total."""
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(entries),
                              "link": _links(base, resource_type, len(entries), page)}
    if page.count_only:
        return bundle
    shown = []
    for entry in entries[page.offset:page.offset + page.count]:
        resource = _search_view(entry.resource)
        if page.subset is not None:
            resource = subset_resource(resource, version, page.subset)
        shown.append({"fullUrl": f"{base}/{resource_type}/{entry.id}", "resource": resource,
                      "search": {"mode": "match"}})
    if shown:
        bundle["entry"] = shown
    return bundle


def versions_parameters(version: FhirVersion) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": [
        {"name": "version", "valueCode": version.short},
        {"name": "default", "valueCode": version.short},
    ]}
