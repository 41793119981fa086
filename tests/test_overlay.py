"""tx-resource overlays: compiled once per distinct content, never stored, per request."""

import json

import pytest
from helpers import load_content

from fhir_plugin.fhirversions import FhirVersion
from fhir_plugin.runtime import Runtime
from fhir_plugin.txtests.manifest import default_tests_dir

TESTS = default_tests_dir()
pytestmark = pytest.mark.skipif(not (TESTS / "test-cases.json").is_file(), reason=f"no HL7 tx tests at {TESTS}")


def version_suite_setup() -> list[dict]:
    manifest = json.loads((TESTS / "test-cases.json").read_text(encoding="utf-8-sig"))
    [suite] = [s for s in manifest["suites"] if s["name"] == "version"]
    return [json.loads((TESTS / path).read_text(encoding="utf-8-sig")) for path in suite["setup"]]


def test_the_largest_setup_is_compiled_once_and_then_reused():
    setup = version_suite_setup()
    assert len(setup) == 14
    service = load_content()
    runtime = Runtime(service)
    first = runtime.for_request(service, setup, FhirVersion.R5)
    assert runtime.cache_stats()["tx-resources"].misses == 14
    again = runtime.for_request(service, [json.loads(json.dumps(r)) for r in setup], FhirVersion.R5)  # equal copies
    assert again.registry is first.registry
    assert runtime.cache_stats()["tx-resources"].misses == 14
    # one changed resource: only that one is compiled again, the other 13 come from the cache
    changed = [dict(r) for r in setup]
    changed[0]["title"] = "changed"
    runtime.for_request(service, changed, FhirVersion.R5)
    assert runtime.cache_stats()["tx-resources"].misses == 15


def test_the_overlay_never_reaches_the_loaded_content():
    setup = version_suite_setup()
    service = load_content()
    overlay = Runtime(service).for_request(service, setup, FhirVersion.R5)
    url = setup[0]["url"]
    assert overlay.registry.code_system_versions(url) and not service.registry.code_system_versions(url)
    assert [cs.url for cs in service.registry.code_systems()] == [
        "http://www.ama-assn.org/go/cpt", "http://fhir-plugin.org/fhir/CodeSystem/designation-use",
        "http://hl7.org/fhir/sid/icd-10-cm"]
