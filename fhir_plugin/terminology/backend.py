"""TerminologyBackend: the operations of a terminology service, wherever it runs.

TerminologyService (in-process) and fhir_plugin.client.TerminologyClient (over HTTP) both
implement it, with the same typed requests, results and errors; code written against the
Protocol runs unchanged against either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from .entries import ResourceEntry
from .errors import TerminologyError
from .models import (Criterion, ExpandRequest, ExpandResult, LookupRequest, LookupResult, SubsumesRequest,
                     SubsumesResult, TerminologyMetadata, TranslateRequest, TranslateResult, ValidateCodeRequest,
                     ValidateCodeResult)


@runtime_checkable
class TerminologyBackend(Protocol):
    def lookup(self, request: LookupRequest) -> LookupResult:
        """CodeSystem/$lookup."""

    def translate(self, request: TranslateRequest) -> TranslateResult:
        """ConceptMap/$translate: forward, reverse, or one pairing."""

    def validate_code(self, request: ValidateCodeRequest) -> ValidateCodeResult:
        """CodeSystem/$validate-code (with `code_system_url`) or ValueSet/$validate-code."""

    def subsumes(self, request: SubsumesRequest) -> SubsumesResult:
        """CodeSystem/$subsumes."""

    def expand(self, request: ExpandRequest) -> ExpandResult:
        """ValueSet/$expand."""

    def batch_validate(self, requests: Sequence[ValidateCodeRequest | TerminologyError]
                       ) -> list[ValidateCodeResult | TerminologyError]:
        """ValueSet/$batch-validate-code: one result (or error) per request, in order."""

    def read(self, resource_type: str, resource_id: str) -> ResourceEntry:
        """`{type}/{id}`: the resource (in R5 form) and its identity."""

    def search(self, resource_type: str, criteria: Mapping[str, str] | Sequence[Criterion]) -> list[ResourceEntry]:
        """`{type}?criteria`: by _id, url (or url|version), version, name, title, status, publisher,
        description (terminology.search.Criterion for modifiers and alternatives); every match."""

    def metadata(self) -> TerminologyMetadata:
        """The code systems served, with their versions."""
