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

import copy
from dataclasses import dataclass, field, replace

from .errors import InvalidValidateRequest, TerminologyError, UnknownCodeSystem, UnknownValueSet, message
from .models import CodeSystemEntry, Coding, Concept
from .registry import Registry
from .validate_display import Issue, check_display, check_language_list, display_for, issue
from .validate_versions import VersionRules, choose_version
from .valueset import Evaluation, evaluate, resolve_value_set


@dataclass(frozen=True, slots=True)
class ValidateCodeRequest:
    """Either a value set (`url`[+`value_set_version`] or inline `value_set`) or, for
    CodeSystem/$validate-code, `code_system_url` (+ the coding's version). `form` says how the
    concept was given: "code" (code+system+display), "coding" or "codeableConcept"; it decides the
    FHIRPath expressions of the issues."""

    codings: tuple[Coding, ...] = ()
    form: str = "code"
    codeable_concept: dict | None = None  # the CodeableConcept as given, echoed back
    url: str | None = None
    value_set_version: str | None = None
    value_set: dict | None = None
    code_system_url: str | None = None
    display_language: str | None = None
    accept_language: str | None = None
    lenient_display: bool = False
    abstract: bool | None = None
    active_only: bool = False
    infer_system: bool = False
    membership_only: bool = False
    default_value_set_version: tuple[str, ...] = ()
    versions: VersionRules = field(default_factory=VersionRules)
    use_supplements: tuple[str, ...] = ()
    date: str | None = None


@dataclass(frozen=True, slots=True)
class ValidateCodeResult:
    result: bool
    code: str | None = None
    system: str | None = None
    version: str | None = None
    display: str | None = None
    message: str | None = None
    issues: tuple[Issue, ...] = ()
    inactive: bool | None = None
    status: str | None = None
    codeable_concept: dict | None = None
    caused_by_unknown_system: tuple[str, ...] = ()
    unknown_systems: tuple[str, ...] = ()
    normalized_code: str | None = None


# --- one coding ------------------------------------------------------------------------------


@dataclass
class _Checked:
    """What validating one coding found out."""

    coding: Coding
    valid: bool = False  # the concept exists (or may: fragment) and is acceptable
    in_vs: bool = False
    cs: CodeSystemEntry | None = None
    concept: Concept | None = None
    issues: list[Issue] = field(default_factory=list)
    unknown_system: str | None = None  # x-unknown-system
    caused_by: str | None = None  # x-caused-by-unknown-system
    display: str | None = None
    skip_membership: bool = False


def _paths(form: str, index: int) -> dict[str, str]:
    if form == "code":
        return {"": "code", "code": "code", "system": "system", "display": "display", "version": "version"}
    base = "Coding" if form == "coding" else f"CodeableConcept.coding[{index}]"
    return {"": base, **{k: f"{base}.{k}" for k in ("code", "system", "display", "version")}}


def _provided(coding: Coding) -> str:
    """The code as the not-in-value-set message shows it: system[|version]#code ('display')."""
    text = f"{coding.system or ''}{'|' + coding.version if coding.version else ''}#{coding.code}"
    return f"{text} ('{coding.display}')" if coding.display else text


def _concept_status(concept: Concept) -> str | None:
    for prop in concept.properties:
        if prop.code == "status" and isinstance(prop.value, str):
            return prop.value
    return None


def _inactive_text(concept: Concept) -> str:
    status = _concept_status(concept)
    if status and status not in ("inactive", "active"):
        return f"{status} and inactive" if concept.inactive else status
    return "inactive"


