"""FhirTerminology: mounts the terminology service into a Flask app without taking it over.

Follows Flask's extension pattern (docs/extensiondev.rst): the app is never stored on the
extension, state lives in app.extensions["fhir_plugin"], settings are FHIR_PLUGIN_* keys.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask

from .terminology.caching import CacheStats
from .config import cache_dir, load_dir, load_settings
from .content.limits import LoadBounds, Limits
from .content.progress import LogProgress, ProgressCallback
from .fhirversions import FhirVersion
from .runtime.build import configured_paths, load_service
from .runtime.compiled import CompiledContentCache
from .runtime.inventory import Served, inventory, inventory_lines
from .runtime.metrics import metrics
from .runtime.live import Runtime
from .runtime.pgstore import DatabaseStore
from .runtime.store import ContentStore
from .terminology.service import TerminologyService
from .version import __version__
from .web import routing
from .ui import ui
from .web.admin import admin
from .web.observe import observe
from .web.ops import ops
from .web.views import PluginState, bp


log = logging.getLogger("fhir_plugin")
STARTUP = "fhir_plugin.startup"
RELOAD = "fhir_plugin.reload"  # how to load the start-up content again (absent for an app given its service)


@dataclass(frozen=True)
class Startup:
    """What the start-up loaded, for the server's banner: app.extensions["fhir_plugin.startup"]."""

    served: list[Served]
    seconds: float
    cache_directory: Path | None  # the compiled-content cache, if content was read through one
    from_cache: bool  # read from it rather than validated and compiled


class FhirTerminology:
    """`FhirTerminology(app)` or `FhirTerminology().init_app(app, url_prefix="/terminology")`.

    Mounts /r4, /r5 and /fhir (the FHIR_PLUGIN_DEFAULT_VERSION endpoint) under `url_prefix`, and
    /admin (off unless FHIR_PLUGIN_ADMIN_TOKEN is set). Pass `service` to serve content you have
    already loaded; otherwise FHIR_PLUGIN_CONTENT (or the bundled content), FHIR_PLUGIN_EXTRA_CONTENT
    and the packages of FHIR_PLUGIN_PACKAGES (from the package cache) are loaded, through the
    compiled-content cache only if FHIR_PLUGIN_CACHE_DIR is set. Content loaded at run time
    (FHIR_PLUGIN_LOAD_DIR) is served on top of either. Also mounts /healthz, /readyz and /metrics
    under `url_prefix`. Nothing is printed: the load's progress and what is served go to the
    `fhir_plugin` loggers (INFO), unless `progress` is given.
    """

    def __init__(self, app: Flask | None = None, *, service: TerminologyService | None = None,
                 url_prefix: str = "", server: bool = False, own_root: bool = False,
                 progress: ProgressCallback | None = None):
        self._progress = progress
        self._service = service
        self._url_prefix = url_prefix
        self._server = server  # the standalone server: cache compiled content in the user's cache by default
        # the app is the plugin's own (create_app): its root, like a prefix, answers FHIR for every path
        self._own_root = own_root
        if app is not None:
            self.init_app(app, url_prefix=url_prefix)

    def init_app(self, app: Flask, url_prefix: str | None = None) -> None:
        prefix = (self._url_prefix if url_prefix is None else url_prefix).rstrip("/")
        settings = load_settings(app.config)
        compiled = None
        service = self._service
        started = time.perf_counter()
        if service is None:
            directory = cache_dir(settings, server=self._server)
            compiled = CompiledContentCache(directory) if directory else None
            try:
                service = load_service(configured_paths(settings), cache=compiled, limits=Limits.from_settings(settings),
                                       progress=self._progress or LogProgress())
            except Exception:
                metrics().note_load("startup", time.perf_counter() - started, ok=False)
                raise

            def rebuild() -> TerminologyService:  # the same sources, read again (a reload)
                return load_service(configured_paths(settings), cache=compiled, limits=Limits.from_settings(settings),
                                    progress=LogProgress())

            app.extensions[RELOAD] = rebuild
        store = _load_store(settings)
        runtime = Runtime(service, store, answer_cache=settings["FHIR_PLUGIN_ANSWER_CACHE"], compiled=compiled,
                          request_memory=settings["FHIR_PLUGIN_TX_RESOURCE_MEMORY"] * 1024 * 1024)
        seconds = time.perf_counter() - started
        served = inventory(service.registry)
        counts = metrics()
        if self._service is None:
            counts.note_load("startup", seconds, ok=True)
        counts.note_content(served)
        app.extensions[STARTUP] = Startup(served, seconds, compiled.directory if compiled else None,
                                          bool(compiled and compiled.hits))
        if self._progress is None:
            log.info("fhir_plugin serves %d resources (%.1f s): %s", len(served), seconds,
                     "; ".join(inventory_lines(served)))
        app.extensions["fhir_plugin"] = PluginState(runtime, settings, __version__)
        app.register_blueprint(ops, url_prefix=prefix or None)
        app.register_blueprint(admin, url_prefix=f"{prefix}/admin")
        app.register_blueprint(ui, url_prefix=f"{prefix}/ui")
        default = FhirVersion(settings["FHIR_PLUGIN_DEFAULT_VERSION"])
        bases = [*((v.value.lower(), v) for v in FhirVersion), ("fhir", default)]
        for path, version in bases:
            app.register_blueprint(bp, url_prefix=f"{prefix}/{path}", name=f"fhir_plugin_{path}",
                                   url_defaults={"fhir_version": version.value})
        routing.install(app, prefix, [(path, version.value) for path, version in bases],
                        [admin.name, *(f"fhir_plugin_{path}" for path, _ in bases)],
                        own_paths=bool(prefix) or self._own_root)
        observe(app, [ops.name, admin.name, routing.fallback.name, *(f"fhir_plugin_{path}" for path, _ in bases)])


