"""The FHIR wire, without Flask: typed results and internal (R5) resources -> FHIR R4 or R5
documents -> bytes, and back again for the client.

`document(result, version)` is the one way an answer is rendered: it picks the renderer of the
result's type (parameters.py for the Parameters answers, expansion.py for $expand, the resource
itself for reads) and converts it for `version` (fhirversions.resource_for). formats.py chooses
the media type and writes the bytes: a second wire format (XML) plugs in there. Together with
fhirversions.py this is the only code that tells R4 and R5 apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..fhirversions import FhirVersion, resource_for
from ..terminology.entries import ResourceEntry
from ..terminology.models import ExpandResult, LookupResult, SubsumesResult, TranslateResult, ValidateCodeResult
from . import expansion, parameters
from .resources import ResourceView, resource_view

Renderer = Callable[[Any, FhirVersion], dict[str, Any]]
_RENDERERS: dict[type, Renderer] = {
    LookupResult: parameters.lookup_parameters,
    TranslateResult: parameters.translate_parameters,
    SubsumesResult: lambda result, _: parameters.subsumes_parameters(result),
    ValidateCodeResult: parameters.validate_parameters,
    list: parameters.batch_validate_parameters,  # $batch-validate-code: one result or error per request
    ExpandResult: lambda result, _: expansion.value_set(result),
    ResourceEntry: lambda entry, _: entry.resource,
    ResourceView: resource_view,  # a read, whole or cut by _summary or _elements
    dict: lambda resource, _: resource,  # an internal resource (R5), rendered as it is
}


def document(result: object, version: FhirVersion) -> dict[str, Any]:
    """The FHIR document (a dict) that answers with `result` on a `version` endpoint."""
    renderer = _RENDERERS.get(type(result))
    if renderer is None:
        raise TypeError(f"no FHIR rendering of {type(result).__name__}")
    return resource_for(version, renderer(result, version))


__all__ = ["document"]
