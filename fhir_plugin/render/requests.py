"""Typed requests -> the Parameters bodies TerminologyClient POSTs (R5 names; R4's for `reverse`).

Each encoder is the inverse of the server's parser in fhir_plugin/web/params*.py: a request
encoded here and parsed there is the request the caller built, so the engine behind the server
answers what the in-process service answers. What travels in headers instead (Accept-Language,
X-TOO-COSTLY-THRESHOLD) is chosen by the client. With fhirversions, the one place that knows
which of these names are R4's; no Flask here, as in the rest of the package.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .parameters import coding_dict
from ..terminology.entries import Coding
from ..terminology.models import (Criterion, ExpandRequest, LookupRequest, SubsumesRequest, TranslateRequest,
                                  ValidateCodeRequest)

JSON = dict[str, Any]


def _add(params: list[JSON], name: str, kind: str, value: object) -> None:
    # An empty string is "not given", as the engine reads it; sending it would turn the engine's
    # "missing code" into the server's "invalid value" and the two sides would word errors apart.
    if value is not None and value != "":
        params.append({"name": name, kind: value})


def _flag(params: list[JSON], name: str, value: bool | None) -> None:
    """A boolean, unless it is None: not given, so that the server, like the engine, does not echo it."""
    if value is not None:
        params.append({"name": name, "valueBoolean": value})


def _repeat(params: list[JSON], name: str, kind: str, values: Iterable[str]) -> None:
    for value in values:
        _add(params, name, kind, value)


def _codings(params: list[JSON], single: str, several: str, codings: Sequence[Coding]) -> None:
    if len(codings) == 1:
        params.append({"name": single, "valueCoding": coding_dict(codings[0])})
    elif codings:
        params.append({"name": several,
                       "valueCodeableConcept": {"coding": [coding_dict(c) for c in codings]}})


def _parameters(params: list[JSON]) -> JSON:
    return {"resourceType": "Parameters", "parameter": params}


def lookup_request_parameters(request: LookupRequest) -> JSON:
    """The Parameters body of a CodeSystem/$lookup request (the names are the same in R4 and R5)."""
    params: list[JSON] = []
    _add(params, "system", "valueUri", request.system)
    _add(params, "code", "valueCode", request.code)
    _add(params, "version", "valueString", request.version)
    if request.coding is not None:
        params.append({"name": "coding", "valueCoding": coding_dict(request.coding)})
    _add(params, "date", "valueDateTime", request.date)
    _add(params, "displayLanguage", "valueCode", request.display_language)
    _repeat(params, "property", "valueCode", request.properties)
    _repeat(params, "useSupplement", "valueCanonical", request.use_supplements)
    return _parameters(params)


def translate_request_parameters(request: TranslateRequest) -> JSON:
    """The Parameters body of a ConceptMap/$translate request.

    R5 names, except with `reverse`: that flag exists only in R4, and an R4 server reads it only
    beside R4's `coding`/`codeableConcept`, `targetsystem`, `source` and `target`.
    """
    r4 = request.reverse
    params: list[JSON] = []
    _codings(params, "coding" if r4 else "sourceCoding", "codeableConcept" if r4 else "sourceCodeableConcept",
             request.source)
    _codings(params, "targetCoding", "targetCodeableConcept", request.target)
    _add(params, "sourceSystem", "valueUri", request.source_system)
    _add(params, "targetsystem" if r4 else "targetSystem", "valueUri", request.target_system)
    _add(params, "source" if r4 else "sourceScope", "valueUri", request.source_scope)
    _add(params, "target" if r4 else "targetScope", "valueUri", request.target_scope)
    _add(params, "url", "valueUri", request.url)
    _add(params, "conceptMapVersion", "valueString", request.concept_map_version)
    if request.concept_map is not None:
        params.append({"name": "conceptMap", "resource": request.concept_map})
    if r4:
        params.append({"name": "reverse", "valueBoolean": True})
    return _parameters(params)


def subsumes_request_parameters(request: SubsumesRequest) -> JSON:
    """The Parameters body of a CodeSystem/$subsumes request."""
    params: list[JSON] = []
    _add(params, "codeA", "valueCode", request.code_a)
    _add(params, "codeB", "valueCode", request.code_b)
    _add(params, "system", "valueUri", request.system)
    _add(params, "version", "valueString", request.version)
    for name, coding in (("codingA", request.coding_a), ("codingB", request.coding_b)):
        if coding is not None:
            params.append({"name": name, "valueCoding": coding_dict(coding)})
    return _parameters(params)


def _canonicals(versions: Mapping[str, str]) -> list[str]:
    return [f"{url}|{version}" for url, version in versions.items()]


def validate_request_parameters(request: ValidateCodeRequest) -> JSON:
    """The Parameters body of CodeSystem/$validate-code (a request with `code_system_url`) or
    ValueSet/$validate-code; `accept_language` goes in the Accept-Language header instead.

    The concept goes in the form the request names: `code` (+ `system`/`systemVersion` on a value
    set, `url` + `version` on a code system, and `display`), `coding`, or `codeableConcept`. A
    server echoes the CodeableConcept it was given: `codeable_concept` when set, else one built
    from `codings`.
    """
    params: list[JSON] = []
    first = request.codings[0] if request.codings else Coding()
    if request.code_system_url is not None:
        _add(params, "url", "valueUri", request.code_system_url)
    else:
        _add(params, "url", "valueUri", request.url)
        _add(params, "valueSetVersion", "valueString", request.value_set_version)
        if request.value_set is not None:
            params.append({"name": "valueSet", "resource": request.value_set})
    if request.form == "coding" and request.codings:
        params.append({"name": "coding", "valueCoding": coding_dict(first)})
    elif request.form == "codeableConcept" and (request.codings or request.codeable_concept is not None):
        concept = request.codeable_concept
        if concept is None:
            concept = {"coding": [coding_dict(c) for c in request.codings]}
        params.append({"name": "codeableConcept", "valueCodeableConcept": concept})
    elif request.codings:
        _add(params, "code", "valueCode", first.code)
        if request.code_system_url is not None:
            _add(params, "version", "valueString", first.version)
        else:
            _add(params, "system", "valueUri", first.system)
            _add(params, "systemVersion", "valueString", first.version)
        _add(params, "display", "valueString", first.display)
    _add(params, "displayLanguage", "valueCode", request.display_language)
    _flag(params, "abstract", request.abstract)
    for name, value in (("activeOnly", request.active_only), ("inferSystem", request.infer_system),
                        ("lenient-display-validation", request.lenient_display),
                        ("valueset-membership-only", request.membership_only)):
        _flag(params, name, value or None)  # False is these flags' default: the same as not giving them
    _repeat(params, "default-valueset-version", "valueCanonical", request.default_value_set_version)
    _repeat(params, "system-version", "valueCanonical", _canonicals(request.versions.default))
    _repeat(params, "check-system-version", "valueCanonical", _canonicals(request.versions.check))
    _repeat(params, "force-system-version", "valueCanonical", _canonicals(request.versions.force))
    _repeat(params, "useSupplement", "valueCanonical", request.use_supplements)
    _add(params, "date", "valueDateTime", request.date)
    return _parameters(params)


def batch_request_parameters(requests: Iterable[ValidateCodeRequest]) -> JSON:
    """The Parameters body of a ValueSet/$batch-validate-code request: one `validation` each."""
    return _parameters([{"name": "validation", "resource": validate_request_parameters(r)} for r in requests])


def expand_request_parameters(request: ExpandRequest) -> JSON:
    """The Parameters body of a ValueSet/$expand request (the same names in R4 and R5);
    `accept_language` and `max_expansion` go in headers instead."""
    params: list[JSON] = []
    _add(params, "url", "valueUri", request.url)
    if request.value_set is not None:
        params.append({"name": "valueSet", "resource": request.value_set})
    _add(params, "valueSetVersion", "valueString", request.value_set_version)
    _add(params, "filter", "valueString", request.filter)
    _add(params, "date", "valueDateTime", request.date)
    _add(params, "offset", "valueInteger", request.offset)
    _add(params, "count", "valueInteger", request.count)
    _flag(params, "includeDesignations", request.include_designations)
    _repeat(params, "designation", "valueString", request.designations)
    _flag(params, "includeDefinition", request.include_definition)
    _flag(params, "activeOnly", request.active_only)
    _flag(params, "excludeNested", request.exclude_nested)
    _flag(params, "excludeNotForUI", request.exclude_not_for_ui)
    _flag(params, "excludePostCoordinated", request.exclude_post_coordinated)
    _add(params, "displayLanguage", "valueCode", request.display_language)
    _repeat(params, "exclude-system", "valueCanonical", request.exclude_systems)
    _repeat(params, "system-version", "valueCanonical", request.system_versions)
    _repeat(params, "check-system-version", "valueCanonical", request.check_system_versions)
    _repeat(params, "force-system-version", "valueCanonical", request.force_system_versions)
    _repeat(params, "property", "valueString", request.properties)
    _repeat(params, "useSupplement", "valueCanonical", request.use_supplements)
    _repeat(params, "default-valueset-version", "valueCanonical", request.default_value_set_versions)
    return _parameters(params)


def search_query(criteria: Mapping[str, str] | Sequence[Criterion]) -> list[tuple[str, str]]:
    """A search's criteria as the query pairs of `GET {type}?...`: `name:modifier`, alternatives
    joined by commas (a comma inside a value escaped, `\\,`); a mapping's values are one value each."""
    given = [Criterion(k, (v,)) for k, v in criteria.items()] if isinstance(criteria, Mapping) else criteria
    return [(c.name + (f":{c.modifier}" if c.modifier else ""), ",".join(v.replace(",", "\\,") for v in c.values))
            for c in given]
