"""Code systems named by an OID or another identifier, over real HTTP (`fhir-plugin serve`, R4 and
R5): each operation answers an alias as the canonical URL it names and warns, in the shape each
answer has room for; a NamingSystem loaded at run time (POST /admin/content) and one sent as a
tx-resource are understood; an OID nothing declares is an unknown code system.

The answer to an alias is compared with the answer to the canonical URL, the warning written out.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from helpers import CPT, CPT_VERSION, ICD, ICD_TITLES, ICD_VERSION, ICD_VS, MESSAGE_ID_URL, TX_ISSUE_TYPE, param, parameters
from live_server import LiveServer, running_server

ICD_OID = "urn:oid:2.16.840.1.113883.6.90"
CPT_OID = "urn:oid:2.16.840.1.113883.6.12"
ICD_LEGACY = "http://terminology.hl7.org/CodeSystem/icd10CM"
UNKNOWN_OID = "urn:oid:1.2.3.4.5"
TOKEN = "identifiers-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
VERSIONS = ["r4", "r5"]
TIMEOUT = 60


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with tempfile.TemporaryDirectory() as loaded, running_server(settings={
            "FHIR_PLUGIN_ADMIN_TOKEN": TOKEN, "FHIR_PLUGIN_LOAD_DIR": loaded}) as live:
        yield live


def get(server: LiveServer, version: str, path: str, **query: str) -> requests.Response:
    return requests.get(f"{server.url}/{version}/{path}", params=query, timeout=TIMEOUT)


def post(server: LiveServer, version: str, path: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{server.url}/{version}/{path}", json=body, timeout=TIMEOUT,
                         headers={"Content-Type": "application/fhir+json"})


def ok(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text[:800]
    return response.json()


def text(given: str, canonical: str) -> str:
    return f"It is not valid to refer to a CodeSystem by an identifier like this '{given}' - use '{canonical}'"


def warning(given: str, canonical: str, expression: str) -> dict[str, Any]:
    """One issue of the warning, as the wire carries it."""
    return {"extension": [{"url": MESSAGE_ID_URL, "valueString": "VALUESET_INCLUDE_WRONG_CS_OID"}],
            "severity": "warning", "code": "invalid",
            "details": {"coding": [{"system": TX_ISSUE_TYPE, "code": "invalid-data"}], "text": text(given, canonical)},
            "expression": [expression]}


def issues(*issue: dict[str, Any]) -> dict[str, Any]:
    return {"name": "issues", "resource": {"resourceType": "OperationOutcome", "issue": list(issue)}}


def with_issues(answer: dict[str, Any], *issue: dict[str, Any]) -> dict[str, Any]:
    return {**answer, "parameter": [*answer["parameter"], issues(*issue)]}


# --- every operation, by the OIDs of ICD-10-CM and CPT -----------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("oid, canonical, code", [(ICD_OID, ICD, "R26.2"), (CPT_OID, CPT, "97116")])
def test_lookup(server, version, oid, canonical, code):
    expected = ok(get(server, version, "CodeSystem/$lookup", system=canonical, code=code))
    assert ok(get(server, version, "CodeSystem/$lookup", system=oid, code=code)) == with_issues(
        expected, warning(oid, canonical, "system"))
    by_coding = post(server, version, "CodeSystem/$lookup",
                     parameters(param("coding", valueCoding={"system": oid, "code": code})))
    assert ok(by_coding) == with_issues(expected, warning(oid, canonical, "coding.system"))


@pytest.mark.parametrize("version", VERSIONS)
def test_codesystem_validate_code(server, version):
    answer = ok(get(server, version, "CodeSystem/$validate-code", url=CPT_OID, code="97116"))
    assert answer == {"resourceType": "Parameters", "parameter": [
        param("result", valueBoolean=True), param("code", valueCode="97116"), param("system", valueUri=CPT),
        param("version", valueString=CPT_VERSION),
        param("display", valueString="Therapeutic procedure, 1 or more areas, each 15 minutes; gait training "
                                     "(includes stair climbing)"),
        param("message", valueString=text(CPT_OID, CPT)), issues(warning(CPT_OID, CPT, "system"))]}


@pytest.mark.parametrize("version", VERSIONS)
def test_valueset_validate_code_of_codings_and_codeable_concepts(server, version):
    coding = ok(post(server, version, "ValueSet/$validate-code", parameters(
        param("url", valueUri=ICD_VS), param("coding", valueCoding={"system": ICD_OID, "code": "R26.2"}))))
    assert coding == {"resourceType": "Parameters", "parameter": [
        param("result", valueBoolean=True), param("code", valueCode="R26.2"), param("system", valueUri=ICD),
        param("version", valueString=ICD_VERSION), param("display", valueString=ICD_TITLES["R26.2"]),
        param("message", valueString=text(ICD_OID, ICD)), issues(warning(ICD_OID, ICD, "Coding.system"))]}
    cc = {"coding": [{"system": CPT_OID, "code": "97116"}, {"system": ICD_OID, "code": "M62.81"}]}
    answer = ok(post(server, version, "ValueSet/$validate-code", parameters(
        param("url", valueUri=ICD_VS), param("codeableConcept", valueCodeableConcept=cc))))
    canonical = ok(post(server, version, "ValueSet/$validate-code", parameters(
        param("url", valueUri=ICD_VS), param("codeableConcept", valueCodeableConcept={"coding": [
            {"system": CPT, "code": "97116"}, {"system": ICD, "code": "M62.81"}]}))))
    by_name = {p["name"]: p for p in canonical["parameter"]}
    found = by_name["issues"]["resource"]["issue"]
    assert answer == {"resourceType": "Parameters", "parameter": [
        by_name["result"], by_name["code"], by_name["system"], by_name["version"], by_name["display"],
        param("message", valueString=f"{text(CPT_OID, CPT)}; {text(ICD_OID, ICD)}"),
        issues(*found, warning(CPT_OID, CPT, "CodeableConcept.coding[0].system"),
               warning(ICD_OID, ICD, "CodeableConcept.coding[1].system")),
        param("codeableConcept", valueCodeableConcept=cc)]}
    assert by_name["system"] == param("system", valueUri=ICD)


@pytest.mark.parametrize("version", VERSIONS)
def test_translate(server, version):
    expected = ok(get(server, version, "ConceptMap/$translate", sourceSystem=CPT, sourceCode="97116"))
    answer = ok(get(server, version, "ConceptMap/$translate", sourceSystem=CPT_OID, sourceCode="97116",
                    targetSystem=ICD_OID))
    result, *matches = expected["parameter"]
    assert answer == {"resourceType": "Parameters", "parameter": [
        result, param("message", valueString=f"{text(CPT_OID, CPT)}; {text(ICD_OID, ICD)}"), *matches,
        issues(warning(CPT_OID, CPT, "sourceSystem"), warning(ICD_OID, ICD, "targetSystem"))]}
    r4_names = ok(get(server, version, "ConceptMap/$translate", system=CPT_OID, code="97116"))
    r4_expected = ok(get(server, version, "ConceptMap/$translate", system=CPT, code="97116"))
    result, *matches = r4_expected["parameter"]
    assert r4_names == {"resourceType": "Parameters", "parameter": [
        result, param("message", valueString=text(CPT_OID, CPT)), *matches, issues(warning(CPT_OID, CPT, "system"))]}


@pytest.mark.parametrize("version", VERSIONS)
def test_translate_with_a_concept_map_whose_groups_name_oids(server, version):
    concept_map = {"resourceType": "ConceptMap", "status": "active", "group": [
        {"source": CPT_OID, "target": ICD_OID, "element": [{"code": "97116", "target": [
            {"code": "R26.2", "relationship": "related-to"} if version == "r5" else
            {"code": "R26.2", "equivalence": "relatedto"}]}]}]}
    answer = ok(post(server, version, "ConceptMap/$translate", parameters(
        param("sourceCoding", valueCoding={"system": CPT, "code": "97116"}), param("conceptMap", resource=concept_map))))
    relationship = param("relationship", valueCode="related-to") if version == "r5" else \
        param("equivalence", valueCode="relatedto")
    assert answer == {"resourceType": "Parameters", "parameter": [
        param("result", valueBoolean=True),
        param("message", valueString=f"{text(CPT_OID, CPT)}; {text(ICD_OID, ICD)}"),
        {"name": "match", "part": [relationship, param("concept", valueCoding={"system": ICD, "code": "R26.2"})]},
        issues(warning(CPT_OID, CPT, "ConceptMap.group[0].source"), warning(ICD_OID, ICD, "ConceptMap.group[0].target"))]}


@pytest.mark.parametrize("version", VERSIONS)
def test_subsumes(server, version):
    answer = ok(get(server, version, "CodeSystem/$subsumes", system=ICD_OID, codeA="M62", codeB="M62.81"))
    assert answer == {"resourceType": "Parameters", "parameter": [
        param("outcome", valueCode="subsumes"), issues(warning(ICD_OID, ICD, "system"))]}


@pytest.mark.parametrize("version", VERSIONS)
def test_expand(server, version):
    value_set = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [
        {"system": ICD_OID, "concept": [{"code": "R26.2"}, {"code": "M62.81"}]}]}}
    expansion = ok(post(server, version, "ValueSet/$expand", parameters(param("valueSet", resource=value_set))))["expansion"]
    assert expansion["parameter"] == [
        param("used-codesystem", valueUri=f"{ICD}|{ICD_VERSION}"),
        param("warning-identifier", valueString=text(ICD_OID, ICD))]
    assert expansion["contains"] == [{"system": ICD, "code": code, "display": ICD_TITLES[code]}
                                     for code in ("R26.2", "M62.81")]


# --- NamingSystems: loaded at run time, sent as a tx-resource ----------------------------------

ICD_NAMING_SYSTEM = {
    "resourceType": "NamingSystem", "id": "icd10cm", "name": "ICD10CM", "status": "active", "kind": "codesystem",
    "date": "2026-01-01", "uniqueId": [
        {"type": "oid", "value": "2.16.840.1.113883.6.90", "preferred": True},
        {"type": "uri", "value": ICD, "preferred": True},
        {"type": "uri", "value": ICD_LEGACY, "preferred": False}]}


def test_a_naming_system_loaded_at_run_time(server):
    created = requests.post(f"{server.url}/admin/content", params={"name": "icd-naming.json"}, json=ICD_NAMING_SYSTEM,
                            headers=AUTH, timeout=TIMEOUT)
    assert created.status_code == 201, created.text
    try:
        for version in VERSIONS:
            expected = ok(get(server, version, "CodeSystem/$lookup", system=ICD, code="R26.2"))
            assert ok(get(server, version, "CodeSystem/$lookup", system=ICD_LEGACY, code="R26.2")) == with_issues(
                expected, warning(ICD_LEGACY, ICD, "system"))
    finally:
        removed = requests.delete(f"{server.url}/admin/content/icd-naming.json", headers=AUTH, timeout=TIMEOUT)
        assert removed.status_code == 200, removed.text
    gone = get(server, "r4", "CodeSystem/$lookup", system=ICD_LEGACY, code="R26.2")
    assert gone.status_code == 404
    assert gone.json()["issue"][0]["details"]["text"] == (
        f"A definition for CodeSystem '{ICD_LEGACY}' could not be found, so the code cannot be looked up")


def test_a_naming_system_that_gives_the_oid_of_icd_10_cm_to_another_code_system_is_refused(server):
    other = {**ICD_NAMING_SYSTEM, "id": "mine", "uniqueId": [
        {"type": "oid", "value": "2.16.840.1.113883.6.90"}, {"type": "uri", "value": "http://example.org/mine"}]}
    refused = requests.post(f"{server.url}/admin/content", params={"name": "mine.json"}, json=other, headers=AUTH,
                            timeout=TIMEOUT)
    assert refused.status_code == 422
    issue = refused.json()["issue"][0]
    assert issue["extension"] == [{"url": MESSAGE_ID_URL, "valueString": "CONTENT_DUPLICATE_IDENTIFIER"}]
    assert issue["details"]["text"] == (
        f"The identifier '{ICD_OID}' names two code systems: 'http://example.org/mine' in mine.json and '{ICD}' in "
        "the content the server started with")
    assert ok(get(server, "r4", "CodeSystem/$lookup", system=ICD_OID, code="R26.2"))["parameter"][4] == \
        param("system", valueUri=ICD)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_naming_system_sent_as_a_tx_resource(server, version):
    naming = {**ICD_NAMING_SYSTEM, "uniqueId": [*ICD_NAMING_SYSTEM["uniqueId"], {"type": "other", "value": "I10C"}]}
    answer = ok(post(server, version, "CodeSystem/$validate-code", parameters(
        param("url", valueUri="I10C"), param("code", valueCode="R26.2"), param("tx-resource", resource=naming))))
    assert answer == {"resourceType": "Parameters", "parameter": [
        param("result", valueBoolean=True), param("code", valueCode="R26.2"), param("system", valueUri=ICD),
        param("version", valueString=ICD_VERSION), param("display", valueString=ICD_TITLES["R26.2"]),
        param("message", valueString=text("I10C", ICD)), issues(warning("I10C", ICD, "system"))]}
    # the tx-resource was for that request alone
    alone = ok(get(server, version, "CodeSystem/$validate-code", url="I10C", code="R26.2"))
    assert alone["parameter"][0] == param("result", valueBoolean=False)


# --- an OID nothing declares --------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_an_unknown_oid_is_an_unknown_code_system(server, version):
    looked_up = get(server, version, "CodeSystem/$lookup", system=UNKNOWN_OID, code="R26.2")
    assert looked_up.status_code == 404
    assert looked_up.json() == {"resourceType": "OperationOutcome", "issue": [{
        "extension": [{"url": MESSAGE_ID_URL, "valueString": "UNKNOWN_CODESYSTEM_LOOKUP"}], "severity": "error",
        "code": "not-found", "details": {
            "text": f"A definition for CodeSystem '{UNKNOWN_OID}' could not be found, so the code cannot be looked up",
            "coding": [{"system": TX_ISSUE_TYPE, "code": "not-found"}]},
        "expression": ["system"]}]}
    validated = ok(get(server, version, "CodeSystem/$validate-code", url=UNKNOWN_OID, code="R26.2"))
    message = f"A definition for CodeSystem '{UNKNOWN_OID}' could not be found, so the code cannot be validated"
    assert validated == {"resourceType": "Parameters", "parameter": [
        param("result", valueBoolean=False), param("code", valueCode="R26.2"), param("system", valueUri=UNKNOWN_OID),
        param("message", valueString=message),
        {"name": "issues", "resource": {"resourceType": "OperationOutcome", "issue": [{
            "extension": [{"url": MESSAGE_ID_URL, "valueString": "UNKNOWN_CODESYSTEM"}], "severity": "error",
            "code": "not-found", "details": {"coding": [{"system": TX_ISSUE_TYPE, "code": "not-found"}], "text": message},
            "expression": ["system"]}]}},
        param("x-unknown-system", valueCanonical=UNKNOWN_OID)]}
