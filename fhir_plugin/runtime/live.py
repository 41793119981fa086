"""Runtime: what one process serves with, per app: the content it started with, the content loaded
at run time on top of it, and every cache that depends on them.

The content a server starts with is loaded once (before gunicorn forks, shared by the workers).
Content loaded later lives in a ContentStore directory; every process layers it on top of the
start-up content, and catches up with the directory when the store's marker changes, reading only
the files that changed (see store.py and layer.py). A new layer is made beside the one served and swapped in
at once: a request runs on one layer from start to end.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..fhirversions import FhirVersion
from ..terminology.caching import BoundedCache, CacheStats
from ..terminology.errors import TerminologyError
from ..terminology.holders import ValueSetSystems
from ..terminology.registry import Registry
from ..terminology.service import TerminologyService
from .answers import AnswerCache
from .compiled import CompiledContentCache
from .layer import Change, Layer
from .metrics import metrics
from .overlay import DEFAULT_MEMORY, RequestResources
from .store import ContentStore

log = logging.getLogger(__name__)
DEFAULT_ANSWER_CACHE = 2048


class Runtime:
    def __init__(self, base: TerminologyService, store: ContentStore | None = None, *,
                 answer_cache: int = DEFAULT_ANSWER_CACHE, compiled: CompiledContentCache | None = None,
                 request_memory: int = DEFAULT_MEMORY):
        """Raises InvalidContent if the store holds content that cannot be loaded: a start-up
        with broken content stops, as it does for FHIR_PLUGIN_CONTENT. `compiled` is the on-disk
        cache `base` was read through, if any (for its figures). `request_memory`: the bytes kept
        of what requests bring (tx-resources, inline resources) and of what is computed from it."""
        self.base = base
        self.store = store
        self.compiled = compiled
        self.requests = RequestResources(request_memory)
        self.answers = AnswerCache(answer_cache)
        # the UI's concept page: which value sets may hold codes of which system, per content (a
        # few hundred KB each; the views of one content and a load's old and new one fit)
        self._value_set_systems: BoundedCache[ValueSetSystems] = BoundedCache("value-set-systems", 4)
        self.problems: dict[str, str] = {}  # file -> why it cannot be served (its version before, if any, is)
        # /readyz: false until the content is served. Always true once built: a server's workers
        # exist only after the content is loaded, and a reload (server.py, reloading.py) loads the
        # new content beside the old and swaps it in whole, so there is no moment that cannot serve.
        self.ready = False
        self._lock = threading.Lock()
        self._seen = store.marker() if store else None
        self._adopt(store.build(base.registry) if store else Layer.of(base.registry, indexed=False))
        if store is not None:
            store.clean(self.layer)  # what a process killed mid-load left behind
        self.ready = True

    def current(self, version: FhirVersion | None = None) -> TerminologyService:
        """The service to answer this request with: for an endpoint of `version`, the one that
        prefers that FHIR release where the content holds core resources of several releases."""
        if self.store is not None and self.store.marker() != self._seen:
            self._refresh()
        return self._service if version is None else self._endpoints[version]

    def for_request(self, service: TerminologyService, tx_resources: Sequence[dict[str, Any]],
                    version: FhirVersion) -> TerminologyService:
        """`service` with a request's tx-resource parameters on top (itself when there are none)."""
        return self.requests.service(service, tx_resources, version)

    def inline(self, resource: dict[str, Any], origin: str, version: FhirVersion) -> dict[str, Any]:
        """A resource given inline in a request, validated (R4 or R5, `version` tried first)."""
        return self.requests.inline(resource, origin, version)

    def value_set_systems(self, service: TerminologyService) -> ValueSetSystems:
        """The systems each value set of `service` can hold codes of (holders.py), built on first
        use per content: a run-time load makes a new registry, with a new token."""
        registry = service.registry
        found = self._value_set_systems.get(registry.token)
        if found is None:
            found = ValueSetSystems(registry, service.search("ValueSet", {}))
            self._value_set_systems.put(registry.token, found)
        return found

    def cache_stats(self) -> dict[str, CacheStats]:
        """Every cache this runtime's answers go through, by name: the one place to read them."""
        found = [self.answers.stats, self._value_set_systems.stats, *self.requests.stats(),
                 *self._service.registry.caches.stats()]
        if self.compiled is not None:
            found.append(self.compiled.stats)
        return {stats.name: stats for stats in found}

    def serve(self, base: TerminologyService) -> None:
        """Serve `base` (with what was loaded at run time on top) from the next request on: a reload
        of the start-up content. Nothing answered from the old content is answered again."""
        with self._lock:
            # built first: content in the store that cannot be laid on `base` raises with nothing changed
            layer = (self.store.build(base.registry, self.layer.files) if self.store
                     else Layer.of(base.registry, indexed=False))
            self.base = base
            self._adopt(layer)

    def summary(self) -> dict[str, Any]:
        """Every file of the load directory, as JSON for the admin endpoint: its state (loaded,
        duplicate, empty, or not-loaded when this process could not read it), its resources, and
        why it cannot be served, if it cannot."""
        self.current()  # another process may have changed the directory since this one last looked
        layer, problems = self.layer, self.problems
        names = sorted({path.name for path in self.store.files()} | set(layer.files)) if self.store else []
        files: list[dict[str, Any]] = []
        for name in names:
            file = layer.file(name)
            described: dict[str, Any] = {"name": name, "state": layer.state(file) if file else "not-loaded",
                                         "resources": []}
            for item in file.resources if file else ():
                resource = {key: item.resource[key] for key in ("resourceType", "url", "version", "id")
                            if item.resource.get(key)}
                also = layer.also_in(item)
                described["resources"].append({**resource, "alsoIn": also} if also else resource)
            if name in problems:
                described["problem"] = problems[name]
            files.append(described)
        listing: dict[str, Any] = {**(self.store.location() if self.store else {"directory": None}), "files": files}
        if problems:
            listing["problem"] = "\n".join(problems.values())
        return listing

    def load(self, data: bytes, name: str | None = None) -> Change:
        """Load `data` into the store (all or nothing) and serve it from now on."""
        started = time.perf_counter()
        try:
            change = self._changed(self.require_store().add(self.layer, data, name))
        except TerminologyError:
            metrics().note_load("load", time.perf_counter() - started, ok=False)
            raise
        metrics().note_load("load", time.perf_counter() - started, ok=True)
        return change

    def unload(self, name: str) -> Change:
        started = time.perf_counter()
        try:
            change = self._changed(self.require_store().remove(self.layer, name))
        except TerminologyError:
            metrics().note_load("unload", time.perf_counter() - started, ok=False)
            raise
        metrics().note_load("unload", time.perf_counter() - started, ok=True)
        return change

    def require_store(self) -> ContentStore:
        if self.store is None:
            raise RuntimeError("this service has no content store")  # the admin views check first
        return self.store

    def _changed(self, change: Change) -> Change:
        with self._lock:
            self._adopt(change.layer)
            self._seen = change.marker
            self._note(change.problems)
        return change

    def _adopt(self, layer: Layer) -> None:
        self.layer = layer
        self._service = self.base if layer.registry is self.base.registry else TerminologyService(layer.registry)
        self._endpoints = {version: self._service if view is layer.registry else TerminologyService(view)
                           for version in FhirVersion
                           for view in [Registry.preferring(layer.registry, version.release)]}
        # A new registry has a new token, so no answer of the old content could be found for it;
        # dropping them frees the room at once (a request still running on the old content may
        # put one back, under the old token, where nothing finds it).
        self.answers.clear()
        self._value_set_systems.clear()

    def _note(self, problems: Mapping[str, TerminologyError]) -> None:
        """Keep the problems of files that cannot be served; log each once, not on every change."""
        for name, error in problems.items():
            if self.problems.get(name) != error.text:
                # Only a file changed behind the store's back gets here (loads are validated first):
                # the version before, if any, is served.
                log.error("content loaded at run time cannot be read; serving what was loaded before: %s", error.text)
        self.problems = {name: error.text for name, error in problems.items()}

    def _refresh(self) -> None:
        with self._lock:
            store = self.require_store()
            seen = store.marker()
            if seen == self._seen:
                return  # another thread caught up while this one waited
            layer, problems = store.refreshed(self.layer)
            if layer is not self.layer:
                self._adopt(layer)
            self._note(problems)
            self._seen = seen
