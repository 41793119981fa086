"""$validate-code (CodeSystem, ValueSet) and $batch-validate-code: engine and HTTP, both versions.

The wording of issues and messages is the HL7 catalogue's (docs/hl7-tx-tests.md section 8);
the HL7 suite itself runs in test_tx_conformance.py.
"""

from __future__ import annotations

import json

import pytest

from fhir_plugin import TerminologyService
from fhir_plugin.terminology.models import Coding
from fhir_plugin.terminology.validate_code import ValidateCodeRequest
from helpers import CPT, ICD

ICD_VS = "http://fhir-plugin.org/fhir/ValueSet/icd-10-cm-gait-training-diagnoses"
CPT_VS = "http://fhir-plugin.org/fhir/ValueSet/cpt-gait-training"
R26_2 = "Difficulty in walking, not elsewhere classified"
CPT_DISPLAY = "Therapeutic procedure, 1 or more areas, each 15 minutes; gait training (includes stair climbing)"
FRAGMENT_97110 = ("Unknown Code '97110' in the CodeSystem 'http://www.ama-assn.org/go/cpt' version '2026' - note that "
                  "the code system is labeled as a fragment, so the code may be valid in some other fragment")
BASES = ["/r4", "/r5"]

SIMPLE = {
    "resourceType": "CodeSystem", "url": "http://example.org/cs", "version": "1", "status": "active",
    "content": "complete", "caseSensitive": False, "language": "en",
    "concept": [{"code": "a", "display": "Alpha", "designation": [{"language": "de", "value": "Alfa"}]},
                {"code": "old", "display": "Old", "property": [{"code": "inactive", "valueBoolean": True}]}],
}
SIMPLE_VS = {"resourceType": "ValueSet", "url": "http://example.org/vs", "version": "2", "status": "active",
             "compose": {"include": [{"system": "http://example.org/cs", "concept": [{"code": "a"}]}]}}


@pytest.fixture(scope="module")
def service() -> TerminologyService:
    return TerminologyService.from_paths()


def params(result: dict) -> dict:
    return {p["name"]: p for p in result["parameter"]}


def texts(body: dict) -> list[tuple[str, str, str, list[str] | None]]:
    issues = params(body)["issues"]["resource"]["issue"]
    return [(i["severity"], i["details"]["coding"][0]["code"], i["details"]["text"], i.get("expression"))
            for i in issues]


# --- engine ------------------------------------------------------------------------------------


def test_engine_icd_code_in_value_set(service):
    result = service.validate_code(ValidateCodeRequest(codings=(Coding(ICD, "R26.2"),), url=ICD_VS))
    assert (result.result, result.code, result.system, result.version, result.display, result.issues) == (
        True, "R26.2", ICD, "2026-04-01", R26_2, ())


def test_engine_cpt_fragment_answers_unknown_not_invalid(service):
    result = service.validate_code(ValidateCodeRequest(codings=(Coding(CPT, "97110"),), code_system_url=CPT))
    assert result.result is True and result.message is None
    [issue] = result.issues
    assert (issue.severity, issue.tx_type, issue.message_id, issue.text, issue.expression) == (
        "warning", "invalid-code", "UNKNOWN_CODE_IN_FRAGMENT", FRAGMENT_97110, "code")


def test_engine_wrong_display_is_result_false_with_the_catalogue_message(service):
    result = service.validate_code(ValidateCodeRequest(
        codings=(Coding(ICD, "R26.2", display="Walking badly"),), form="coding", url=ICD_VS))
    assert result.result is False and result.display == R26_2
    assert result.message == (f"Wrong Display Name 'Walking badly' for {ICD}#R26.2. Valid display is '{R26_2}' (en) "
                              "(for the language(s) '--')")
    [issue] = result.issues
    assert (issue.severity, issue.code, issue.tx_type, issue.expression) == (
        "error", "invalid", "invalid-display", "Coding.display")


def test_engine_lenient_display_is_a_warning(service):
    result = service.validate_code(ValidateCodeRequest(
        codings=(Coding(ICD, "R26.2", display="Walking badly"),), url=ICD_VS, lenient_display=True))
    assert result.result is True and [i.severity for i in result.issues] == ["warning"]


def test_engine_code_not_in_value_set(service):
    result = service.validate_code(ValidateCodeRequest(codings=(Coding(CPT, "97116"),), url=ICD_VS))
    assert result.result is False
    assert result.message == (f"The provided code '{CPT}#97116' was not found in the value set '{ICD_VS}|"
                              f"{service.read('ValueSet', 'icd-10-cm-gait-training-diagnoses').version}'")


def test_engine_case_insensitive_and_inactive_and_language(service):
    own = service.with_resources([SIMPLE, SIMPLE_VS])
    folded = own.validate_code(ValidateCodeRequest(codings=(Coding("http://example.org/cs", "A"),), form="coding",
                                                   url="http://example.org/vs"))
    assert (folded.result, folded.normalized_code, folded.message) == (True, "a", None)
    assert [i.message_id for i in folded.issues] == ["CODE_CASE_DIFFERENCE"]
    old = own.validate_code(ValidateCodeRequest(codings=(Coding("http://example.org/cs", "old"),),
                                                code_system_url="http://example.org/cs"))
    assert (old.result, old.inactive, old.message) == (
        True, True, "The concept 'old' has a status of inactive and its use should be reviewed")
    german = own.validate_code(ValidateCodeRequest(codings=(Coding("http://example.org/cs", "a", display="Alfa"),),
                                                   url="http://example.org/vs", display_language="de"))
    assert (german.result, german.display, german.issues) == (True, "Alfa", ())


