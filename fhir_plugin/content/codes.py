"""Required-binding checks that fhir.resources does not make.

fhir.resources validates structure and primitive patterns but not code values ("doesn't enforce
enum based validation", its README): an R5 ConceptMap with `relationship: "relatedto"` passes.
These are the bindings whose values the engine acts on, so a wrong one is refused at load.
"""

from __future__ import annotations

from collections.abc import Iterator

STATUS = {"draft", "active", "retired", "unknown"}
RELATIONSHIP = {"related-to", "equivalent", "source-is-narrower-than-target", "source-is-broader-than-target",
                "not-related-to"}
EQUIVALENCE_R4 = {"relatedto", "equivalent", "equal", "wider", "subsumes", "narrower", "specializes", "inexact",
                  "unmatched", "disjoint"}
_CODE_SYSTEM = {"content": {"not-present", "example", "fragment", "complete", "supplement"},
                "hierarchyMeaning": {"grouped-by", "is-a", "part-of", "classified-with"}}
_PROPERTY_TYPES = {"code", "Coding", "string", "integer", "boolean", "dateTime", "decimal"}
_UNMAPPED_MODES = {"use-source-code", "fixed", "other-map"}


def _bad(path: str, value: object, allowed: set[str]) -> str:
    return f"{path}: '{value}' is not one of {', '.join(sorted(allowed))}"


def _concept_map(resource: dict, r4: bool) -> Iterator[str]:
    for g, group in enumerate(resource.get("group", [])):
        mode = (group.get("unmapped") or {}).get("mode")
        if not r4 and mode is not None and mode not in _UNMAPPED_MODES:
            yield _bad(f"group.{g}.unmapped.mode", mode, _UNMAPPED_MODES)
        for e, element in enumerate(group.get("element", [])):
            for t, target in enumerate(element.get("target", [])):
                key, allowed = ("equivalence", EQUIVALENCE_R4) if r4 else ("relationship", RELATIONSHIP)
                if key in target and target[key] not in allowed:
                    yield _bad(f"group.{g}.element.{e}.target.{t}.{key}", target[key], allowed)


def binding_errors(resource: dict, r4: bool = False) -> Iterator[str]:
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
        yield from _concept_map(resource, r4)
