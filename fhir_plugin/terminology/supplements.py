"""CodeSystem supplements (content = supplement): what they add to the code system they supplement.

A supplement adds designations, properties, property definitions and the concept extensions
that $expand reports as properties (label, weight, ...) to concepts of its base code system
(`supplements` = url or url|version). It is applied only where it is asked for: a ValueSet's
valueset-supplement extension, or a request's `useSupplement`
(https://hl7.org/fhir/R5/codesystem.html#supplements). Designations it adds carry the
supplement's canonical as `source`, as the $lookup output reports them.
"""

from __future__ import annotations

from dataclasses import replace

from .entries import CodeSystemEntry, Concept
from .registry import Registry

def find_supplement(registry: Registry, canonical: str) -> CodeSystemEntry | None:
    """The supplement named by `canonical` (url or url|version; newest version if unversioned)."""
    url, _, version = canonical.partition("|")
    return next((s for s in registry.code_system_versions(url)
                 if s.content == "supplement" and (not version or s.version == version)), None)


def supplements_base(supplement: CodeSystemEntry) -> str:
    """The url of the code system a supplement supplements."""
    return (supplement.resource.get("supplements") or "").partition("|")[0]


def _merge(concept: Concept, extra: Concept, source: str) -> Concept:
    own_urls = {e.get("url") for e in concept.extensions}
    # A supplement's label / weight / order win over the base's: that is what supplementing means.
    by_code = {p.code: p for p in concept.extension_properties}
    by_code.update({p.code: p for p in extra.extension_properties})
    return replace(
        concept,
        designations=concept.designations + tuple(replace(d, source=source) for d in extra.designations),
        properties=concept.properties + extra.properties,
        extension_properties=tuple(by_code.values()),
        extensions=concept.extensions + tuple(e for e in extra.extensions if e.get("url") not in own_urls),
    )


def apply_supplements(registry: Registry, cs: CodeSystemEntry, supplements: list[CodeSystemEntry]
                      ) -> CodeSystemEntry:
    """`cs` with `supplements` merged in (the same entry when there are none). Merged entries are
    kept in the cache of the lowest layer of the registry that holds the same versions of them
    (`Registry.home`), keyed by the identity of the base and its supplements; the objects are
    kept with the entry so that their ids cannot be reused while it lives."""
    if not supplements:
        return cs
    key = (id(cs), *map(id, supplements))
    home = registry.home({cs.url, *(s.url for s in supplements)})
    cached = home.caches.supplemented.get(key)
    if cached is not None:
        return cached[1]
    concepts = dict(cs.concepts)
    definitions = list(cs.property_definitions)
    for supplement in supplements:
        for code, extra in supplement.concepts.items():
            if code in concepts:
                concepts[code] = _merge(concepts[code], extra, supplement.canonical)
        known = {d.code for d in definitions}
        definitions.extend(d for d in supplement.property_definitions if d.code not in known)
    # new designations: the words the text filter matches are those of the merged concepts
    merged = replace(cs, concepts=concepts, property_definitions=tuple(definitions), search_words={})
    home.caches.supplemented.put(key, ((cs, *supplements), merged, home.held_bytes()))
    return merged
