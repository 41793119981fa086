"""$validate-code: is a checked coding a member of the value set, and what is said if not."""

from __future__ import annotations

from ..evaluation import Member, members_with_code
from .context import CheckedCoding, ValidationContext, issue_paths, provided_text
from .issues import issue
from .status import deprecated_in_value_set


def _member(ctx: ValidationContext, checked: CheckedCoding) -> Member | None:
    """The value set member the checked coding is (its concept, in the chosen version), if any."""
    if ctx.evaluation is None:
        return None
    code = checked.concept.code if checked.concept else checked.coding.code
    if code is None:  # every member has a code
        return None
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
    chosen_version = checked.cs.version if checked.cs is not None else None
    for member in members_with_code(ctx.evaluation, code):
        if member.system != checked.coding.system:
            continue
        if per_version and member.version is not None and member.version != chosen_version:
            continue
        return member
    return None


def check_membership(ctx: ValidationContext, checked: CheckedCoding, index: int, report_as_error: bool) -> None:
    """Judge membership (checked.in_vs, .valid) and add its issues; `report_as_error` for a single
    coding, information for one coding of a CodeableConcept."""
    request = ctx.request
    paths = issue_paths(request.form, index)
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
                                    provided_text(checked.coding), expression=paths["code"]))
    else:
        checked.issues.append(issue("information", "code-invalid", "this-code-not-in-vs",
                                    "None_of_the_provided_codes_are_in_the_value_set_one", "", ctx.vs_label,
                                    provided_text(checked.coding), expression=paths["code"], in_message=False))
