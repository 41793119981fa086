"""TerminologyService: the operations in-process, with typed requests and results.

The HTTP views, the CLI and embedding applications all call this; `fhir_plugin.client.
TerminologyClient` offers the same methods over HTTP (both implement TerminologyBackend) and
raises the same errors. A service is built over a Registry; `fhir_plugin.load_service` builds one
from content files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .entries import CodeSystemEntry, ConceptMapEntry, ResourceEntry
from .errors import TerminologyError
from .expand import expand_value_set
from .lookup import lookup_code
from .models import (CodeSystemVersions, Criterion, ExpandRequest, ExpandResult, LookupRequest, LookupResult,
                     SubsumesRequest, SubsumesResult, TerminologyMetadata, TranslateRequest, TranslateResult,
                     ValidateCodeRequest, ValidateCodeResult)
from .registry import Registry
from .search import read_resource, search_resources
from .subsumes import subsumes
from .translate import translate_concept
from .validate import batch_validate, validate_code


class TerminologyService:
    def __init__(self, registry: Registry):
        self.registry = registry

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

    def expand(self, request: ExpandRequest) -> ExpandResult:
        """ValueSet/$expand. Raises UnknownValueSet, UnknownCodeSystem, TooCostly, ..."""
        return expand_value_set(self.registry, request)

    def read(self, resource_type: str, resource_id: str) -> ResourceEntry:
        """`{type}/{id}`; NotFound when there is no such resource."""
        return read_resource(self.registry, resource_type, resource_id)

    def search(self, resource_type: str, criteria: Mapping[str, str] | Sequence[Criterion]) -> list[ResourceEntry]:
        """Search by _id, url (optionally url|version), version, name, title, status, publisher,
        description: Criterion objects (with modifiers and alternatives), or a mapping of names
        to one value each. Every match, in a stable order (terminology.search)."""
        return search_resources(self.registry, resource_type, criteria)

    def metadata(self) -> TerminologyMetadata:
        """The code systems served, each with its versions (the default first)."""
        found: dict[str, list[str]] = {}
        for cs in self.registry.code_systems():
            versions = found.setdefault(cs.url, [])
            if cs.version:
                versions.append(cs.version)
        return TerminologyMetadata(tuple(CodeSystemVersions(url, tuple(v)) for url, v in found.items()))

    # --- the resources behind instance-level operations (`/{type}/{id}/$op`) ---

    def value_set_by_id(self, resource_id: str) -> dict[str, object]:
        """The ValueSet resource behind `ValueSet/{id}`."""
        return read_resource(self.registry, "ValueSet", resource_id).resource

    def code_system_by_id(self, resource_id: str) -> CodeSystemEntry:
        """The compiled CodeSystem behind `CodeSystem/{id}`."""
        entry = read_resource(self.registry, "CodeSystem", resource_id)
        return self.registry.code_system(entry.url or "", entry.version)

    def concept_map_by_id(self, resource_id: str) -> ConceptMapEntry:
        entry = read_resource(self.registry, "ConceptMap", resource_id)
        return next(cm for cm in self.registry.concept_maps() if cm.resource is entry.resource)
