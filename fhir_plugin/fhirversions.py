"""The only module that knows how FHIR R4 and R5 differ.

Internally everything is R5. Resources loaded in R4 form are converted here on the way in;
responses on the R4 endpoint are converted here on the way out; the operation parameter names
of both releases (and the R6-ballot `sourceSystem`) are reconciled here.

ConceptMap relationship <-> equivalence follows HL7's FML maps (StructureMap-ConceptMap4to5 and
5to4), which agree with HAPI's ConceptMap40_50 except for `not-related-to`: FML maps it to
`unmatched` (same `result` semantics in R4), HAPI to `disjoint`. We follow FML.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from enum import Enum
from typing import Any


class FhirVersion(str, Enum):
    R4 = "R4"
    R5 = "R5"

    @property
    def release(self) -> str:
        return {"R4": "4.0.1", "R5": "5.0.0"}[self.value]

    @property
    def short(self) -> str:
        return {"R4": "4.0", "R5": "5.0"}[self.value]

    @property
    def core_package(self) -> str:
        """The FHIR package of this release's core definitions."""
        return {"R4": "hl7.fhir.r4.core", "R5": "hl7.fhir.r5.core"}[self.value]


def version_of_release(release: str) -> FhirVersion | None:
    """The version a FHIR release number belongs to: 4.0.x is R4 (and 4.3.x, R4B, which the R4B
    models read), 5.0.x is R5; None for any other."""
    if release.startswith(("4.0", "4.3")):
        return FhirVersion.R4
    if release.startswith("5.0"):
        return FhirVersion.R5
    return None


R4_TO_R5_RELATIONSHIP = {
    "relatedto": "related-to",
    "inexact": "related-to",
    "equivalent": "equivalent",
    "equal": "equivalent",
    "wider": "source-is-narrower-than-target",
    "subsumes": "source-is-narrower-than-target",
    "narrower": "source-is-broader-than-target",
    "specializes": "source-is-broader-than-target",
    "unmatched": "not-related-to",
    "disjoint": "not-related-to",
}
R5_TO_R4_EQUIVALENCE = {
    "related-to": "relatedto",
    "equivalent": "equivalent",
    "source-is-narrower-than-target": "wider",
    "source-is-broader-than-target": "narrower",
    "not-related-to": "unmatched",
}
_UNMAPPED_MODE_R4_TO_R5 = {"provided": "use-source-code", "fixed": "fixed", "other-map": "other-map"}
_UNMAPPED_MODE_R5_TO_R4 = {v: k for k, v in _UNMAPPED_MODE_R4_TO_R5.items()}


def relationship_for(version: FhirVersion, relationship: str) -> tuple[str, str]:
    """The (part name, code) a translate match carries on `version`."""
    if version is FhirVersion.R4:
        return "equivalence", R5_TO_R4_EQUIVALENCE.get(relationship, "relatedto")
    return "relationship", relationship


def relationship_from(part_name: str, code: str) -> str | None:
    """The R5 relationship a translate match part carries, whichever version's name it uses."""
    if part_name == "relationship":
        return code
    if part_name == "equivalence":
        return R4_TO_R5_RELATIONSHIP.get(code, "related-to")
    return None


# --- operation parameter names -----------------------------------------------------------------
# wire name -> internal name, per operation. Both releases' names are accepted on both endpoints
# (R4 clients talk to R5 servers and vice versa; the HL7 test runner sends R5 names to R4 servers).

TRANSLATE_ALIASES = {
    # R4 name / R5 name / R6-ballot name -> internal
    "code": "sourceCode", "sourceCode": "sourceCode",
    "system": "sourceSystem", "sourceSystem": "sourceSystem",
    "version": "sourceVersion", "sourceVersion": "sourceVersion",
    "coding": "sourceCoding", "sourceCoding": "sourceCoding",
    "codeableConcept": "sourceCodeableConcept", "sourceCodeableConcept": "sourceCodeableConcept",
    "source": "sourceScope", "sourceScope": "sourceScope",
    "target": "targetScope", "targetScope": "targetScope",
    "targetsystem": "targetSystem", "targetSystem": "targetSystem",
    "targetCode": "targetCode", "targetCoding": "targetCoding",
    "targetCodeableConcept": "targetCodeableConcept",
    "reverse": "reverse", "url": "url", "conceptMap": "conceptMap",
    "conceptMapVersion": "conceptMapVersion", "dependency": "dependency",
}
# Names only R4 defines: a request using them gets R4's `match.source` (the map's uri) back.
R4_ONLY_TRANSLATE_NAMES = frozenset({"code", "system", "coding", "codeableConcept", "reverse", "targetsystem", "source", "target"})


