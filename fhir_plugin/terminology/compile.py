"""Turn validated R5 resource dicts into the engine's immutable index structures.

Done once per resource at load; operations only read the result. Hierarchy comes from nested
`concept` elements and from `parent`/`child` properties alike: those codes, or any property the
code system defines with the standard URIs of parent and child (HL7 Terminology's v3 code systems
link their concepts with `subsumedBy`, defined as `http://hl7.org/fhir/concept-properties#parent`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .entries import (CodeSystemEntry, Coding, Concept, ConceptMapEntry, Designation, MapElement, MapGroup, MapTarget,
                      PropertyDefinition, PropertyValue, ResourceEntry)

_VALUE_TYPES = ("code", "Coding", "string", "integer", "boolean", "dateTime", "decimal")
_INACTIVE_STATUSES = {"retired", "inactive"}
_SD = "http://hl7.org/fhir/StructureDefinition/"
# Property codes (or definition uris) that make a concept abstract: the R5 name, the R4-era
# `not-selectable` spelling, and any code bound to the standard concept property.
_NOT_SELECTABLE_CODES = frozenset({"notSelectable", "not-selectable"})
_NOT_SELECTABLE_URI = "http://hl7.org/fhir/concept-properties#notSelectable"
# Concept extensions that tx.fhir.org reports in an expansion as properties: url -> (property
# code, value[x] key, property type). conceptOrder is an integer but is reported as a decimal.
EXTENSION_PROPERTIES = {
    _SD + "codesystem-conceptOrder": ("order", "valueInteger", "decimal"),
    _SD + "codesystem-label": ("label", "valueString", "string"),
    _SD + "itemWeight": ("weight", "valueDecimal", "decimal"),
    _SD + "structuredefinition-standards-status": ("status", "valueCode", "code"),
}
# Concept extensions an expansion echoes on its `contains` entry.
RENDERING_EXTENSIONS = frozenset({_SD + "rendering-style", _SD + "rendering-xhtml"})


def core_extensions(raw: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """The extensions of an element that are defined by FHIR core; unknown ones are dropped."""
    return tuple(e for e in raw.get("extension", []) if str(e.get("url", "")).startswith(_SD))


def extension_property(ext: dict[str, Any]) -> PropertyValue | None:
    """The expansion property a concept extension stands for (conceptOrder -> order, ...)."""
    known = EXTENSION_PROPERTIES.get(ext.get("url", ""))
    if known is None or known[1] not in ext:
        return None
    code, key, kind = known
    value = ext[key]
    return PropertyValue(code, Decimal(str(value)) if kind == "decimal" else value, kind)


def designation(raw: dict[str, Any]) -> Designation:
    return Designation(raw["value"], raw.get("language"), _coding(raw.get("use")),
                       extensions=core_extensions(raw))


def _coding(raw: dict[str, Any] | None) -> Coding | None:
    if not raw:
        return None
    return Coding(raw.get("system"), raw.get("code"), raw.get("version"), raw.get("display"))


def _property_value(raw: dict[str, Any]) -> PropertyValue | None:
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


def _flatten(concepts: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str | None]]:
    """(concept, its parent's code) of every nested concept, in document order (depth first).
    With a stack, not recursion: how deep a resource nests is not this function's to bound."""
    out: list[tuple[dict[str, Any], str | None]] = []
    stack: list[tuple[dict[str, Any], str | None]] = [(c, None) for c in reversed(concepts)]
    while stack:
        concept, parent = stack.pop()
        out.append((concept, parent))
        stack.extend((child, concept["code"]) for child in reversed(concept.get("concept", [])))
    return out


_PARENT_URI = "http://hl7.org/fhir/concept-properties#parent"
_CHILD_URI = "http://hl7.org/fhir/concept-properties#child"


def _codes_of(resource: dict[str, Any], code: str, uri: str) -> frozenset[str]:
    """`code`, and the codes of the properties the code system defines with `uri`."""
    return frozenset([code, *(p["code"] for p in resource.get("property", []) if p.get("uri") == uri and "code" in p)])


def compile_code_system(resource: dict[str, Any]) -> CodeSystemEntry:
    flat = _flatten(resource.get("concept", []))
    parent_codes, child_codes = _codes_of(resource, "parent", _PARENT_URI), _codes_of(resource, "child", _CHILD_URI)
    parents: dict[str, list[str]] = {}
    children: dict[str, list[str]] = {}

    def link(parent: str, child: str) -> None:
        if parent not in parents.setdefault(child, []):
            parents[child].append(parent)
        if child not in children.setdefault(parent, []):
            children[parent].append(child)

    named = (parent_codes | child_codes) - {"parent", "child"}
    nestable = True
    for raw, parent in flat:
        if parent:
            link(parent, raw["code"])
        for prop in raw.get("property", []):
            if prop.get("code") in named:
                nestable = False
            if prop.get("code") in parent_codes and "valueCode" in prop:
                link(prop["valueCode"], raw["code"])
            elif prop.get("code") in child_codes and "valueCode" in prop:
                link(raw["code"], prop["valueCode"])

    not_selectable = set(_NOT_SELECTABLE_CODES) | {p["code"] for p in resource.get("property", [])
                                                  if p.get("uri") == _NOT_SELECTABLE_URI and "code" in p}
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
            if value.code in not_selectable and value.value is True:
                abstract = True
            elif value.code == "inactive" and value.value is True:
                inactive = True
            elif value.code == "status" and value.value in _INACTIVE_STATUSES:
                inactive = True
        concepts[code] = Concept(
            code=code,
            display=raw.get("display"),
            definition=raw.get("definition"),
            designations=tuple(designation(d) for d in raw.get("designation", [])),
            properties=tuple(props),
            parents=tuple(parents.get(code, ())),
            children=tuple(children.get(code, ())),
            abstract=abstract,
            inactive=inactive,
            extension_properties=tuple(p for p in map(extension_property, raw.get("extension", [])) if p),
            extensions=tuple(e for e in raw.get("extension", []) if e.get("url") in RENDERING_EXTENSIONS),
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
        positions={code: index for index, code in enumerate(concepts)},
        nestable=nestable,
    )


def _split_canonical(value: str | None) -> tuple[str | None, str | None]:
    if not value:
        return None, None
    url, _, version = value.partition("|")
    return url, version or None


def compile_concept_map(resource: dict[str, Any]) -> ConceptMapEntry:
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


def compile_resource_entry(resource: dict[str, Any]) -> ResourceEntry:
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