class _Context:
    """One request: the registry, the value set and its members (computed once)."""

    def __init__(self, registry: Registry, request: ValidateCodeRequest):
        self.registry = registry
        self.request = request
        self.value_set: dict | None = None
        self.evaluation: Evaluation | None = None
        self.vs_problem: Issue | None = None
        self.vs_unknown_system: str | None = None
        self.languages = request.display_language or request.accept_language
        if request.code_system_url is None:
            self._load_value_set()

    @property
    def vs_label(self) -> str:
        vs = self.value_set or {}
        if not vs.get("url"):
            return "(unidentified)"
        return f"{vs['url']}|{vs['version']}" if vs.get("version") else vs["url"]

    def _load_value_set(self) -> None:
        request = self.request
        if request.value_set is not None:
            self.value_set = request.value_set
        else:
            self.value_set = resolve_value_set(self.registry, request.url, request.value_set_version)
        if not self.languages:
            self.languages = _expansion_parameter(self.value_set, "displayLanguage") or self.value_set.get("language")
        if self.value_set.get("contained"):  # its imports are rewritten below: never touch the caller's dict
            self.value_set = copy.deepcopy(self.value_set)
        self.registry = _with_contained(self.registry, self.value_set)
        try:
            self.evaluation = evaluate(self.registry, self.value_set)
        except UnknownValueSet as error:  # a broken import: an answer about this value set, not a 404
            self.vs_problem = Issue("error", "not-found", "not-found", error.text, error.message_id)
        except UnknownCodeSystem as error:
            self.vs_unknown_system = error.args_[0] if error.args_ else None
            self.vs_problem = issue("error", "not-found", "not-found", "UNKNOWN_CODESYSTEM", self.vs_unknown_system)

    def includes_system(self, system: str) -> bool:
        compose = (self.value_set or {}).get("compose") or {}
        return any(inc.get("system") == system for inc in compose.get("include", []) + compose.get("exclude", []))


def _expansion_parameter(value_set: dict, name: str) -> str | None:
    """A value the value set's author fixed for its expansions (valueset-expansion-parameter)."""
    for extension in ((value_set.get("compose") or {}).get("extension") or []):
        if extension.get("url") != "http://hl7.org/fhir/StructureDefinition/valueset-expansion-parameter":
            continue
        parts = {e.get("url"): e for e in extension.get("extension", [])}
        if parts.get("name", {}).get("valueCode") == name:
            value = parts.get("value", {})
            return next((v for k, v in value.items() if k.startswith("value")), None)
    return None


def _with_contained(registry: Registry, value_set: dict) -> Registry:
    """Contained value sets, importable as `#id`, on top of the registry for this request."""
    contained = [r for r in value_set.get("contained", []) if r.get("resourceType") == "ValueSet" and r.get("id")]
    if not contained:
        return registry
    local = {f"#{r['id']}": r.get("url") or f"urn:contained:{r['id']}" for r in contained}
    for include in (value_set.get("compose") or {}).get("include", []):
        if any(c in local for c in include.get("valueSet", [])):
            include["valueSet"] = [local.get(c, c) for c in include["valueSet"]]
    return Registry([{**r, "url": local[f"#{r['id']}"]} for r in contained], parent=registry)


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
    checked.cs = cs
    if unknown_version or any(i.severity == "error" for i in version_issues):
        # The code is still looked up (display, version) in the version the value set means,
        # but membership is not judged against a version the coding did not ask for.
        checked.skip_membership = True
        concept = cs.find(coding.code or "")
        if concept is not None:
            checked.concept, checked.display = concept, display_for(concept, cs, ctx.languages)
        return checked
    if cs.content == "supplement":
        checked.issues.append(issue("error", "invalid", "invalid-data", "CODESYSTEM_CS_NO_SUPPLEMENT", cs.canonical,
                                    expression=paths["system"]))
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
        systems = sorted({m.system for m in ctx.evaluation.members if m.code == checked.coding.code})
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
    message_id = "UNKNOWN_CODESYSTEM" if relative or ctx.request.code_system_url else "UNKNOWN_CODESYSTEM_UNQUOTED"
    found = issue("error", "not-found", "not-found", message_id, system, expression=paths["system"])
    checked.issues.append(replace(found, message_id="UNKNOWN_CODESYSTEM"))  # one catalogue entry, two wordings
    return checked


def _member(ctx: _Context, checked: _Checked) -> bool:
    """Whether the checked coding is in the value set (its concept, in the chosen version)."""
    if ctx.evaluation is None:
        return False
    code = checked.concept.code if checked.concept else checked.coding.code
    compose = (ctx.value_set or {}).get("compose") or {}
    if checked.concept is not None and checked.concept.inactive and (
            ctx.request.active_only or compose.get("inactive") is False):
        return False
    if checked.concept is not None and checked.concept.abstract and ctx.request.abstract is False:
        return False
    for member in ctx.evaluation.members:
        if member.system != checked.coding.system or member.code != code:
            continue
        # Which version applies was settled by choose_version (with mismatch issues); the value set
        # evaluation may have used another version of the same code system for its member list.
        return True
    return False


def _membership(ctx: _Context, checked: _Checked, index: int, report_as_error: bool) -> None:
    request = ctx.request
    paths = _paths(request.form, index)
    if checked.skip_membership:
        checked.in_vs = checked.valid
        return
    checked.in_vs = _member(ctx, checked)
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
        results.append(checked)
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
