"""Resources that arrive with a request: `tx-resource` parameters as an overlay on the loaded
content, and inline `valueSet` / `conceptMap` parameters, validated.

Clients such as the HL7 validator send the same setup resources with every request. Validating
and compiling them each time would cost far more than the operation itself, so validated and
compiled resources are kept by content hash (per resource, and per whole set of resources) in
bounded caches. An overlay lives for one request and is never stored in the base registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..content.errors import InvalidContent
from ..content.loader import content_hash, load_resource
from ..fhirversions import FhirVersion
from ..terminology import budget
from ..terminology.caching import BoundedCache, CacheStats
from ..terminology.registry import Compiled, Registry, compile_entry
from ..terminology.service import TerminologyService

MAX_RESOURCES = 1024
MAX_OVERLAYS = 128
MAX_INLINE = 256


def _compile(resource: dict[str, Any], origin: str) -> Compiled:
    """Compile a leniently loaded resource; a shape the compiler cannot take is refused, not a 500."""
    try:
        return compile_entry(resource)
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        label = f"{resource.get('resourceType')}/{resource.get('id') or resource.get('url') or '?'}"
        raise InvalidContent("CONTENT_INVALID", origin=origin, resource=label, version="R5",
                             problem=f"cannot be compiled ({error!r})") from None


class RequestResources:
    """The caches of resources that requests bring. Thread-safe; one per runtime."""

    def __init__(self, max_resources: int = MAX_RESOURCES, max_overlays: int = MAX_OVERLAYS,
                 max_inline: int = MAX_INLINE):
        self.compiled: BoundedCache[Compiled] = BoundedCache("tx-resources", max_resources)
        self.overlays: BoundedCache[Registry] = BoundedCache("tx-overlays", max_overlays)
        self.inline_resources: BoundedCache[dict[str, Any]] = BoundedCache("inline-resources", max_inline)

    def stats(self) -> list[CacheStats]:
        return [self.compiled.stats, self.overlays.stats, self.inline_resources.stats]

    def overlay(self, base: Registry, resources: Sequence[dict[str, Any]], version: FhirVersion) -> Registry:
        """`base` with `resources` on top; `base` itself when there are none."""
        if not resources:
            return base
        hashes = tuple(f"{version.value}:{content_hash(r)}" for r in resources)
        key = (base.token, hashes)
        found = self.overlays.get(key)
        if found is not None:
            return found
        entries = []
        for index, (digest, resource) in enumerate(zip(hashes, resources)):
            budget.check()  # validating and compiling a tx-resource is the costly part of a request that sends many
            origin = f"tx-resource[{index}]"
            entries.append(self.compiled.get_or_compute(
                digest, lambda: _compile(load_resource(resource, origin, prefer=version, lenient=True), origin)))
        registry = Registry(parent=base, compiled=entries)
        self.overlays.put(key, registry)
        return registry

    def service(self, base: TerminologyService, resources: Sequence[dict[str, Any]],
                version: FhirVersion) -> TerminologyService:
        """`base` with `resources` (a request's tx-resource parameters) on top, for one request."""
        if not resources:
            return base
        return TerminologyService(self.overlay(base.registry, resources, version))

    def inline(self, resource: dict[str, Any], origin: str, version: FhirVersion) -> dict[str, Any]:
        """A resource sent in a request parameter (valueSet, conceptMap), validated once per
        distinct content: clients repeat the same inline resource, and validation costs far more
        than the operation. Refusals are not kept, so each one is reported again."""
        key = (content_hash(resource), version.value, origin)
        return self.inline_resources.get_or_compute(key, lambda: load_resource(resource, origin, version))
