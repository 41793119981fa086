"""LiveService: the service one process answers with, kept in step with content loaded at run time.

The content a server starts with is loaded once (before gunicorn forks, shared by the workers).
Content loaded later lives in a ContentStore directory; every process layers it on top of the
start-up content, and rebuilds that layer when the store's marker changes (see content/store.py).
"""

from __future__ import annotations

import logging
import threading

from ..content.store import Change, ContentStore, Layer
from .errors import TerminologyError
from .service import TerminologyService

log = logging.getLogger(__name__)


class LiveService:
    def __init__(self, base: TerminologyService, store: ContentStore | None = None):
        """Raises InvalidContent if the store holds content that cannot be loaded: a start-up
        with broken content stops, as it does for FHIR_PLUGIN_CONTENT."""
        self.base = base
        self.store = store
        self.problem: str | None = None  # why the last rebuild failed, while the old layer is served
        self._lock = threading.Lock()
        self._seen = store.marker() if store else None
        self._adopt(store.build(base.registry) if store else Layer(base.registry))

    def current(self) -> TerminologyService:
        """The service to answer this request with."""
        if self.store is not None and self.store.marker() != self._seen:
            self._refresh()
        return self._service

    def summary(self) -> dict:
        """What was loaded at run time, per file, as JSON for the admin endpoint."""
        files = [{"name": name, "resources": [{k: v for k, v in (("resourceType", item.resource_type), ("url", item.url),
                                                                   ("version", item.version), ("id", item.id)) if v}
                                               for item in items]}
                 for name, items in self.layer.files().items()]
        listing: dict = {"directory": str(self.store.directory) if self.store else None, "files": files}
        if self.problem:
            listing["problem"] = self.problem
        return listing

    def load(self, data: bytes, name: str | None = None) -> Change:
        """Load `data` into the store (all or nothing) and serve it from now on."""
        return self._changed(self._require_store().add(self.base.registry, data, name))

    def unload(self, name: str) -> Change:
        return self._changed(self._require_store().remove(self.base.registry, name))

    def _require_store(self) -> ContentStore:
        if self.store is None:
            raise RuntimeError("this service has no content store")  # the admin views check first
        return self.store

    def _changed(self, change: Change) -> Change:
        with self._lock:
            self._adopt(change.layer)
            self._seen = change.marker
            self.problem = None
        return change

    def _adopt(self, layer: Layer) -> None:
        self.layer = layer
        # A fresh service also means fresh per-service caches: nothing answered from the old content survives.
        self._service = self.base if layer.registry is self.base.registry else TerminologyService(layer.registry)

    def _refresh(self) -> None:
        with self._lock:
            seen = self.store.marker()  # type: ignore[union-attr]
            if seen == self._seen:
                return  # another thread rebuilt it while this one waited
            try:
                layer = self.store.build(self.base.registry)  # type: ignore[union-attr]
            except TerminologyError as error:
                # Only a file changed behind the store's back gets here (loads are validated first):
                # keep serving what was served, and say why once, not on every request.
                log.error("content loaded at run time cannot be read; serving what was loaded before: %s", error.text)
                self.problem = error.text
            else:
                self._adopt(layer)
                self.problem = None
            self._seen = seen
