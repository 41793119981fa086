"""The one check that content is unambiguous: no url|version, and no id, names two different resources.

Used when files are loaded together (the same resource named twice, say one file given twice, is
kept once) and when content is loaded on top of what a server already serves.
"""

from __future__ import annotations

from typing import Any

from ..terminology.registry import SEARCHABLE_TYPES, Registry
from .errors import InvalidContent


Key = tuple[str, ...]  # ("url", type, url, version) or ("id", type, id)


class CanonicalIndex:
    """url|version -> the resource, and id -> the resource, each with every place that holds it (the
    first is the one named when a different resource claims it). Places can be added and taken
    away one at a time, so that content loaded file by file is checked against what is loaded
    without reading it all again."""

    def __init__(self) -> None:
        self._held: dict[Key, tuple[dict[str, Any], tuple[str, ...]]] = {}

    @classmethod
    def of_registry(cls, registry: Registry, origin: str) -> CanonicalIndex:
        """What `registry` serves, every resource said to come from `origin`."""
        index = cls()
        for rtype in SEARCHABLE_TYPES:
            for entry in registry.entries(rtype):
                index.add(entry.resource, origin)
        return index

    def copy(self) -> CanonicalIndex:
        """An index of the same places, changed independently of this one from now on."""
        copied = CanonicalIndex()
        copied._held = dict(self._held)
        return copied

    @staticmethod
    def _keys(resource: dict[str, Any]) -> list[Key]:
        rtype, url, rid = resource["resourceType"], resource.get("url"), resource.get("id")
        keys: list[Key] = [("url", rtype, url, resource.get("version") or "")] if url else []
        return keys + [("id", rtype, rid)] if rid else keys

    def origins_of(self, resource: dict[str, Any]) -> tuple[str, ...]:
        """Every place that holds `resource` (by its url|version, else its id), in the order added."""
        for key in self._keys(resource):
            if key in self._held:
                return self._held[key][1]
        return ()

    def check(self, resource: dict[str, Any], origin: str) -> None:
        """InvalidContent, naming both places, if a resource other than `resource` has its
        url|version or its id."""
        for key in self._keys(resource):
            held = self._held.get(key)
            if held is not None and held[0] != resource:
                rtype, first = resource["resourceType"], held[1][0]
                if key[0] == "url":
                    raise InvalidContent("CONTENT_DUPLICATE_CANONICAL", resource_type=rtype, url=resource["url"],
                                         version=resource.get("version"), first=first, second=origin)
                raise InvalidContent("CONTENT_DUPLICATE_ID", resource_type=rtype, id=resource["id"], first=first,
                                     second=origin)

    def add(self, resource: dict[str, Any], origin: str) -> bool:
        """True if `resource` is new; False if this very resource is here already (`origin` is then
        one more place that holds it). InvalidContent, naming both places, if a different resource
        has its url|version or its id."""
        self.check(resource, origin)
        keys = self._keys(resource)
        held = next((self._held[key] for key in keys if key in self._held), None)
        for key in keys:
            self._held[key] = (resource, (origin,)) if held is None else (held[0], held[1] + (origin,))
        return held is None

    def remove(self, resource: dict[str, Any], origin: str) -> dict[str, Any] | None:
        """Take away the place `origin` of `resource`. Returns the resource held (the object first
        added, which is what a registry built from the index holds) if no place holds it any more."""
        gone = None
        for key in self._keys(resource):
            held = self._held.get(key)
            if held is None or origin not in held[1]:
                continue
            places = list(held[1])
            places.remove(origin)
            if places:
                self._held[key] = (held[0], tuple(places))
            else:
                del self._held[key]
                gone = held[0]
        return gone
