"""CodeSystem/$validate-code and ValueSet/$validate-code (and $batch-validate-code).

Spec: https://hl7.org/fhir/R5/valueset-operation-validate-code.html and
codesystem-operation-validate-code.html. The behaviour beyond the spec (which issues, with which
wording, codes and expressions, and what goes into `message`) follows the HL7 terminology test
suite, whose expected answers come from the HL7 reference servers (docs/hl7-tx-tests.md).

Answers are not errors: an unknown code, a wrong display or an unknown code system is
`result=false` with issues. Only an unknown value set, a broken value set definition or a
malformed request raises.

One coding is checked in three steps: its code system (known? which version?), the concept in it
(known? display? active?), then membership of the value set. A CodeableConcept is valid when one
of its codings is; every coding is checked and reported.
"""

from __future__ import annotations

from dataclasses import replace

from .errors import InvalidValidateRequest, TerminologyError, message
from .models import Coding
from .registry import Registry
from .validate_context import (ValidateCodeRequest, ValidateCodeResult, _Checked, _concept_status, _Context,
                               _inactive_text, _paths, _provided)
from .validate_display import Issue, check_display, check_language_list, display_for, issue
from .validate_status import code_system_notes, deprecated_in_value_set, value_set_notes
from .validate_versions import choose_version
from .valueset import Member, members_with_code


def _check_coding(ctx: _Context, coding: Coding, index: int) -> _Checked:
    request = ctx.request
    paths = _paths(request.form, index)
    checked = _Checked(coding)
    system = coding.system
    if not system:
        return _no_system(ctx, checked, paths)
    if ctx.registry.resource_versions("ValueSet", system) and not ctx.registry.code_system_versions(system):
        checked.issues.append(issue("error", "invalid", "invalid-data", "Terminology_TX_System_ValueSet2", system,
                                    expression=paths["system"]))
        return checked
    versions = ctx.registry.code_system_versions(system)
    if not versions:
        return _unknown_system(ctx, checked, paths)
    cs, version_issues, unknown_version = choose_version(ctx, coding, versions, paths)
    checked.issues.extend(version_issues)
    checked.caused_by = unknown_version
    if cs is None:
        return checked
    if cs.content == "supplement":  # no version is reported: it is not a code system one may use
        checked.issues.append(issue("error", "invalid", "invalid-data", "CODESYSTEM_CS_NO_SUPPLEMENT", cs.canonical,
                                    expression=paths["system"]))
        return checked
    cs = ctx.supplemented(cs)
    checked.cs = cs
    if unknown_version or any(i.severity == "error" for i in version_issues):
        # The code is still looked up (display, version) in the version the value set means,
        # but membership is not judged against a version the coding did not ask for.
        checked.skip_membership = True
        concept = cs.find(coding.code or "")
        if concept is not None:
            checked.concept, checked.display = concept, display_for(concept, cs, ctx.languages)
        return checked
    concept = cs.find(coding.code or "")
    if concept is None:
        if request.membership_only:
            return checked  # only membership was asked about
        if cs.content == "fragment":
            checked.issues.append(issue("warning", "code-invalid", "invalid-code", "UNKNOWN_CODE_IN_FRAGMENT",
                                        coding.code, cs.url, cs.version or "", expression=paths["code"],
                                        in_message=False))
            checked.valid = checked.in_vs = True
            checked.skip_membership = True
            return checked
        checked.issues.append(issue("error", "code-invalid", "invalid-code", "Unknown_Code_in_Version", coding.code,
                                    cs.url, cs.version or "", expression=paths["code"]))
        return checked
    checked.concept = concept
    checked.valid = True
    checked.display = display_for(concept, cs, ctx.languages)
    if concept.code != coding.code:
        checked.issues.append(issue("information", "business-rule", "code-rule", "CODE_CASE_DIFFERENCE", coding.code,
                                    concept.code, cs.canonical, expression=paths["code"], in_message=False))
    if coding.display is not None and not request.membership_only:
        problem = check_display(coding.display, concept, cs, cs.url, ctx.languages, request.lenient_display,
                                paths["display"])
        if problem is not None:
            checked.issues.append(problem)
            if problem.severity == "error":
                checked.valid = False
    if concept.inactive:
        checked.issues.append(issue("warning", "business-rule", "code-comment", "INACTIVE_CONCEPT_FOUND",
                                    _inactive_text(concept), concept.code, expression=paths[""]))
    elif _concept_status(concept) == "deprecated":
        checked.issues.append(issue("warning", "business-rule", "code-comment", "DEPRECATED_CONCEPT_FOUND", "",
                                    concept.code, expression=paths[""]))
    return checked


