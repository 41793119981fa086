"""Parameters -> typed $validate-code and $batch-validate-code requests.

CodeSystem/$validate-code names the code system `url` (R4, R5); STU3 clients send `system`, and
both are accepted. ValueSet/$validate-code takes `system` + `systemVersion` for the code.
The version-control parameters (`system-version`, `check-system-version`,
`force-system-version`) and the HL7 ecosystem ones (`inferSystem`, `lenient-display-validation`,
`valueset-membership-only`, `default-valueset-version`) are accepted on both endpoints.
"""

from __future__ import annotations

from typing import Any

from ..terminology.entries import CodeSystemEntry, Coding
from ..terminology.errors import InvalidRequest, InvalidValidateRequest, TerminologyError
from ..terminology.models import ValidateCodeRequest, VersionRules
from .params import Inline, Param, collect, instance_canonical, parameter_list

_COMMON = {
    "code": "code", "display": "string", "coding": "Coding", "codeableConcept": "CodeableConcept",
    "date": "dateTime", "abstract": "boolean", "displayLanguage": "code", "activeOnly": "boolean",
    "inferSystem": "boolean", "lenient-display-validation": "boolean", "valueset-membership-only": "boolean",
    "default-valueset-version": "string", "system-version": "string", "check-system-version": "string",
    "force-system-version": "string", "useSupplement": "string", "mode": "code", "valueSetMode": "code",
}
_REPEATING = frozenset({"system-version", "check-system-version", "force-system-version", "useSupplement",
                        "default-valueset-version"})
VS_SPEC = {**_COMMON, "url": "uri", "valueSet": "resource", "valueSetVersion": "string", "system": "uri",
           "systemVersion": "string", "context": "uri"}
CS_SPEC = {**_COMMON, "url": "uri", "system": "uri", "version": "string"}


def _concept(v: dict[str, Any], system: str | None, version: str | None) -> tuple[tuple[Coding, ...], str, dict[str, Any] | None]:
    """(codings, form, the CodeableConcept as given) from code+system, coding or codeableConcept."""
    given = [name for name in ("code", "coding", "codeableConcept") if name in v]
    if len(given) > 1:
        raise InvalidRequest("PARAM_EXCLUSIVE", parameters="'code', 'coding' and 'codeableConcept'", expression=given[1])
    if "coding" in v:
        coding = v["coding"]
        return (Coding(coding.system, coding.code, coding.version, coding.display),), "coding", None
    if "codeableConcept" in v:
        codings, raw = v["codeableConcept"]
        return codings, "codeableConcept", raw
    if "code" in v:
        return (Coding(system, v["code"], version, v.get("display")),), "code", None
    raise InvalidValidateRequest("VALIDATE_NO_CODE")


def _raw_codeable_concepts(params: list[Param]) -> dict[str, Any] | None:
    for param in params:
        if param.name == "codeableConcept" and isinstance(param.value, dict):
            return param.value
    return None


def _common(v: dict[str, Any], params: list[Param], accept_language: str | None) -> dict[str, Any]:
    if "codeableConcept" in v:
        v["codeableConcept"] = (v["codeableConcept"], _raw_codeable_concepts(params))
    return {
        "display_language": v.get("displayLanguage"), "accept_language": accept_language,
        "lenient_display": v.get("lenient-display-validation", False), "abstract": v.get("abstract"),
        "active_only": v.get("activeOnly", False), "infer_system": v.get("inferSystem", False),
        "membership_only": v.get("valueset-membership-only", False),
        "default_value_set_version": tuple(v.get("default-valueset-version", ())),
        "versions": VersionRules(
            default=VersionRules.parse(v.get("system-version", ())),
            check=VersionRules.parse(v.get("check-system-version", ())),
            force=VersionRules.parse(v.get("force-system-version", ()))),
        "use_supplements": tuple(v.get("useSupplement", ())), "date": v.get("date"),
    }


