"""What the pages show, asked of the service: the engine's requests, results and entries, read
into the few values a template prints. No Flask here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..terminology.entries import CodeSystemEntry, Coding
from ..terminology.expand import first_matches
from ..terminology.holders import ValueSetSystems, value_sets_holding
from ..terminology.models import ExpandRequest, ExpandResult, LookupRequest, TranslateRequest
from ..terminology.service import TerminologyService

PAGE_SIZE = 20
SUGGESTIONS = 10
_MAX_ROOTS = 100


@dataclass(frozen=True)
class Link:
    """A concept as a page links it: the code system's id (None: not held here), code, display."""

    system: str
    code: str
    display: str
    cs_id: str | None


@dataclass(frozen=True)
class MapRow:
    source: Link
    target: Link
    relationship: str
    comment: str
    map_id: str | None
    map_title: str


@dataclass
class ConceptView:
    cs: CodeSystemEntry
    code: str
    display: str
    definition: str
    designations: list[tuple[str, str, str]] = field(default_factory=list)  # (use, language, value)
    properties: list[tuple[str, str]] = field(default_factory=list)
    parents: list[Link] = field(default_factory=list)
    children: list[Link] = field(default_factory=list)
    maps: list[MapRow] = field(default_factory=list)
    value_sets: list[tuple[str, str]] = field(default_factory=list)  # (id, title)


def link(service: TerminologyService, system: str | None, code: str | None, display: str | None = None) -> Link:
    cs = service.registry.find_code_system(system)
    concept = cs.find(code or "") if cs is not None else None
    return Link(system or "", code or "", display or (concept.display if concept else None) or "",
                cs.id if cs is not None else None)


def code_systems(service: TerminologyService) -> list[CodeSystemEntry]:
    return list(service.registry.code_systems())


def resources(service: TerminologyService, resource_type: str) -> list[Any]:
    return service.search(resource_type, {})


def search(service: TerminologyService, cs: CodeSystemEntry, text: str, page: int,
           count: int = PAGE_SIZE) -> ExpandResult:
    """One page of the code system's concepts that match `text` ($expand's text filter)."""
    return service.expand(ExpandRequest(url=f"{cs.url}?fhir_vs", filter=text, offset=page * count, count=count))


def suggestions(service: TerminologyService, cs: CodeSystemEntry, text: str) -> list[tuple[str, str]]:
    """The first SUGGESTIONS (code, display) that match `text`: those of `search`'s first page,
    without counting the rest (the engine's word index finds them: expand.first_matches)."""
    found = first_matches(service.registry, ExpandRequest(url=f"{cs.url}?fhir_vs", filter=text), SUGGESTIONS)
    return [(member.code, member.display or "") for member in found]


def roots(cs: CodeSystemEntry) -> list[tuple[str, str]]:
    """The top of the hierarchy (concepts without a parent), in code system order."""
    found = []
    for concept in cs.concepts.values():
        if not concept.parents:
            found.append((concept.code, concept.display or ""))
            if len(found) == _MAX_ROOTS:
                break
    return found


def _property_text(value: object) -> str:
    return "true" if value is True else "false" if value is False else str(value)


def concept(service: TerminologyService, cs: CodeSystemEntry, code: str, systems: ValueSetSystems) -> ConceptView:
    """Everything the concept page shows; the engine's NotFound for an unknown code. `systems`:
    the value sets of `service`'s content with the systems they can hold (holders.py)."""
    found = service.lookup(LookupRequest(system=cs.url, code=code, version=cs.version))
    view = ConceptView(cs, found.code, found.display or "", found.definition or "")
    for d in found.designations:
        use = (d.use.display or d.use.code or "") if d.use else ""
        view.designations.append((use, d.language or "", d.value))
    for p in found.properties:
        if p.code in ("parent", "child"):
            target = view.parents if p.code == "parent" else view.children
            target.append(link(service, cs.url, str(p.value)))
        else:
            shown = _property_text(p.value)
            view.properties.append((p.code, f"{shown} ({p.description})" if p.description else shown))
    view.maps = maps_of(service, cs.url, found.code)
    view.value_sets = [(entry.id or "", entry.title or entry.name or entry.url or "")
                       for entry in value_sets_holding(service, systems, cs.url, found.code)]
    return view


def _map_title(service: TerminologyService, canonical: str | None) -> tuple[str | None, str, dict[str, Any]]:
    url = (canonical or "").split("|", 1)[0]
    for cm in service.registry.concept_maps():
        if cm.url == url:
            return cm.id, str(cm.resource.get("title") or cm.name or url), cm.resource
    return None, url, {}


def _comment(resource: dict[str, Any], source: str, target: str) -> str:
    for group in resource.get("group", []):
        for element in group.get("element", []):
            if element.get("code") != source:
                continue
            for t in element.get("target", []):
                if t.get("code") == target:
                    return str(t.get("comment", ""))
    return ""


def maps_of(service: TerminologyService, system: str, code: str) -> list[MapRow]:
    """The map rows that name the concept, as a source (forward) and as a target (reverse)."""
    rows = []
    forward = service.translate(TranslateRequest(source=(Coding(system, code),), source_form="code"))
    backward = service.translate(TranslateRequest(target=(Coding(system, code),), target_form="code"))
    for match in forward.matches:
        map_id, title, resource = _map_title(service, match.origin_map)
        rows.append(MapRow(link(service, system, code), link(service, match.concept.system, match.concept.code,
                                                               match.concept.display),
                           match.relationship, _comment(resource, code, match.concept.code or ""), map_id, title))
    for match in backward.matches:
        source = match.source or Coding(None, None)
        map_id, title, resource = _map_title(service, match.origin_map)
        rows.append(MapRow(link(service, source.system, source.code, source.display), link(service, system, code),
                           match.relationship, _comment(resource, source.code or "", code), map_id, title))
    return rows


def map_rows(service: TerminologyService, resource: dict[str, Any]) -> list[MapRow]:
    """Every (source, target) row of a ConceptMap resource, with its comment."""
    rows = []
    for group in resource.get("group", []):
        source_system = str(group.get("source", "")).split("|", 1)[0]
        target_system = str(group.get("target", "")).split("|", 1)[0]
        for element in group.get("element", []):
            for t in element.get("target", []) or [{"relationship": "not-related-to"}]:
                rows.append(MapRow(link(service, source_system, element.get("code"), element.get("display")),
                                   link(service, target_system, t.get("code"), t.get("display")),
                                   str(t.get("relationship", "")), str(t.get("comment", "")), None, ""))
    return rows
