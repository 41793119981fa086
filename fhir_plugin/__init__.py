"""fhir_plugin: a FHIR terminology service (R4 and R5) as a server, a Flask plugin, a library and a client."""

from __future__ import annotations

from typing import Any

from .version import __version__

__all__ = ["FhirTerminology", "TerminologyBackend", "TerminologyClient", "TerminologyService", "__version__",
           "create_app", "load_service"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so that `import fhir_plugin.client` (or the engine) does not load Flask.
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "FhirTerminology":
        from .extension import FhirTerminology

        return FhirTerminology
    if name == "TerminologyService":
        from .terminology.service import TerminologyService

        return TerminologyService
    if name == "TerminologyBackend":
        from .terminology.backend import TerminologyBackend

        return TerminologyBackend
    if name == "TerminologyClient":
        from .client import TerminologyClient

        return TerminologyClient
    if name == "load_service":
        from .runtime.build import load_service

        return load_service
    raise AttributeError(f"module 'fhir_plugin' has no attribute {name!r}")
