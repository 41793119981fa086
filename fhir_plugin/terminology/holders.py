"""Which value sets hold a concept: the UI's concept page lists them.

Asking `$validate-code` of every value set served (about 4,000 with the default packages) costs
about 0.35 s a concept. But a value set can only hold a code of a system its includes name, directly
or through the value sets they import: every member of an evaluation comes from an include's
`system` (renamed from an alias to its canonical URL) or from an imported value set's members
(valueset._include), and membership is per system (validate/membership). So `ValueSetSystems`
reads, once per content, the systems each value set can hold codes of, and only those value sets
that name the concept's system are asked, with the same `$validate-code` as before: the answer is
exactly what asking them all gives, since the others could only answer no.

Where the systems cannot be told from the definitions (an import of a value set not served, a
cycle of imports, a value set without a url), the value set is asked for every concept: asking too
many is slower, never wrong.
"""

from __future__ import annotations

from typing import Any

from .entries import Coding, ResourceEntry
from .errors import TerminologyError
from .models import ValidateCodeRequest
from .registry import Registry
from .service import TerminologyService

__all__ = ["ValueSetSystems", "value_sets_holding"]

_ANY = None  # the systems of a value set that cannot be told: ask it for every concept
Systems = frozenset[str] | None


class ValueSetSystems:
    """The value sets of a registry, in search order, each with the systems it can hold codes of.
    Built from the definitions alone (no evaluation): a few milliseconds for the default content.
    Its memory is a set of URLs per value set, bounded by the content."""

    def __init__(self, registry: Registry, value_sets: list[ResourceEntry]):
        self.token = registry.token
        self._registry = registry
        self._aliases = registry.aliases
        self._by_url: dict[str, Systems] = {}
        self._busy: set[str] = set()
        self.entries: tuple[tuple[ResourceEntry, Systems], ...] = tuple(
            (entry, self._of_entry(entry)) for entry in value_sets)
        self._candidates: dict[str, tuple[ResourceEntry, ...]] = {}
        del self._registry, self._busy  # built: nothing more is looked up

    def candidates(self, system: str) -> tuple[ResourceEntry, ...]:
        """The value sets that may hold a code of `system`, in search order."""
        found = self._candidates.get(system)
        if found is None:
            found = tuple(entry for entry, systems in self.entries if systems is _ANY or system in systems)
            # one entry per code system asked for (the concept page asks only for served ones)
            self._candidates[system] = found
        return found

    def _of_entry(self, entry: ResourceEntry) -> Systems:
        if not entry.url:
            return _ANY
        return self._of_resource(entry.resource, entry.resource.get("contained") or [])

    def _of_url(self, url: str) -> Systems:
        if url in self._by_url:
            return self._by_url[url]
        if url in self._busy:
            return _ANY  # a cycle: evaluating it fails, so asking it costs little
        versions = self._registry.resource_versions("ValueSet", url)
        if not versions:
            implicit = url.removesuffix("?fhir_vs")
            return frozenset(self._named(implicit)) if implicit != url else _ANY
        self._busy.add(url)
        found: set[str] = set()
        for entry in versions:
            systems = self._of_resource(entry.resource, entry.resource.get("contained") or [])
            if systems is _ANY:
                found = set()
                self._by_url[url] = _ANY
                break
            found |= systems
        else:
            self._by_url[url] = frozenset(found)
        self._busy.discard(url)
        return self._by_url[url]

    def _of_resource(self, resource: dict[str, Any], contained: list[Any]) -> Systems:
        compose = resource.get("compose")
        if not isinstance(compose, dict):
            return frozenset()  # without compose a value set selects nothing (valueset.evaluate)
        found: set[str] = set()
        includes = compose.get("include")
        for item in includes if isinstance(includes, list) else []:
            if not isinstance(item, dict):
                return _ANY
            system = item.get("system")
            if isinstance(system, str):
                found |= self._named(system)
            imports = item.get("valueSet")
            for canonical in imports if isinstance(imports, list) else []:
                systems = self._of_import(canonical, contained)
                if systems is _ANY:
                    return _ANY
                found |= systems
        return frozenset(found)

    def _of_import(self, canonical: Any, contained: list[Any]) -> Systems:
        if not isinstance(canonical, str):
            return _ANY
        if canonical.startswith("#"):
            inner = next((r for r in contained if isinstance(r, dict) and r.get("resourceType") == "ValueSet"
                          and r.get("id") == canonical[1:]), None)
            # contained in contained is not looked up by the evaluation either
            return self._of_resource(inner, contained) if inner is not None else _ANY
        return self._of_url(canonical.partition("|")[0])

    def _named(self, system: str) -> set[str]:
        """The system an include names, as the evaluation reads it (an alias becomes its URL)."""
        canonical = self._aliases.get(system)
        return {system} if canonical is None else {system, canonical}


def value_sets_holding(service: TerminologyService, systems: ValueSetSystems, system: str,
                       code: str) -> list[ResourceEntry]:
    """The value sets that hold (system, code), as `$validate-code` answers for each, in search
    order. `systems` must be built from `service`'s registry."""
    found = []
    for entry in systems.candidates(system):
        try:
            result = service.validate_code(ValidateCodeRequest(codings=(Coding(system, code),), url=entry.url,
                                                               value_set_version=entry.version, membership_only=True))
        except TerminologyError:
            continue  # a value set that cannot be evaluated holds nothing we can show
        if result.result:
            found.append(entry)
    return found
