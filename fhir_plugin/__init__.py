"""fhir_plugin: a FHIR terminology service (R4 and R5) as a server, a Flask plugin, a library and a client."""

from __future__ import annotations

__version__ = "0.1.0"

from .app import create_app  # noqa: E402
from .extension import FhirTerminology  # noqa: E402
from .terminology.service import TerminologyService  # noqa: E402

__all__ = ["FhirTerminology", "TerminologyService", "__version__", "create_app"]