def translate_dialect(names: Iterable[str]) -> str | None:
    """The release whose own $translate parameter names a request used: "R4" for R4-only names."""
    return FhirVersion.R4.value if any(name in R4_ONLY_TRANSLATE_NAMES for name in names) else None


# --- resources in ------------------------------------------------------------------------------


def validation_order(resource: dict[str, Any], prefer: FhirVersion) -> tuple[FhirVersion, ...]:
    """The versions to read a resource as, in order: only R4 for one with R4-only elements, else
    the preferred version first (the endpoint's, for resources that arrive in a request)."""
    if looks_like_r4(resource):
        return (FhirVersion.R4,)
    return (FhirVersion.R4, FhirVersion.R5) if prefer is FhirVersion.R4 else (FhirVersion.R5, FhirVersion.R4)


def read_as(version: FhirVersion, resource: dict[str, Any]) -> dict[str, Any]:
    """A resource of `version` in the internal (R5) form."""
    if version is FhirVersion.R4:
        return to_r5(resource)
    return _versioned_groups(resource) if resource.get("resourceType") == "ConceptMap" else resource


# R5 names a map group's code systems by canonical, `url|version`; R4 had `sourceVersion` and
# `targetVersion` beside them. Other servers read only a plain URL there (FHIRsmith 0.9.4 finds no
# map for an unversioned system and copies `url|version` into Coding.system; none of FHIR R5
# core's 94 map groups carries a version), so the R5 package we write carries the versions in R4's
# elements, as the cross-version extensions of https://hl7.org/fhir/versions.html#extensions, and
# reading an R5 map puts them back into the canonicals.
EXT_GROUP_VERSION = {side: f"http://hl7.org/fhir/4.0/StructureDefinition/extension-ConceptMap.group.{side}Version"
                     for side in ("source", "target")}


def portable_concept_map(resource: dict[str, Any]) -> dict[str, Any]:
    """An internal (R5) ConceptMap as other servers read R5 maps: group.source and group.target
    plain URLs, their versions in the cross-version extensions (read_as puts them back)."""
    out = copy.deepcopy(resource)
    for group in _dicts(out.get("group")):
        for side, url in EXT_GROUP_VERSION.items():
            if isinstance(group.get(side), str) and "|" in group[side]:
                group[side], version = group[side].split("|", 1)
                _add_extension(group, {"url": url, "valueString": version})
    return out


def _versioned_groups(cm: dict[str, Any]) -> dict[str, Any]:
    """An R5 ConceptMap with the group versions of portable_concept_map back in the canonicals."""
    if not any(e.get("url") in EXT_GROUP_VERSION.values() for g in _dicts(cm.get("group"))
               for e in _dicts(g.get("extension"))):
        return cm
    out = copy.deepcopy(cm)
    for group in _dicts(out.get("group")):
        for side, url in EXT_GROUP_VERSION.items():
            for extension in _take_extensions(group, url):
                version = extension.get("valueString")
                if isinstance(version, str) and isinstance(group.get(side), str) and "|" not in group[side]:
                    group[side] = f"{group[side]}|{version}"
    return out


def mapping_codes(version: FhirVersion) -> tuple[str, frozenset[str], frozenset[str] | None]:
    """What a ConceptMap of `version` may say: the element a target states its mapping in, the
    codes it takes, and the codes of group.unmapped.mode (None: not checked; R4's are not)."""
    if version is FhirVersion.R4:
        return "equivalence", frozenset(R4_TO_R5_RELATIONSHIP), None
    return "relationship", frozenset(R5_TO_R4_EQUIVALENCE), frozenset(_UNMAPPED_MODE_R4_TO_R5.values())