def _no_system(ctx: _Context, checked: _Checked, paths: dict[str, str]) -> _Checked:
    request = ctx.request
    if request.infer_system and ctx.evaluation is not None:
        systems = sorted({m.system for m in members_with_code(ctx.evaluation, checked.coding.code or "")})
        if len(systems) == 1:
            return _check_coding(ctx, replace(checked.coding, system=systems[0]), 0)
        if systems:
            checked.issues.append(issue("error", "not-found", "cannot-infer",
                                        "Unable_to_resolve_system__value_set_has_multiple_matches",
                                        checked.coding.code, ctx.vs_label, "[" + ", ".join(systems) + "]",
                                        expression=paths["code"]))
        else:
            checked.issues.append(issue("error", "not-found", "cannot-infer", "UNABLE_TO_INFER_CODESYSTEM",
                                        checked.coding.code, ctx.vs_label, expression=paths["code"]))
        return checked
    checked.issues.append(issue("warning", "invalid", "invalid-data", "Coding_has_no_system__cannot_validate",
                                expression=paths[""]))
    return checked


def _unknown_system(ctx: _Context, checked: _Checked, paths: dict[str, str]) -> _Checked:
    system = checked.coding.system or ""
    relative = ":" not in system
    if relative:
        checked.issues.append(issue("error", "invalid", "invalid-data", "Terminology_TX_System_Relative",
                                    expression=paths["system"]))
    if ctx.includes_system(system) and not relative:
        # The value set is about this system: nothing can be said beyond "unknown system".
        checked.caused_by = system
        checked.skip_membership = True
        checked.issues.append(issue("error", "not-found", "not-found", "UNKNOWN_CODESYSTEM", system,
                                    expression=paths["system"]))
        return checked
    checked.unknown_system = system
    if checked.coding.version and not relative:  # the version asked for is named too
        checked.issues.append(issue("error", "not-found", "not-found", "UNKNOWN_CODESYSTEM_VERSION_NONE", system,
                                    checked.coding.version, expression=paths["system"]))
        return checked
    message_id = "UNKNOWN_CODESYSTEM" if relative or ctx.request.code_system_url else "UNKNOWN_CODESYSTEM_UNQUOTED"
    found = issue("error", "not-found", "not-found", message_id, system, expression=paths["system"])
    checked.issues.append(replace(found, message_id="UNKNOWN_CODESYSTEM"))  # one catalogue entry, two wordings
    return checked


def _member(ctx: _Context, checked: _Checked) -> Member | None:
    """The value set member the checked coding is (its concept, in the chosen version), if any."""
    if ctx.evaluation is None:
        return None
    code = checked.concept.code if checked.concept else checked.coding.code
    compose = (ctx.value_set or {}).get("compose") or {}
    if checked.concept is not None and checked.concept.inactive and (
            ctx.request.active_only or compose.get("inactive") is False):
        return None
    if checked.concept is not None and checked.concept.abstract and ctx.request.abstract is False:
        return None
    # Which version applies was settled by choose_version (with mismatch issues); the value set
    # evaluation may have used another version of the same code system for its member list. Only
    # when the value set includes several versions of the system is membership per version.
    per_version = checked.cs is not None and checked.coding.system in ctx.evaluation.multi_version_systems
    for member in members_with_code(ctx.evaluation, code):
        if member.system != checked.coding.system:
            continue
        if per_version and member.version is not None and member.version != checked.cs.version:
            continue
        return member
    return None


def _membership(ctx: _Context, checked: _Checked, index: int, report_as_error: bool) -> None:
    request = ctx.request
    paths = _paths(request.form, index)
    if checked.skip_membership:
        # No verdict and no not-in-vs issue; whether the code is among the members still decides
        # which coding of a CodeableConcept is reported (and whether one is "in" at all).
        checked.in_vs = checked.valid or (checked.cs is not None and _member(ctx, checked) is not None)
        return
    member = _member(ctx, checked)
    checked.in_vs = member is not None
    if member is not None and (note := deprecated_in_value_set(member, ctx.vs_label, paths["code"])):
        checked.issues.append(note)
    concept = checked.concept
    if not checked.in_vs and concept is not None:
        compose = (ctx.value_set or {}).get("compose") or {}
        if concept.inactive and (request.active_only or compose.get("inactive") is False):
            checked.issues.append(issue("error", "business-rule", "code-rule", "STATUS_CODE_WARNING_CODE",
                                        "not active", concept.code, expression=paths["code"]))
        if concept.abstract and request.abstract is False:
            checked.issues.append(issue("error", "business-rule", "code-rule", "ABSTRACT_CODE_NOT_ALLOWED",
                                        checked.coding.system, concept.code, expression=paths["code"]))
    if checked.in_vs:
        return
    checked.valid = False
    if report_as_error:
        checked.issues.append(issue("error", "code-invalid", "not-in-vs",
                                    "None_of_the_provided_codes_are_in_the_value_set_one", "", ctx.vs_label,
                                    _provided(checked.coding), expression=paths["code"]))
    else:
        checked.issues.append(issue("information", "code-invalid", "this-code-not-in-vs",
                                    "None_of_the_provided_codes_are_in_the_value_set_one", "", ctx.vs_label,
                                    _provided(checked.coding), expression=paths["code"], in_message=False))


