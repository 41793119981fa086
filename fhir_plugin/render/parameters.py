"""Typed results <-> FHIR Parameters dicts, for both FHIR versions.

The web layer renders results with `*_parameters`; the client rebuilds the same results from a
server's answer with `*_result`. Version-specific names come from fhirversions.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from ..fhirversions import FhirVersion, relationship_for, relationship_from
from ..terminology.entries import Coding, Designation, PropertyValue
from ..terminology.errors import TerminologyError, error_classes, template
from ..terminology.models import (Issue, LookupResult, SubsumesResult, TranslateMatch, TranslateResult,
                                  ValidateCodeResult)
from ..terminology.outcome import (MESSAGE_ID_URL, brief_outcome, error_class_for, error_from_outcome,
                                   fields_from_text, issues_outcome, outcome_issues)

JSON = dict[str, Any]
_FIELD = re.compile(r"\{\w+\}")


def value_key(kind: str) -> str:
    return "value" + kind[0].upper() + kind[1:]


def coding_dict(coding: Coding) -> JSON:
    out: dict[str, Any] = {}
    for key in ("system", "version", "code", "display"):
        value = getattr(coding, key)
        if value is not None:
            out[key] = value
    return out


def coding_from(raw: object) -> Coding | None:
    if not isinstance(raw, dict):
        return None
    return Coding(raw.get("system"), raw.get("code"), raw.get("version"), raw.get("display"))


def _property_value(value: PropertyValue) -> Any:
    if isinstance(value.value, Coding):
        return coding_dict(value.value)
    return value.value


# --- $lookup -----------------------------------------------------------------------------------


def lookup_parameters(result: LookupResult, version: FhirVersion) -> JSON:
    params: list[JSON] = [{"name": "name", "valueString": result.name}]
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
        parts: list[JSON] = []
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
    _issues(params, result.issues)
    return {"resourceType": "Parameters", "parameter": params}


def _issues(params: list[JSON], issues: tuple[Issue, ...]) -> None:
    """The warnings of an answer (a code system named by an alias) as $validate-code carries its
    issues: an `issues` OperationOutcome. $lookup, $translate and $subsumes define no such output;
    it is there only when there is something to say."""
    if issues:
        params.append({"name": "issues", "resource": issues_outcome(issues)})


def _issues_of(parameters: JSON) -> tuple[Issue, ...]:
    found = next((p.get("resource") for p in _list(parameters.get("parameter")) if p.get("name") == "issues"), None)
    return outcome_issues(found) if isinstance(found, dict) else ()


def _parts(parameter: JSON) -> dict[str, JSON]:
    return {p.get("name"): p for p in parameter.get("part", [])}


def _value(parameter: JSON | None) -> tuple[str | None, Any]:
    for key, value in (parameter or {}).items():
        if key.startswith("value"):
            kind = key[5:]
            return (kind if kind == "Coding" else kind[0].lower() + kind[1:]), value
    return None, None


def lookup_result(parameters: JSON) -> LookupResult:
    single: dict[str, Any] = {}
    designations, properties, supplements = [], [], []
    for parameter in parameters.get("parameter", []):
        name = parameter.get("name")
        if name == "issues":
            continue
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
        name=str(single.get("name", "")), system=str(single.get("system", "")), version=single.get("version"),
        code=str(single.get("code", "")), display=single.get("display"), definition=single.get("definition"),
        abstract=bool(single.get("abstract", False)), designations=tuple(designations),
        properties=tuple(properties), used_supplements=tuple(supplements), issues=_issues_of(parameters),
    )


# --- $translate --------------------------------------------------------------------------------


def translate_parameters(result: TranslateResult, version: FhirVersion) -> JSON:
    """On R4, a request in R4's dialect (R4-only names) gets R4's `match.source` (the ConceptMap's
    uri) on each match. Otherwise `source`, if present, is the source-side Coding of an R5
    reverse translation, as the HL7 test suite expects."""
    r4_dialect = result.dialect == FhirVersion.R4.value
    params: list[JSON] = [{"name": "result", "valueBoolean": result.result}]
    if result.message:
        params.append({"name": "message", "valueString": result.message})
    for match in result.matches:
        name, code = relationship_for(version, match.relationship)
        parts: list[JSON] = [{"name": name, "valueCode": code},
                             {"name": "concept", "valueCoding": coding_dict(match.concept)}]
        if match.origin_map:
            parts.append({"name": "originMap", "valueCanonical": match.origin_map})
            if r4_dialect and version is FhirVersion.R4:
                parts.append({"name": "source", "valueUri": match.origin_map})
        if match.source is not None and not (r4_dialect and version is FhirVersion.R4):
            parts.append({"name": "source", "valueCoding": coding_dict(match.source)})
        params.append({"name": "match", "part": parts})
    _issues(params, result.issues)
    return {"resourceType": "Parameters", "parameter": params}


def translate_result(parameters: JSON) -> TranslateResult:
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
    return TranslateResult(result=result, matches=tuple(matches), message=message, issues=_issues_of(parameters))


# --- $subsumes ---------------------------------------------------------------------------------


def subsumes_parameters(result: SubsumesResult) -> JSON:
    params: list[JSON] = [{"name": "outcome", "valueCode": result.outcome}]
    _issues(params, result.issues)
    return {"resourceType": "Parameters", "parameter": params}


def subsumes_result(parameters: JSON, system: str, version: str | None) -> SubsumesResult:
    """The answer carries only the outcome (and warnings): the caller knows the code system and
    its version."""
    outcome = next((_value(p)[1] for p in _list(parameters.get("parameter")) if p.get("name") == "outcome"), None)
    return SubsumesResult(str(outcome), system, version, _issues_of(parameters))


# --- $validate-code ----------------------------------------------------------------------------

def validate_parameters(result: ValidateCodeResult, version: FhirVersion) -> JSON:
    """The $validate-code answer; the same names on R4 and R5 (the ecosystem expects R5's outputs
    on R4 servers too)."""
    params: list[JSON] = [{"name": "result", "valueBoolean": result.result}]
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


def batch_validate_parameters(results: list[ValidateCodeResult | TerminologyError], version: FhirVersion) -> JSON:
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


def _list(value: object) -> list[JSON]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


_SINGLE_OUTPUTS = {"code": "code", "system": "system", "version": "version", "display": "display",
                   "message": "message", "status": "status", "normalized-code": "normalized_code",
                   "codeableConcept": "codeable_concept", "inactive": "inactive"}


def validate_result(parameters: JSON) -> ValidateCodeResult:
    """The ValidateCodeResult of a $validate-code answer (the inverse of validate_parameters)."""
    found: dict[str, Any] = {}
    issues: tuple[Issue, ...] = ()
    caused_by, unknown = [], []
    result = False
    for parameter in _list(parameters.get("parameter")):
        name, value = parameter.get("name"), _value(parameter)[1]
        if name == "result":
            result = value is True
        elif name == "issues" and isinstance(parameter.get("resource"), dict):
            issues = outcome_issues(parameter["resource"])
        elif name == "x-caused-by-unknown-system":
            caused_by.append(str(value))
        elif name == "x-unknown-system":
            unknown.append(str(value))
        elif name in _SINGLE_OUTPUTS:
            found[_SINGLE_OUTPUTS[name]] = value
    return ValidateCodeResult(result=result, issues=issues, caused_by_unknown_system=tuple(caused_by),
                              unknown_systems=tuple(unknown), **found)


def _catalogue_id(issue_code: str, text: str) -> str | None:
    """The message id of the error of `issue_code` whose template words `text`. When several
    do, the one with the most words of its own wins, then the most specific class (two classes
    word "Must provide a value set" alike)."""
    best: tuple[int, int, str] | None = None
    for cls in error_classes():
        if cls.issue_code != issue_code:
            continue
        for message_id in sorted(cls.message_ids):
            wording = template(cls, message_id)
            try:
                fits = wording.format(**fields_from_text(cls, message_id, text)) == text
            except (KeyError, IndexError):  # the text does not fill this template's fields
                fits = False
            rank = (len(_FIELD.sub("", wording)), len(cls.__mro__), message_id)
            if fits and (best is None or rank[:2] > best[:2]):
                best = rank
    return best[2] if best else None


def batch_error(outcome: JSON) -> TerminologyError:
    """The TerminologyError of a failed batch entry. The batch answers it with severity, code and
    text only (the HL7 tests' shape), so the message id is found again from the text, which names
    one error of that issue code; the class, fields and text are then those of the error raised.
    An entry has no HTTP status of its own: the error gets its class's."""
    issues = outcome_issues(outcome)
    if not issues:
        return error_from_outcome(TerminologyError.status, outcome)
    first = issues[0]
    message_id = first.message_id or _catalogue_id(first.code, first.text)
    if message_id is None:
        status = next((cls.status for cls in error_classes() if cls.issue_code == first.code), TerminologyError.status)
        return error_from_outcome(status, outcome)
    raw = _list(outcome.get("issue"))
    extension = [{"url": MESSAGE_ID_URL, "valueString": message_id}, *_list(raw[0].get("extension"))]
    identified = {**outcome, "issue": [{**raw[0], "extension": extension}, *raw[1:]]}
    error = error_from_outcome(error_class_for(message_id, TerminologyError.status).status, identified)
    error.outcome = dict(outcome)  # what the server sent, not the copy with the message id put back
    return error


def batch_validate_result(parameters: JSON) -> list[ValidateCodeResult | TerminologyError]:
    """The answers of a $batch-validate-code, in order: a ValidateCodeResult per `validation`
    Parameters, the TerminologyError (batch_error) per `validation` OperationOutcome."""
    results: list[ValidateCodeResult | TerminologyError] = []
    for parameter in _list(parameters.get("parameter")):
        resource = parameter.get("resource")
        if parameter.get("name") != "validation" or not isinstance(resource, dict):
            continue
        if resource.get("resourceType") == "OperationOutcome":
            results.append(batch_error(resource))
        else:
            results.append(validate_result(resource))
    return results
