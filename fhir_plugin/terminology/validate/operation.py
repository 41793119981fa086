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

from collections.abc import Mapping
from dataclasses import replace

from .. import budget
from ..errors import InvalidValidateRequest, OverBudget, TerminologyError
from ..identifiers import Renamed, Renamer
from ..models import Issue, ValidateCodeRequest, ValidateCodeResult, VersionRules
from ..registry import Registry
from .codings import check_coding
from .context import CheckedCoding, ValidationContext, concept_status, issue_paths
from .display import check_language_list
from .issues import issue
from .membership import check_membership
from .status import code_system_notes, value_set_notes


# --- the operation -----------------------------------------------------------------------------


def validate_code(registry: Registry, request: ValidateCodeRequest) -> ValidateCodeResult:
    """Validate the request's code, Coding or CodeableConcept. Raises only for request errors and
    an unknown value set."""
    check_language_list(request.display_language)
    if not request.codings:
        raise InvalidValidateRequest("VALIDATE_NO_CODE", expression="code")
    renamed: list[Renamed] = []
    if _names_an_alias(request, registry.aliases):
        renamer = Renamer(registry)
        request = _given_in(request, renamer)
        renamed = renamer.found
    ctx = ValidationContext(registry, request)
    ctx.renamed.extend(renamed)
    if ctx.vs_problem is not None and ctx.vs_unknown_system is None:
        return _broken_value_set(ctx)
    cc = request.form == "codeableConcept"
    results: list[CheckedCoding] = []
    for index, coding in enumerate(request.codings):
        budget.check()
        checked = check_coding(ctx, coding, index)
        if request.code_system_url is None:
            check_membership(ctx, checked, index, report_as_error=not cc)
        elif request.code_system_url is not None:
            checked.in_vs = checked.valid
        if checked.concept is not None and checked.cs is not None:
            checked.issues.extend(code_system_notes(checked.cs.resource))
        results.append(checked)
    if ctx.value_set is not None:
        results[0].issues.extend(value_set_notes(ctx.value_set, ctx.evaluation))
    return _result(ctx, results)


def _names_an_alias(request: ValidateCodeRequest, aliases: Mapping[str, str]) -> bool:
    """Whether the request names a code system by an alias: a look-up per system it names."""
    for coding in request.codings:
        if coding.system in aliases:
            return True
    rules = request.versions
    return request.code_system_url in aliases or bool(rules.default or rules.check or rules.force) and any(
        url in aliases for urls in (rules.default, rules.check, rules.force) for url in urls)


def _given_in(request: ValidateCodeRequest, renamer: Renamer) -> ValidateCodeRequest:
    """The request with the code systems it names by an alias named by their URLs."""
    codings = tuple(renamer.coding(coding, issue_paths(request.form, index)["system"])
                    for index, coding in enumerate(request.codings))
    rules = request.versions
    versions = VersionRules(default=renamer.versions(rules.default, "system-version"),
                            check=renamer.versions(rules.check, "check-system-version"),
                            force=renamer.versions(rules.force, "force-system-version"))
    # the url of CodeSystem/$validate-code is the codings' system too: they are warned about
    code_system_url = renamer.aliases.get(request.code_system_url or "", request.code_system_url)
    return replace(request, codings=codings, versions=versions, code_system_url=code_system_url)


def _broken_value_set(ctx: ValidationContext) -> ValidateCodeResult:
    assert ctx.vs_problem is not None
    coding = ctx.request.codings[0]
    cc = ctx.request.form == "codeableConcept"
    cs = ctx.registry.find_code_system(coding.system, coding.version) if coding.system else None
    concept = cs.find(coding.code or "") if cs else None
    return ValidateCodeResult(
        result=False, code=None if cc else coding.code, system=None if cc else coding.system,
        version=cs.version if cs and not cc else None, display=concept.display if concept and not cc else None,
        message=ctx.vs_problem.text, issues=(ctx.vs_problem, *ctx.renamed_issues()),
        codeable_concept=ctx.request.codeable_concept)


def _result(ctx: ValidationContext, results: list[CheckedCoding]) -> ValidateCodeResult:
    request = ctx.request
    cc = request.form == "codeableConcept"
    issues: list[Issue] = []
    for checked in results:
        issues.extend(checked.issues)
    issues.extend(ctx.renamed_issues())
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
                status = concept_status(best.concept)
            elif concept_status(best.concept) == "deprecated":  # reported, though still active
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
    """Each request on its own; one that fails does not fail the others. Running out of the time
    budget is not a failure of one request: it stops the batch."""
    results: list[ValidateCodeResult | TerminologyError] = []
    for request in requests:
        if isinstance(request, TerminologyError):
            results.append(request)
            continue
        try:
            results.append(validate_code(registry, request))
        except OverBudget:
            raise
        except TerminologyError as error:
            results.append(error)
    return results