def looks_like_r4(resource: dict[str, Any]) -> bool:
    """True for resources that carry elements only R4 has (ConceptMap is the one that differs)."""
    if resource.get("resourceType") != "ConceptMap":
        return False
    if any(k in resource for k in ("sourceUri", "sourceCanonical", "targetUri", "targetCanonical")):
        return True
    # Only a guess from the shape: malformed input (a group that is not an object, ...) is left
    # for the validator to refuse, never an exception here.
    for group in _dicts(resource.get("group")):
        if "sourceVersion" in group or "targetVersion" in group:
            return True
        unmapped = group.get("unmapped")
        if isinstance(unmapped, dict) and (unmapped.get("mode") == "provided" or "url" in unmapped):
            return True
        for element in _dicts(group.get("element")):
            for target in _dicts(element.get("target")):
                if "equivalence" in target:
                    return True
    return False


def _dicts(value: Any) -> list[dict[str, Any]]:
    """The objects of a JSON array (nothing when `value` is not an array)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def to_r5(resource: dict[str, Any]) -> dict[str, Any]:
    """An R4 resource as R5 (only ConceptMap differs for the resources we load, apart from the
    R5 elements that R4 carries as cross-version extensions: see the end of this module)."""
    if resource.get("resourceType") != "ConceptMap":
        return _from_cross_version(resource)
    cm = copy.deepcopy(resource)
    for r4, r5 in (("sourceUri", "sourceScopeUri"), ("sourceCanonical", "sourceScopeCanonical"),
                   ("targetUri", "targetScopeUri"), ("targetCanonical", "targetScopeCanonical")):
        if r4 in cm:
            cm[r5] = cm.pop(r4)
    for group in cm.get("group", []):
        for side in ("source", "target"):
            version = group.pop(f"{side}Version", None)
            if version and group.get(side):
                group[side] = f"{group[side]}|{version}"
        unmapped = group.get("unmapped")
        if unmapped:
            if "mode" in unmapped:
                unmapped["mode"] = _UNMAPPED_MODE_R4_TO_R5.get(unmapped["mode"], unmapped["mode"])
            if "url" in unmapped:
                unmapped["otherMap"] = unmapped.pop("url")
        for element in group.get("element", []):
            kept = []
            for target in element.get("target", []):
                equivalence = target.pop("equivalence", None)
                if equivalence == "unmatched" and not target.get("code"):
                    element["noMap"] = True
                    continue
                target["relationship"] = R4_TO_R5_RELATIONSHIP.get(equivalence or "relatedto", "related-to")
                kept.append(target)
            if kept:
                element["target"] = kept
            else:
                element.pop("target", None)
    _restore_r5_elements(cm)
    return cm


# --- resources out -----------------------------------------------------------------------------

_R5_ONLY_CANONICAL = ("versionAlgorithmString", "versionAlgorithmCoding", "copyrightLabel")
_R5_ONLY_KNOWLEDGE = ("approvalDate", "lastReviewDate", "effectivePeriod", "topic", "author", "editor",
                      "reviewer", "endorser", "relatedArtifact")
_R5_ONLY_TOP = {
    "CodeSystem": _R5_ONLY_CANONICAL + _R5_ONLY_KNOWLEDGE,
    "ValueSet": _R5_ONLY_CANONICAL + _R5_ONLY_KNOWLEDGE + ("scope",),
    "CapabilityStatement": _R5_ONLY_CANONICAL + ("identifier", "acceptLanguage"),
    "TerminologyCapabilities": _R5_ONLY_CANONICAL + ("identifier",),
}


def _drop_designation_additional_use(concepts: list[dict[str, Any]]) -> None:
    for concept in concepts:
        for designation in concept.get("designation", []):
            designation.pop("additionalUse", None)
        _drop_designation_additional_use(concept.get("concept", []) + concept.get("contains", []))


# The top-level elements of an R5 ConceptMap that R4 names otherwise, and those it lacks.
_CONCEPTMAP_R4_NAMES = {"sourceScopeUri": "sourceUri", "sourceScopeCanonical": "sourceCanonical",
                        "targetScopeUri": "targetUri", "targetScopeCanonical": "targetCanonical"}
_CONCEPTMAP_R5_ONLY = _R5_ONLY_CANONICAL + _R5_ONLY_KNOWLEDGE + ("property", "additionalAttribute")
_VERSION_ALGORITHM = ("versionAlgorithmString", "versionAlgorithmCoding")


def top_level_name(version: FhirVersion, resource_type: str, key: str) -> str | None:
    """What the top-level element `key` of an internal (R5) resource becomes in `version`, as
    resource_for writes it: its name there, `extension` for an R5 element R4 carries in a
    cross-version extension, None for one R4 has no place for. A primitive's `_key` follows its key."""
    if version is FhirVersion.R5:
        return key
    if key.startswith("_"):
        found = top_level_name(version, resource_type, key[1:])
        return None if found is None or found == "extension" else "_" + found
    if resource_type == "ConceptMap":
        return None if key in _CONCEPTMAP_R5_ONLY else _CONCEPTMAP_R4_NAMES.get(key, key)
    if resource_type == "CodeSystem" and key in _VERSION_ALGORITHM:
        return "extension"
    return None if key in _R5_ONLY_TOP.get(resource_type, ()) else key


