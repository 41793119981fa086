"""fhir_plugin: a FHIR terminology service (R4 and R5) as a server, a Flask plugin, a library and a client."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["FhirTerminology", "TerminologyService", "__version__", "create_app"]


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
    raise AttributeError(f"module 'fhir_plugin' has no attribute {name!r}")
