"""$validate-code: which version of a code system a coding is checked against.

Sources, strongest first: `force-system-version`, the coding's own version (or `systemVersion`),
`system-version` (a default), the version the value set's include names, else the latest.
`check-system-version` does not choose: it says which versions are acceptable. Versions may be
wildcards (`1.0.x`), as in the FHIR version-selection rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .models import CodeSystemEntry, Coding
from .registry import version_key
from .validate_display import Issue, issue

if TYPE_CHECKING:
    from .validate_code import _Context


@dataclass(frozen=True, slots=True)
class VersionRules:
    """url -> version, from the system-version, check-system-version and force-system-version
    parameters (canonical `url|version` each)."""

    default: dict[str, str] = field(default_factory=dict)
    check: dict[str, str] = field(default_factory=dict)
    force: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def parse(canonicals: list[str] | tuple[str, ...]) -> dict[str, str]:
        found = {}
        for canonical in canonicals:
            url, _, version = canonical.partition("|")
            if version:
                found[url] = version
        return found


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


def include_version(ctx: _Context, system: str) -> str | None:
    compose = (ctx.value_set or {}).get("compose") or {}
    for include in compose.get("include", []):
        if include.get("system") == system and include.get("version"):
            return include["version"]
    return None


def choose_version(ctx: _Context, coding: Coding, versions: list[CodeSystemEntry], paths: dict[str, str]
                   ) -> tuple[CodeSystemEntry | None, list[Issue], str | None]:
    """(the code system version the value set means, issues, the unknown `url|version` if any).

    The value set side decides the version the code is checked in: the include's version, or one
    a parameter sets (force-system-version always, system-version when the include has none), or
    the latest. A coding that names another version gets a VALUESET_VALUE_MISMATCH* issue; one
    that names an unknown version also UNKNOWN_CODESYSTEM_VERSION (x-caused-by-unknown-system)."""
    rules: VersionRules = ctx.request.versions
    system = coding.system or ""
    issues: list[Issue] = []
    included = include_version(ctx, system) if ctx.request.code_system_url is None else None
    from_parameter = rules.force.get(system) or (None if included else rules.default.get(system))
    pattern = from_parameter or included
    if coding.version and version_matches(pattern, coding.version) and pick(versions, coding.version):
        cs = pick(versions, coding.version)
    else:
        cs = pick(versions, pattern)
    unknown = None
    if cs is None:  # the version the value set (or a parameter) asks for does not exist
        issues.append(issue("error", "not-found", "not-found", "UNKNOWN_CODESYSTEM_VERSION", system, pattern,
                            known_versions(versions), expression=paths["system"]))
        return None, issues, f"{system}|{pattern}"
    if coding.version and pick(versions, coding.version) is None:
        issues.append(issue("error", "not-found", "not-found", "UNKNOWN_CODESYSTEM_VERSION", system, coding.version,
                            known_versions(versions), expression=paths["system"]))
        unknown = f"{system}|{coding.version}"
    if coding.version and ctx.request.code_system_url is None and not version_matches(cs.version, coding.version):
        if from_parameter:
            issues.append(issue("error", "invalid", "vs-invalid", "VALUESET_VALUE_MISMATCH_CHANGED", system,
                                from_parameter, included or "", coding.version, expression=paths["version"]))
        elif included:
            issues.append(issue("error", "invalid", "vs-invalid", "VALUESET_VALUE_MISMATCH", system, included,
                                coding.version, expression=paths["version"]))
        else:
            issues.append(issue("warning", "invalid", "vs-invalid", "VALUESET_VALUE_MISMATCH_DEFAULT", system,
                                cs.version, "", coding.version, expression=paths["version"], in_message=False))
    check = rules.check.get(system)
    if check and not version_matches(check, cs.version):
        issues.append(issue("error", "exception", "version-error", "VALUESET_VERSION_CHECK", system, cs.version,
                            check, expression=paths["version"]))
    return cs, issues, unknown
