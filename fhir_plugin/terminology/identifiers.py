"""Requests (and value sets, and concept maps) that name a code system by an alias: an OID
(`urn:oid:2.16.840.1.113883.6.90`), a former URL, a v2 mnemonic, as content declares them
(aliases.py, Registry.aliases).

FHIR says a code system's URL SHALL be used where one is defined, and the HL7 validator calls an
OID in a ValueSet include "not valid" (VALUESET_INCLUDE_WRONG_CS_OID), while it reads the OIDs of
CDA documents as the code systems that declare them. So every operation takes an alias for the
canonical URL it names, answers with that URL (the `system` of a $lookup or $validate-code, the
systems of an expansion or translation), and adds a warning that names both, with that message id
and tx-issue-type `invalid-data`, so that the client can correct itself. An alias of nothing
loaded stays an unknown code system, as before.

A request that names code systems by their URLs pays one dict look-up per system named.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .entries import Coding
from .errors import ANSWER_MESSAGES, answer_message
from .models import ExpansionParameter, Issue
from .registry import Registry

MESSAGE_ID = "VALUESET_INCLUDE_WRONG_CS_OID"
TX_ISSUE_TYPE = "invalid-data"
# The expansion parameter an $expand answer warns with (tx.fhir.org's warning-<kind> convention).
EXPANSION_WARNING = "warning-identifier"


@dataclass(frozen=True, slots=True)
class Renamed:
    """An alias that was read as the canonical URL it names, and where (a FHIRPath expression)."""

    given: str
    canonical: str
    expression: str | None = None

    @property
    def text(self) -> str:
        return answer_message(MESSAGE_ID, self.given, self.canonical)

    def issue(self) -> Issue:
        return Issue("warning", "invalid", TX_ISSUE_TYPE, self.text, MESSAGE_ID, self.expression)

    def expansion_parameter(self) -> ExpansionParameter:
        return ExpansionParameter(EXPANSION_WARNING, "String", self.text)


class Renamer:
    """Reads the systems of one request, replacing aliases by canonical URLs, and keeps what it
    replaced (once per alias and place)."""

    def __init__(self, registry: Registry):
        self.aliases = registry.aliases
        self.found: list[Renamed] = []

    def system(self, system: str | None, expression: str | None) -> str | None:
        if system is None:
            return None
        canonical = self.aliases.get(system)
        if canonical is None:
            return system
        renamed = Renamed(system, canonical, expression)
        if renamed not in self.found:
            self.found.append(renamed)
        return canonical

    def coding(self, coding: Coding, expression: str | None) -> Coding:
        system = self.system(coding.system, expression)
        return coding if system == coding.system else replace(coding, system=system)

    def codings(self, codings: Iterable[Coding], expression: str) -> tuple[Coding, ...]:
        """`expression` with `{index}` for the coding's place."""
        return tuple(self.coding(c, expression.format(index=i)) for i, c in enumerate(codings))

    def canonical(self, value: str, expression: str) -> str:
        """`url|version` (a system-version parameter, say) with its url read."""
        url, bar, version = value.partition("|")
        return f"{self.system(url, expression)}{bar}{version}"

    def canonicals(self, values: Iterable[str], expression: str) -> tuple[str, ...]:
        return tuple(self.canonical(value, expression) for value in values)

    def versions(self, versions: Mapping[str, str], expression: str) -> dict[str, str]:
        """url -> version, the urls read."""
        return {self.system(url, expression) or url: version for url, version in versions.items()}

    def issues(self) -> tuple[Issue, ...]:
        return tuple([renamed.issue() for renamed in self.found]) if self.found else ()


def compose_renamed(registry: Registry, value_set: dict[str, Any]) -> tuple[dict[str, Any], list[Renamed]]:
    """`value_set` with the code systems its includes and excludes name by an alias replaced by
    their canonical URLs (a copy; the same dict when there are none), and what was replaced."""
    compose = value_set.get("compose")
    if not isinstance(compose, dict):
        return value_set, []
    aliases = registry.aliases
    found: list[Renamed] = []
    parts: dict[str, list[Any]] = {}
    for part in ("include", "exclude"):
        items = compose.get(part)
        if not isinstance(items, list):
            continue
        for index, item in enumerate(items):
            system = item.get("system") if isinstance(item, dict) else None
            canonical = aliases.get(system) if isinstance(system, str) else None
            if canonical is None:
                continue
            assert isinstance(system, str)
            found.append(Renamed(system, canonical, f"ValueSet.compose.{part}[{index}].system"))
            copied = parts.setdefault(part, list(items))
            copied[index] = {**item, "system": canonical}
    if not parts:
        return value_set, []
    return {**value_set, "compose": {**compose, **parts}}, found


_PATTERN = re.compile("(.*?)".join(re.escape(p) for p in re.split(r"\{\d\}", ANSWER_MESSAGES[MESSAGE_ID])) + r"\Z",
                      re.DOTALL)


def renamed_in(issues: Iterable[Issue]) -> dict[str, str]:
    """alias -> canonical URL, read back from the warnings of an answer (for the client, whose
    $subsumes answer names no system)."""
    found = {}
    for issue in issues:
        matched = _PATTERN.match(issue.text) if issue.message_id == MESSAGE_ID else None
        if matched:
            found[matched.group(1)] = matched.group(2)
    return found