def _conceptmap_to_r4(cm: dict[str, Any]) -> dict[str, Any]:
    for r5, r4 in _CONCEPTMAP_R4_NAMES.items():
        if r5 in cm:
            cm[r4] = cm.pop(r5)
    for key in _CONCEPTMAP_R5_ONLY:
        cm.pop(key, None)
    for group in cm.get("group", []):
        for side in ("source", "target"):
            if group.get(side) and "|" in group[side]:
                url, version = group[side].split("|", 1)
                group[side], group[f"{side}Version"] = url, version
        unmapped = group.get("unmapped")
        if unmapped:
            unmapped["mode"] = _UNMAPPED_MODE_R5_TO_R4.get(unmapped.get("mode"), unmapped.get("mode"))
            if "otherMap" in unmapped:
                unmapped["url"] = unmapped.pop("otherMap")
            for key in ("relationship", "valueSet"):
                unmapped.pop(key, None)
        for element in group.get("element", []):
            element.pop("valueSet", None)
            targets = element.get("target", [])
            for target in targets:
                target["equivalence"] = R5_TO_R4_EQUIVALENCE.get(target.pop("relationship", "related-to"), "relatedto")
                for key in ("valueSet", "property"):
                    target.pop(key, None)
            if element.pop("noMap", False):
                targets.append({"equivalence": "unmatched"})
                element["target"] = targets
    return cm


def _terminology_capabilities_to_r4(tc: dict[str, Any]) -> dict[str, Any]:
    for cs in tc.get("codeSystem", []):
        cs.pop("content", None)
    search = tc.get("codeSearch")
    if search:
        tc["codeSearch"] = "all" if search == "in-compose-or-expansion" else "explicit"
    return tc


def resource_for(version: FhirVersion, resource: dict[str, Any]) -> dict[str, Any]:
    """An internal (R5) resource as `version` expects it. Never mutates its argument."""
    if version is FhirVersion.R5:
        return resource
    rtype = resource.get("resourceType")
    if rtype in ("Bundle", "Parameters"):
        out = dict(resource)
        key = "entry" if rtype == "Bundle" else "parameter"
        items = []
        for item in resource.get(key, []):
            if "resource" in item:
                item = {**item, "resource": resource_for(version, item["resource"])}
            items.append(item)
        if key in resource:
            out[key] = items
        return out
    if rtype not in _R5_ONLY_TOP and rtype != "ConceptMap":
        return resource
    out = copy.deepcopy(resource)
    _carry_r5_elements(out)  # before the R5-only elements below are dropped
    if rtype == "ConceptMap":
        return _conceptmap_to_r4(out)
    for key in _R5_ONLY_TOP[rtype]:
        out.pop(key, None)
    if rtype == "CodeSystem":
        _drop_designation_additional_use(out.get("concept", []))
    elif rtype == "ValueSet":
        for include in out.get("compose", {}).get("include", []) + out.get("compose", {}).get("exclude", []):
            include.pop("copyright", None)
        out.get("compose", {}).pop("property", None)
        _drop_designation_additional_use(out.get("expansion", {}).get("contains", []))
    elif rtype == "TerminologyCapabilities":
        _terminology_capabilities_to_r4(out)
    return out


