"""TerminologyService: the operations in-process, with typed requests and results.

The HTTP views, the CLI and embedding applications all call this; `fhir_plugin.client.
TerminologyClient` offers the same methods over HTTP and raises the same errors.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .lookup import lookup_code
from .models import LookupRequest, LookupResult, TranslateRequest, TranslateResult
from .registry import Registry
from .translate import translate_concept


class TerminologyService:
    def __init__(self, registry: Registry):
        self.registry = registry

    @classmethod
    def from_paths(cls, paths: Iterable[Path] | None = None) -> TerminologyService:
        """Load content from files or directories (the bundled content when None)."""
        from ..config import bundled_dir
        from ..content import load_paths

        return cls(load_paths(list(paths) if paths is not None else [bundled_dir("resources")]))

    def lookup(self, request: LookupRequest) -> LookupResult:
        """CodeSystem/$lookup. Raises UnknownCodeSystem, UnknownCode, InvalidRequest, ..."""
        return lookup_code(self.registry, request)

    def translate(self, request: TranslateRequest) -> TranslateResult:
        """ConceptMap/$translate. No mapping is a result with result=False, not an error."""
        return translate_concept(self.registry, request)
