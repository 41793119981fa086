"""TerminologyService: the operations in-process, with typed requests and results.

The HTTP views, the CLI and embedding applications all call this; `fhir_plugin.client.
TerminologyClient` offers the same methods over HTTP and raises the same errors.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..fhirversions import FhirVersion

from .expand import ExpandRequest, expand_value_set
from .lookup import lookup_code
from .models import (
    CodeSystemEntry,
    ConceptMapEntry,
    LookupRequest,
    LookupResult,
    ResourceEntry,
    TranslateRequest,
    TranslateResult,
)
from .overlay import OverlayCache
from .registry import Registry
from .search import read_resource, search_resources
from .subsumes import SubsumesRequest, SubsumesResult, subsumes
from .errors import TerminologyError
from .translate import translate_concept
from .validate_code import ValidateCodeRequest, ValidateCodeResult, batch_validate, validate_code


class TerminologyService:
    def __init__(self, registry: Registry, overlays: OverlayCache | None = None):
        self.registry = registry
        self._overlays = overlays if overlays is not None else OverlayCache()
        # The web layer's rendered answers (fhir_plugin.web.answers), one cache per app. They are
        # kept here because they depend on this service's content: a new service starts without.
        self.answer_caches: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def with_resources(self, resources: Sequence[dict], version: FhirVersion = FhirVersion.R5) -> TerminologyService:
        """This service with `resources` (a request's tx-resource parameters) on top, for one request.

        The resources are validated and compiled once per distinct content, then cached."""
        if not resources:
            return self
        return TerminologyService(self._overlays.overlay(self.registry, resources, version), self._overlays)

    @classmethod
    def from_paths(cls, paths: Iterable[Path] | None = None, *, progress: Any = None,
                   cache: bool = True, cache_dir: Path | None = None) -> TerminologyService:
        """Load content from files, directories, Bundles or FHIR packages (the bundled content when
        None). `progress`, if given, is called with a content.progress.LoadProgress per step.
        With `cache`, content loaded before (same bytes, same code) is read from the on-disk cache
        in `cache_dir` (default FHIR_PLUGIN_CACHE_DIR or ~/.cache/fhir_plugin) instead of being
        validated and compiled again; see content/cache.py."""
        from ..config import bundled_dir
        from ..content import cache as content_cache, load_paths

        chosen = list(paths) if paths is not None else [bundled_dir("resources")]
        if not cache:
            registry = load_paths(chosen, progress=progress)
        else:
            registry = content_cache.cached(chosen, lambda: load_paths(chosen, progress=progress), cache_dir)
        # The content lives as long as the process: moving its objects (about a million with the
        # complete ICD-10-CM) out of the collector's generations keeps every later collection from
        # walking them (which made a large $expand three times slower) and keeps forked gunicorn
        # workers from writing to, and so copying, the pages they share with the master.
        gc.freeze()
        return cls(registry)

    def lookup(self, request: LookupRequest) -> LookupResult:
        """CodeSystem/$lookup. Raises UnknownCodeSystem, UnknownCode, InvalidRequest, ..."""
        return lookup_code(self.registry, request)

    def subsumes(self, request: SubsumesRequest) -> SubsumesResult:
        """CodeSystem/$subsumes: equivalent, subsumes, subsumed-by or not-subsumed."""
        return subsumes(self.registry, request)

    def translate(self, request: TranslateRequest) -> TranslateResult:
        """ConceptMap/$translate. No mapping is a result with result=False, not an error."""
        return translate_concept(self.registry, request)

    def validate_code(self, request: ValidateCodeRequest) -> ValidateCodeResult:
        """CodeSystem/ or ValueSet/$validate-code. An invalid code is result=False with issues;
        raises only for a malformed request or an unknown value set."""
        return validate_code(self.registry, request)

    def batch_validate(self, requests: Sequence[ValidateCodeRequest | TerminologyError]
                       ) -> list[ValidateCodeResult | TerminologyError]:
        """ValueSet/$batch-validate-code: one result per request, in order. A request that is an
        error already (it could not be read), or that fails, is answered by its error in place."""
        return batch_validate(self.registry, list(requests))

    def expand(self, request: ExpandRequest) -> dict:
        """ValueSet/$expand: the R5 ValueSet with its expansion. Raises UnknownValueSet,
        UnknownCodeSystem, TooCostly, ..."""
        return expand_value_set(self.registry, request)

    def value_set_by_id(self, resource_id: str) -> dict:
        """The ValueSet resource behind `ValueSet/{id}` (for instance-level operations)."""
        return read_resource(self.registry, "ValueSet", resource_id).resource

    def code_system_by_id(self, resource_id: str) -> CodeSystemEntry:
        """The compiled CodeSystem behind `CodeSystem/{id}` (for instance-level operations)."""
        entry = read_resource(self.registry, "CodeSystem", resource_id)
        return self.registry.code_system(entry.url, entry.version)

    def concept_map_by_id(self, resource_id: str) -> ConceptMapEntry:
        entry = read_resource(self.registry, "ConceptMap", resource_id)
        return next(cm for cm in self.registry.concept_maps() if cm.resource is entry.resource)

    def read(self, resource_type: str, resource_id: str) -> ResourceEntry:
        """`{type}/{id}`; NotFound when there is no such resource."""
        return read_resource(self.registry, resource_type, resource_id)

    def search(self, resource_type: str, criteria: dict[str, str]) -> list[ResourceEntry]:
        """Search by _id, url (optionally url|version), version, name, title, status."""
        return search_resources(self.registry, resource_type, criteria)
