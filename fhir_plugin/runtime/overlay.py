"""Resources that arrive with a request: `tx-resource` parameters as an overlay on the loaded
content, and inline `valueSet` / `conceptMap` parameters, validated.

Clients such as the HL7 validator send the same setup resources with every request. Validating
and compiling them each time would cost far more than the operation itself, so validated and
compiled resources are kept by content hash (per resource, and per whole set of resources) in
bounded caches. An overlay lives for one request and is never stored in the base registry.

Everything kept here, and what the engine computes from an overlay's own resources (evaluations,
supplemented code systems: the overlays' `RegistryCaches`), shares one budget of bytes per
runtime (FHIR_PLUGIN_TX_RESOURCE_MEMORY): requests that each bring new resources push out the
least recently used, whatever their size, instead of growing the process by a number of entries
times whatever those entries hold. Evaluations of the loaded content alone are kept with the
loaded content (see Registry.home), once, whichever overlay asked.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from ..content.errors import InvalidContent
from ..content.loader import load_resource
from ..fhirversions import FhirVersion
from ..terminology import budget
from ..terminology.caching import BoundedCache, Budget, CacheStats
from ..terminology.registry import Compiled, Registry, RegistryCaches, compile_entry
from ..terminology.service import TerminologyService

DEFAULT_MEMORY = 128 * 1024 * 1024
# Estimated bytes a resource keeps once validated and compiled, from its JSON text: about its
# length (the strings), plus this much per JSON object and per array (the dicts of the validated
# resource and what the compiler makes of each: Concept, index entries). Measured with tracemalloc
# on code systems and value sets of 300 to 5,000 concepts of various shapes: within 25% of the
# real figure either way.
OBJECT_BYTES = 450
ARRAY_BYTES = 100
# An overlay registry itself, with no resource (its dicts and lists), measured.
OVERLAY_BYTES = 4096


def measure_resource(resource: dict[str, Any]) -> tuple[str, int]:
    """A stable digest of the resource's content (key order does not matter) and the bytes it
    is estimated to keep once loaded, from the one serialisation the digest needs anyway."""
    text = json.dumps(resource, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    size = len(text) + OBJECT_BYTES * text.count("{") + ARRAY_BYTES * text.count("[")
    return hashlib.sha256(text.encode()).hexdigest(), size


def _compile(resource: dict[str, Any], origin: str) -> Compiled:
    """Compile a leniently loaded resource; a shape the compiler cannot take is refused, not a 500."""
    try:
        return compile_entry(resource)
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        label = f"{resource.get('resourceType')}/{resource.get('id') or resource.get('url') or '?'}"
        raise InvalidContent("CONTENT_INVALID", origin=origin, resource=label, version="R5",
                             problem=f"cannot be compiled ({error!r})") from None


def _second(kept: tuple[Any, int]) -> int:
    return kept[1]


class RequestResources:
    """The caches of resources that requests bring, within `memory` bytes together (0 keeps
    none). Thread-safe; one per runtime."""

    def __init__(self, memory: int = DEFAULT_MEMORY):
        self.budget = Budget(memory)
        # (value, its estimated bytes): the estimate comes from the request's JSON, not the value
        self.compiled: BoundedCache[tuple[Compiled, int]] = BoundedCache("tx-resources", 0, _second, self.budget)
        self.overlays: BoundedCache[tuple[Registry, int]] = BoundedCache("tx-overlays", 0, _second, self.budget)
        self.inline_resources: BoundedCache[tuple[dict[str, Any], int]] = BoundedCache(
            "inline-resources", 0, _second, self.budget)
        self.caches = RegistryCaches(budget=self.budget)  # the overlays' evaluations and supplemented systems

    def stats(self) -> list[CacheStats]:
        return [self.compiled.stats, self.overlays.stats, self.inline_resources.stats, *self.caches.stats()]

    def overlay(self, base: Registry, resources: Sequence[dict[str, Any]], version: FhirVersion) -> Registry:
        """`base` with `resources` on top; `base` itself when there are none."""
        if not resources:
            return base
        measured = [measure_resource(r) for r in resources]
        key = (base.token, version.value, tuple(digest for digest, _ in measured))
        found = self.overlays.get(key)
        if found is not None:
            return found[0]
        entries = []
        for index, ((digest, size), resource) in enumerate(zip(measured, resources)):
            budget.check()  # validating and compiling a tx-resource is the costly part of a request that sends many
            origin = f"tx-resource[{index}]"
            entries.append(self.compiled.get_or_compute(
                f"{version.value}:{digest}",
                lambda: (_compile(load_resource(resource, origin, prefer=version, lenient=True), origin), size))[0])
        size = OVERLAY_BYTES + sum(size for _, size in measured)
        registry = Registry(parent=base, compiled=entries, caches=self.caches, size=size)
        self.overlays.put(key, (registry, size))
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
        digest, size = measure_resource(resource)
        key = (digest, version.value, origin)
        return self.inline_resources.get_or_compute(key, lambda: (load_resource(resource, origin, version), size))[0]
