"""$validate-code (CodeSystem, ValueSet) and $batch-validate-code: engine and HTTP, both versions.

The wording of issues and messages is the HL7 catalogue's (docs/hl7-tx-tests.md section 8);
the HL7 suite itself runs in test_tx_conformance.py.
"""

from __future__ import annotations

import json

import pytest
from helpers import CPT, ICD, load_content, with_resources

from fhir_plugin import TerminologyService
from fhir_plugin.errors import InvalidValidateRequest, UnknownSupplement, UnknownValueSet
from fhir_plugin.terminology.entries import Coding
from fhir_plugin.terminology.models import ValidateCodeRequest, VersionRules

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
    return load_content()


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
    own = with_resources(service, [SIMPLE, SIMPLE_VS])
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


def test_engine_request_naming_no_value_set_is_invalid(service):
    # as the web layer answers it (the engine used to fail with an AttributeError)
    with pytest.raises(InvalidValidateRequest) as caught:
        service.validate_code(ValidateCodeRequest(codings=(Coding(ICD, "R26.2"),)))
    assert caught.value.message_id == "VALIDATE_NO_VALUESET"


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


# --- versions, statuses and supplements (rules taken from the HL7 tx tests) --------------------

V = "http://example.org/v"


def _cs(version: str, concepts: list[dict], **extra) -> dict:
    return {"resourceType": "CodeSystem", "url": V, "version": version, "status": "active", "content": "complete",
            "language": "en", "concept": concepts, **extra}


def _vs(url: str, *includes: dict, **extra) -> dict:
    return {"resourceType": "ValueSet", "url": url, "version": "1", "status": "active",
            "compose": {"include": list(includes)}, **extra}


V1 = _cs("1.0.0", [{"code": "c1", "display": "One (1.0)"}, {"code": "c2", "display": "Two"},
                   {"code": "c3", "display": "Three"}])
V2 = _cs("2.0.0", [{"code": "c1", "display": "One (2.0)"}, {"code": "c2", "display": "Two #2"},
                   {"code": "c4", "display": "Four"}])
VERSIONED = [V1, V2,
             _vs("http://example.org/vs-none", {"system": V}),
             _vs("http://example.org/vs-bad", {"system": V, "version": "9"}),
             _vs("http://example.org/vs-both", {"system": V, "version": "1.0.0"}, {"system": V, "version": "2.0.0"}),
             _vs("http://example.org/vs-mixed", {"system": V, "version": "1.0.0", "concept": [{"code": "c1"}]},
                 {"system": V, "version": "2.0.0", "concept": [{"code": "c2"}]})]


@pytest.fixture(scope="module")
def versioned(service) -> TerminologyService:
    return with_resources(service, VERSIONED)


def _check(own, url, coding, **options):
    return own.validate_code(ValidateCodeRequest(codings=(coding,), form="coding", url=url, **options))


def test_unknown_value_set_version_names_the_full_canonical(versioned):
    with pytest.raises(UnknownValueSet) as caught:
        _check(versioned, "http://example.org/vs-none", Coding(V, "c1"), value_set_version="7")
    assert (caught.value.message_id, caught.value.text) == (
        "Unable_to_resolve_value_Set_",
        "A definition for the value Set 'http://example.org/vs-none|7' could not be found")


def test_check_system_version_chooses_when_nothing_else_does(versioned):
    result = _check(versioned, "http://example.org/vs-none", Coding(V, "c1"),
                    versions=VersionRules(check={V: "1.0.x"}))
    assert (result.result, result.version, result.display, result.issues) == (True, "1.0.0", "One (1.0)", ())


def test_unknown_include_version_is_no_membership_verdict(versioned):
    result = _check(versioned, "http://example.org/vs-bad", Coding(V, "c1", "1.0.0"))
    assert (result.result, result.version, result.display) == (False, "1.0.0", "One (1.0)")
    assert [i.message_id for i in result.issues] == ["UNKNOWN_CODESYSTEM_VERSION", "VALUESET_VALUE_MISMATCH"]
    assert result.caused_by_unknown_system == (f"{V}|9",)
    assert result.message == (
        f"A definition for CodeSystem '{V}' version '9' could not be found, so the code cannot be validated. Valid "
        f"versions: 1.0.0 or 2.0.0; The code system '{V}' version '9' in the ValueSet include is different to the one "
        "in the value ('1.0.0')")
    latest = _check(versioned, "http://example.org/vs-bad", Coding(V, "c1"))
    assert (latest.version, [i.message_id for i in latest.issues]) == ("2.0.0", ["UNKNOWN_CODESYSTEM_VERSION"])


