"""CodeSystem/$subsumes on the complete ICD-10-CM: engine and HTTP, both versions."""

import pytest

from fhir_plugin.errors import InvalidRequest, UnknownCode, UnknownCodeSystem
from fhir_plugin.terminology.entries import Coding
from fhir_plugin.terminology.models import SubsumesRequest, SubsumesResult
from helpers import assert_outcome, ok_json

ICD = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"


@pytest.mark.parametrize("a, b, outcome", [
    ("M62", "M62.81", "subsumes"),
    ("M62.8", "M62.81", "subsumes"),
    ("M62.81", "M62", "subsumed-by"),
    ("G81.90", "G81.90", "equivalent"),
    ("R26", "M62.81", "not-subsumed"),
    ("G81.9", "M62.8", "not-subsumed"),
    # chapters and blocks are in the hierarchy too
    ("13", "M62.81", "subsumes"),
    ("M60-M63", "M62", "subsumes"),
    ("M62.81", "13", "subsumed-by"),
    ("6", "M62.81", "not-subsumed"),
    # a generated 7th-character code sits under the code it extends
    ("S06.1X7", "S06.1X7A", "subsumes"),
])
def test_subsumes_in_the_icd_10_cm_hierarchy(service, a, b, outcome):
    assert service.subsumes(SubsumesRequest(code_a=a, code_b=b, system=ICD)) == SubsumesResult(
        outcome, ICD, "2026-04-01")


def test_subsumes_with_codings(service):
    result = service.subsumes(SubsumesRequest(coding_a=Coding(ICD, "G81"), coding_b=Coding(ICD, "G81.90")))
    assert result.outcome == "subsumes"


@pytest.mark.parametrize("request_, error, message_id, text", [
    (SubsumesRequest(code_a="M62", system=ICD), InvalidRequest, "SUBSUMES_MISSING",
     "Code B is missing: give codeB (with system) or codingB"),
    (SubsumesRequest(code_a="M62", code_b="M62.81"), InvalidRequest, "PARAM_REQUIRES",
     "Parameter 'codeA' requires parameter 'system'"),
    (SubsumesRequest(coding_a=Coding(ICD, "M62"), coding_b=Coding(CPT, "97116")), InvalidRequest,
     "SUBSUMES_SYSTEMS_DIFFER",
     f"$subsumes needs two codes of one code system, not '{ICD}' and '{CPT}'"),
    (SubsumesRequest(code_a="M62", code_b="M62.99", system=ICD), UnknownCode, "LOOKUP_CODE_NOT_FOUND",
     f"Unable to find code 'M62.99' in {ICD} version 2026-04-01"),
    (SubsumesRequest(code_a="1", code_b="2", system="http://example.org/none"), UnknownCodeSystem,
     "UNKNOWN_CODESYSTEM_LOOKUP",
     "A definition for CodeSystem 'http://example.org/none' could not be found, so the code cannot be looked up"),
])
def test_subsumes_errors(service, request_, error, message_id, text):
    with pytest.raises(error) as caught:
        service.subsumes(request_)
    assert (caught.value.message_id, caught.value.text) == (message_id, text)


@pytest.mark.parametrize("base, version", [("/r4", "R4"), ("/r5", "R5"), ("/fhir", "R4")])
def test_subsumes_over_http(client, base, version):
    expected = {"resourceType": "Parameters", "parameter": [{"name": "outcome", "valueCode": "subsumes"}]}
    assert ok_json(client.get(f"{base}/CodeSystem/$subsumes?system={ICD}&codeA=M62&codeB=M62.81"), version) == expected
    assert ok_json(client.get(f"{base}/CodeSystem/icd-10-cm/$subsumes?codeA=M62&codeB=M62.81"),
                   version) == expected
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "codingA", "valueCoding": {"system": ICD, "code": "M62.81"}},
        {"name": "codingB", "valueCoding": {"system": ICD, "code": "M62"}}]}
    assert ok_json(client.post(f"{base}/CodeSystem/$subsumes", json=body), version) == {
        "resourceType": "Parameters", "parameter": [{"name": "outcome", "valueCode": "subsumed-by"}]}


def test_subsumes_over_http_errors(client):
    assert_outcome(client.get(f"/r4/CodeSystem/$subsumes?system={ICD}&codeA=M62&codeB=X1"), 404, "not-found",
                   message_id="LOOKUP_CODE_NOT_FOUND", text=f"Unable to find code 'X1' in {ICD} version 2026-04-01")
    assert_outcome(client.get(f"/r4/CodeSystem/icd-10-cm/$subsumes?system={CPT}&codeA=M62&codeB=M62"),
                   400, "invalid", message_id="PARAM_CONFLICT")
