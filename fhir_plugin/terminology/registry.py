"""Canonical `url|version` -> compiled entries, built once and read-only afterwards."""

from __future__ import annotations

import re
from collections.abc import Iterable
from .compile import compile_code_system, compile_concept_map, compile_resource_entry
from .errors import InvalidContent, UnknownCodeSystem, UnknownConceptMap
from .models import CodeSystemEntry, ConceptMapEntry, ResourceEntry

SEARCHABLE_TYPES = ("CodeSystem", "ValueSet", "ConceptMap")


def version_key(version: str | None) -> tuple:
    """Orders versions the way people expect: 2026 > 2025, 1.10.0 > 1.9.0, versioned > none."""
    if version is None:
        return ()
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.\-|+]", version))


class Registry:
    def __init__(self, resources: Iterable[dict] = ()):
        self._code_systems: dict[str, list[CodeSystemEntry]] = {}
        self._concept_maps: list[ConceptMapEntry] = []
        self._entries: dict[str, list[ResourceEntry]] = {t: [] for t in SEARCHABLE_TYPES}
        seen: dict[tuple[str, str, str | None], dict] = {}
        for resource in resources:
            rtype = resource.get("resourceType")
            key = (rtype, resource.get("url"), resource.get("version"))
            if resource.get("url") and key in seen:
                if seen[key] != resource:
                    raise InvalidContent("DUPLICATE_CANONICAL", rtype, resource.get("url"), resource.get("version"))
                continue
            seen[key] = resource
            if rtype == "CodeSystem":
                cs = compile_code_system(resource)
                self._code_systems.setdefault(cs.url, []).append(cs)
            elif rtype == "ConceptMap":
                self._concept_maps.append(compile_concept_map(resource))
            elif rtype not in self._entries:
                continue
            self._entries[rtype].append(compile_resource_entry(resource))
        for versions in self._code_systems.values():
            versions.sort(key=lambda e: version_key(e.version), reverse=True)
        self._by_id: dict[tuple[str, str], ResourceEntry] = {}
        for rtype, entries in self._entries.items():
            for entry in entries:
                if entry.id and (rtype, entry.id) in self._by_id:
                    raise InvalidContent("DUPLICATE_ID", rtype, entry.id)
                if entry.id:
                    self._by_id[(rtype, entry.id)] = entry

    # --- code systems ---

    def code_systems(self) -> list[CodeSystemEntry]:
        return [cs for versions in self._code_systems.values() for cs in versions]

    def code_system_versions(self, url: str) -> list[CodeSystemEntry]:
        return list(self._code_systems.get(url, ()))

    def code_system(self, url: str, version: str | None = None) -> CodeSystemEntry:
        """The code system `url` at `version` (latest when None); UnknownCodeSystem otherwise."""
        versions = self._code_systems.get(url)
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
        return tuple(self._concept_maps)

    def concept_map(self, url: str, version: str | None = None) -> ConceptMapEntry:
        candidates = [cm for cm in self._concept_maps if cm.url == url]
        if not candidates:
            raise UnknownConceptMap("UNKNOWN_CONCEPTMAP", url, expression="url")
        if version is None:
            return max(candidates, key=lambda cm: version_key(cm.version))
        for cm in candidates:
            if cm.version == version:
                return cm
        known = ", ".join(cm.version or "(none)" for cm in candidates)
        raise UnknownConceptMap("UNKNOWN_CONCEPTMAP_VERSION", url, version, known, expression="conceptMapVersion")

    # --- read and search ---

    def entries(self, resource_type: str) -> list[ResourceEntry]:
        return list(self._entries.get(resource_type, ()))

    def by_id(self, resource_type: str, resource_id: str) -> ResourceEntry | None:
        return self._by_id.get((resource_type, resource_id))
