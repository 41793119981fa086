"""Typed results <-> FHIR Parameters dicts, for both FHIR versions.

The web layer renders results with `*_parameters`; the client rebuilds the same results from a
server's answer with `*_result`. Version-specific names come from fhirversions.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..fhirversions import FhirVersion, relationship_for, relationship_from
from ..terminology.errors import TerminologyError
from ..terminology.models import (Coding, Designation, LookupResult, PropertyValue, SubsumesResult, TranslateMatch,
                                  TranslateResult, ValidateCodeResult)
from ..terminology.outcome import brief_outcome, issues_outcome


def value_key(kind: str) -> str:
    return "value" + kind[0].upper() + kind[1:]


def coding_dict(coding: Coding) -> dict:
    out: dict[str, Any] = {}
    for key in ("system", "version", "code", "display"):
        value = getattr(coding, key)
        if value is not None:
            out[key] = value
    return out


def coding_from(raw: dict | None) -> Coding | None:
    if not isinstance(raw, dict):
        return None
    return Coding(raw.get("system"), raw.get("code"), raw.get("version"), raw.get("display"))


def _property_value(value: PropertyValue) -> Any:
    if value.type == "Coding":
        return coding_dict(value.value)  # type: ignore[arg-type]
    return value.value


# --- $lookup -----------------------------------------------------------------------------------


def lookup_parameters(result: LookupResult, version: FhirVersion) -> dict:
    params: list[dict] = [{"name": "name", "valueString": result.name}]
    if result.version:
        params.append({"name": "version", "valueString": result.version})
    if result.display is not None:
        params.append({"name": "display", "valueString": result.display})
    params.append({"name": "code", "valueCode": result.code})
    params.append({"name": "system", "valueUri": result.system})
    if result.definition:
        params.append({"name": "definition", "valueString": result.definition})
    params.append({"name": "abstract", "valueBoolean": result.abstract})
    for designation in result.designations:
        parts: list[dict] = []
        if designation.language:
            parts.append({"name": "language", "valueCode": designation.language})
        if designation.use:
            parts.append({"name": "use", "valueCoding": coding_dict(designation.use)})
        if designation.source:
            parts.append({"name": "source", "valueCanonical": designation.source})
        parts.append({"name": "value", "valueString": designation.value})
        params.append({"name": "designation", "part": parts})
    for prop in result.properties:
        parts = [{"name": "code", "valueCode": prop.code},
                 {"name": "value", value_key(prop.type): _property_value(prop)}]
        if prop.description:
            parts.append({"name": "description", "valueString": prop.description})
        params.append({"name": "property", "part": parts})
    for supplement in result.used_supplements:
        params.append({"name": "used-supplement", "valueCanonical": supplement})
    return {"resourceType": "Parameters", "parameter": params}


def _parts(parameter: dict) -> dict[str, dict]:
    return {p.get("name"): p for p in parameter.get("part", [])}


def _value(parameter: dict | None) -> tuple[str | None, Any]:
    for key, value in (parameter or {}).items():
        if key.startswith("value"):
            kind = key[5:]
            return (kind if kind == "Coding" else kind[0].lower() + kind[1:]), value
    return None, None


def lookup_result(parameters: dict) -> LookupResult:
    single: dict[str, Any] = {}
    designations, properties, supplements = [], [], []
    for parameter in parameters.get("parameter", []):
        name = parameter.get("name")
        if name == "designation":
            parts = _parts(parameter)
            designations.append(Designation(
                _value(parts.get("value"))[1], _value(parts.get("language"))[1],
                coding_from(_value(parts.get("use"))[1]), _value(parts.get("source"))[1]))
        elif name == "used-supplement":
            supplements.append(_value(parameter)[1])
        elif name == "property":
            parts = _parts(parameter)
            kind, value = _value(parts.get("value"))
            if kind == "Coding":
                value = coding_from(value)
            elif kind == "decimal":
                value = Decimal(str(value))
            properties.append(PropertyValue(_value(parts.get("code"))[1], value, kind or "string",
                                            _value(parts.get("description"))[1]))
        else:
            single[name] = _value(parameter)[1]
    return LookupResult(
        name=single.get("name"), system=single.get("system"), version=single.get("version"),
        code=single.get("code"), display=single.get("display"), definition=single.get("definition"),
        abstract=bool(single.get("abstract", False)), designations=tuple(designations),
        properties=tuple(properties), used_supplements=tuple(supplements),
    )


# --- $translate --------------------------------------------------------------------------------


def translate_parameters(result: TranslateResult, version: FhirVersion) -> dict:
    """On R4, a request in R4's dialect (R4-only names) gets R4's `match.source` (the ConceptMap's
    uri) on each match. Otherwise `source`, if present, is the source-side Coding of an R5
    reverse translation, as the HL7 test suite expects."""
    r4_dialect = result.dialect == FhirVersion.R4.value
    params: list[dict] = [{"name": "result", "valueBoolean": result.result}]
    if result.message:
        params.append({"name": "message", "valueString": result.message})
    for match in result.matches:
        name, code = relationship_for(version, match.relationship)
        parts: list[dict] = [{"name": name, "valueCode": code},
                             {"name": "concept", "valueCoding": coding_dict(match.concept)}]
        if match.origin_map:
            parts.append({"name": "originMap", "valueCanonical": match.origin_map})
            if r4_dialect and version is FhirVersion.R4:
                parts.append({"name": "source", "valueUri": match.origin_map})
        if match.source is not None and not (r4_dialect and version is FhirVersion.R4):
            parts.append({"name": "source", "valueCoding": coding_dict(match.source)})
        params.append({"name": "match", "part": parts})
    return {"resourceType": "Parameters", "parameter": params}


def translate_result(parameters: dict) -> TranslateResult:
    result, message, matches = False, None, []
    for parameter in parameters.get("parameter", []):
        name = parameter.get("name")
        if name == "result":
            result = bool(parameter.get("valueBoolean"))
        elif name == "message":
            message = parameter.get("valueString")
        elif name == "match":
            relationship, concept, origin, source = "related-to", None, None, None
            for part in parameter.get("part", []):
                kind, value = _value(part)
                if part.get("name") in ("relationship", "equivalence"):
                    relationship = relationship_from(part["name"], value) or relationship
                elif part.get("name") == "concept":
                    concept = coding_from(value)
                elif part.get("name") == "originMap":
                    origin = value
                elif part.get("name") == "source" and kind == "Coding":
                    source = coding_from(value)
                elif part.get("name") == "source" and origin is None:
                    origin = value
            matches.append(TranslateMatch(relationship, concept or Coding(), origin, source))
    return TranslateResult(result=result, matches=tuple(matches), message=message)


# --- $subsumes ---------------------------------------------------------------------------------


def subsumes_parameters(result: SubsumesResult) -> dict:
    return {"resourceType": "Parameters", "parameter": [{"name": "outcome", "valueCode": result.outcome}]}


# --- $validate-code ----------------------------------------------------------------------------

def validate_parameters(result: ValidateCodeResult, version: FhirVersion) -> dict:
    """The $validate-code answer; the same names on R4 and R5 (the ecosystem expects R5's outputs
    on R4 servers too)."""
    params: list[dict] = [{"name": "result", "valueBoolean": result.result}]
    if result.code is not None:
        params.append({"name": "code", "valueCode": result.code})
    if result.system is not None:
        params.append({"name": "system", "valueUri": result.system})
    if result.version is not None:
        params.append({"name": "version", "valueString": result.version})
    if result.display is not None:
        params.append({"name": "display", "valueString": result.display})
    if result.message:
        params.append({"name": "message", "valueString": result.message})
    if result.issues:
        params.append({"name": "issues", "resource": issues_outcome(result.issues)})
    if result.inactive is not None:
        params.append({"name": "inactive", "valueBoolean": result.inactive})
    if result.status:
        params.append({"name": "status", "valueCode": result.status})
    if result.codeable_concept is not None:
        params.append({"name": "codeableConcept", "valueCodeableConcept": result.codeable_concept})
    for canonical in result.caused_by_unknown_system:
        params.append({"name": "x-caused-by-unknown-system", "valueCanonical": canonical})
    for canonical in result.unknown_systems:
        params.append({"name": "x-unknown-system", "valueCanonical": canonical})
    if result.normalized_code:
        params.append({"name": "normalized-code", "valueCode": result.normalized_code})
    return {"resourceType": "Parameters", "parameter": params}


def batch_validate_parameters(results: list[ValidateCodeResult | TerminologyError], version: FhirVersion) -> dict:
    """$batch-validate-code: one `validation` per request, a Parameters answer or, for a request
    that failed, a plain OperationOutcome (severity, code, text: what the HL7 tests expect there)."""
    parameters = []
    for item in results:
        if isinstance(item, TerminologyError):
            resource = brief_outcome(item)
        else:
            resource = validate_parameters(item, version)
        parameters.append({"name": "validation", "resource": resource})
    # an empty `parameter` array is not valid FHIR JSON: a batch without validations is just {}
    return {"resourceType": "Parameters", "parameter": parameters} if parameters else {"resourceType": "Parameters"}
