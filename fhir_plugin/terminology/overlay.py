"""`tx-resource`: the resources a request brings, as an overlay on the loaded content.

Clients such as the HL7 validator send the same setup resources with every request. Validating
and compiling them each time would cost far more than the operation itself, so compiled entries
are cached by content hash (per resource, and per whole set of resources), bounded in size. The
overlay lives for one request and is never stored in the base registry.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

from ..content.loader import content_hash, load_resource
from ..fhirversions import FhirVersion
from .errors import InvalidContent
from .registry import Registry, compile_entry


def _compile(resource: dict, origin: str) -> object:
    """Compile a leniently loaded resource; a shape the compiler cannot take is refused, not a 500."""
    try:
        return compile_entry(resource)
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        label = f"{resource.get('resourceType')}/{resource.get('id') or resource.get('url') or '?'}"
        raise InvalidContent("CONTENT_INVALID", origin, label, "R5", f"cannot be compiled ({error!r})") from None


class _Lru(OrderedDict):
    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def remember(self, key: object, value: object) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


class OverlayCache:
    """Compiled tx-resources by content hash. Thread-safe; one per service."""

    def __init__(self, max_resources: int = 1024, max_overlays: int = 128):
        self._entries = _Lru(max_resources)
        self._overlays = _Lru(max_overlays)
        self._lock = threading.Lock()
        self.compiled = 0  # how many resources were validated and compiled (for tests and benchmarks)

    def overlay(self, base: Registry, resources: Sequence[dict], version: FhirVersion) -> Registry:
        """`base` with `resources` on top; `base` itself when there are none."""
        if not resources:
            return base
        hashes = tuple(f"{version.value}:{content_hash(r)}" for r in resources)
        key = (id(base), hashes)
        with self._lock:
            cached = self._overlays.get(key)
            if cached is not None:
                self._overlays.move_to_end(key)
                return cached
        entries = []
        for index, (digest, resource) in enumerate(zip(hashes, resources)):
            with self._lock:
                entry = self._entries.get(digest)
            if entry is None:
                entry = _compile(load_resource(resource, f"tx-resource[{index}]", prefer=version, lenient=True),
                                 f"tx-resource[{index}]")
                with self._lock:
                    self._entries.remember(digest, entry)
                    self.compiled += 1
            entries.append(entry)
        registry = Registry(parent=base, compiled=entries)
        with self._lock:
            self._overlays.remember(key, registry)
        return registry
