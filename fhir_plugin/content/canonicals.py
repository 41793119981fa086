"""The one check that content is unambiguous: no url|version, and no id, names two different
resources, and no identifier names two code systems.

Used when files are loaded together (the same resource named twice, say one file given twice, is
kept once) and when content is loaded on top of what a server already serves.

An identifier (an OID, ...) that CodeSystem.identifier or a NamingSystem gives a code system
(terminology/aliases.py) may be declared by many resources (every version of the code system, a
NamingSystem too), as long as all of them name the same code system; one that names two is
refused, as is one that is itself the URL of another code system. A request would not know which
code system it means.

Packages are the exception, because they are their publishers' and cannot be fixed by whoever
loads them (`group`: the package a resource came from):

- An id names a resource within its package only (the FHIR package world gives each package its
  own ids: FHIR R5 core and HL7 Terminology both have a CodeSystem/catalogType, with two URLs). A
  package's resources are served by url|version whatever their ids; a read by id finds the first
  loaded.
- An identifier that packages give two code systems is not refused but names neither, as a
  request's tx-resources' do (the registry drops it; a code system's URL is never an alias).
  HL7 Terminology 7.0.1 has 15 such claims, all slips of its own content: one placeholder OID
  (`2.16.840.1.113883.4.642.1.0`) on 10 code systems, NamingSystems that give one OID to two
  code systems (CDT and CD2, ISBT 128 and `ib`, ISO 3166-2 twice, v2-0895 and CMS's HAC codes), and
  NamingSystems that give the URL of one THO code system (v2-0005, v3-HealthcareProviderTaxonomyHIPAA)
  to another. Refusing them would refuse HL7 Terminology; choosing one would be a guess. They are
  listed in `ambiguous`. Content that is not a package is still refused over such a claim, against
  a package's as against its own.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..terminology.aliases import declared_aliases
from ..terminology.registry import KEPT_TYPES, Registry
from .errors import InvalidContent


Key = tuple[str, ...]  # ("url", type, url, version) or ("id", type, id)
# alias -> (the canonical URL it names, [(the resource's key, the place it is in, from a package), ...])
Claims = dict[str, tuple[str, list[tuple[Key, str, bool]]]]


class CanonicalIndex:
    """url|version -> the resource, and id -> the resource, each with every place that holds it (the
    first is the one named when a different resource claims it). Places can be added and taken
    away one at a time, so that content loaded file by file is checked against what is loaded
    without reading it all again."""

    def __init__(self) -> None:
        self._held: dict[Key, tuple[dict[str, Any], tuple[str, ...]]] = {}
        self._aliases: Claims = {}
        self._code_systems: Counter[str] = Counter()  # the url of each CodeSystem held, once per version
        self._outside_packages: Counter[str] = Counter()  # the same, of those held by content that is no package
        # alias -> the code systems it names: packages gave it to more than one (the module docstring)
        self.ambiguous: dict[str, tuple[str, ...]] = {}

    @classmethod
    def of_registry(cls, registry: Registry, origin: str) -> CanonicalIndex:
        """What `registry` serves, every resource said to come from `origin`. It was checked when it
        was loaded, packages and all, so it is taken as it is: an id that two packages' resources have
        is held by the first, as in the registry."""
        index = cls()
        for rtype in KEPT_TYPES:
            for entry in registry.entries(rtype):
                index.add(entry.resource, origin, checked=False)
        return index

    def copy(self) -> CanonicalIndex:
        """An index of the same places, changed independently of this one from now on."""
        copied = CanonicalIndex()
        copied._held = dict(self._held)
        copied._aliases = {alias: (canonical, list(claims)) for alias, (canonical, claims) in self._aliases.items()}
        copied._code_systems = Counter(self._code_systems)
        copied._outside_packages = Counter(self._outside_packages)
        copied.ambiguous = dict(self.ambiguous)
        return copied

    @staticmethod
    def _claim_key(resource: dict[str, Any]) -> Key:
        keys = CanonicalIndex._keys(resource)
        return keys[0] if keys else ("object", str(id(resource)))

    def _tolerated(self, alias: str, canonicals: tuple[str, ...], packaged: bool) -> bool:
        """Whether a second code system for `alias` is let through (and the alias noted as naming
        neither): when every claim on it, and this one, comes from a package."""
        held = self._aliases.get(alias)
        if not packaged or (held is not None and not all(claim[2] for claim in held[1])) \
                or self._outside_packages[alias]:
            return False
        named = self.ambiguous.get(alias, (held[0],) if held is not None else (alias,))
        self.ambiguous[alias] = tuple(dict.fromkeys((*named, *canonicals)))
        return True

    def _check_aliases(self, resource: dict[str, Any], origin: str, packaged: bool) -> None:
        """InvalidContent if an identifier `resource` declares names another code system, or if its
        url is an identifier of another code system (unless packages say both: _tolerated)."""
        for alias, canonical in declared_aliases(resource):
            held = self._aliases.get(alias)
            other = held[0] if held is not None else (alias if self._code_systems[alias] else None)
            if other is not None and other != canonical and not self._tolerated(alias, (canonical,), packaged):
                first = held[1][0][1] if held is not None else self._first_place_of(alias)
                raise InvalidContent("CONTENT_DUPLICATE_IDENTIFIER", identifier=alias, canonical=canonical,
                                     other=other, first=first, second=origin)
        url = resource.get("url")
        if resource.get("resourceType") == "CodeSystem" and url in self._aliases and self._aliases[url][0] != url \
                and not self._tolerated(url, (url,), packaged):
            canonical, claims = self._aliases[url]
            raise InvalidContent("CONTENT_DUPLICATE_IDENTIFIER", identifier=url, canonical=url, other=canonical,
                                 first=claims[0][1], second=origin)

    def _first_place_of(self, url: str) -> str:
        return next(held[1][0] for key, held in self._held.items() if key[:3] == ("url", "CodeSystem", url))

    @staticmethod
    def _keys(resource: dict[str, Any], group: str | None = None) -> list[Key]:
        """A package's ids are its own (`group`: the package)."""
        rtype, url, rid = resource["resourceType"], resource.get("url"), resource.get("id")
        keys: list[Key] = [("url", rtype, url, resource.get("version") or "")] if url else []
        if not rid:
            return keys
        return keys + [("id", rtype, rid) if group is None else ("id", rtype, rid, group)]

    def origins_of(self, resource: dict[str, Any]) -> tuple[str, ...]:
        """Every place that holds `resource` (by its url|version, else its id), in the order added."""
        for key in self._keys(resource):
            if key in self._held:
                return self._held[key][1]
        return ()

    def check(self, resource: dict[str, Any], origin: str, group: str | None = None) -> None:
        """InvalidContent, naming both places, if a resource other than `resource` has its
        url|version or its id (within its package, `group`)."""
        for key in self._keys(resource, group):
            held = self._held.get(key)
            if held is not None and held[0] != resource:
                rtype, first = resource["resourceType"], held[1][0]
                if key[0] == "url":
                    raise InvalidContent("CONTENT_DUPLICATE_CANONICAL", resource_type=rtype, url=resource["url"],
                                         version=resource.get("version"), first=first, second=origin)
                raise InvalidContent("CONTENT_DUPLICATE_ID", resource_type=rtype, id=resource["id"], first=first,
                                     second=origin)
        self._check_aliases(resource, origin, group is not None)

    def add(self, resource: dict[str, Any], origin: str, group: str | None = None, *, checked: bool = True) -> bool:
        """True if `resource` is new; False if this very resource is here already (`origin` is then
        one more place that holds it). InvalidContent, naming both places, if a different resource
        has its url|version or its id, or if an identifier names two code systems. `group`: the
        package it came from (None: not a package). Not `checked`: content checked before, taken as
        it is (a key another resource holds stays that resource's)."""
        if checked:
            self.check(resource, origin, group)
        keys = self._keys(resource, group)

        def same(key: Key) -> bool:  # checked: a key held is this very resource's
            return key in self._held and (checked or self._held[key][0] == resource)

        held = next((self._held[key] for key in keys if same(key)), None)
        for key in keys:
            if key in self._held and not same(key):
                continue  # not checked: an id that two packages' resources have stays the first's
            self._held[key] = (resource, (origin,)) if held is None else (held[0], held[1] + (origin,))
        claim = self._claim_key(resource)
        for alias, canonical in declared_aliases(resource):
            self._aliases.setdefault(alias, (canonical, []))[1].append((claim, origin, group is not None))
        if held is None and resource.get("resourceType") == "CodeSystem":
            self._code_systems[str(resource.get("url"))] += 1
            if group is None:
                self._outside_packages[str(resource.get("url"))] += 1
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
                claims[:] = [held for held in claims if held[:2] != (claim, origin)]
                if not claims:
                    del self._aliases[alias]
        if gone is not None and gone.get("resourceType") == "CodeSystem":
            url = str(gone.get("url"))
            for counts in (self._code_systems, self._outside_packages):
                counts[url] -= 1
                if counts[url] <= 0:
                    del counts[url]
        return gone
