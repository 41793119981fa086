"""The one check that content is unambiguous: no url|version, and no id, names two different
resources, and no identifier names two code systems.

Used when files are loaded together (the same resource named twice, say one file given twice, is
kept once) and when content is loaded on top of what a server already serves.

An identifier (an OID, ...) that CodeSystem.identifier or a NamingSystem gives a code system
(terminology/aliases.py) may be declared by many resources (every version of the code system, a
NamingSystem too), as long as all of them name the same code system; one that names two is
refused, as is one that is itself the URL of another code system. A request would not know which
code system it means.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..terminology.aliases import declared_aliases
from ..terminology.registry import KEPT_TYPES, Registry
from .errors import InvalidContent


Key = tuple[str, ...]  # ("url", type, url, version) or ("id", type, id)
# alias -> (the canonical URL it names, [(the resource's key, the place it is in), ...])
Claims = dict[str, tuple[str, list[tuple[Key, str]]]]


class CanonicalIndex:
    """url|version -> the resource, and id -> the resource, each with every place that holds it (the
    first is the one named when a different resource claims it). Places can be added and taken
    away one at a time, so that content loaded file by file is checked against what is loaded
    without reading it all again."""

    def __init__(self) -> None:
        self._held: dict[Key, tuple[dict[str, Any], tuple[str, ...]]] = {}
        self._aliases: Claims = {}
        self._code_systems: Counter[str] = Counter()  # the url of each CodeSystem held, once per version

    @classmethod
    def of_registry(cls, registry: Registry, origin: str) -> CanonicalIndex:
        """What `registry` serves, every resource said to come from `origin`."""
        index = cls()
        for rtype in KEPT_TYPES:
            for entry in registry.entries(rtype):
                index.add(entry.resource, origin)
        return index

    def copy(self) -> CanonicalIndex:
        """An index of the same places, changed independently of this one from now on."""
        copied = CanonicalIndex()
        copied._held = dict(self._held)
        copied._aliases = {alias: (canonical, list(claims)) for alias, (canonical, claims) in self._aliases.items()}
        copied._code_systems = Counter(self._code_systems)
        return copied

    @staticmethod
    def _claim_key(resource: dict[str, Any]) -> Key:
        keys = CanonicalIndex._keys(resource)
        return keys[0] if keys else ("object", str(id(resource)))

    def _check_aliases(self, resource: dict[str, Any], origin: str) -> None:
        """InvalidContent if an identifier `resource` declares names another code system, or if its
        url is an identifier of another code system."""
        for alias, canonical in declared_aliases(resource):
            held = self._aliases.get(alias)
            other = held[0] if held is not None else (alias if self._code_systems[alias] else None)
            if other is not None and other != canonical:
                first = held[1][0][1] if held is not None else self._first_place_of(alias)
                raise InvalidContent("CONTENT_DUPLICATE_IDENTIFIER", identifier=alias, canonical=canonical,
                                     other=other, first=first, second=origin)
        url = resource.get("url")
        if resource.get("resourceType") == "CodeSystem" and url in self._aliases and self._aliases[url][0] != url:
            canonical, claims = self._aliases[url]
            raise InvalidContent("CONTENT_DUPLICATE_IDENTIFIER", identifier=url, canonical=url, other=canonical,
                                 first=claims[0][1], second=origin)

    def _first_place_of(self, url: str) -> str:
        return next(held[1][0] for key, held in self._held.items() if key[:3] == ("url", "CodeSystem", url))

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
        self._check_aliases(resource, origin)

    def add(self, resource: dict[str, Any], origin: str) -> bool:
        """True if `resource` is new; False if this very resource is here already (`origin` is then
        one more place that holds it). InvalidContent, naming both places, if a different resource
        has its url|version or its id, or if an identifier names two code systems."""
        self.check(resource, origin)
        keys = self._keys(resource)
        held = next((self._held[key] for key in keys if key in self._held), None)
        for key in keys:
            self._held[key] = (resource, (origin,)) if held is None else (held[0], held[1] + (origin,))
        claim = self._claim_key(resource)
        for alias, canonical in declared_aliases(resource):
            self._aliases.setdefault(alias, (canonical, []))[1].append((claim, origin))
        if held is None and resource.get("resourceType") == "CodeSystem":
            self._code_systems[str(resource.get("url"))] += 1
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
        claim = self._claim_key(resource)
        for alias, _ in declared_aliases(resource):
            if alias in self._aliases:
                canonical, claims = self._aliases[alias]
                if (claim, origin) in claims:
                    claims.remove((claim, origin))
                if not claims:
                    del self._aliases[alias]
        if gone is not None and gone.get("resourceType") == "CodeSystem":
            url = str(gone.get("url"))
            self._code_systems[url] -= 1
            if self._code_systems[url] <= 0:
                del self._code_systems[url]
        return gone