def valueset_validate_request(params: list[Param], instance: dict[str, Any] | None = None,
                              accept_language: str | None = None, inline: Inline | None = None) -> ValidateCodeRequest:
    """ValueSet/$validate-code; `instance` is the ValueSet of `ValueSet/{id}/$validate-code`."""
    v = collect(params, VS_SPEC, _REPEATING)
    common = _common(v, params, accept_language)
    codings, form, raw = _concept(v, v.get("system"), v.get("systemVersion"))
    url, vs_version, value_set = v.get("url"), v.get("valueSetVersion"), v.get("valueSet")
    if url and "|" in url:
        url, _, pinned = url.partition("|")
        vs_version = vs_version or pinned
    if instance is not None:
        if url and url != instance.get("url"):
            raise InvalidRequest("PARAM_CONFLICT", parameter="url", other=f"ValueSet/{instance.get('id')}", value=url, other_value=instance.get("url"),
                                 expression="url")
        value_set, url = instance, None
    elif value_set is not None:
        if value_set.get("resourceType") != "ValueSet":
            raise InvalidRequest("PARAM_BAD_TYPE", parameter="valueSet", expected="a ValueSet", expression="valueSet")
        if inline is not None:
            value_set = inline(value_set, "parameter 'valueSet'")
    elif not url:
        raise InvalidValidateRequest("VALIDATE_NO_VALUESET", expression="url")
    return ValidateCodeRequest(codings=codings, form=form, codeable_concept=raw, url=url,
                               value_set_version=vs_version, value_set=value_set, **common)


def codesystem_validate_request(params: list[Param], instance: CodeSystemEntry | None = None,
                                accept_language: str | None = None) -> ValidateCodeRequest:
    """CodeSystem/$validate-code; `instance` is the code system of `CodeSystem/{id}/$validate-code`."""
    v = collect(params, CS_SPEC, _REPEATING)
    common = _common(v, params, accept_language)
    url, version = v.get("url"), v.get("version")
    if url and v.get("system") and url != v["system"]:
        raise InvalidRequest("PARAM_CONFLICT", parameter="url", other="system", value=url, other_value=v["system"], expression="system")
    url = url or v.get("system")  # STU3 called it `system`
    if url and "|" in url:
        url, _, pinned = url.partition("|")
        version = version or pinned
    if instance is not None:
        url, version = instance_canonical(instance, ("url", "version"), (url, version))
    codings, form, raw = _concept(v, url, version)
    if url:  # the code system of the request applies to codings that do not name one
        codings = tuple(c if c.system else Coding(url, c.code, c.version or version, c.display) for c in codings)
    if not codings[0].system:
        raise InvalidValidateRequest("VALIDATE_NO_CODESYSTEM", expression="url")
    return ValidateCodeRequest(codings=codings, form=form, codeable_concept=raw,
                               code_system_url=url or codings[0].system, **common)


def batch_validate_requests(params: list[Param], accept_language: str | None = None, inline: Inline | None = None,
                            instance: dict[str, Any] | None = None) -> list[ValidateCodeRequest | TerminologyError]:
    """One request per `validation` parameter, each on top of the batch's own parameters. A
    validation that cannot be read is answered in place (its error), not by failing the batch."""
    shared = [p for p in params if p.name not in ("validation", "tx-resource")]
    requests: list[ValidateCodeRequest | TerminologyError] = []
    for param in params:
        if param.name != "validation":
            continue
        if param.kind != "resource" or not isinstance(param.value, dict) \
                or param.value.get("resourceType") != "Parameters":
            requests.append(InvalidRequest("PARAM_BAD_TYPE", parameter="validation", expected="a Parameters resource"))
            continue
        try:
            own = parameter_list(param.value)
            names = {p.name for p in own}
            merged = [p for p in shared if p.name not in names] + own
            requests.append(valueset_validate_request(merged, instance, accept_language, inline))
        except TerminologyError as error:
            requests.append(error)
    return requests

