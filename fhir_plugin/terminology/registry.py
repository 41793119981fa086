"""Canonical `url|version` -> compiled entries, built once and read-only afterwards.

A registry may sit on top of another (`Registry(resources, parent=base)`): that is the per-request
overlay made from `tx-resource` parameters. Lookups see the overlay first; a resource in the overlay
with the same url|version as one below it hides it. The overlay is never stored in the base.

A registry never changes once built: `changed` makes another from it, with some entries added or
taken away, copying the rest (content loaded into a running server, a file at a time).

A registry takes its resources as given: refusing two different resources under one url|version
or id is the loader's job (fhir_plugin.content.canonicals), which knows where each came from.
What the engine keeps while it answers (evaluated value sets, supplemented code systems) is in the
registry's `caches`, which an overlay shares with the registry below it unless given its own (the
runtime gives the overlays of tx-resources caches bounded by bytes). What is computed from the
resources of lower layers alone is kept there, under that layer's token (`home`): a thousand
overlays over the same content share one evaluation of it.

A registry may prefer one version (`prefer`, set by `preferring`): where a canonical has that
version among others and a request names none, that one is used instead of the latest. It is how
each FHIR endpoint answers with its own release of FHIR core content, which is versioned by FHIR
release (administrative-gender 4.0.1 on /r4, 5.0.0 on /r5), from one registry holding both.
The same holds for ids: FHIR core's packages of both releases give their copies the same ids
(CodeSystem/administrative-gender), and a read of an id that several entries hold gives the one of
the preferred version, where there is one (a view's own `_by_id`), else the first loaded.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Set
from typing import Any, TypeVar

from .aliases import alias_index
from .caching import BoundedCache, Budget, CacheStats
from .compile import compile_code_system, compile_concept_map, compile_resource_entry
from .entries import CodeSystemEntry, ConceptMapEntry, ResourceEntry
from .errors import UnknownCodeSystem, UnknownConceptMap

T = TypeVar("T")
SEARCHABLE_TYPES = ("CodeSystem", "ValueSet", "ConceptMap")
# What a registry keeps: the searchable types, and the NamingSystems that name code systems.
KEPT_TYPES = (*SEARCHABLE_TYPES, "NamingSystem")


VersionKey = tuple[tuple[int, int, str], ...]
Compiled = CodeSystemEntry | ConceptMapEntry | ResourceEntry
# a code system with supplements applied: ((the base, *the supplements), the merged entry, the
# bytes of request-made layers it keeps alive); the objects are kept so that their ids, the cache
# key, cannot be reused while the entry lives
Supplemented = tuple[tuple[CodeSystemEntry, ...], CodeSystemEntry, int]
# About 120 MB per process at most: the whole ICD-10-CM three times over, at EVALUATED_MEMBER_BYTES.
MAX_EVALUATED_MEMBERS = 300_000
MAX_SUPPLEMENTED = 64
# What an evaluation keeps per member, measured (tracemalloc) on the whole ICD-10-CM: the Member
# (112 bytes with its place in the list), the text filter's index over the members (about 110)
# and the index by code that $validate-code builds (about 127), rounded up. The words of each
# concept, kept on the code system entry, are counted with the entry.
EVALUATED_MEMBER_BYTES = 400
# A code system with supplements applied: its own dictionary of every concept (about 40 bytes an
# entry), the merged concepts, and the words the text filter keeps per concept (about 175).
SUPPLEMENTED_CONCEPT_BYTES = 250


def version_key(version: str | None) -> VersionKey:
    """Orders versions the way people expect: 2026 > 2025, 1.10.0 > 1.9.0, versioned > none."""
    if version is None:
        return ()
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.\-|+]", version))


def _members(evaluation: Any) -> int:
    return len(evaluation.members)


def _evaluation_bytes(evaluation: Any) -> int:
    return len(evaluation.members) * EVALUATED_MEMBER_BYTES + int(evaluation.held_bytes)


def _supplemented_bytes(kept: Supplemented) -> int:
    return len(kept[1].concepts) * SUPPLEMENTED_CONCEPT_BYTES + kept[2]


class RegistryCaches:
    """What the engine keeps per loaded content: evaluated value sets (bounded by their members)
    and code systems with supplements applied. Keys start with the registry's `token`, so the
    overlays of one base share the bound without sharing answers.

    With a `budget` both are bounded by estimated bytes instead, within that budget (shared with
    other caches: the runtime's for tx-resources), and their names start with `tx-`. Their
    entries count the bytes of the request-made layers they keep alive (`Registry.held_bytes`)."""

    def __init__(self, max_members: int = MAX_EVALUATED_MEMBERS, max_supplemented: int = MAX_SUPPLEMENTED,
                 budget: Budget | None = None):
        self.evaluations: BoundedCache[Any]
        self.supplemented: BoundedCache[Supplemented]
        if budget is None:
            self.evaluations = BoundedCache("evaluations", max_members, _members)
            self.supplemented = BoundedCache("supplemented-code-systems", max_supplemented)
        else:
            self.evaluations = BoundedCache("tx-evaluations", 0, _evaluation_bytes, budget)
            self.supplemented = BoundedCache("tx-supplemented-code-systems", 0, _supplemented_bytes, budget)

    def stats(self) -> list[CacheStats]:
        return [self.evaluations.stats, self.supplemented.stats]


_tokens = itertools.count()


class Registry:
    prefer: str | None = None  # the version chosen when a request names none, where a canonical has it

    def __init__(self, resources: Iterable[dict[str, Any]] = (), parent: Registry | None = None,
                 compiled: Iterable[Compiled] | None = None, caches: RegistryCaches | None = None,
                 size: int = 0):
        """`resources` are validated R5 dicts. `compiled` gives entries compiled earlier (the
        overlay cache) instead. An overlay keeps two versions of a map under one canonical, since a
        client may send both. `caches`: the parent's for an overlay, else new ones. `size`: the
        bytes its own entries keep, as its maker estimates them, where they are counted against a
        budget (0: content, not counted)."""
        self.parent = parent
        self.token = next(_tokens)
        self.size = size
        self.prefer = parent.prefer if parent is not None else None
        self.caches: RegistryCaches = caches or (parent.caches if parent is not None else RegistryCaches())
        self._code_systems: dict[str, list[CodeSystemEntry]] = {}
        self._concept_maps: list[ConceptMapEntry] = []
        self._entries: dict[str, list[ResourceEntry]] = {t: [] for t in KEPT_TYPES}
        self._by_id: dict[tuple[str, str], ResourceEntry] = {}
        self._add(compiled if compiled is not None else (compile_entry(r) for r in resources))

    def _add(self, entries: Iterable[Compiled]) -> None:
        touched: set[str] = set()
        for entry in entries:
            resource = entry.resource
            rtype = resource["resourceType"]
            if isinstance(entry, CodeSystemEntry):
                self._code_systems.setdefault(entry.url, []).append(entry)
                touched.add(entry.url)
            elif isinstance(entry, ConceptMapEntry):
                self._concept_maps.append(entry)
            if rtype in self._entries:
                generic = entry if isinstance(entry, ResourceEntry) else compile_resource_entry(resource)
                self._entries[rtype].append(generic)
                if generic.id:
                    self._by_id.setdefault((rtype, generic.id), generic)
        for url in touched:
            self._code_systems[url].sort(key=lambda e: version_key(e.version), reverse=True)
        self._index_aliases()
        # (type, url) -> this layer's entries: a look-up by url is a dict look-up per layer, not a
        # pass over thousands of value sets (HL7 Terminology has 2,499)
        self._by_url: dict[tuple[str, str], list[ResourceEntry]] = {}
        for rtype, entries in self._entries.items():
            for generic in entries:
                if generic.url:
                    self._by_url.setdefault((rtype, generic.url), []).append(generic)
        # the canonicals whose look-ups this layer answers itself (or changes): code systems,
        # supplements and value sets, what value set evaluation looks up, and the identifiers it
        # gives code systems (or makes ambiguous)
        self.urls = frozenset([*self._code_systems, *(e.url for e in self._entries["ValueSet"] if e.url),
                               *self._own_aliases])

    def _index_aliases(self) -> None:
        """`aliases`: identifier -> canonical URL of every code system this registry serves, the
        layers below included (aliases.py says which identifiers count). Built with the content,
        so that naming a code system by its URL costs nothing more and by an alias one dict look-up.
        A canonical URL is never an alias: a code system served under a URL hides an alias of that
        URL. This layer's own aliases hide those below; one it declares for two code systems (the
        content layer refuses that in loaded content, but a request's tx-resources may) is no alias."""
        resources = [cs.resource for versions in self._code_systems.values() for cs in versions]
        own, ambiguous = alias_index([*resources, *(e.resource for e in self._entries["NamingSystem"])])
        below = self.parent.aliases if self.parent is not None else {}
        for alias in [a for a in own if a in self._code_systems
                      or (self.parent is not None and self.parent.code_system_versions(a))]:
            del own[alias]
        merged = {alias: canonical for alias, canonical in below.items()
                  if alias not in self._code_systems and alias not in ambiguous}
        merged.update(own)
        self._own_aliases = frozenset([*own, *ambiguous])
        self.aliases: dict[str, str] = merged

    def changed(self, added: Iterable[Compiled] = (), removed: Iterable[dict[str, Any]] = ()) -> Registry:
        """A registry like this one (same parent, same caches, a new token) without the entries of
        the `removed` resources (the very objects, not equal ones) and with the `added` entries.
        For content that changes a few resources at a time: nothing is compiled again, and the
        rest is copied, not rebuilt."""
        gone = {id(resource): resource for resource in removed}
        changed = Registry.__new__(Registry)
        changed.parent, changed.caches, changed.token = self.parent, self.caches, next(_tokens)
        changed.size, changed.prefer = self.size, self.prefer
        changed._code_systems = dict(self._code_systems)
        changed._concept_maps = [cm for cm in self._concept_maps if id(cm.resource) not in gone]
        changed._entries = {rtype: ([e for e in entries if id(e.resource) not in gone]
                                    if any(r["resourceType"] == rtype for r in gone.values()) else list(entries))
                            for rtype, entries in self._entries.items()}
        changed._by_id = dict(self._by_id)
        for resource in gone.values():
            url, rid, rtype = resource.get("url"), resource.get("id"), resource["resourceType"]
            if rtype == "CodeSystem" and url in changed._code_systems:
                kept = [cs for cs in changed._code_systems[url] if id(cs.resource) not in gone]
                if kept:
                    changed._code_systems[url] = kept
                else:
                    del changed._code_systems[url]
            key = (str(rtype), str(rid))
            held = changed._by_id.get(key) if rid else None
            if held is not None and id(held.resource) in gone:
                del changed._by_id[key]
                # another entry with that id (possible in an overlay only) takes its place, as it would when built
                same = next((e for e in changed._entries.get(rtype, ()) if e.id == rid), None)
                if same is not None:
                    changed._by_id[key] = same
        # the lists of the code systems `added` touches are copied before _add appends to them
        additions = list(added)
        for addition in additions:
            if isinstance(addition, CodeSystemEntry) and addition.url in changed._code_systems:
                changed._code_systems[addition.url] = list(changed._code_systems[addition.url])
        changed._add(additions)
        return changed

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A registry read back from the compiled-content cache gets a token of this process:
        # the one it was pickled with may belong to another registry here.
        self.__dict__.update(state)
        self.token = next(_tokens)

    # --- layers ---

    @classmethod
    def preferring(cls, base: Registry, version: str) -> Registry:
        """A view of `base` that prefers `version` (see the module docstring): a layer without
        content of its own, whose `urls` are the canonicals it answers otherwise than `base` does (so
        that what is evaluated from them is kept apart). `base` itself when there are none."""
        versions: dict[str, set[str | None]] = {}
        canonicals = [*((cs.url, cs.version) for cs in base.code_systems()),
                      *((vs.url, vs.version) for vs in base.entries("ValueSet")),
                      *((cm.url, cm.version) for cm in base.concept_maps())]
        for url, found in canonicals:
            if url:
                versions.setdefault(url, set()).add(found)
        changed = {url for url, found in versions.items() if version in found and len(found) > 1}
        reads = cls._preferred_reads(base, version)
        if not changed and not reads:
            return base
        view = cls(parent=base)
        view.prefer = version
        view.urls = frozenset(changed) | view.urls
        view._by_id = reads  # read by id: one dict look-up more, as in any layer
        return view

    @staticmethod
    def _preferred_reads(base: Registry, version: str) -> dict[tuple[str, str], ResourceEntry]:
        """(type, id) -> the entry of `version` for the ids that several entries of `base` hold,
        where a read of `base` gives another version and one of them has `version`."""
        reads: dict[tuple[str, str], ResourceEntry] = {}
        for rtype in SEARCHABLE_TYPES:
            held: dict[str, list[ResourceEntry]] = {}
            for entry in base.entries(rtype):
                if entry.id:
                    held.setdefault(entry.id, []).append(entry)
            for rid, entries in held.items():
                read = base.by_id(rtype, rid)
                if len(entries) > 1 and (read is None or read.version != version):
                    chosen = next((e for e in entries if e.version == version), None)
                    if chosen is not None:
                        reads[(rtype, rid)] = chosen
        return reads

    def _preferred(self, versions: list[T]) -> list[T]:
        """`versions` (newest first), those of the preferred version first."""
        if self.prefer is None or len(versions) < 2:
            return versions
        return sorted(versions, key=lambda entry: getattr(entry, "version", None) != self.prefer)

    def layers(self) -> Iterator[Registry]:
        """This registry, then the ones below it."""
        layer: Registry | None = self
        while layer is not None:
            yield layer
            layer = layer.parent

    def home(self, urls: Set[str]) -> Registry:
        """The lowest layer that answers every look-up of `urls` as this registry does: the topmost
        that defines one of them, else the bottom one. What was computed from look-ups of `urls`
        alone is the same for every registry over that layer that defines none of them itself."""
        layer = self
        while layer.parent is not None and layer.urls.isdisjoint(urls):
            layer = layer.parent
        return layer

    def held_bytes(self) -> int:
        """The bytes counted for this layer and those below it (see `size`): what an object made
        from their entries may keep alive."""
        return sum(layer.size for layer in self.layers())

    # --- code systems ---

    def code_systems(self) -> list[CodeSystemEntry]:
        urls = dict.fromkeys([*self._code_systems, *(cs.url for cs in self.parent.code_systems())]
                             if self.parent else self._code_systems)
        return [cs for url in urls for cs in self.code_system_versions(url)]

    def code_system_versions(self, url: str) -> list[CodeSystemEntry]:
        """Every version of `url`, newest first (the preferred version first); the overlay's hide
        the same versions below it."""
        own = self._code_systems.get(url, [])
        if self.parent is None:
            return self._preferred(list(own))
        if not own:  # the layers below have sorted them already (a view, most overlays)
            return self._preferred(self.parent.code_system_versions(url))
        mine = {cs.version for cs in own}
        below = [cs for cs in self.parent.code_system_versions(url) if cs.version not in mine]
        found = sorted(own + below, key=lambda e: version_key(e.version), reverse=True) if below else list(own)
        return self._preferred(found)

    def code_system(self, url: str, version: str | None = None) -> CodeSystemEntry:
        """The code system `url` at `version` (latest when None); UnknownCodeSystem otherwise."""
        versions = self.code_system_versions(url)
        if not versions:
            raise UnknownCodeSystem("UNKNOWN_CODESYSTEM_LOOKUP", system=url, expression="system")
        if version is None:
            return versions[0]
        for cs in versions:
            if cs.version == version:
                return cs
        known = ", ".join(v.version or "(none)" for v in versions)
        raise UnknownCodeSystem("UNKNOWN_CODESYSTEM_VERSION_LOOKUP", system=url, version=version, known=known,
                                expression="version")

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
            raise UnknownConceptMap("UNKNOWN_CONCEPTMAP", url=url, expression="url")
        if version is None:
            return self._preferred(sorted(candidates, key=lambda cm: version_key(cm.version), reverse=True))[0]
        for cm in candidates:
            if cm.version == version:
                return cm
        known = ", ".join(cm.version or "(none)" for cm in candidates)
        raise UnknownConceptMap("UNKNOWN_CONCEPTMAP_VERSION", url=url, version=version, known=known,
                                expression="conceptMapVersion")

    # --- value sets and other resources ---

    def entries(self, resource_type: str) -> list[ResourceEntry]:
        own = self._entries.get(resource_type, [])
        if self.parent is None:
            return list(own)
        mine = {(e.url, e.version) for e in own if e.url}
        return own + [e for e in self.parent.entries(resource_type) if (e.url, e.version) not in mine]

    def resource_versions(self, resource_type: str, url: str) -> list[ResourceEntry]:
        """Every version of the canonical resource `url`, newest first (the preferred version first);
        a layer's hide the same versions below it."""
        own = self._by_url.get((resource_type, url), [])
        if not own and self.parent is not None:
            return self._preferred(self.parent.resource_versions(resource_type, url))
        found = list(own)
        if self.parent is not None:
            mine = {e.version for e in own}
            found += [e for e in self.parent.resource_versions(resource_type, url) if e.version not in mine]
        return self._preferred(sorted(found, key=lambda e: version_key(e.version), reverse=True))

    def by_id(self, resource_type: str, resource_id: str) -> ResourceEntry | None:
        own = self._by_id.get((resource_type, resource_id))
        if own is None and self.parent is not None:
            return self.parent.by_id(resource_type, resource_id)
        return own


def compile_entry(resource: dict[str, Any]) -> Compiled:
    """The compiled form of one validated R5 resource."""
    rtype = resource.get("resourceType")
    if rtype == "CodeSystem":
        return compile_code_system(resource)
    if rtype == "ConceptMap":
        return compile_concept_map(resource)
    return compile_resource_entry(resource)
