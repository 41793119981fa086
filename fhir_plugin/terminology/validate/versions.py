"""$validate-code: which version of a code system a coding is checked against.

Sources, strongest first: `force-system-version`, the version the value set's include names,
`system-version` (a default), `check-system-version` (when nothing else chooses), else the
latest; a coding's own version is used when it fits, otherwise it gets a mismatch issue.
`check-system-version` otherwise says which versions are acceptable. A value set that includes
several versions of one system checks a coding in the included version that fits it. Versions
may be wildcards (`1.0.x`), as in the FHIR version-selection rules.
"""

from __future__ import annotations

import re

from ..entries import CodeSystemEntry, Coding
from ..evaluation import members_with_code
from ..models import Issue, VersionRules
from ..registry import version_key
from .context import ValidationContext
from .display import check_display
from .issues import issue


def is_wildcard(version: str | None) -> bool:
    return bool(version) and any(part in ("x", "*") for part in re.split(r"[.\-]", version or ""))


def version_matches(pattern: str | None, version: str | None) -> bool:
    """`1.0.x` matches 1.0.0 and 1.0.7; a plain version matches itself only."""
    if pattern is None:
        return True
    if version is None:
        return False
    if not is_wildcard(pattern):
        return pattern == version
    wanted, have = re.split(r"[.\-]", pattern), re.split(r"[.\-]", version)
    for index, part in enumerate(wanted):
        if part in ("x", "*"):
            return True
        if index >= len(have) or have[index] != part:
            return False
    return len(wanted) == len(have)


def pick(versions: list[CodeSystemEntry], wanted: str | None) -> CodeSystemEntry | None:
    """The newest of `versions` (newest first already) that `wanted` matches."""
    for cs in versions:
        if version_matches(wanted, cs.version):
            return cs
    return None


def known_versions(versions: list[CodeSystemEntry]) -> str:
    names = sorted((cs.version or "" for cs in versions), key=version_key)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def include_versions(ctx: ValidationContext, system: str) -> list[str]:
    """The versions the value set's includes name for `system`, in compose order."""
    compose = (ctx.value_set or {}).get("compose") or {}
    found = [i["version"] for i in compose.get("include", []) if i.get("system") == system and i.get("version")]
    return list(dict.fromkeys(found))


def _overloaded(ctx: ValidationContext, coding: Coding, versions: list[CodeSystemEntry], included: list[str]
                ) -> CodeSystemEntry | None:
    """A value set that includes several versions of one code system: the version a versionless
    coding is checked in is the newest included one whose part of the value set has the code,
    preferring one in which the coding's display is valid; else the newest that has the code at
    all; else the newest included one."""
    entries = sorted({id(cs): cs for v in included if (cs := pick(versions, v))}.values(),
                     key=lambda cs: version_key(cs.version), reverse=True)
    code = coding.code or ""
    members = {(m.version, m.code) for m in (members_with_code(ctx.evaluation, code) if ctx.evaluation else [])
               if m.system == coding.system}
    selected = [cs for cs in entries if (concept := cs.find(code)) is not None and (cs.version, concept.code) in members]
    if coding.display is not None:
        for cs in selected:
            concept = cs.find(code)
            assert concept is not None  # `selected` holds only versions that have the code
            if check_display(coding.display, concept, cs, cs.url, ctx.languages, False, "") is None:
                return cs
    having = [cs for cs in entries if cs.find(code) is not None]
    chosen = selected or having or entries
    return chosen[0] if chosen else None


def choose_version(ctx: ValidationContext, coding: Coding, versions: list[CodeSystemEntry], paths: dict[str, str]
                   ) -> tuple[CodeSystemEntry | None, list[Issue], str | None]:
    """(the code system version the value set means, issues, the unknown `url|version` if any).

    The value set side decides the version the code is checked in: the include's version, or one
    a parameter sets (force-system-version always, system-version when the include has none), or
    the latest. A coding that names another version gets a VALUESET_VALUE_MISMATCH* issue; one
    that names an unknown version also UNKNOWN_CODESYSTEM_VERSION (x-caused-by-unknown-system)."""
    rules: VersionRules = ctx.request.versions
    system = coding.system or ""
    issues: list[Issue] = []
    all_included = include_versions(ctx, system) if ctx.request.code_system_url is None else []
    included = all_included[0] if all_included else None
    if len(all_included) > 1 and not rules.force.get(system):
        if coding.version and any(version_matches(v, coding.version) for v in all_included):
            included = coding.version  # one of the included versions: checked in that one
        elif not coding.version:
            chosen = _overloaded(ctx, coding, versions, all_included)
            if chosen is not None:
                included = chosen.version
    # check-system-version only chooses when nothing else does (a versionless include, no
    # system-version); otherwise it judges the version chosen (VALUESET_VERSION_CHECK below).
    from_parameter = rules.force.get(system) or (
        None if included else rules.default.get(system) or rules.check.get(system))
    pattern = from_parameter or included
    if coding.version and version_matches(pattern, coding.version) and pick(versions, coding.version):
        cs = pick(versions, coding.version)
    else:
        cs = pick(versions, pattern)
    unknown = None
    if cs is None:
        # The version the value set (or a parameter) asks for does not exist. The code is still
        # looked up, for its display and version, in the coding's version, else the one a
        # system-version (or check-system-version) parameter names, else the latest;
        # the caller does not judge membership (x-caused-by-unknown-system).
        issues.append(issue("error", "not-found", "not-found", "UNKNOWN_CODESYSTEM_VERSION", system, pattern,
                            known_versions(versions), expression=paths["system"]))
        fallback = pick(versions, coding.version or rules.default.get(system) or rules.check.get(system)) or (
            None if coding.version else versions[0])
        if coding.version and ctx.request.code_system_url is None and not version_matches(pattern, coding.version):
            issues.append(_mismatch(system, from_parameter, included, coding.version, paths))
        return fallback, issues, f"{system}|{pattern}"
    if coding.version and pick(versions, coding.version) is None:
        issues.append(issue("error", "not-found", "not-found", "UNKNOWN_CODESYSTEM_VERSION", system, coding.version,
                            known_versions(versions), expression=paths["system"]))
        unknown = f"{system}|{coding.version}"
    if coding.version and ctx.request.code_system_url is None and not version_matches(cs.version, coding.version):
        issues.append(_mismatch(system, from_parameter, included, coding.version, paths, cs.version))
    check = rules.check.get(system)
    if check and not version_matches(check, cs.version):
        issues.append(issue("error", "exception", "version-error", "VALUESET_VERSION_CHECK", system=system,
                            version=cs.version, required=check, expression=paths["version"]))
    return cs, issues, unknown


def _mismatch(system: str, from_parameter: str | None, included: str | None, given: str, paths: dict[str, str],
              default: str | None = None) -> Issue:
    """The coding names another version than the one the value set side chose."""
    if from_parameter:
        return issue("error", "invalid", "vs-invalid", "VALUESET_VALUE_MISMATCH_CHANGED", system, from_parameter,
                     included or "", given, expression=paths["version"])
    if included:
        return issue("error", "invalid", "vs-invalid", "VALUESET_VALUE_MISMATCH", system, included, given,
                     expression=paths["version"])
    return issue("warning", "invalid", "vs-invalid", "VALUESET_VALUE_MISMATCH_DEFAULT", system, default, "", given,
                 expression=paths["version"], in_message=False)
