"""Canonical `url|version` -> compiled entries, built once and read-only afterwards.

A registry may sit on top of another (`Registry(resources, parent=base)`): that is the per-request
overlay made from `tx-resource` parameters. Lookups see the overlay first; a resource in the overlay
with the same url|version as one below it hides it. The overlay is never stored in the base.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .compile import compile_code_system, compile_concept_map, compile_resource_entry
from .errors import InvalidContent, UnknownCodeSystem, UnknownConceptMap
from .evaluations import EvaluationCache
from .models import CodeSystemEntry, ConceptMapEntry, ResourceEntry

SEARCHABLE_TYPES = ("CodeSystem", "ValueSet", "ConceptMap")


def version_key(version: str | None) -> tuple:
    """Orders versions the way people expect: 2026 > 2025, 1.10.0 > 1.9.0, versioned > none."""
    if version is None:
        return ()
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.\-|+]", version))


class Registry:
    def __init__(self, resources: Iterable[dict] = (), parent: Registry | None = None,
                 compiled: Iterable[object] | None = None):
        """`resources` are validated R5 dicts. `compiled` gives entries compiled earlier (the
        overlay cache) instead. Duplicates are refused in a base registry; an overlay keeps them,
        since a client may send two versions of a map under one canonical."""
        self.parent = parent
        self.evaluations = EvaluationCache()
        self._code_systems: dict[str, list[CodeSystemEntry]] = {}
        self._concept_maps: list[ConceptMapEntry] = []
        self._entries: dict[str, list[ResourceEntry]] = {t: [] for t in SEARCHABLE_TYPES}
        self._by_id: dict[tuple[str, str], ResourceEntry] = {}
        seen: dict[tuple[str, str, str | None], dict] = {}
        for entry in compiled if compiled is not None else (compile_entry(r) for r in resources):
            resource = entry.resource  # type: ignore[attr-defined]
            rtype = resource["resourceType"]
            key = (rtype, resource.get("url"), resource.get("version"))
            if parent is None and resource.get("url") and key in seen:
                if seen[key] != resource:
                    raise InvalidContent("DUPLICATE_CANONICAL", rtype, resource.get("url"), resource.get("version"))
                continue
            seen[key] = resource
            if isinstance(entry, CodeSystemEntry):
                self._code_systems.setdefault(entry.url, []).append(entry)
            elif isinstance(entry, ConceptMapEntry):
                self._concept_maps.append(entry)
            if rtype in self._entries:
                generic = entry if isinstance(entry, ResourceEntry) else compile_resource_entry(resource)
                self._entries[rtype].append(generic)
                if generic.id and (rtype, generic.id) in self._by_id and parent is None:
                    raise InvalidContent("DUPLICATE_ID", rtype, generic.id)
                if generic.id:
                    self._by_id.setdefault((rtype, generic.id), generic)
        for versions in self._code_systems.values():
            versions.sort(key=lambda e: version_key(e.version), reverse=True)

    # --- code systems ---

    def code_systems(self) -> list[CodeSystemEntry]:
        urls = dict.fromkeys([*self._code_systems, *(cs.url for cs in self.parent.code_systems())]
                             if self.parent else self._code_systems)
        return [cs for url in urls for cs in self.code_system_versions(url)]

    def code_system_versions(self, url: str) -> list[CodeSystemEntry]:
        """Every version of `url`, newest first; the overlay's hide the same versions below it."""
        own = self._code_systems.get(url, [])
        if self.parent is None:
            return list(own)
        mine = {cs.version for cs in own}
        below = [cs for cs in self.parent.code_system_versions(url) if cs.version not in mine]
        return sorted(own + below, key=lambda e: version_key(e.version), reverse=True) if below else list(own)

    def code_system(self, url: str, version: str | None = None) -> CodeSystemEntry:
        """The code system `url` at `version` (latest when None); UnknownCodeSystem otherwise."""
        versions = self.code_system_versions(url)
        if not versions:
            raise UnknownCodeSystem("UNKNOWN_CODESYSTEM_LOOKUP", url, expression="system")
        if version is None:
            return versions[0]
        for cs in versions:
            if cs.version == version:
                return cs
        known = ", ".join(v.version or "(none)" for v in versions)
        raise UnknownCodeSystem("UNKNOWN_CODESYSTEM_VERSION_LOOKUP", url, version, known, expression="version")

    def find_code_system(self, url: str | None, version: str | None = None) -> CodeSystemEntry | None:
        try:
            return self.code_system(url, version) if url else None
        except UnknownCodeSystem:
            return None

    # --- concept maps ---

    def concept_maps(self) -> tuple[ConceptMapEntry, ...]:
        below = self.parent.concept_maps() if self.parent else ()
        return tuple(self._concept_maps) + below

    def concept_map(self, url: str, version: str | None = None) -> ConceptMapEntry:
        candidates = [cm for cm in self.concept_maps() if cm.url == url]
        if not candidates:
            raise UnknownConceptMap("UNKNOWN_CONCEPTMAP", url, expression="url")
        if version is None:
            return max(candidates, key=lambda cm: version_key(cm.version))
        for cm in candidates:
            if cm.version == version:
                return cm
        known = ", ".join(cm.version or "(none)" for cm in candidates)
        raise UnknownConceptMap("UNKNOWN_CONCEPTMAP_VERSION", url, version, known, expression="conceptMapVersion")

    # --- value sets and other resources ---

    def entries(self, resource_type: str) -> list[ResourceEntry]:
        own = self._entries.get(resource_type, [])
        if self.parent is None:
            return list(own)
        mine = {(e.url, e.version) for e in own if e.url}
        return own + [e for e in self.parent.entries(resource_type) if (e.url, e.version) not in mine]

    def resource_versions(self, resource_type: str, url: str) -> list[ResourceEntry]:
        """Every version of the canonical resource `url`, newest first."""
        found = [e for e in self.entries(resource_type) if e.url == url]
        return sorted(found, key=lambda e: version_key(e.version), reverse=True)

    def by_id(self, resource_type: str, resource_id: str) -> ResourceEntry | None:
        own = self._by_id.get((resource_type, resource_id))
        if own is None and self.parent is not None:
            return self.parent.by_id(resource_type, resource_id)
        return own


def compile_entry(resource: dict) -> CodeSystemEntry | ConceptMapEntry | ResourceEntry:
    """The compiled form of one validated R5 resource."""
    rtype = resource.get("resourceType")
    if rtype == "CodeSystem":
        return compile_code_system(resource)
    if rtype == "ConceptMap":
        return compile_concept_map(resource)
    return compile_resource_entry(resource)