def model_class(version: FhirVersion, resource_type: str) -> Any:
    """The fhir.resources model for `resource_type` in `version` (R4 is served by the R4B models)."""
    if version is FhirVersion.R4:
        from fhir.resources.R4B import get_fhir_model_class as r4b
        return r4b(resource_type)
    from fhir.resources import get_fhir_model_class as r5
    return r5(resource_type)


# --- cross-version extensions: R5 elements carried in R4 -----------------------------------------
# R4 has no place for a few R5 elements that terminology content and answers use. The official
# 4.0<->5.0 converter (and so the HL7 terminology test runner, which sends R4 servers converted
# requests and converts their answers back) carries them as the cross-version extensions of
# https://hl7.org/fhir/versions.html#extensions. resource_for() moves them into those extensions
# and to_r5() moves them back, so an R5 resource that uses them survives R5 -> R4 -> R5 unchanged.
# Only the elements the HL7 tests need are handled: a filter operator R4 lacks, the expansion's
# property definitions and values, CodeSystem.versionAlgorithm[x] and ConceptMap unmapped.relationship.

_XVER = "http://hl7.org/fhir/5.0/StructureDefinition/extension-"
EXT_FILTER_OP = _XVER + "ValueSet.compose.include.filter.op"
EXT_EXPANSION_PROPERTY = _XVER + "ValueSet.expansion.property"
EXT_CONTAINS_PROPERTY = _XVER + "ValueSet.expansion.contains.property"
EXT_VERSION_ALGORITHM = _XVER + "CodeSystem.versionAlgorithm"
EXT_UNMAPPED_RELATIONSHIP = _XVER + "ConceptMap.group.unmapped.relationship"
# R4's filter-operator value set; R5 added child-of and descendent-leaf.
R4_FILTER_OPS = frozenset({"=", "is-a", "descendent-of", "is-not-a", "regex", "in", "not-in", "generalizes", "exists"})


def _add_extension(element: dict[str, Any], extension: dict[str, Any]) -> None:
    element.setdefault("extension", []).append(extension)


def _take_extensions(element: dict[str, Any], url: str) -> list[dict[str, Any]]:
    """Remove and return the extensions of `element` with `url` (an emptied list goes too)."""
    extensions = element.get("extension")
    if not isinstance(extensions, list):
        return []
    taken = [e for e in extensions if isinstance(e, dict) and e.get("url") == url]
    if taken:
        kept = [e for e in extensions if e not in taken]
        if kept:
            element["extension"] = kept
        else:
            del element["extension"]
    return taken


def _value_items(element: dict[str, Any]) -> list[tuple[str, Any]]:
    """The value[x] entries of an element (normally one)."""
    return [(key, value) for key, value in element.items() if key.startswith("value")]


def _first_value(extension: dict[str, Any]) -> Any:
    return next((value for _, value in _value_items(extension)), None)


def _filters(value_set: dict[str, Any]) -> list[dict[str, Any]]:
    compose = value_set.get("compose")
    if not isinstance(compose, dict):
        return []
    return [f for part in ("include", "exclude") for include in _dicts(compose.get(part))
            for f in _dicts(include.get("filter"))]


def _contains_to_r4(contains: Any) -> None:
    for item in _dicts(contains):
        for prop in _dicts(item.pop("property", None)):
            parts = [{"url": "code", "valueCode": prop.get("code")}]
            parts += [{"url": "value", key: value} for key, value in _value_items(prop)]
            _add_extension(item, {"url": EXT_CONTAINS_PROPERTY, "extension": parts})
        _contains_to_r4(item.get("contains"))


def _contains_to_r5(contains: Any) -> None:
    for item in _dicts(contains):
        for extension in _take_extensions(item, EXT_CONTAINS_PROPERTY):
            prop: dict[str, Any] = {}
            for part in _dicts(extension.get("extension")):
                if part.get("url") == "code":
                    prop["code"] = _first_value(part)
                elif part.get("url") == "value":
                    prop.update(_value_items(part))
            item.setdefault("property", []).append(prop)
        _contains_to_r5(item.get("contains"))