def test_force_system_version_applies_to_the_value_set_too(versioned):
    result = _check(versioned, "http://example.org/vs-bad", Coding(V, "c1", "1.0.0"),
                    versions=VersionRules(force={V: "1.0.x"}))
    assert (result.result, result.version, result.issues) == (True, "1.0.0", ())


def test_codeable_concept_in_value_set_but_wrong_version_still_reports_the_code(versioned):
    result = versioned.validate_code(ValidateCodeRequest(
        codings=(Coding(V, "c1", "2.0.0"),), form="codeableConcept", url="http://example.org/vs-both",
        versions=VersionRules(check={V: "1.0.x"})))
    assert (result.result, result.code, result.system, result.version) == (False, "c1", V, "2.0.0")
    assert [i.message_id for i in result.issues] == ["VALUESET_VERSION_CHECK"]  # no TX_GENERAL_CC_ERROR_MESSAGE


def test_unknown_system_with_a_version(versioned):
    result = _check(versioned, "http://example.org/vs-none", Coding("http://example.org/nope", "x", "3"))
    assert [i.text for i in result.issues if i.severity == "error"] == [
        "A definition for CodeSystem 'http://example.org/nope' version '3' could not be found, so the code cannot be "
        "validated. No versions of this code system are known",
        "The provided code 'http://example.org/nope|3#x' was not found in the value set 'http://example.org/vs-none|1'"]


@pytest.mark.parametrize(("coding", "version", "ok"), [
    (Coding(V, "c1"), "2.0.0", True),  # in both: the newest
    (Coding(V, "c3"), "1.0.0", True),  # only in 1.0.0
    (Coding(V, "c2", display="Two"), "1.0.0", True),  # the version whose display fits
    (Coding(V, "c2", display="Two #2"), "2.0.0", True),
    (Coding(V, "c2", display="Deux"), "2.0.0", False),  # fits neither: the newest
    (Coding(V, "c4", "1.0.0"), "1.0.0", False),  # a named included version is the one checked
])
def test_value_set_including_two_versions(versioned, coding, version, ok):
    result = _check(versioned, "http://example.org/vs-both", coding)
    assert (result.version, result.result) == (version, ok)


def test_two_versions_membership_is_per_version(versioned):
    result = _check(versioned, "http://example.org/vs-mixed", Coding(V, "c1"))
    assert (result.result, result.version, result.display) == (True, "1.0.0", "One (1.0)")
    v4 = _check(versioned, "http://example.org/vs-both", Coding(V, "c4", "1.0.0"))
    assert [i.message_id for i in v4.issues] == ["Unknown_Code_in_Version",
                                                 "None_of_the_provided_codes_are_in_the_value_set_one"]


def test_status_notes_for_code_system_and_value_sets(service):
    draft = {**_cs("1", [{"code": "a", "display": "A"}]), "url": "http://example.org/draft", "status": "draft"}
    withdrawn = _vs("http://example.org/w", {"system": "http://example.org/draft"}, extension=[
        {"url": "http://hl7.org/fhir/StructureDefinition/structuredefinition-standards-status",
         "valueCode": "withdrawn"}])
    importing = _vs("http://example.org/imports", {"valueSet": ["http://example.org/w"]})
    own = with_resources(service, [draft, withdrawn, importing])
    result = _check(own, "http://example.org/imports", Coding("http://example.org/draft", "a"))
    assert (result.result, result.message) == (True, None)
    assert [(i.severity, i.tx_type, i.text) for i in result.issues] == [
        ("information", "status-check", "Reference to draft CodeSystem http://example.org/draft|1"),
        ("information", "status-check", "Reference to withdrawn ValueSet http://example.org/w|1")]


