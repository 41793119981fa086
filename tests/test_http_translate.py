"""ConceptMap/$translate over HTTP: R4 and R5 names, every request shape, both output dialects."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from helpers import (
    CM_CANONICAL,
    CM_URL,
    CPT,
    CPT_VS,
    DISPLAY_97116,
    ICD,
    ICD_TITLES,
    ICD_VERSION,
    ICD_VS,
    LOINC,
    MAPPED_CODES,
    SNOMED,
    assert_outcome,
    ok_json,
    param,
    parameters,
)

FORM = "application/x-www-form-urlencoded"
INSTANCE = "/ConceptMap/cpt-97116-to-icd-10-cm/$translate"
CPT_CODING = {"system": CPT, "version": "2026", "code": "97116", "display": DISPLAY_97116}


def icd_coding(code: str) -> dict:
    return {"system": ICD, "version": ICD_VERSION, "code": code, "display": ICD_TITLES[code]}


def match(version: str, concept: dict, r4_names: bool, source: dict | None = None) -> dict:
    """One match as the endpoint renders it: R4 equivalence, R5 relationship; `originMap` always;
    R4's `source` (the map's uri) only on R4 when the request used R4 names; an R5 reverse
    (target*) match carries the source-side Coding as `source`."""
    parts = [param("equivalence", valueCode="relatedto") if version == "R4"
             else param("relationship", valueCode="related-to"),
             param("concept", valueCoding=concept),
             param("originMap", valueCanonical=CM_CANONICAL)]
    if version == "R4" and r4_names:
        parts.append(param("source", valueUri=CM_CANONICAL))
    elif source is not None:
        parts.append(param("source", valueCoding=source))
    return {"name": "match", "part": parts}


def forward(version: str, r4_names: bool, codes=MAPPED_CODES) -> dict:
    return parameters(param("result", valueBoolean=True),
                      *(match(version, icd_coding(code), r4_names) for code in codes))


def no_match(message: str) -> dict:
    return parameters(param("result", valueBoolean=False), param("message", valueString=message))


def get(client, path: str, **query):
    return client.get(f"{path}?{urlencode(query)}")


ENDPOINTS = [("/r4", "R4"), ("/r5", "R5"), ("/fhir", "R4")]

# --- the full expected answers, written out once ------------------------------------------------

R4_FORWARD_R4_NAMES = {"resourceType": "Parameters", "parameter": [
    {"name": "result", "valueBoolean": True},
    *({"name": "match", "part": [
        {"name": "equivalence", "valueCode": "relatedto"},
        {"name": "concept", "valueCoding": {"system": "http://hl7.org/fhir/sid/icd-10-cm", "version": "2026-04-01",
                                            "code": code, "display": display}},
        {"name": "originMap", "valueCanonical": "http://fhir-plugin.org/fhir/ConceptMap/cpt-97116-to-icd-10-cm|1.0.0"},
        {"name": "source", "valueUri": "http://fhir-plugin.org/fhir/ConceptMap/cpt-97116-to-icd-10-cm|1.0.0"},
    ]} for code, display in [("M62.81", "Muscle weakness (generalized)"),
                             ("R26.2", "Difficulty in walking, not elsewhere classified"),
                             ("G81.90", "Hemiplegia, unspecified affecting unspecified side")]),
]}
R5_FORWARD_R5_NAMES = {"resourceType": "Parameters", "parameter": [
    {"name": "result", "valueBoolean": True},
    *({"name": "match", "part": [
        {"name": "relationship", "valueCode": "related-to"},
        {"name": "concept", "valueCoding": {"system": "http://hl7.org/fhir/sid/icd-10-cm", "version": "2026-04-01",
                                            "code": code, "display": display}},
        {"name": "originMap", "valueCanonical": "http://fhir-plugin.org/fhir/ConceptMap/cpt-97116-to-icd-10-cm|1.0.0"},
    ]} for code, display in [("M62.81", "Muscle weakness (generalized)"),
                             ("R26.2", "Difficulty in walking, not elsewhere classified"),
                             ("G81.90", "Hemiplegia, unspecified affecting unspecified side")]),
]}


def test_the_expected_answers_agree_with_the_builder():
    assert forward("R4", r4_names=True) == R4_FORWARD_R4_NAMES
    assert forward("R5", r4_names=False) == R5_FORWARD_R5_NAMES


def test_r4_forward_with_r4_names(client):
    assert ok_json(get(client, "/r4/ConceptMap/$translate", code="97116", system=CPT), "R4") == R4_FORWARD_R4_NAMES


def test_r5_forward_with_r5_names(client):
    body = ok_json(get(client, "/r5/ConceptMap/$translate", sourceCode="97116", sourceSystem=CPT), "R5")
    assert body == R5_FORWARD_R5_NAMES


# --- forward: every request shape --------------------------------------------------------------

CODING = {"system": CPT, "code": "97116"}
# name -> (uses R4-only names, request)
FORWARD_SHAPES = {
    "GET code+system (R4)": (True, lambda c, b: get(c, f"{b}/ConceptMap/$translate", code="97116", system=CPT)),
    "GET code+system+version (R4)": (True, lambda c, b: get(c, f"{b}/ConceptMap/$translate", code="97116",
                                                         system=CPT, version="2026")),
    "GET targetsystem (R4)": (True, lambda c, b: get(c, f"{b}/ConceptMap/$translate", code="97116", system=CPT,
                                                     targetsystem=ICD)),
    "GET source/target scopes (R4)": (True, lambda c, b: get(c, f"{b}/ConceptMap/$translate", code="97116",
                                                             system=CPT, source=CPT_VS, target=ICD_VS)),
    "GET coding=system|code (R4)": (True, lambda c, b: get(c, f"{b}/ConceptMap/$translate", coding=f"{CPT}|97116")),
    "GET url (R4 code)": (True, lambda c, b: get(c, f"{b}/ConceptMap/$translate", url=CM_URL, code="97116",
                                                 system=CPT)),
    "GET reverse=false (R4)": (True, lambda c, b: get(c, f"{b}/ConceptMap/$translate", code="97116", system=CPT,
                                                      reverse="false")),
    "POST code+system (R4)": (True, lambda c, b: c.post(f"{b}/ConceptMap/$translate", json=parameters(
        param("code", valueCode="97116"), param("system", valueUri=CPT)))),
    "POST coding (R4)": (True, lambda c, b: c.post(f"{b}/ConceptMap/$translate", json=parameters(
        param("coding", valueCoding=CODING)))),
    "POST codeableConcept (R4)": (True, lambda c, b: c.post(f"{b}/ConceptMap/$translate", json=parameters(
        param("codeableConcept", valueCodeableConcept={"coding": [CODING], "text": "gait training"})))),
    "POST form (R4)": (True, lambda c, b: c.post(f"{b}/ConceptMap/$translate", content_type=FORM,
                                                 data=urlencode({"code": "97116", "system": CPT}))),
    "GET instance (R4)": (True, lambda c, b: get(c, f"{b}{INSTANCE}", code="97116", system=CPT)),
    "POST instance (R4)": (True, lambda c, b: c.post(f"{b}{INSTANCE}", json=parameters(
        param("coding", valueCoding=CODING), param("targetsystem", valueUri=ICD)))),
    "GET sourceCode+sourceSystem (R5)": (False, lambda c, b: get(c, f"{b}/ConceptMap/$translate", sourceCode="97116",
                                                                 sourceSystem=CPT)),
    "GET targetSystem+scopes (R5)": (False, lambda c, b: get(c, f"{b}/ConceptMap/$translate", sourceCode="97116",
                                                             sourceSystem=CPT, targetSystem=ICD, sourceScope=CPT_VS,
                                                             targetScope=ICD_VS)),
    "GET url+conceptMapVersion (R5)": (False, lambda c, b: get(c, f"{b}/ConceptMap/$translate", url=CM_URL,
                                                               conceptMapVersion="1.0.0", sourceCode="97116",
                                                               sourceSystem=CPT, sourceVersion="2026")),
    "POST sourceCoding (R5)": (False, lambda c, b: c.post(f"{b}/ConceptMap/$translate", json=parameters(
        param("sourceCoding", valueCoding=CODING)))),
    "POST sourceCodeableConcept (R5)": (False, lambda c, b: c.post(f"{b}/ConceptMap/$translate", json=parameters(
        param("sourceCodeableConcept", valueCodeableConcept={"coding": [{"system": LOINC, "code": "x"}, CODING]})))),
    "POST sourceCode+system as valueUri (R5)": (False, lambda c, b: c.post(f"{b}/ConceptMap/$translate", json=parameters(
        param("sourceCode", valueCode="97116"), param("sourceSystem", valueUri=CPT),
        param("targetSystem", valueUri=ICD)))),
    "POST form (R5)": (False, lambda c, b: c.post(f"{b}/ConceptMap/$translate", content_type=FORM,
                                                  data=urlencode({"sourceCode": "97116", "sourceSystem": CPT}))),
    "GET instance (R5)": (False, lambda c, b: get(c, f"{b}{INSTANCE}", sourceCode="97116", sourceSystem=CPT)),
    "POST instance (R5)": (False, lambda c, b: c.post(f"{b}{INSTANCE}", json=parameters(
        param("sourceCoding", valueCoding=CODING), param("url", valueUri=CM_URL)))),
}


@pytest.mark.parametrize("shape", FORWARD_SHAPES)
@pytest.mark.parametrize("base, version", ENDPOINTS)
def test_forward_every_shape(client, base, version, shape):
    r4_names, send = FORWARD_SHAPES[shape]
    body = ok_json(send(client, base), version)
    assert body == forward(version, r4_names)


def test_r4_names_on_r5_get_r5_output_without_r4_source(client):
    body = ok_json(get(client, "/r5/ConceptMap/$translate", code="97116", system=CPT), "R5")
    assert body == R5_FORWARD_R5_NAMES


def test_r5_names_on_r4_get_equivalence_without_r4_source(client):
    body = ok_json(get(client, "/r4/ConceptMap/$translate", sourceCode="97116", sourceSystem=CPT), "R4")
    assert body == forward("R4", r4_names=False)
    assert all(part["name"] != "source" for m in body["parameter"][1:] for part in m["part"])


# --- is 97116 -> X a supported pairing? (one request) -------------------------------------------


@pytest.mark.parametrize("base, version", ENDPOINTS)
def test_pairing_97116_r26_2_is_mapped(client, base, version):
    response = get(client, f"{base}/ConceptMap/$translate", sourceCode="97116", sourceSystem=CPT,
                   targetCode="R26.2", targetSystem=ICD)
    assert ok_json(response, version) == forward(version, r4_names=False, codes=("R26.2",))


@pytest.mark.parametrize("base, version", ENDPOINTS)
def test_pairing_97116_j45_909_is_not_mapped(client, base, version):
    response = get(client, f"{base}/ConceptMap/$translate", sourceCode="97116", sourceSystem=CPT,
                   targetCode="J45.909", targetSystem=ICD)
    assert ok_json(response, version) == no_match(
        "'97116' in 'http://www.ama-assn.org/go/cpt' is not mapped to 'J45.909' in 'http://hl7.org/fhir/sid/icd-10-cm'")


@pytest.mark.parametrize("base, version", ENDPOINTS)
def test_pairing_by_codings_in_a_parameters_body(client, base, version):
    response = client.post(f"{base}/ConceptMap/$translate", json=parameters(
        param("sourceCoding", valueCoding=CODING), param("targetCoding", valueCoding={"system": ICD, "code": "G81.90"})))
    assert ok_json(response, version) == forward(version, r4_names=False, codes=("G81.90",))


def test_pairing_with_r4_names_for_the_source(client):
    response = get(client, "/r4/ConceptMap/$translate", code="97116", system=CPT, targetCode="M62.81",
                   targetSystem=ICD)
    assert ok_json(response, "R4") == forward("R4", r4_names=True, codes=("M62.81",))


def test_pairing_by_codeable_concepts(client):
    response = client.post("/r5/ConceptMap/$translate", json=parameters(
        param("sourceCodeableConcept", valueCodeableConcept={"coding": [CODING]}),
        param("targetCodeableConcept", valueCodeableConcept={"coding": [{"system": ICD, "code": "J45.909"}]})))
    assert ok_json(response, "R5") == no_match(
        "'97116' in 'http://www.ama-assn.org/go/cpt' is not mapped to 'J45.909' in 'http://hl7.org/fhir/sid/icd-10-cm'")


# --- reverse -----------------------------------------------------------------------------------


def test_r4_reverse(client):
    response = get(client, "/r4/ConceptMap/$translate", code="R26.2", system=ICD, reverse="true")
    assert ok_json(response, "R4") == parameters(
        param("result", valueBoolean=True),
        {"name": "match", "part": [
            param("equivalence", valueCode="relatedto"),
            param("concept", valueCoding=CPT_CODING),
            param("originMap", valueCanonical=CM_CANONICAL),
            param("source", valueUri=CM_CANONICAL),
        ]})


def test_r4_reverse_in_a_parameters_body_with_targetsystem(client):
    response = client.post("/r4/ConceptMap/$translate", json=parameters(
        param("coding", valueCoding={"system": ICD, "code": "M62.81"}), param("reverse", valueBoolean=True),
        param("targetsystem", valueUri=CPT)))
    body = ok_json(response, "R4")
    assert body["parameter"][1]["part"][1] == param("concept", valueCoding=CPT_CODING)


def test_r4_reverse_on_r5(client):
    response = get(client, "/r5/ConceptMap/$translate", code="R26.2", system=ICD, reverse="true")
    assert ok_json(response, "R5") == parameters(
        param("result", valueBoolean=True),
        {"name": "match", "part": [param("relationship", valueCode="related-to"),
                                   param("concept", valueCoding=CPT_CODING),
                                   param("originMap", valueCanonical=CM_CANONICAL)]})


@pytest.mark.parametrize("base, version", ENDPOINTS)
def test_r5_reverse_by_target_code(client, base, version):
    response = get(client, f"{base}/ConceptMap/$translate", targetCode="R26.2", targetSystem=ICD)
    assert ok_json(response, version) == parameters(
        param("result", valueBoolean=True),
        match(version, icd_coding("R26.2"), r4_names=False, source=CPT_CODING))


def test_r5_reverse_by_target_coding_on_the_instance(client):
    response = client.post(f"/r5{INSTANCE}", json=parameters(
        param("targetCoding", valueCoding={"system": ICD, "code": "G81.90"})))
    assert ok_json(response, "R5") == parameters(
        param("result", valueBoolean=True), match("R5", icd_coding("G81.90"), r4_names=False, source=CPT_CODING))


# --- no mapping is an answer; an unknown map is an error ----------------------------------------


@pytest.mark.parametrize("base, version", ENDPOINTS)
@pytest.mark.parametrize("query, message", [
    # an unknown code or code system adds an issue: tests/test_http_translate_checks.py
    ({"code": "97116", "system": CPT, "targetsystem": SNOMED},
     f"No ConceptMap is available to translate from '{CPT}' to '{SNOMED}'"),
    ({"code": "97116", "system": CPT, "source": "http://example.org/ValueSet/other"},
     f"No ConceptMap is available to translate from '{CPT}'"),
    ({"targetCode": "J45.909", "targetSystem": ICD}, f"No translations found for 'J45.909' in '{ICD}'"),
    ({"code": "J45.909", "system": ICD, "reverse": "true"}, f"No translations found for 'J45.909' in '{ICD}'"),
])
def test_no_mapping_is_200_result_false_with_a_message(client, base, version, query, message):
    assert ok_json(get(client, f"{base}/ConceptMap/$translate", **query), version) == no_match(message)


@pytest.mark.parametrize("base", ["/r4", "/r5", "/fhir"])
def test_unknown_map_url_is_404(client, base):
    issue = assert_outcome(
        get(client, f"{base}/ConceptMap/$translate", url="http://example.org/ConceptMap/nope", code="97116",
            system=CPT),
        404, "not-found", text="Unable to find ConceptMap 'http://example.org/ConceptMap/nope'",
        message_id="UNKNOWN_CONCEPTMAP")
    assert issue["expression"] == ["url"]


def test_unknown_map_version_is_404(client):
    assert_outcome(
        get(client, "/r5/ConceptMap/$translate", url=CM_URL, conceptMapVersion="9", sourceCode="97116",
            sourceSystem=CPT),
        404, "not-found", text=f"Unable to find ConceptMap '{CM_URL}' version '9'. Valid versions: 1.0.0",
        message_id="UNKNOWN_CONCEPTMAP_VERSION")


def test_unknown_map_id_is_404(client):
    assert_outcome(get(client, "/r4/ConceptMap/nope/$translate", code="97116", system=CPT), 404, "not-found",
                   text="ConceptMap/nope not found", message_id="RESOURCE_NOT_FOUND")


def test_instance_with_another_url_is_refused(client):
    assert_outcome(
        get(client, f"/r4{INSTANCE}", url="http://example.org/other", code="97116", system=CPT), 400, "invalid",
        text=f"Parameters 'url' and 'ConceptMap/cpt-97116-to-icd-10-cm' disagree: 'http://example.org/other' vs "
             f"'{CM_URL}'",
        message_id="PARAM_CONFLICT")


# --- inline conceptMap -------------------------------------------------------------------------

INLINE_R5 = {"resourceType": "ConceptMap", "url": "http://example.org/ConceptMap/inline", "status": "draft",
             "group": [{"source": LOINC, "target": ICD,
                        "element": [{"code": "1-8", "target": [{"code": "R26.2", "relationship": "equivalent"}]}]}]}
INLINE_R4 = {"resourceType": "ConceptMap", "url": "http://example.org/ConceptMap/inline", "status": "draft",
             "sourceUri": "http://example.org/ValueSet/loinc",
             "group": [{"source": LOINC, "target": ICD,
                        "element": [{"code": "1-8", "target": [{"code": "R26.2", "equivalence": "equal"}]}]}]}


@pytest.mark.parametrize("inline", [INLINE_R5, INLINE_R4], ids=["R5 map", "R4 map"])
@pytest.mark.parametrize("base, version", ENDPOINTS)
def test_inline_concept_map(client, base, version, inline):
    response = client.post(f"{base}/ConceptMap/$translate", json=parameters(
        param("conceptMap", resource=inline), param("sourceCode", valueCode="1-8"),
        param("sourceSystem", valueUri=LOINC)))
    concept = {"system": ICD, "code": "R26.2"}  # the map gives no display, so the match has none
    assert ok_json(response, version) == parameters(
        param("result", valueBoolean=True),
        {"name": "match", "part": [
            param("equivalence", valueCode="equivalent") if version == "R4"
            else param("relationship", valueCode="equivalent"),
            param("concept", valueCoding=concept),
            param("originMap", valueCanonical="http://example.org/ConceptMap/inline")]})


def test_inline_concept_map_is_not_kept(client):
    client.post("/r4/ConceptMap/$translate", json=parameters(
        param("conceptMap", resource=INLINE_R5), param("code", valueCode="1-8"), param("system", valueUri=LOINC)))
    body = ok_json(get(client, "/r4/ConceptMap/$translate", code="1-8", system=LOINC), "R4")
    assert body["parameter"][1] == param("message", valueString=f"No ConceptMap is available to translate from "
                                         f"'{LOINC}'; A definition for CodeSystem '{LOINC}' could not be found, so "
                                         "the code cannot be validated")
    assert ok_json(client.get("/r4/ConceptMap"), "R4")["total"] == 1


def test_invalid_inline_concept_map_is_refused(client):
    broken = {"resourceType": "ConceptMap", "id": "broken", "status": "draft", "group": "not a list"}
    assert_outcome(
        client.post("/r4/ConceptMap/$translate", json=parameters(
            param("conceptMap", resource=broken), param("code", valueCode="1"), param("system", valueUri=LOINC))),
        422, "invalid",
        text="parameter 'conceptMap': ConceptMap/broken is not valid FHIR R5: group: Input should be a valid list",
        message_id="CONTENT_INVALID")


def test_inline_resource_that_is_not_a_concept_map(client):
    assert_outcome(
        client.post("/r4/ConceptMap/$translate", json=parameters(
            param("conceptMap", resource={"resourceType": "ValueSet", "status": "draft"}),
            param("code", valueCode="1"), param("system", valueUri=LOINC))),
        400, "invalid", text="Parameter 'conceptMap' must be given as a ConceptMap", message_id="PARAM_BAD_TYPE")


def test_inline_concept_map_with_url(client):
    assert_outcome(
        client.post("/r4/ConceptMap/$translate", json=parameters(
            param("conceptMap", resource=INLINE_R5), param("url", valueUri=CM_URL),
            param("code", valueCode="1"), param("system", valueUri=LOINC))),
        400, "invalid", text="Only one of 'url' and 'conceptMap' may be given", message_id="PARAM_EXCLUSIVE")


def test_inline_concept_map_on_an_instance(client):
    assert_outcome(
        client.post("/r4/ConceptMap/cpt-97116-to-icd-10-cm/$translate", json=parameters(
            param("conceptMap", resource=INLINE_R5), param("code", valueCode="1"), param("system", valueUri=LOINC))),
        400, "invalid", message_id="PARAM_EXCLUSIVE",
        text="Only one of the ConceptMap of the path (ConceptMap/cpt-97116-to-icd-10-cm) and 'conceptMap' may be given")


# --- $translate-specific request errors --------------------------------------------------------

NO_SOURCE = ("One (and only one) of code, coding, codeableConcept (R4) or sourceCode, sourceCoding, "
             "sourceCodeableConcept, targetCode, targetCoding, targetCodeableConcept (R5) must be provided")


@pytest.mark.parametrize("query", [{}, {"system": CPT}, {"targetsystem": ICD}, {"url": CM_URL}])
def test_translate_without_a_concept(client, query):
    assert_outcome(get(client, "/r4/ConceptMap/$translate", **query), 400, "invalid", text=NO_SOURCE,
                   message_id="TRANSLATE_NO_SOURCE")


@pytest.mark.parametrize("query, given, needed", [
    ({"code": "97116"}, "code", "system"),
    ({"sourceCode": "97116"}, "sourceCode", "sourceSystem"),
    ({"code": "97116", "targetsystem": ICD}, "code", "system"),
])
def test_translate_code_without_system(client, query, given, needed):
    assert_outcome(get(client, "/r4/ConceptMap/$translate", **query), 400, "invalid",
                   text=f"Parameter '{given}' requires parameter '{needed}'", message_id="PARAM_REQUIRES")


def test_translate_reverse_with_target(client):
    assert_outcome(
        get(client, "/r4/ConceptMap/$translate", code="R26.2", system=ICD, reverse="true", targetCode="R26.2"),
        400, "invalid",
        text="reverse=true cannot be combined with targetCode, targetCoding or targetCodeableConcept: name the "
             "target concept with those parameters instead of reverse",
        message_id="TRANSLATE_REVERSE_WITH_TARGET")


@pytest.mark.parametrize("query, names", [
    ({"code": "97116", "system": CPT, "coding": f"{CPT}|97116"}, "'sourceCode', 'sourceCoding', 'sourceCodeableConcept'"),
    ({"targetCode": "R26.2", "targetCoding": f"{ICD}|R26.2", "code": "97116", "system": CPT},
     "'targetCode', 'targetCoding', 'targetCodeableConcept'"),
])
def test_translate_more_than_one_source_form(client, query, names):
    assert_outcome(get(client, "/r5/ConceptMap/$translate", **query), 400, "invalid",
                   text=f"Only one of {names} may be given", message_id="PARAM_EXCLUSIVE")


@pytest.mark.parametrize("query, text", [
    ({"code": "97116", "sourceCode": "97116", "system": CPT}, "Only one of 'code' and 'sourceCode' may be given"),
    ({"code": "97116", "system": CPT, "sourceSystem": CPT}, "Only one of 'system' and 'sourceSystem' may be given"),
    ({"code": "97116", "system": CPT, "targetsystem": ICD, "targetSystem": ICD},
     "Only one of 'targetsystem' and 'targetSystem' may be given"),
])
def test_translate_r4_and_r5_names_for_the_same_parameter(client, query, text):
    assert_outcome(get(client, "/r4/ConceptMap/$translate", **query), 400, "invalid", text=text,
                   message_id="PARAM_EXCLUSIVE")


def test_translate_coding_contradicting_system(client):
    response = client.post("/r4/ConceptMap/$translate", json=parameters(
        param("coding", valueCoding=CODING), param("system", valueUri=ICD)))
    assert_outcome(response, 400, "invalid",
                   text=f"Parameters 'sourceSystem' and 'sourceCoding' disagree: '{ICD}' vs '{CPT}'",
                   message_id="PARAM_CONFLICT")


def test_translate_codeable_concept_coding_without_system(client):
    response = client.post("/r4/ConceptMap/$translate", json=parameters(
        param("codeableConcept", valueCodeableConcept={"coding": [{"code": "97116"}]})))
    assert_outcome(response, 400, "invalid", text="Parameter 'sourceCode' needs both a system and a code",
                   message_id="TRANSLATE_CODING_INCOMPLETE")


# --- a map held in several versions ------------------------------------------------------------


def origin_maps(body: dict) -> list[str]:
    return [part["valueCanonical"] for p in body["parameter"] if p["name"] == "match"
            for part in p["part"] if part["name"] == "originMap"]


def test_a_new_version_of_our_map_in_a_tx_resource_replaces_it_without_url(client):
    newer = {"resourceType": "ConceptMap", "url": CM_URL, "version": "2.0.0", "status": "draft",
             "group": [{"source": CPT, "target": ICD, "element": [
                 {"code": "97116", "target": [{"code": "R26.89", "relationship": "related-to"}]}]}]}
    asked = [param("sourceSystem", valueUri=CPT), param("sourceCode", valueCode="97116"),
             param("tx-resource", resource=newer)]
    body = ok_json(client.post("/r5/ConceptMap/$translate", json=parameters(*asked)), "R5")
    assert origin_maps(body) == [f"{CM_URL}|2.0.0"]
    assert [p["part"][1]["valueCoding"]["code"] for p in body["parameter"] if p["name"] == "match"] == ["R26.89"]
    pinned = ok_json(client.post("/r5/ConceptMap/$translate", json=parameters(
        *asked, param("url", valueUri=CM_URL), param("conceptMapVersion", valueString="1.0.0"))), "R5")
    assert origin_maps(pinned) == [CM_CANONICAL] * 3
