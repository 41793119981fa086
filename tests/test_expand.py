"""ValueSet/$expand: the engine (no HTTP) and the routes on both FHIR versions, with our content."""

from __future__ import annotations

import pytest

from fhir_plugin.terminology.errors import TooCostly, UnknownCodeSystem, UnknownValueSet, VersionCheckFailed
from fhir_plugin.terminology.expand import ExpandRequest, expand_value_set
from fhir_plugin.web.params_expand import too_costly_threshold

from helpers import assert_outcome, ok_json, param, parameters

ICD = "http://hl7.org/fhir/sid/icd-10-cm"
DIAGNOSES = "http://fhir-plugin.org/fhir/ValueSet/icd-10-cm-gait-training-diagnoses"
GAIT = [
    ("M62.81", "Muscle weakness (generalized)"),
    ("R26.2", "Difficulty in walking, not elsewhere classified"),
    ("G81.90", "Hemiplegia, unspecified affecting unspecified side"),
]


def isa(code: str) -> dict:
    return {"resourceType": "ValueSet", "status": "active",
            "compose": {"include": [{"system": ICD, "filter": [{"property": "concept", "op": "is-a", "value": code}]}]}}


def codes(contains: list[dict]) -> list[str]:
    return [c["code"] for c in contains]


# --- engine ------------------------------------------------------------------------------------


def test_engine_expands_the_bundled_diagnoses(service):
    out = expand_value_set(service.registry, ExpandRequest(url=DIAGNOSES))
    expansion = out["expansion"]
    assert [(c["code"], c["display"]) for c in expansion["contains"]] == GAIT
    assert {c["system"] for c in expansion["contains"]} == {ICD}
    assert expansion["total"] == 3
    assert expansion["identifier"].startswith("urn:uuid:")
    assert {"name": "used-codesystem", "valueUri": f"{ICD}|2026-04-01"} in expansion["parameter"]
    # the ICD-10-CM content is a fragment: the expansion says it is not closed
    assert {"name": "used-fragment", "valueUri": f"{ICD}|2026-04-01"} in expansion["parameter"]
    assert expansion["extension"][0] == {"url": "http://hl7.org/fhir/StructureDefinition/valueset-unclosed",
                                         "valueBoolean": True}
    assert "compose" not in out and out["url"] == DIAGNOSES


def test_engine_is_a_filter_nests_along_the_hierarchy(service):
    expansion = expand_value_set(service.registry, ExpandRequest(value_set=isa("M62")))["expansion"]
    assert expansion["total"] == 3
    [m62] = expansion["contains"]
    assert m62["code"] == "M62" and m62["display"] == "Other disorders of muscle"
    assert codes(m62["contains"]) == ["M62.8"]
    assert codes(m62["contains"][0]["contains"]) == ["M62.81"]


def test_engine_exclude_nested_gives_a_flat_list(service):
    expansion = expand_value_set(service.registry, ExpandRequest(value_set=isa("G81"), exclude_nested=True))["expansion"]
    assert codes(expansion["contains"]) == ["G81", "G81.9", "G81.90"]
    assert {"name": "excludeNested", "valueBoolean": True} in expansion["parameter"]


def test_engine_paging(service):
    all_icd = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [{"system": ICD}]}}
    page = expand_value_set(service.registry, ExpandRequest(value_set=all_icd, offset=2, count=3))["expansion"]
    assert page["total"] == 8 and page["offset"] == 2
    assert codes(page["contains"]) == ["G81.90", "M62", "M62.8"]
    assert {"name": "count", "valueInteger": 3} in page["parameter"]
    size_only = expand_value_set(service.registry, ExpandRequest(value_set=all_icd, count=0))["expansion"]
    assert size_only["total"] == 8 and "contains" not in size_only


def test_engine_text_filter_is_a_word_prefix_match(service):
    all_icd = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [{"system": ICD}]}}
    found = expand_value_set(service.registry, ExpandRequest(value_set=all_icd, filter="diff walk"))["expansion"]
    assert codes(found["contains"]) == ["R26.2"]
    assert {"name": "filter", "valueString": "diff walk"} in found["parameter"]
    assert "contains" not in expand_value_set(service.registry, ExpandRequest(value_set=all_icd, filter="alking"))[
        "expansion"]


