"""Read and search of the loaded CodeSystem, ValueSet and ConceptMap resources.

String parameters (name, title) match case-insensitively at the start, as FHIR string search does;
url, version, status and _id match exactly.
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import NotFound
from .models import ResourceEntry
from .registry import Registry


def read_resource(registry: Registry, resource_type: str, resource_id: str) -> ResourceEntry:
    entry = registry.by_id(resource_type, resource_id)
    if entry is None:
        raise NotFound("RESOURCE_NOT_FOUND", resource_type=resource_type, id=resource_id)
    return entry


def _matches(entry: ResourceEntry, criteria: Mapping[str, str]) -> bool:
    for key, wanted in criteria.items():
        if key in ("name", "title"):
            value = getattr(entry, key) or ""
            if not value.casefold().startswith(wanted.casefold()):
                return False
        else:
            attribute = "id" if key == "_id" else key
            url, _, version = wanted.partition("|") if key == "url" else (wanted, "", "")
            if getattr(entry, attribute) != url or (version and entry.version != version):
                return False
    return True


def search_resources(registry: Registry, resource_type: str, criteria: Mapping[str, str]) -> list[ResourceEntry]:
    return [e for e in registry.entries(resource_type) if _matches(e, criteria)]
