"""$validate-code: one coding against its code system (known? which version? is the concept
there, with that display, active?). Membership of the value set is membership.py's.
"""

from __future__ import annotations

from dataclasses import replace

from ..entries import Coding
from ..evaluation import members_with_code
from .context import CheckedCoding, ValidationContext, concept_status, inactive_text, issue_paths
from .display import check_display, display_for
from .issues import issue
from .versions import choose_version


def check_coding(ctx: ValidationContext, coding: Coding, index: int) -> CheckedCoding:
    """What checking the `index`th coding of the request in its code system found out."""
    request = ctx.request
    paths = issue_paths(request.form, index)
    checked = CheckedCoding(coding)
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
        if cs.content == "not-present":  # nothing can be said of the code: as of an unknown system
            checked.caused_by, checked.skip_membership = cs.canonical, True
            checked.issues.append(issue("error", "not-found", "not-found", "CODESYSTEM_CONTENT_NOT_PRESENT", cs.url,
                                        cs.version or "", expression=paths["system"]))
            return checked
        if request.membership_only:
            return checked  # only membership was asked about
        if cs.content == "fragment":
            checked.issues.append(issue("warning", "code-invalid", "invalid-code", "UNKNOWN_CODE_IN_FRAGMENT",
                                        code=coding.code, system=cs.url, version=cs.version or "",
                                        expression=paths["code"], in_message=False))
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
                                    inactive_text(concept), concept.code, expression=paths[""]))
    elif concept_status(concept) == "deprecated":
        checked.issues.append(issue("warning", "business-rule", "code-comment", "DEPRECATED_CONCEPT_FOUND", "",
                                    concept.code, expression=paths[""]))
    return checked


def _no_system(ctx: ValidationContext, checked: CheckedCoding, paths: dict[str, str]) -> CheckedCoding:
    request = ctx.request
    if request.infer_system and ctx.evaluation is not None:
        systems = sorted({m.system for m in members_with_code(ctx.evaluation, checked.coding.code or "")})
        if len(systems) == 1:
            return check_coding(ctx, replace(checked.coding, system=systems[0]), 0)
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


def _unknown_system(ctx: ValidationContext, checked: CheckedCoding, paths: dict[str, str]) -> CheckedCoding:
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
