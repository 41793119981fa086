"""What a registry serves, for the start-up banner, the log and the content metric: every code
system, value set and concept map with its version and size, read from the compiled entries."""

from __future__ import annotations

from ..terminology.registry import Registry

Served = tuple[str, str, str, int]  # (resource type, url, version or "", size)


def inventory(registry: Registry) -> list[Served]:
    """Code systems (size: concepts), value sets (size: compose includes) and concept maps (size:
    mapped source elements), each sorted by url and version."""
    found: list[Served] = []
    found += sorted(("CodeSystem", cs.url, cs.version or "", len(cs.concepts)) for cs in registry.code_systems())
    found += sorted(("ValueSet", vs.url or "", vs.version or "", len((vs.resource.get("compose") or {}).get("include") or []))
                    for vs in registry.entries("ValueSet"))
    found += sorted(("ConceptMap", cm.url or "", cm.version or "", sum(len(g.elements) for g in cm.groups))
                    for cm in registry.concept_maps())
    return found


SIZE_UNITS = {"CodeSystem": "concepts", "ValueSet": "includes", "ConceptMap": "mapped codes"}


def inventory_lines(served: list[Served]) -> list[str]:
    """`CodeSystem http://...|2026: 73,000 concepts`, one line per resource."""
    return [f"{rtype} {url}{'|' + version if version else ''}: {size:,} {SIZE_UNITS[rtype]}"
            for rtype, url, version, size in served]