def test_engine_too_costly(service):
    all_icd = {"resourceType": "ValueSet", "url": "http://example.org/vs", "status": "active",
               "compose": {"include": [{"system": ICD}]}}
    with pytest.raises(TooCostly) as caught:
        expand_value_set(service.registry, ExpandRequest(value_set=all_icd, max_expansion=5))
    assert caught.value.text == "The value set 'http://example.org/vs' expansion has too many codes to produce (>5)"
    # paging gets it answered
    assert expand_value_set(service.registry, ExpandRequest(value_set=all_icd, count=2, max_expansion=5))[
        "expansion"]["total"] == 8
    assert too_costly_threshold(10_000, "1000") == 1000
    assert too_costly_threshold(500, "1000") == 500
    assert too_costly_threshold(500, "junk") == 500


def test_engine_errors(service):
    with pytest.raises(UnknownValueSet, match="A definition for the value Set 'http://example.org/none' could not"):
        expand_value_set(service.registry, ExpandRequest(url="http://example.org/none"))
    unknown = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [{"system": "http://x.org/cs"}]}}
    with pytest.raises(UnknownCodeSystem) as caught:
        expand_value_set(service.registry, ExpandRequest(value_set=unknown))
    assert caught.value.text == ("A definition for CodeSystem 'http://x.org/cs' could not be found, "
                                 "so the value set cannot be expanded")
    versioned = {"resourceType": "ValueSet", "status": "active",
                 "compose": {"include": [{"system": ICD, "version": "2019"}]}}
    with pytest.raises(UnknownCodeSystem, match="Valid versions: 2026-04-01$"):
        expand_value_set(service.registry, ExpandRequest(value_set=versioned))
    with pytest.raises(VersionCheckFailed) as check:
        pinned = {"resourceType": "ValueSet", "status": "active",
                  "compose": {"include": [{"system": ICD, "version": "2026-04-01"}]}}
        expand_value_set(service.registry, ExpandRequest(value_set=pinned, check_system_versions=(f"{ICD}|2025-x",)))
    assert check.value.text == (f"The version '2026-04-01' is not allowed for system '{ICD}': required to be "
                                "'2025-x' by a version-check parameter")


# --- HTTP --------------------------------------------------------------------------------------


@pytest.mark.parametrize("base, version", [("/r4", "R4"), ("/r5", "R5")])
def test_http_get_and_post_expand_the_bundled_value_set(client, base, version):
    by_get = ok_json(client.get(f"{base}/ValueSet/$expand?url={DIAGNOSES}"), version)
    by_post = ok_json(client.post(f"{base}/ValueSet/$expand", json=parameters(param("url", valueUri=DIAGNOSES))),
                      version)
    by_id = ok_json(client.get(f"{base}/ValueSet/icd-10-cm-gait-training-diagnoses/$expand"), version)
    for body in (by_get, by_post, by_id):
        assert body["resourceType"] == "ValueSet"
        assert [(c["code"], c["display"]) for c in body["expansion"]["contains"]] == GAIT


@pytest.mark.parametrize("base, version", [("/r4", "R4"), ("/r5", "R5")])
def test_http_inline_value_set_paging_and_headers(client, base, version):
    body = parameters(param("valueSet", resource=isa("R26")), param("count", valueInteger=1),
                      param("offset", valueInteger=1))
    page = ok_json(client.post(f"{base}/ValueSet/$expand", json=body,
                               headers={"Accept-Language": "en"}), version)["expansion"]
    assert page["total"] == 2 and page["offset"] == 1
    assert [(c["code"], c["display"]) for c in page["contains"]] == [
        ("R26.2", "Difficulty in walking, not elsewhere classified")]
    assert {"name": "displayLanguage", "valueCode": "en"} in page["parameter"]


def test_http_errors(client):
    assert_outcome(client.get("/r5/ValueSet/$expand"), 400, "invalid",
                   text="Must provide a value set: url, valueSet, or the ValueSet of the path")
    assert_outcome(client.get("/r4/ValueSet/$expand?url=http://example.org/none"), 404, "not-found",
                   text="A definition for the value Set 'http://example.org/none' could not be found")
    assert_outcome(client.get(f"/r5/ValueSet/$expand?url={DIAGNOSES}&context=Patient.code"), 400, "not-supported")
    assert_outcome(client.get(f"/r5/ValueSet/$expand?url={DIAGNOSES}&count=-1"), 400, "invalid")
    response = client.get(f"/r5/ValueSet/$expand?url={DIAGNOSES}", headers={"X-TOO-COSTLY-THRESHOLD": "2"})
    assert_outcome(response, 400, "too-costly", text=f"The value set '{DIAGNOSES}|1.0.0' expansion has too many "
                   "codes to produce (>2)")
