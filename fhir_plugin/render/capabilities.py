"""The CapabilityStatement and TerminologyCapabilities served by /metadata.

The static parts live in conformance/ (R5 JSON); this module fills in what depends on the
endpoint (FHIR version, base URL), the software version and the loaded code systems.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

from ..config import bundled_dir
from ..fhirversions import FhirVersion
from ..terminology.registry import Registry


@cache
def _static(name: str) -> dict[str, Any]:
    resource: dict[str, Any] = json.loads((bundled_dir("conformance") / name).read_text(encoding="utf-8"))
    return resource


def capability_statement(version: FhirVersion, base_url: str, software_version: str) -> dict[str, Any]:
    statement = copy.deepcopy(_static("CapabilityStatement-fhir-plugin.json"))
    statement["version"] = software_version
    statement["fhirVersion"] = version.release
    statement["software"]["version"] = software_version
    statement["implementation"]["url"] = base_url
    return statement


def terminology_capabilities(version: FhirVersion, registry: Registry, software_version: str) -> dict[str, Any]:
    capabilities = copy.deepcopy(_static("TerminologyCapabilities-fhir-plugin.json"))
    capabilities["version"] = software_version
    capabilities["software"]["version"] = software_version
    systems: list[dict[str, Any]] = []
    for cs in registry.code_systems():
        entry = next((s for s in systems if s["uri"] == cs.url), None)
        if entry is None:
            entry = {"uri": cs.url, "version": [], "content": cs.content}
            systems.append(entry)
        if cs.version:
            entry["version"].append({"code": cs.version, "isDefault": not entry["version"]})
    for entry in systems:
        if not entry["version"]:
            del entry["version"]
    capabilities["codeSystem"] = systems
    return capabilities
