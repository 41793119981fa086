"""Why a $translate found nothing: the codes it was given, checked against their code systems.

"Not mapped" is only the answer when the codes exist. A code its code system does not have
(Unknown_Code_in_Version, as $validate-code words it), or a code system we do not know
(UNKNOWN_CODESYSTEM), is said in an issue, so a person checking a mapping table learns that the
code is wrong rather than that the mapping is missing. A code that is missing only its dot (ICD-10-CM
codes travel on claims without one: M6281) gets a hint naming the dotted code.
Only a result=false answer is checked: a match is its own proof, and the checks cost lookups.
"""

from __future__ import annotations

from collections.abc import Callable

from .entries import Coding, Concept
from .models import Issue, TranslateRequest
from .registry import Registry
from .validate.issues import issue

# A longer code is no code of any code system we hold; trying each dot position stays cheap.
_LONGEST_DOTTED_GUESS = 32


def dotted_form(code: str, find: Callable[[str], Concept | None]) -> tuple[str, str] | None:
    """The code and display of the concept `code` names once a dot is put in (ICD-10 puts it after
    the category's three characters, so that place is tried first), or None."""
    if "." in code or not 3 < len(code) <= _LONGEST_DOTTED_GUESS:
        return None
    for place in (3, *(i for i in range(1, len(code)) if i != 3)):
        concept = find(f"{code[:place]}.{code[place:]}")
        if concept is not None:
            return concept.code, concept.display or ""
    return None


def _paths(request: TranslateRequest, side: str, count: int) -> tuple[str, str]:
    """The FHIRPath-like names of a given coding's code and system, in the dialect of the request."""
    form = request.source_form if side == "source" else request.target_form
    form = form or ("coding" if count == 1 else "codeableConcept")
    r4 = request.dialect == "R4" and side == "source"
    prefix = "" if r4 else side
    if form == "code":
        return (f"{prefix}Code" if prefix else "code"), (f"{prefix}System" if prefix else "system")
    if form == "coding":
        base = f"{prefix}Coding" if prefix else "coding"
    else:
        base = (f"{prefix}CodeableConcept" if prefix else "codeableConcept") + ".coding[{index}]"
    return f"{base}.code", f"{base}.system"


def _check(registry: Registry, coding: Coding, code_path: str, system_path: str) -> list[Issue]:
    if not coding.system or not coding.code:
        return []  # a target code of any code system: nothing to check it against
    if registry.find_code_system(coding.system) is None:
        return [issue("error", "not-found", "not-found", "UNKNOWN_CODESYSTEM", coding.system,
                      expression=system_path)]
    cs = registry.find_code_system(coding.system, coding.version)
    if cs is None or cs.content not in ("complete", "fragment"):
        return []  # an unknown version is the map's business
    if cs.find(coding.code) is not None:
        return []
    if cs.content == "fragment":  # it cannot say a code is missing, only that it does not hold it
        return [issue("warning", "code-invalid", "invalid-code", "UNKNOWN_CODE_IN_FRAGMENT", code=coding.code,
                      system=cs.url, version=cs.version or "", expression=code_path)]
    found = [issue("error", "code-invalid", "invalid-code", "Unknown_Code_in_Version", coding.code, cs.url,
                   cs.version or "", expression=code_path)]
    dotted = dotted_form(coding.code, cs.find)
    if dotted is not None:
        found.append(issue("information", "business-rule", "code-rule", "TRANSLATE_CODE_WITHOUT_DOT", coding.code,
                           cs.url, *dotted, expression=code_path))
    return found


def given_code_issues(registry: Registry, request: TranslateRequest) -> tuple[Issue, ...]:
    """The issues of the codes a result=false $translate was given, source side first."""
    found: list[Issue] = []
    for side, codings in (("source", request.source), ("target", request.target)):
        code_path, system_path = _paths(request, side, len(codings))
        for index, coding in enumerate(codings):
            found.extend(_check(registry, coding, code_path.format(index=index), system_path.format(index=index)))
    return tuple(dict.fromkeys(found))