# --- the operation -----------------------------------------------------------------------------


def validate_code(registry: Registry, request: ValidateCodeRequest) -> ValidateCodeResult:
    """Validate the request's code, Coding or CodeableConcept. Raises only for request errors and
    an unknown value set."""
    check_language_list(request.display_language)
    if not request.codings:
        raise InvalidValidateRequest("VALIDATE_NO_CODE", expression="code")
    ctx = _Context(registry, request)
    if ctx.vs_problem is not None and ctx.vs_unknown_system is None:
        return _broken_value_set(ctx)
    cc = request.form == "codeableConcept"
    results: list[_Checked] = []
    for index, coding in enumerate(request.codings):
        checked = _check_coding(ctx, coding, index)
        if request.code_system_url is None:
            _membership(ctx, checked, index, report_as_error=not cc)
        elif request.code_system_url is not None:
            checked.in_vs = checked.valid
        if checked.concept is not None and checked.cs is not None:
            checked.issues.extend(code_system_notes(checked.cs.resource))
        results.append(checked)
    if ctx.value_set is not None:
        results[0].issues.extend(value_set_notes(ctx.value_set, ctx.evaluation))
    return _result(ctx, results)


def _broken_value_set(ctx: _Context) -> ValidateCodeResult:
    assert ctx.vs_problem is not None
    coding = ctx.request.codings[0]
    cc = ctx.request.form == "codeableConcept"
    cs = ctx.registry.find_code_system(coding.system, coding.version) if coding.system else None
    concept = cs.find(coding.code or "") if cs else None
    return ValidateCodeResult(
        result=False, code=None if cc else coding.code, system=None if cc else coding.system,
        version=cs.version if cs and not cc else None, display=concept.display if concept and not cc else None,
        message=ctx.vs_problem.text, issues=(ctx.vs_problem,), codeable_concept=ctx.request.codeable_concept)


def _result(ctx: _Context, results: list[_Checked]) -> ValidateCodeResult:
    request = ctx.request
    cc = request.form == "codeableConcept"
    issues: list[Issue] = []
    for checked in results:
        issues.extend(checked.issues)
    ok = any(c.valid and c.in_vs for c in results)
    if cc and request.code_system_url is None and not any(c.in_vs for c in results) and not any(
            c.caused_by for c in results):
        issues.insert(0, issue("error", "code-invalid", "not-in-vs", "TX_GENERAL_CC_ERROR_MESSAGE", ctx.vs_label))
    if any(i.severity == "error" for i in issues):
        ok = False
    # The concept reported: the first good coding, else the first one found in its code system.
    best = next((c for c in results if c.valid and c.in_vs), None)
    if best is None and not cc:
        best = results[0]
    if best is None:
        best = next((c for c in results if c.in_vs), None)
    code = system = version = display = None
    inactive = status = normalized = None
    if best is not None:
        code, system = best.coding.code, best.coding.system
        if best.cs is not None:
            version = best.cs.version
        display = best.display
        if best.concept is not None:
            if best.concept.inactive:
                inactive = True
                status = _concept_status(best.concept)
            elif _concept_status(best.concept) == "deprecated":  # reported, though still active
                status = "deprecated"
            if best.concept.code != best.coding.code:
                normalized = best.concept.code
    texts = [i.text for i in issues if i.in_message and i.severity in ("error", "warning")]
    if not texts:
        texts = [i.text for i in issues if i.in_message and i.severity == "information"]
    return ValidateCodeResult(
        result=ok, code=code, system=system, version=version, display=display,
        message="; ".join(dict.fromkeys(texts)) or None, issues=tuple(issues), inactive=inactive, status=status,
        codeable_concept=request.codeable_concept,
        caused_by_unknown_system=tuple(dict.fromkeys(c.caused_by for c in results if c.caused_by)),
        unknown_systems=tuple(dict.fromkeys(c.unknown_system for c in results if c.unknown_system)),
        normalized_code=normalized,
    )


def batch_validate(registry: Registry, requests: list[ValidateCodeRequest | TerminologyError]
                   ) -> list[ValidateCodeResult | TerminologyError]:
    """Each request on its own; one that fails does not fail the others."""
    results: list[ValidateCodeResult | TerminologyError] = []
    for request in requests:
        if isinstance(request, TerminologyError):
            results.append(request)
            continue
        try:
            results.append(validate_code(registry, request))
        except TerminologyError as error:
            results.append(error)
    return results


__all__ = ["ValidateCodeRequest", "ValidateCodeResult", "Issue", "validate_code", "batch_validate", "message"]
