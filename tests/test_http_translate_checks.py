"""$translate tells "not mapped" apart from "that code does not exist" and "that system is unknown".

A result=false answer carries an `issues` OperationOutcome for each given code its code system does
not hold (Unknown_Code_in_Version, as $validate-code words it; UNKNOWN_CODE_IN_FRAGMENT for our
CPT fragment), each unknown code system (UNKNOWN_CODESYSTEM), and a hint naming the dotted code
when a code lacks only its dot (M6281 -> M62.81). The `message` says all of it, the not-mapped
sentence first.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from fhir_plugin.terminology.entries import Coding
from fhir_plugin.terminology.models import TranslateRequest
from fhir_plugin.terminology.translate_checks import dotted_form
from helpers import CPT, ICD, LOINC, MESSAGE_ID_URL, TX_ISSUE_TYPE, ok_json, param, parameters

ENDPOINTS = [("/r4", "R4"), ("/r5", "R5")]
UNKNOWN_M6281 = "Unknown code 'M6281' in the CodeSystem 'http://hl7.org/fhir/sid/icd-10-cm' version '2026-04-01'"
HINT_M6281 = ("Did you mean 'M62.81' ('Muscle weakness (generalized)')? The CodeSystem "
              "'http://hl7.org/fhir/sid/icd-10-cm' writes its codes with a dot and has no code 'M6281'")
UNKNOWN_LOINC = "A definition for CodeSystem 'http://loinc.org' could not be found, so the code cannot be validated"
CPT_99999 = ("Unknown Code '99999' in the CodeSystem 'http://www.ama-assn.org/go/cpt' version '2026' - note that the "
             "code system is labeled as a fragment, so the code may be valid in some other fragment")


def issue(severity: str, code: str, tx_type: str, message_id: str, text: str, expression: str) -> dict:
    return {"extension": [{"url": MESSAGE_ID_URL, "valueString": message_id}], "severity": severity, "code": code,
            "details": {"coding": [{"system": TX_ISSUE_TYPE, "code": tx_type}], "text": text},
            "expression": [expression]}


def unknown_m6281(expression: str) -> list[dict]:
    return [issue("error", "code-invalid", "invalid-code", "Unknown_Code_in_Version", UNKNOWN_M6281, expression),
            issue("information", "business-rule", "code-rule", "TRANSLATE_CODE_WITHOUT_DOT", HINT_M6281, expression)]


def answer(message: str, issues: list[dict]) -> dict:
    return parameters(param("result", valueBoolean=False), param("message", valueString=message),
                      param("issues", resource={"resourceType": "OperationOutcome", "issue": issues}))


def translate(client, base: str, **query) -> object:
    return client.get(f"{base}/ConceptMap/$translate?{urlencode(query)}")


@pytest.mark.parametrize("base, version", ENDPOINTS)
def test_pairing_with_an_undotted_target_names_the_dotted_code(client, base, version):
    response = translate(client, base, sourceCode="97116", sourceSystem=CPT, targetCode="M6281", targetSystem=ICD)
    assert ok_json(response, version) == answer(
        f"'97116' in '{CPT}' is not mapped to 'M6281' in '{ICD}'; {UNKNOWN_M6281}; {HINT_M6281}",
        unknown_m6281("targetCode"))


@pytest.mark.parametrize("base, version", ENDPOINTS)
def test_pairing_with_an_undotted_target_coding_in_a_body(client, base, version):
    response = client.post(f"{base}/ConceptMap/$translate", json=parameters(
        param("sourceCoding", valueCoding={"system": CPT, "code": "97116"}),
        param("targetCoding", valueCoding={"system": ICD, "code": "M6281"})))
    assert ok_json(response, version)["parameter"][2]["resource"]["issue"] == unknown_m6281("targetCoding.code")


@pytest.mark.parametrize("base, version", ENDPOINTS)
def test_pairing_with_a_mapped_dotted_code_has_no_issues(client, base, version):
    body = ok_json(translate(client, base, sourceCode="97116", sourceSystem=CPT, targetCode="M62.81",
                             targetSystem=ICD), version)
    assert [p["name"] for p in body["parameter"]] == ["result", "match"]
    assert body["parameter"][0] == param("result", valueBoolean=True)


@pytest.mark.parametrize("base, version", ENDPOINTS)
def test_pairing_of_existing_codes_that_are_not_mapped_has_no_issues(client, base, version):
    assert ok_json(translate(client, base, sourceCode="97116", sourceSystem=CPT, targetCode="J45.909",
                             targetSystem=ICD), version) == parameters(
        param("result", valueBoolean=False),
        param("message", valueString=f"'97116' in '{CPT}' is not mapped to 'J45.909' in '{ICD}'"))


@pytest.mark.parametrize("base, version", ENDPOINTS)
def test_pairing_with_a_code_outside_the_cpt_fragment(client, base, version):
    response = translate(client, base, sourceCode="99999", sourceSystem=CPT, targetCode="M62.81", targetSystem=ICD)
    assert ok_json(response, version) == answer(
        f"'99999' in '{CPT}' is not mapped to 'M62.81' in '{ICD}'; {CPT_99999}",
        [issue("warning", "code-invalid", "invalid-code", "UNKNOWN_CODE_IN_FRAGMENT", CPT_99999, "sourceCode")])


@pytest.mark.parametrize("base, version", ENDPOINTS)
def test_pairing_with_an_unknown_target_system(client, base, version):
    response = translate(client, base, sourceCode="97116", sourceSystem=CPT, targetCode="1-8", targetSystem=LOINC)
    assert ok_json(response, version) == answer(
        f"'97116' in '{CPT}' is not mapped to '1-8' in '{LOINC}'; {UNKNOWN_LOINC}",
        [issue("error", "not-found", "not-found", "UNKNOWN_CODESYSTEM", UNKNOWN_LOINC, "targetSystem")])


@pytest.mark.parametrize("base, version", ENDPOINTS)
def test_forward_from_an_undotted_code_with_r4_names(client, base, version):
    response = translate(client, base, code="M6281", system=ICD)
    assert ok_json(response, version) == answer(
        f"No ConceptMap is available to translate from '{ICD}'; {UNKNOWN_M6281}; {HINT_M6281}", unknown_m6281("code"))


@pytest.mark.parametrize("base, version", ENDPOINTS)
def test_forward_from_an_unknown_system(client, base, version):
    response = translate(client, base, sourceCode="1-8", sourceSystem=LOINC)
    assert ok_json(response, version) == answer(
        f"No ConceptMap is available to translate from '{LOINC}'; {UNKNOWN_LOINC}",
        [issue("error", "not-found", "not-found", "UNKNOWN_CODESYSTEM", UNKNOWN_LOINC, "sourceSystem")])


@pytest.mark.parametrize("base, version", ENDPOINTS)
def test_reverse_from_an_undotted_target_code(client, base, version):
    response = translate(client, base, targetCode="M6281", targetSystem=ICD)
    assert ok_json(response, version) == answer(
        f"No translations found for 'M6281' in '{ICD}'; {UNKNOWN_M6281}; {HINT_M6281}", unknown_m6281("targetCode"))


# --- the engine --------------------------------------------------------------------------------


def test_engine_pairing_issues(service):
    result = service.translate(TranslateRequest(source=(Coding(CPT, "97116"),), target=(Coding(ICD, "m6281"),),
                                                source_form="code", target_form="code"))
    assert result.result is False
    assert [(i.severity, i.message_id, i.expression) for i in result.issues] == [
        ("error", "Unknown_Code_in_Version", "targetCode")]  # the dot is not the only difference


@pytest.mark.parametrize("code, expected", [
    ("M6281", ("M62.81", "Muscle weakness (generalized)")),
    ("R262", ("R26.2", "Difficulty in walking, not elsewhere classified")),
    ("G8190", ("G81.90", "Hemiplegia, unspecified affecting unspecified side")),
    ("M62.81", None),  # dotted already
    ("M62", None),  # a category: nothing to put a dot in
    ("ZZZZ9", None),
    ("M6281" * 100, None),  # too long to be any code: not tried
])
def test_dotted_form(service, code, expected):
    assert dotted_form(code, service.registry.code_system(ICD).find) == expected


def test_dotted_form_tries_each_place_once(service):
    tried: list[str] = []
    assert dotted_form("ABCDEFG", lambda code: tried.append(code)) is None
    assert tried == ["ABC.DEFG", "A.BCDEFG", "AB.CDEFG", "ABCD.EFG", "ABCDE.FG", "ABCDEF.G"]