def test_engine_unknown_system_and_version(service):
    unknown = service.validate_code(ValidateCodeRequest(codings=(Coding("http://example.org/nope", "x"),),
                                                        url=ICD_VS))
    assert unknown.result is False and unknown.unknown_systems == ("http://example.org/nope",)
    version = service.validate_code(ValidateCodeRequest(codings=(Coding(ICD, "R26.2", "1999"),), url=ICD_VS))
    assert version.result is False and version.caused_by_unknown_system == (f"{ICD}|1999",)
    assert version.message.startswith(f"A definition for CodeSystem '{ICD}' version '1999' could not be found, so "
                                      "the code cannot be validated. Valid versions: 2026-04-01")


# --- HTTP --------------------------------------------------------------------------------------


@pytest.mark.parametrize("base", BASES)
def test_http_valueset_validate_get(client, base):
    response = client.get(f"{base}/ValueSet/$validate-code?url={ICD_VS}&system={ICD}&code=R26.2")
    assert response.status_code == 200
    body = params(response.get_json())
    assert body["result"]["valueBoolean"] is True
    assert body["display"]["valueString"] == R26_2
    assert body["version"]["valueString"] == "2026-04-01"


@pytest.mark.parametrize("base", BASES)
def test_http_codesystem_validate_fragment(client, base):
    for query in (f"url={CPT}&code=97110", f"system={CPT}&code=97110"):  # R4/R5 `url`, STU3 `system`
        body = client.get(f"{base}/CodeSystem/$validate-code?{query}").get_json()
        assert params(body)["result"]["valueBoolean"] is True
        assert texts(body) == [("warning", "invalid-code", FRAGMENT_97110, ["code"])]
    instance = client.get(f"{base}/CodeSystem/cpt-97116-fragment/$validate-code?code=97116").get_json()
    assert params(instance)["display"]["valueString"] == CPT_DISPLAY


@pytest.mark.parametrize("base", BASES)
def test_http_wrong_display_by_post(client, base):
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "url", "valueUri": ICD_VS},
        {"name": "coding", "valueCoding": {"system": ICD, "code": "R26.2", "display": "Walking badly"}}]}
    response = client.post(f"{base}/ValueSet/$validate-code", data=json.dumps(body),
                           content_type="application/fhir+json")
    assert response.status_code == 200
    result = response.get_json()
    assert params(result)["result"]["valueBoolean"] is False
    message = (f"Wrong Display Name 'Walking badly' for {ICD}#R26.2. Valid display is '{R26_2}' (en) "
               "(for the language(s) '--')")
    assert params(result)["message"]["valueString"] == message
    assert texts(result) == [("error", "invalid-display", message, ["Coding.display"])]


@pytest.mark.parametrize("base", BASES)
def test_http_codeable_concept_and_instance(client, base):
    cc = {"coding": [{"system": CPT, "code": "97116"}, {"system": ICD, "code": "R26.2"}], "text": "gait"}
    body = {"resourceType": "Parameters", "parameter": [{"name": "codeableConcept", "valueCodeableConcept": cc}]}
    response = client.post(f"{base}/ValueSet/icd-10-cm-gait-training-diagnoses/$validate-code",
                           data=json.dumps(body), content_type="application/fhir+json")
    result = params(response.get_json())
    assert result["result"]["valueBoolean"] is True
    assert (result["code"]["valueCode"], result["codeableConcept"]["valueCodeableConcept"]) == ("R26.2", cc)


@pytest.mark.parametrize("base", BASES)
def test_http_unknown_value_set_is_404(client, base):
    response = client.get(f"{base}/ValueSet/$validate-code?url=http://example.org/nope&system={ICD}&code=R26.2")
    assert response.status_code == 404
    [issue] = response.get_json()["issue"]
    assert issue["details"]["text"] == "A definition for the value Set 'http://example.org/nope' could not be found"


@pytest.mark.parametrize("base", BASES)
def test_http_bad_display_language_is_400(client, base):
    response = client.get(f"{base}/ValueSet/$validate-code?url={ICD_VS}&system={ICD}&code=R26.2&displayLanguage=-")
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["details"]["text"] == "Invalid displayLanguage: '-'"


@pytest.mark.parametrize("base", BASES)
def test_http_batch_validate(client, base):
    def validation(code):
        return {"name": "validation", "resource": {"resourceType": "Parameters", "parameter": [
            {"name": "coding", "valueCoding": {"system": ICD, "code": code}}]}}
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "url", "valueUri": ICD_VS}, validation("R26.2"), validation("M62.81"),
        {"name": "validation", "resource": {"resourceType": "Parameters", "parameter": []}}]}
    response = client.post(f"{base}/ValueSet/$batch-validate-code", data=json.dumps(body),
                           content_type="application/fhir+json")
    assert response.status_code == 200
    answers = [p["resource"] for p in response.get_json()["parameter"]]
    assert [params(a)["result"]["valueBoolean"] for a in answers[:2]] == [True, True]
    assert answers[2]["resourceType"] == "OperationOutcome"