def test_concept_deprecated_in_the_value_set(service):
    vs = _vs("http://example.org/dep", {"system": "http://example.org/cs", "concept": [{"code": "a", "extension": [
        {"url": "http://hl7.org/fhir/StructureDefinition/valueset-deprecated", "valueBoolean": True}]}]})
    own = with_resources(service, [SIMPLE, vs])
    result = _check(own, "http://example.org/dep", Coding("http://example.org/cs", "a"))
    assert (result.result, result.message) == (True, None)
    [issue] = result.issues
    assert (issue.severity, issue.message_id, issue.expression, issue.text) == (
        "warning", "CONCEPT_DEPRECATED_IN_VALUESET", "Coding.code",
        "The presence of the concept 'a' in the system 'http://example.org/cs' in the value set "
        "http://example.org/dep|1 "
        "is marked with a status of deprecated and its use should be reviewed")


STATUS_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-standards-status"
EXT_CS = {**SIMPLE, "url": "http://example.org/ext", "concept": [
    {"code": "a", "display": "Alpha one", "designation": [
        {"language": "de", "value": "Alt", "extension": [{"url": STATUS_EXT, "valueCode": "withdrawn"}]},
        {"use": {"system": "http://example.org/uses", "code": "olde"}, "value": "Ye Alpha"}]},
    {"code": "d", "display": "Dep", "extension": [{"url": STATUS_EXT, "valueCode": "deprecated"}]}]}
SUPPLEMENT = {"resourceType": "CodeSystem", "url": "http://example.org/supp", "version": "0.1", "status": "active",
              "content": "supplement", "supplements": "http://example.org/ext",
              "concept": [{"code": "a", "designation": [{"language": "nl", "value": "Alfa-nl"}]}]}


@pytest.fixture(scope="module")
def extended(service) -> TerminologyService:
    return with_resources(service, [EXT_CS, SUPPLEMENT])


def _cs_check(own, coding, **options):
    return own.validate_code(ValidateCodeRequest(codings=(coding,), code_system_url=coding.system, **options))


def test_deprecated_concept_by_standards_status(extended):
    result = _cs_check(extended, Coding("http://example.org/ext", "d"))
    assert (result.result, result.status, result.inactive, result.message) == (
        True, "deprecated", None, "The concept 'd' is deprecated and its use should be reviewed")


def test_withdrawn_designation_is_accepted_with_a_warning(extended):
    result = _cs_check(extended, Coding("http://example.org/ext", "a", display="Alt"))
    assert (result.result, result.message) == (True, None)
    [issue] = result.issues
    assert (issue.severity, issue.tx_type, issue.message_id, issue.expression, issue.text) == (
        "warning", "display-comment", "INACTIVE_DISPLAY_FOUND", "display",
        "'Alt' is no longer considered a correct display for code 'a' (status = deprecated). The correct display is "
        "one of \"Alpha one\".")  # quoted as the reference servers do: when not a single word


def test_designation_with_a_use_and_no_language_is_no_display(extended):
    result = _cs_check(extended, Coding("http://example.org/ext", "a", display="Ye Alpha"))
    assert result.result is False
    assert result.message == ("Wrong Display Name 'Ye Alpha' for http://example.org/ext#a. Valid display is "
                              "'Alpha one' (en) (for the language(s) '--')")


def test_use_supplement_adds_displays_and_must_exist(extended):
    coding = Coding("http://example.org/ext", "a", display="Alfa-nl")
    assert _cs_check(extended, coding).result is False
    assert _cs_check(extended, coding, use_supplements=("http://example.org/supp",)).result is True
    with pytest.raises(UnknownSupplement) as caught:
        _cs_check(extended, coding, use_supplements=("http://example.org/supp-X",))
    assert caught.value.text == "Required supplement not found: http://example.org/supp-X"


def test_supplement_as_coding_system_reports_no_version(extended):
    result = _cs_check(extended, Coding("http://example.org/supp", "a"))
    assert (result.result, result.version, [i.message_id for i in result.issues]) == (
        False, None, ["CODESYSTEM_CS_NO_SUPPLEMENT"])
