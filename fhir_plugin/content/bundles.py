"""The resources of a Bundle (collection, batch or transaction), each with where it came from.

A batch or transaction is a list of instructions; loading one means carrying out its creates and
updates. An instruction to delete, read or patch cannot be carried out by loading, and skipping
it would load something other than what the author meant, so it is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeGuard

from .errors import InvalidContent

BUNDLE_TYPES = ("collection", "batch", "transaction")
LOADING_METHODS = ("POST", "PUT")


def is_bundle(document: object) -> TypeGuard[dict[str, Any]]:
    return isinstance(document, dict) and document.get("resourceType") == "Bundle"


def bundle_resources(bundle: dict[str, Any], origin: str) -> Iterator[tuple[object, str]]:
    """(resource, origin) for every entry, origin naming the entry: `file entry[2]`. Nested
    Bundles are opened in turn. The resources are not validated here."""
    kind = bundle.get("type")
    if kind not in BUNDLE_TYPES:
        raise InvalidContent("BUNDLE_TYPE_REFUSED", origin=origin, type=kind)
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise InvalidContent("BUNDLE_ENTRY_REFUSED", origin=origin, problem="Bundle.entry is not a list")
    for index, entry in enumerate(entries):
        where = f"{origin} entry[{index}]"
        if not isinstance(entry, dict):
            raise InvalidContent("BUNDLE_ENTRY_REFUSED", origin=where, problem="the entry is not a JSON object")
        request = entry.get("request")
        method = request.get("method") if isinstance(request, dict) else None
        if kind != "collection" and method not in LOADING_METHODS:
            raise InvalidContent("BUNDLE_ENTRY_REFUSED", origin=where,
                                 problem=f"request.method {method or '(none)'}; only POST and PUT can be loaded")
        resource = entry.get("resource")
        if resource is None:
            raise InvalidContent("BUNDLE_ENTRY_REFUSED", origin=where, problem="it has no resource")
        if is_bundle(resource):
            yield from bundle_resources(resource, where)
        else:
            yield resource, where