def _load_store(settings: Mapping[str, Any]) -> ContentStore | None:
    """Where content loaded at run time is kept: the database of FHIR_PLUGIN_LOAD_DATABASE (replicas
    on several machines), else the directory of FHIR_PLUGIN_LOAD_DIR, else nowhere."""
    limits, bounds = Limits.from_settings(settings), LoadBounds.from_settings(settings)
    if settings["FHIR_PLUGIN_LOAD_DATABASE"]:
        return DatabaseStore(settings["FHIR_PLUGIN_LOAD_DATABASE"], limits, bounds, poll=settings["FHIR_PLUGIN_LOAD_POLL"])
    loaded = load_dir(settings)
    return ContentStore(loaded, limits, bounds) if loaded else None


def cache_stats(app: Flask) -> dict[str, CacheStats]:
    """The figures of every cache behind `app`'s FHIR endpoints (size, hits, misses, evictions), by
    name: answers, tx-resources, tx-overlays, inline-resources, tx-evaluations,
    tx-supplemented-code-systems, evaluations, supplemented-code-systems, value-set-systems (the UI's
    concept page) and, when content was read through it, compiled-content."""
    state: PluginState = app.extensions["fhir_plugin"]
    return state.runtime.cache_stats()


def reload_content(app: Flask) -> list[Served]:
    """Load `app`'s start-up content again from its sources (FHIR_PLUGIN_CONTENT or the bundled
    content, FHIR_PLUGIN_EXTRA_CONTENT, the packages; the settings of the start, through the same
    compiled-content cache) and serve it in this process from the next request, with what was
    loaded at run time on top; returns what is served now. Raises what the load raises
    (InvalidContent names the file) with nothing changed, and RuntimeError for an app that was
    given its service (there is nothing to load it again from)."""
    rebuild = app.extensions.get(RELOAD)
    if rebuild is None:
        raise RuntimeError("this app was given its content (service=...): there is nothing to reload it from")
    service: TerminologyService = rebuild()
    state: PluginState = app.extensions["fhir_plugin"]
    state.runtime.serve(service)
    served = inventory(service.registry)
    metrics().note_content(served)
    return served
