"""Required-binding checks that fhir.resources does not make.

fhir.resources validates structure and primitive patterns but not code values ("doesn't enforce
enum based validation", its README): an R5 ConceptMap with `relationship: "relatedto"` passes.
These are the bindings whose values the engine acts on, so a wrong one is refused at load.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any

from ..fhirversions import FhirVersion, mapping_codes

STATUS = {"draft", "active", "retired", "unknown"}
_CODE_SYSTEM = {"content": {"not-present", "example", "fragment", "complete", "supplement"},
                "hierarchyMeaning": {"grouped-by", "is-a", "part-of", "classified-with"}}
_PROPERTY_TYPES = {"code", "Coding", "string", "integer", "boolean", "dateTime", "decimal"}
_NAMING_SYSTEM_KINDS = {"codesystem", "identifier", "root"}
# the kinds of NamingSystem.uniqueId: R5 added iri-stem and v2csmnemonic
_UNIQUE_ID_TYPES = {FhirVersion.R4: {"oid", "uuid", "uri", "other"},
                    FhirVersion.R5: {"oid", "uuid", "uri", "iri-stem", "v2csmnemonic", "other"}}


def _bad(path: str, value: object, allowed: Collection[str]) -> str:
    return f"{path}: '{value}' is not one of {', '.join(sorted(allowed))}"


def _concept_map(resource: dict[str, Any], version: FhirVersion) -> Iterator[str]:
    key, allowed, modes = mapping_codes(version)
    for g, group in enumerate(resource.get("group", [])):
        mode = (group.get("unmapped") or {}).get("mode")
        if modes is not None and mode is not None and mode not in modes:
            yield _bad(f"group.{g}.unmapped.mode", mode, modes)
        for e, element in enumerate(group.get("element", [])):
            for t, target in enumerate(element.get("target", [])):
                if key in target and target[key] not in allowed:
                    yield _bad(f"group.{g}.element.{e}.target.{t}.{key}", target[key], allowed)


def binding_errors(resource: dict[str, Any], version: FhirVersion = FhirVersion.R5) -> Iterator[str]:
    """Each element whose code is outside its required value set, as 'path: message'."""
    if "status" in resource and resource["status"] not in STATUS:
        yield _bad("status", resource["status"], STATUS)
    if resource.get("resourceType") == "CodeSystem":
        for key, allowed in _CODE_SYSTEM.items():
            if key in resource and resource[key] not in allowed:
                yield _bad(key, resource[key], allowed)
        for p, prop in enumerate(resource.get("property", [])):
            if prop.get("type") is not None and prop["type"] not in _PROPERTY_TYPES:
                yield _bad(f"property.{p}.type", prop["type"], _PROPERTY_TYPES)
    elif resource.get("resourceType") == "ConceptMap":
        yield from _concept_map(resource, version)
    elif resource.get("resourceType") == "NamingSystem":
        if "kind" in resource and resource["kind"] not in _NAMING_SYSTEM_KINDS:
            yield _bad("kind", resource["kind"], _NAMING_SYSTEM_KINDS)
        for u, unique_id in enumerate(resource.get("uniqueId", [])):
            if unique_id.get("type") is not None and unique_id["type"] not in _UNIQUE_ID_TYPES[version]:
                yield _bad(f"uniqueId.{u}.type", unique_id["type"], _UNIQUE_ID_TYPES[version])
