"""Building a TerminologyService from content files: the bundled content, or the caller's."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..config import bundled_dir, content_paths, package_cache_dir
from ..content.limits import Limits
from ..content.loader import load_paths
from ..content.package_cache import PackageCache, parse_specs, served_packages
from ..content.progress import ProgressCallback
from ..terminology.registry import Registry
from ..terminology.service import TerminologyService
from .compiled import CompiledContentCache


def load_service(paths: Iterable[Path] | None = None, *, progress: ProgressCallback | None = None,
                 cache: CompiledContentCache | Path | None = None, limits: Limits | None = None
                 ) -> TerminologyService:
    """A service over the content in `paths`: files, directories, Bundles or FHIR packages (the
    bundled content when None), validated and compiled; nothing is half-loaded if any file fails
    (InvalidContent). `progress`, if given, is called with a LoadProgress per step.

    Nothing is written anywhere and no state of the process changes unless asked: with `cache` (a
    directory, or a CompiledContentCache), content loaded before (same bytes, same code) is read
    from that directory instead of being validated and compiled again, and written there when it
    was not. The server passes FHIR_PLUGIN_CACHE_DIR, and freezes the loaded objects out of the
    garbage collector's way itself (fhir_plugin.server)."""
    chosen = list(paths) if paths is not None else [bundled_dir("resources")]

    def load() -> Registry:
        return load_paths(chosen, limits=limits, progress=progress)

    if cache is None:
        return TerminologyService(load())
    store = cache if isinstance(cache, CompiledContentCache) else CompiledContentCache(cache)
    return TerminologyService(store.cached(chosen, load))


def configured_paths(settings: Mapping[str, Any]) -> list[Path]:
    """What the settings say to serve: FHIR_PLUGIN_CONTENT (or the bundled content), then the
    folders of FHIR_PLUGIN_PACKAGES and their dependencies in the package cache (no network:
    PackageUnavailable names a package that is not installed)."""
    packages = served_packages(parse_specs(str(settings.get("FHIR_PLUGIN_PACKAGES") or "")),
                               PackageCache(package_cache_dir(settings)),
                               str(settings.get("FHIR_PLUGIN_PACKAGE_SKIP") or "").split())
    return content_paths(settings) + packages