def _carry_r5_elements(resource: dict[str, Any]) -> None:
    """R5 -> R4, in place (on resource_for's copy): R5-only elements into their extensions."""
    rtype = resource.get("resourceType")
    if rtype == "ValueSet":
        for f in _filters(resource):
            if isinstance(f.get("op"), str) and f["op"] not in R4_FILTER_OPS:
                given = f.get("_op")
                primitive = given if isinstance(given, dict) else {}
                _add_extension(primitive, {"url": EXT_FILTER_OP, "valueCode": f.pop("op")})
                f["_op"] = primitive
        expansion = resource.get("expansion")
        if isinstance(expansion, dict):
            for prop in _dicts(expansion.pop("property", None)):
                parts = [{"url": "code", "valueCode": prop["code"]}] if "code" in prop else []
                parts += [{"url": "uri", "valueUri": prop["uri"]}] if "uri" in prop else []
                _add_extension(expansion, {"url": EXT_EXPANSION_PROPERTY, "extension": parts})
            _contains_to_r4(expansion.get("contains"))
    elif rtype == "CodeSystem":
        for key in _VERSION_ALGORITHM:
            if key in resource:
                value_key = "value" + key.removeprefix("versionAlgorithm")
                _add_extension(resource, {"url": EXT_VERSION_ALGORITHM, value_key: resource.pop(key)})
    elif rtype == "ConceptMap":
        for group in _dicts(resource.get("group")):
            unmapped = group.get("unmapped")
            if isinstance(unmapped, dict) and "relationship" in unmapped:
                _add_extension(unmapped, {"url": EXT_UNMAPPED_RELATIONSHIP, "valueCode": unmapped.pop("relationship")})


def _restore_r5_elements(resource: dict[str, Any]) -> None:
    """R4 -> R5, in place (on to_r5's copy): the cross-version extensions back into R5 elements."""
    rtype = resource.get("resourceType")
    if rtype == "ValueSet":
        for f in _filters(resource):
            primitive = f.get("_op")
            if isinstance(primitive, dict) and "op" not in f:
                taken = _take_extensions(primitive, EXT_FILTER_OP)
                if taken:
                    f["op"] = _first_value(taken[0])
                    if not primitive:
                        del f["_op"]
        expansion = resource.get("expansion")
        if isinstance(expansion, dict):
            for extension in _take_extensions(expansion, EXT_EXPANSION_PROPERTY):
                prop = {part["url"]: _first_value(part) for part in _dicts(extension.get("extension"))
                        if part.get("url") in ("code", "uri")}
                expansion.setdefault("property", []).append(prop)
            _contains_to_r5(expansion.get("contains"))
    elif rtype == "CodeSystem":
        for extension in _take_extensions(resource, EXT_VERSION_ALGORITHM):
            for value_key, value in _value_items(extension):
                resource["versionAlgorithm" + value_key.removeprefix("value")] = value
    elif rtype == "ConceptMap":
        for group in _dicts(resource.get("group")):
            unmapped = group.get("unmapped")
            if isinstance(unmapped, dict):
                for extension in _take_extensions(unmapped, EXT_UNMAPPED_RELATIONSHIP):
                    unmapped["relationship"] = _first_value(extension)


def _from_cross_version(resource: dict[str, Any]) -> dict[str, Any]:
    """to_r5 for everything but ConceptMap: containers recurse, CodeSystem/ValueSet are restored."""
    rtype = resource.get("resourceType")
    if rtype in ("Bundle", "Parameters"):
        key = "entry" if rtype == "Bundle" else "parameter"
        if not isinstance(resource.get(key), list):
            return resource
        items = [{**item, "resource": to_r5(item["resource"])}
                 if isinstance(item, dict) and isinstance(item.get("resource"), dict) else item
                 for item in resource[key]]
        return {**resource, key: items}
    if rtype not in ("CodeSystem", "ValueSet"):
        return resource
    out = copy.deepcopy(resource)
    _restore_r5_elements(out)
    return out
