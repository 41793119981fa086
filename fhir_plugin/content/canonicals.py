"""The one check that content is unambiguous: no url|version, and no id, names two different resources.

Used when files are loaded together (the same resource named twice, say one file given twice, is
kept once) and when content is loaded on top of what a server already serves.
"""

from __future__ import annotations

from typing import Any

from ..terminology.registry import SEARCHABLE_TYPES, Registry
from .errors import InvalidContent


class CanonicalIndex:
    """url|version -> the resource, and id -> the resource, each with every place that holds it (the
    first is the one named when a different resource claims it)."""

    def __init__(self) -> None:
        self._canonicals: dict[tuple[str, str, str | None], tuple[dict[str, Any], tuple[str, ...]]] = {}
        self._ids: dict[tuple[str, str], tuple[dict[str, Any], tuple[str, ...]]] = {}

    @classmethod
    def of_registry(cls, registry: Registry, origin: str) -> CanonicalIndex:
        """What `registry` serves, every resource said to come from `origin`."""
        index = cls()
        for rtype in SEARCHABLE_TYPES:
            for entry in registry.entries(rtype):
                index.add(entry.resource, origin)
        return index

    def origins_of(self, resource: dict[str, Any]) -> tuple[str, ...]:
        """Every place that holds `resource` (by its url|version, else its id), in the order added."""
        rtype, url, rid = resource["resourceType"], resource.get("url"), resource.get("id")
        held = self._canonicals.get((rtype, url, resource.get("version"))) if url else None
        if held is None and rid:
            held = self._ids.get((rtype, rid))
        return held[1] if held else ()

    def add(self, resource: dict[str, Any], origin: str) -> bool:
        """True if `resource` is new; False if this very resource is here already (`origin` is then
        one more place that holds it). InvalidContent, naming both places, if a different resource
        has its url|version or its id."""
        rtype, url, version, rid = (resource["resourceType"], resource.get("url"), resource.get("version"),
                                    resource.get("id"))
        if url and (rtype, url, version) in self._canonicals:
            first, places = self._canonicals[(rtype, url, version)]
            if first != resource:
                raise InvalidContent("CONTENT_DUPLICATE_CANONICAL", resource_type=rtype, url=url, version=version,
                                     first=places[0], second=origin)
            self._canonicals[(rtype, url, version)] = (first, places + (origin,))
            return False
        if rid and (rtype, rid) in self._ids:
            first, places = self._ids[(rtype, rid)]
            if first != resource:
                raise InvalidContent("CONTENT_DUPLICATE_ID", resource_type=rtype, id=rid, first=places[0],
                                     second=origin)
            self._ids[(rtype, rid)] = (first, places + (origin,))
            return False
        if url:
            self._canonicals[(rtype, url, version)] = (resource, (origin,))
        if rid:
            self._ids[(rtype, rid)] = (resource, (origin,))
        return True
