"""Each endpoint prefers its own FHIR release of content versioned by release (FHIR core: 4.0.1 on
/r4, 5.0.0 on /r5) when a request names no version; the latest otherwise (Registry.preferring)."""

from __future__ import annotations

import json

import pytest
from helpers import FHIR_JSON, param, parameters

from fhir_plugin import create_app
from fhir_plugin.runtime.build import load_service
from fhir_plugin.terminology.entries import Coding
from fhir_plugin.terminology.models import ExpandRequest, LookupRequest, TranslateRequest
from fhir_plugin.terminology.registry import Registry
from fhir_plugin.terminology.service import TerminologyService

CS = "http://hl7.org/fhir/example-status"
VS = "http://hl7.org/fhir/ValueSet/example-status"
CM = "http://hl7.org/fhir/ConceptMap/example-status"


def release(version: str, display: str) -> list[dict]:
    id_ = f"example-status-{version.replace('.', '-')}"  # files that are no package: one id each
    return [
        {"resourceType": "CodeSystem", "id": id_, "url": CS, "version": version, "status": "active",
         "content": "complete", "concept": [{"code": "on", "display": display}]},
        {"resourceType": "ValueSet", "id": id_, "url": VS, "version": version, "status": "active",
         "compose": {"include": [{"system": CS}]}},
        {"resourceType": "ConceptMap", "id": id_, "url": CM, "version": version, "status": "active",
         "group": [{"source": CS, "target": "http://example.org/t", "element": [
             {"code": "on", "target": [{"code": f"on-{version}", "relationship": "equivalent"}]}]}]},
    ]


@pytest.fixture(scope="module")
def content(tmp_path_factory):
    folder = tmp_path_factory.mktemp("releases")
    for version, display in (("4.0.1", "On (R4)"), ("5.0.0", "On (R5)"), ("2.0.0", "On (old)")):
        (folder / f"{version}.json").write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": r} for r in release(version, display)]}))
    (folder / "other.json").write_text(json.dumps({"resourceType": "CodeSystem", "url": "http://example.org/one",
                                                   "version": "4.0.1", "status": "active", "content": "complete"}))
    return folder


def test_a_view_prefers_its_release_and_the_base_is_unchanged(content):
    base = load_service([content]).registry
    r4, r5 = Registry.preferring(base, "4.0.1"), Registry.preferring(base, "5.0.0")
    assert (base.code_system(CS).version, r4.code_system(CS).version, r5.code_system(CS).version) == (
        "5.0.0", "4.0.1", "5.0.0")
    assert r4.urls == {CS, VS, CM}  # what it answers otherwise; http://example.org/one has one version
    assert [e.version for e in r4.resource_versions("ValueSet", VS)] == ["4.0.1", "5.0.0", "2.0.0"]
    assert r4.concept_map(CM).version == "4.0.1" and r4.code_system(CS, "2.0.0").version == "2.0.0"
    assert Registry.preferring(base, "6.0.0") is base  # nothing of that release: no view


def test_the_operations_of_a_view_and_their_cached_evaluations(content):
    base = load_service([content]).registry
    r4 = TerminologyService(Registry.preferring(base, "4.0.1"))
    r5 = TerminologyService(Registry.preferring(base, "5.0.0"))
    for service, display, version in ((r4, "On (R4)", "4.0.1"), (r5, "On (R5)", "5.0.0"), (r4, "On (R4)", "4.0.1")):
        assert service.lookup(LookupRequest(system=CS, code="on")).display == display
        expanded = service.expand(ExpandRequest(url=VS))
        assert [(e.code, e.display) for e in expanded.contains] == [("on", display)]
        assert [(p.name, p.value) for p in expanded.parameters] == [("used-codesystem", f"{CS}|{version}")]
        assert expanded.value_set["version"] == version
        assert service.translate(TranslateRequest(source=(Coding(CS, "on"),), url=CM)).matches[0].concept.code == f"on-{version}"


@pytest.mark.parametrize("endpoint, version, display", [("r4", "4.0.1", "On (R4)"), ("r5", "5.0.0", "On (R5)")])
def test_each_endpoint_answers_with_its_release(content, endpoint, version, display):
    client = create_app(service=load_service([content])).test_client()
    answer = client.post(f"/{endpoint}/ValueSet/$validate-code", data=json.dumps(parameters(
        param("url", valueUri=VS), param("system", valueUri=CS), param("code", valueCode="on"))), content_type=FHIR_JSON)
    found = {p["name"]: p for p in answer.get_json()["parameter"]}
    assert (found["result"]["valueBoolean"], found["version"]["valueString"], found["display"]["valueString"]) == (
        True, version, display)
