"""Turn validated R5 resource dicts into the engine's immutable index structures.

Done once per resource at load; operations only read the result. Hierarchy comes from nested
`concept` elements and from `parent`/`child` properties alike.
"""

from __future__ import annotations

from decimal import Decimal

from .models import (
    CodeSystemEntry,
    Coding,
    Concept,
    ConceptMapEntry,
    Designation,
    MapElement,
    MapGroup,
    MapTarget,
    PropertyDefinition,
    PropertyValue,
    ResourceEntry,
)

_VALUE_TYPES = ("code", "Coding", "string", "integer", "boolean", "dateTime", "decimal")
_INACTIVE_STATUSES = {"retired", "inactive"}


def _coding(raw: dict | None) -> Coding | None:
    if not raw:
        return None
    return Coding(raw.get("system"), raw.get("code"), raw.get("version"), raw.get("display"))


def _property_value(raw: dict) -> PropertyValue | None:
    for kind in _VALUE_TYPES:
        key = "value" + kind[0].upper() + kind[1:]
        if key in raw:
            value = raw[key]
            if kind == "Coding":
                value = _coding(value)
            elif kind == "decimal":
                value = Decimal(str(value))
            return PropertyValue(raw["code"], value, kind)
    return None


def _flatten(concepts: list[dict], parent: str | None, out: list[tuple[dict, str | None]]) -> None:
    for concept in concepts:
        out.append((concept, parent))
        _flatten(concept.get("concept", []), concept["code"], out)


def compile_code_system(resource: dict) -> CodeSystemEntry:
    flat: list[tuple[dict, str | None]] = []
    _flatten(resource.get("concept", []), None, flat)
    parents: dict[str, list[str]] = {}
    children: dict[str, list[str]] = {}

    def link(parent: str, child: str) -> None:
        if parent not in parents.setdefault(child, []):
            parents[child].append(parent)
        if child not in children.setdefault(parent, []):
            children[parent].append(child)

    for raw, parent in flat:
        if parent:
            link(parent, raw["code"])
        for prop in raw.get("property", []):
            if prop.get("code") == "parent" and "valueCode" in prop:
                link(prop["valueCode"], raw["code"])
            elif prop.get("code") == "child" and "valueCode" in prop:
                link(raw["code"], prop["valueCode"])

    concepts: dict[str, Concept] = {}
    for raw, _ in flat:
        code = raw["code"]
        props = []
        abstract = inactive = False
        for prop in raw.get("property", []):
            if prop.get("code") in ("parent", "child"):
                continue  # the hierarchy is reported from the links above, with displays
            value = _property_value(prop)
            if value is None:
                continue
            props.append(value)
            if value.code == "notSelectable" and value.value is True:
                abstract = True
            elif value.code == "inactive" and value.value is True:
                inactive = True
            elif value.code == "status" and value.value in _INACTIVE_STATUSES:
                inactive = True
        concepts[code] = Concept(
            code=code,
            display=raw.get("display"),
            definition=raw.get("definition"),
            designations=tuple(
                Designation(d["value"], d.get("language"), _coding(d.get("use")))
                for d in raw.get("designation", [])
            ),
            properties=tuple(props),
            parents=tuple(parents.get(code, ())),
            children=tuple(children.get(code, ())),
            abstract=abstract,
            inactive=inactive,
        )
    case_sensitive = resource.get("caseSensitive", True)
    return CodeSystemEntry(
        url=resource["url"],
        version=resource.get("version"),
        id=resource.get("id"),
        name=resource.get("name"),
        title=resource.get("title"),
        status=resource.get("status", "unknown"),
        content=resource.get("content", "complete"),
        case_sensitive=case_sensitive,
        concepts=concepts,
        folded_codes={} if case_sensitive else {c.casefold(): c for c in concepts},
        property_definitions=tuple(
            PropertyDefinition(p["code"], p.get("type", "string"), p.get("uri"), p.get("description"))
            for p in resource.get("property", [])
        ),
        resource=resource,
    )


def _split_canonical(value: str | None) -> tuple[str | None, str | None]:
    if not value:
        return None, None
    url, _, version = value.partition("|")
    return url, version or None


def compile_concept_map(resource: dict) -> ConceptMapEntry:
    groups = []
    for raw_group in resource.get("group", []):
        source, source_version = _split_canonical(raw_group.get("source"))
        target, target_version = _split_canonical(raw_group.get("target"))
        elements: dict[str, MapElement] = {}
        by_target: dict[str, list[tuple[MapElement, MapTarget]]] = {}
        for raw in raw_group.get("element", []):
            if "code" not in raw:
                continue  # value-set-based elements are not translated by code
            element = MapElement(
                code=raw["code"],
                display=raw.get("display"),
                targets=tuple(
                    MapTarget(t.get("code"), t.get("display"), t.get("relationship", "related-to"), t.get("comment"))
                    for t in raw.get("target", [])
                ),
                no_map=bool(raw.get("noMap")),
            )
            if element.code in elements:  # the same source code listed twice: keep every target
                merged = elements[element.code]
                element = MapElement(element.code, merged.display or element.display,
                                     merged.targets + element.targets, merged.no_map or element.no_map)
            elements[element.code] = element
        for element in elements.values():
            for map_target in element.targets:
                if map_target.code:
                    by_target.setdefault(map_target.code, []).append((element, map_target))
        groups.append(MapGroup(source, source_version, target, target_version, elements,
                               {k: tuple(v) for k, v in by_target.items()}))
    return ConceptMapEntry(
        url=resource.get("url"),
        version=resource.get("version"),
        id=resource.get("id"),
        name=resource.get("name"),
        status=resource.get("status", "unknown"),
        source_scope=resource.get("sourceScopeUri") or resource.get("sourceScopeCanonical"),
        target_scope=resource.get("targetScopeUri") or resource.get("targetScopeCanonical"),
        groups=tuple(groups),
        resource=resource,
    )


def compile_resource_entry(resource: dict) -> ResourceEntry:
    return ResourceEntry(
        resource_type=resource["resourceType"],
        url=resource.get("url"),
        version=resource.get("version"),
        id=resource.get("id"),
        name=resource.get("name"),
        title=resource.get("title"),
        status=resource.get("status"),
        resource=resource,
    )
