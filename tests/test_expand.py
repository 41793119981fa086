"""ValueSet/$expand: the engine (no HTTP) and the routes on both FHIR versions, with our content."""

from __future__ import annotations

import pytest
from helpers import assert_outcome, ok_json, param, parameters

from fhir_plugin.errors import (
    TooCostly,
    UnknownCodeSystem,
    UnknownSupplement,
    UnknownValueSet,
    VersionCheckFailed,
)
from fhir_plugin.render.expansion import value_set as rendered
from fhir_plugin.terminology.entries import Designation
from fhir_plugin.terminology.expand import expand_value_set
from fhir_plugin.terminology.models import ExpandRequest
from fhir_plugin.terminology.lookup import lookup_code
from fhir_plugin.terminology.models import LookupRequest
from fhir_plugin.terminology.registry import Registry
from fhir_plugin.web.params_expand import too_costly_threshold

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
    out = rendered(expand_value_set(service.registry, ExpandRequest(url=DIAGNOSES)))
    expansion = out["expansion"]
    assert [(c["code"], c["display"]) for c in expansion["contains"]] == GAIT
    assert {c["system"] for c in expansion["contains"]} == {ICD}
    assert expansion["total"] == 3
    assert expansion["identifier"].startswith("urn:uuid:")
    # the ICD-10-CM is complete: no used-fragment, and the expansion is not marked unclosed
    assert expansion["parameter"] == [{"name": "used-codesystem", "valueUri": f"{ICD}|2026-04-01"}]
    assert "extension" not in expansion
    assert "compose" not in out and out["url"] == DIAGNOSES


def test_engine_is_a_filter_nests_along_the_hierarchy(service):
    expansion = rendered(expand_value_set(service.registry, ExpandRequest(value_set=isa("M62"))))["expansion"]
    assert expansion["total"] == 175
    [m62] = expansion["contains"]
    assert m62["code"] == "M62" and m62["display"] == "Other disorders of muscle"
    assert codes(m62["contains"]) == ["M62.0", "M62.1", "M62.2", "M62.3", "M62.4", "M62.5", "M62.8", "M62.9"]
    assert codes(m62["contains"][6]["contains"]) == ["M62.81", "M62.82", "M62.83", "M62.84", "M62.85", "M62.89"]


def test_engine_exclude_nested_gives_a_flat_list(service):
    expansion = rendered(expand_value_set(service.registry, ExpandRequest(value_set=isa("G81"), exclude_nested=True)))["expansion"]
    assert codes(expansion["contains"]) == [
        "G81", "G81.0", "G81.00", "G81.01", "G81.02", "G81.03", "G81.04", "G81.1", "G81.10", "G81.11", "G81.12",
        "G81.13", "G81.14", "G81.9", "G81.90", "G81.91", "G81.92", "G81.93", "G81.94"]
    assert {"name": "excludeNested", "valueBoolean": True} in expansion["parameter"]


def test_engine_paging(service):
    all_icd = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [{"system": ICD}]}}
    page = rendered(expand_value_set(service.registry, ExpandRequest(value_set=all_icd, offset=2, count=3)))["expansion"]
    assert page["total"] == 98_466 and page["offset"] == 2
    assert codes(page["contains"]) == ["A00", "A00.0", "A00.1"]  # chapter 1, block A00-A09, then its codes
    assert {"name": "count", "valueInteger": 3} in page["parameter"]
    size_only = rendered(expand_value_set(service.registry, ExpandRequest(value_set=all_icd, count=0)))["expansion"]
    assert size_only["total"] == 98_466 and "contains" not in size_only


def test_engine_text_filter_is_a_word_prefix_match(service):
    all_icd = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [{"system": ICD}]}}
    found = rendered(expand_value_set(service.registry, ExpandRequest(value_set=all_icd, filter="diff walk")))["expansion"]
    assert codes(found["contains"]) == ["R26.2"]
    assert {"name": "filter", "valueString": "diff walk"} in found["parameter"]
    assert "contains" not in rendered(expand_value_set(service.registry, ExpandRequest(value_set=all_icd, filter="alking")))[
        "expansion"]


def test_engine_is_a_with_text_filter_and_paging_on_the_release(service):
    """Everything under chapter 13 whose words start "weakness", and a page of the chapter."""
    found = rendered(expand_value_set(service.registry, ExpandRequest(value_set=isa("13"), filter="weakness", count=10)))
    assert found["expansion"]["total"] == 1
    assert found["expansion"]["contains"] == [{"system": ICD, "code": "M62.81", "display": "Muscle weakness (generalized)"}]
    page = rendered(expand_value_set(service.registry, ExpandRequest(value_set=isa("13"), offset=100, count=5)))["expansion"]
    assert page["total"] == 8_694 and page["offset"] == 100
    assert [(c["code"], c["display"]) for c in page["contains"]] == [
        ("M00.8", "Arthritis and polyarthritis due to other bacteria"),
        ("M00.80", "Arthritis due to other bacteria, unspecified joint"),
        ("M00.81", "Arthritis due to other bacteria, shoulder"),
        ("M00.811", "Arthritis due to other bacteria, right shoulder"),
        ("M00.812", "Arthritis due to other bacteria, left shoulder")]


def test_engine_too_costly(service):
    all_icd = {"resourceType": "ValueSet", "url": "http://example.org/vs", "status": "active",
               "compose": {"include": [{"system": ICD}]}}
    with pytest.raises(TooCostly) as caught:
        rendered(expand_value_set(service.registry, ExpandRequest(value_set=all_icd, max_expansion=5)))
    assert caught.value.text == "The value set 'http://example.org/vs' expansion has too many codes to produce (>5)"
    # paging gets it answered
    assert rendered(expand_value_set(service.registry, ExpandRequest(value_set=all_icd, count=2, max_expansion=5)))[
        "expansion"]["total"] == 98_466
    # the default limit refuses the whole ICD-10-CM unpaged, and a page of it is answered
    with pytest.raises(TooCostly):
        rendered(expand_value_set(service.registry, ExpandRequest(value_set=all_icd)))
    page = rendered(expand_value_set(service.registry, ExpandRequest(value_set=all_icd, count=10, offset=98_460)))["expansion"]
    assert codes(page["contains"]) == ["U00-U49", "U07", "U07.0", "U07.1", "U09", "U09.9"]  # chapter 22 is last
    assert too_costly_threshold(10_000, "1000") == 1000
    assert too_costly_threshold(500, "1000") == 500
    assert too_costly_threshold(500, "junk") == 500


def test_engine_errors(service):
    with pytest.raises(UnknownValueSet, match="A definition for the value Set 'http://example.org/none' could not"):
        rendered(expand_value_set(service.registry, ExpandRequest(url="http://example.org/none")))
    unknown = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [{"system": "http://x.org/cs"}]}}
    with pytest.raises(UnknownCodeSystem) as caught:
        rendered(expand_value_set(service.registry, ExpandRequest(value_set=unknown)))
    assert caught.value.text == ("A definition for CodeSystem 'http://x.org/cs' could not be found, "
                                 "so the value set cannot be expanded")
    versioned = {"resourceType": "ValueSet", "status": "active",
                 "compose": {"include": [{"system": ICD, "version": "2019"}]}}
    with pytest.raises(UnknownCodeSystem, match="Valid versions: 2026-04-01$"):
        rendered(expand_value_set(service.registry, ExpandRequest(value_set=versioned)))
    with pytest.raises(VersionCheckFailed) as check:
        pinned = {"resourceType": "ValueSet", "status": "active",
                  "compose": {"include": [{"system": ICD, "version": "2026-04-01"}]}}
        rendered(expand_value_set(service.registry, ExpandRequest(value_set=pinned, check_system_versions=(f"{ICD}|2025-x",))))
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
    assert page["total"] == 8 and page["offset"] == 1
    assert [(c["code"], c["display"]) for c in page["contains"]] == [("R26.0", "Ataxic gait")]
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


# --- value set engine rules (each from an HL7 tx-test, with our own small content) -------------

EX = "http://example.org/fhir"
CS = f"{EX}/CodeSystem/rules"
SD = "http://hl7.org/fhir/StructureDefinition/"
CP = "http://hl7.org/fhir/concept-properties#"


def cs(url: str = CS, version: str | None = "1", concepts: list | None = None, **extra) -> dict:
    resource = {"resourceType": "CodeSystem", "url": url, "status": "active", "content": "complete",
                "concept": concepts or [], **extra}
    if version:
        resource["version"] = version
    return resource


def vs(*includes: dict, **extra) -> dict:
    return {"resourceType": "ValueSet", "status": "active", "compose": {"include": list(includes)}, **extra}


def expand(resources: list[dict], value_set: dict, **request) -> dict:
    return rendered(expand_value_set(Registry(resources), ExpandRequest(value_set=value_set, **request)))["expansion"]


SELECTABLE = [{"code": "u", "display": "U"},
              {"code": "s", "display": "S", "property": [{"code": "not-selectable", "valueBoolean": False}]},
              {"code": "ns", "display": "NS", "property": [{"code": "not-selectable", "valueBoolean": True}]}]


def test_not_selectable_property_makes_a_code_abstract_under_either_spelling():
    found = expand([cs(concepts=SELECTABLE)], vs({"system": CS}))
    assert [(c["code"], c.get("abstract")) for c in found["contains"]] == [("u", None), ("s", None), ("ns", True)]
    # a code of another name bound to the standard property uri counts too
    bound = cs(concepts=[{"code": "x", "property": [{"code": "sel", "valueBoolean": True}]}],
               property=[{"code": "sel", "uri": CP + "notSelectable", "type": "boolean"}])
    assert expand([bound], vs({"system": CS}))["contains"][0]["abstract"] is True


@pytest.mark.parametrize("op, value, expected", [
    ("=", "false", ["s"]),  # only a code that says false: u says nothing
    ("=", "true", ["ns"]),
    ("=", "TRUE", []),  # values compare exactly
    ("in", "true", ["ns"]),
    ("not-in", "true", ["u", "s"]),
])
def test_not_selectable_filter_matches_stated_values_exactly(op, value, expected):
    include = {"system": CS, "filter": [{"property": "not-selectable", "op": op, "value": value}]}
    found = expand([cs(concepts=SELECTABLE)], vs(include))
    assert codes(found.get("contains", [])) == expected and found["total"] == len(expected)


OVERLOAD = [cs(version="1.0.0", concepts=[{"code": "a", "display": "A1"}, {"code": "b", "display": "B1"}]),
            cs(version="2.0.0", concepts=[{"code": "a", "display": "A2"}, {"code": "c", "display": "C2"}])]


def test_a_code_in_two_stated_versions_is_listed_newest_first():
    found = expand(OVERLOAD, vs({"system": CS, "version": "1.0.0"}, {"system": CS, "version": "2.0.0"}))
    assert [(c["code"], c["version"]) for c in found["contains"]] == [
        ("a", "2.0.0"), ("c", "2.0.0"), ("a", "1.0.0"), ("b", "1.0.0")]
    # a versionless include keeps its place: the stated version comes first
    mixed = expand(OVERLOAD, vs({"system": CS, "version": "1.0.0"}, {"system": CS}))
    assert [(c["code"], c["version"]) for c in mixed["contains"]] == [
        ("a", "1.0.0"), ("b", "1.0.0"), ("a", "2.0.0"), ("c", "2.0.0")]


def test_one_version_named_twice_does_not_show_versions():
    value_set = vs({"system": CS})
    value_set["compose"]["exclude"] = [{"system": CS, "concept": [{"code": "b"}]}]
    found = expand(OVERLOAD[:1], value_set)
    assert found["contains"] == [{"system": CS, "code": "a", "display": "A1"}]


def test_the_value_sets_own_withdrawn_status_is_warned_about_and_imports_are_flat():
    tree = cs(concepts=[{"code": "p", "display": "P", "concept": [{"code": "c", "display": "C"}]}])
    withdrawn = vs({"system": CS}, url=f"{EX}/ValueSet/w", version="2",
                   extension=[{"url": SD + "structuredefinition-standards-status", "valueCode": "withdrawn"}])
    found = expand([tree, withdrawn], withdrawn)
    assert {"name": "warning-withdrawn", "valueUri": f"{EX}/ValueSet/w|2"} in found["parameter"]
    assert codes(found["contains"]) == ["p"] and codes(found["contains"][0]["contains"]) == ["c"]
    importing = expand([tree, withdrawn], vs({"valueSet": [f"{EX}/ValueSet/w"]}))
    assert codes(importing["contains"]) == ["p", "c"]  # imported members are not nested
    assert {"name": "warning-withdrawn", "valueUri": f"{EX}/ValueSet/w|2"} in importing["parameter"]


def test_status_shown_unasked_is_declared_with_the_standard_uri():
    retired = cs(concepts=[{"code": "r", "property": [{"code": "status", "valueCode": "retired"}]}])
    found = expand([retired], vs({"system": CS}))
    assert found["property"] == [{"code": "status", "uri": CP + "status"}]
    assert found["contains"][0]["property"] == [{"code": "status", "valueCode": "retired"}]


EXTENDED = cs(version=None, concepts=[
    {"code": "e1", "display": "E1",
     "extension": [{"url": SD + "codesystem-conceptOrder", "valueInteger": 6},
                   {"url": SD + "rendering-style", "valueString": "bold"},
                   {"url": f"{EX}/unknown", "valueString": "dropped"}],
     "designation": [{"language": "de", "value": "Eins",
                      "extension": [{"url": SD + "coding-sctdescid", "valueId": "1"},
                                    {"url": f"{EX}/unknown", "valueString": "dropped"}]}]},
    {"code": "e2", "display": "E2",
     "extension": [{"url": SD + "structuredefinition-standards-status", "valueCode": "deprecated"}]}])
SUPPLEMENT = {"resourceType": "CodeSystem", "url": f"{EX}/CodeSystem/supp", "version": "0.1", "status": "active",
              "content": "supplement", "supplements": CS,
              "property": [{"code": "p1", "uri": f"{EX}/p1", "type": "string"}],
              "concept": [{"code": "e1", "designation": [{"language": "nl", "value": "een"}],
                           "extension": [{"url": SD + "itemWeight", "valueDecimal": 1.2},
                                         {"url": SD + "codesystem-label", "valueString": "a."}],
                           "property": [{"code": "p1", "valueString": "v1"}]}]}


def test_code_system_extensions_become_properties_and_designations_keep_core_extensions():
    found = expand([EXTENDED], vs({"system": CS}), include_designations=True)
    e1, e2 = found["contains"]
    assert e1 == {"extension": [{"url": SD + "rendering-style", "valueString": "bold"}], "system": CS, "code": "e1",
                  "display": "E1",
                  "designation": [{"language": "de", "value": "Eins",
                                   "extension": [{"url": SD + "coding-sctdescid", "valueId": "1"}]}],
                  "property": [{"code": "order", "valueDecimal": 6}]}
    assert e2["property"] == [{"code": "status", "valueCode": "deprecated"}] and "inactive" not in e2
    assert found["property"] == [{"code": "order", "uri": CP + "order"}, {"code": "status", "uri": CP + "status"}]


def test_supplements_add_designations_properties_and_are_reported():
    value_set = vs({"system": CS}, extension=[{"url": SD + "valueset-supplement", "valueCanonical": f"{EX}/CodeSystem/supp"}])
    found = expand([EXTENDED, SUPPLEMENT], value_set, include_designations=True, properties=("p1",))
    e1 = found["contains"][0]
    assert [d["value"] for d in e1["designation"]] == ["Eins", "een"]
    assert e1["property"] == [{"code": "order", "valueDecimal": 6}, {"code": "weight", "valueDecimal": 1.2},
                              {"code": "label", "valueString": "a."}, {"code": "p1", "valueString": "v1"}]
    assert {"code": "p1", "uri": f"{EX}/p1"} in found["property"]
    assert {"code": "weight", "uri": CP + "itemWeight"} in found["property"]
    assert {"name": "used-supplement", "valueUri": f"{EX}/CodeSystem/supp|0.1"} in found["parameter"]
    by_request = expand([EXTENDED, SUPPLEMENT], vs({"system": CS}), use_supplements=(f"{EX}/CodeSystem/supp",))
    assert {"name": "used-supplement", "valueUri": f"{EX}/CodeSystem/supp|0.1"} in by_request["parameter"]
    with pytest.raises(UnknownSupplement, match=f"Required supplement not found: {EX}/CodeSystem/nope"):
        expand([EXTENDED], vs({"system": CS}), use_supplements=(f"{EX}/CodeSystem/nope",))


def test_compose_entry_extensions_override_and_only_known_ones_are_echoed():
    entry = {"code": "e1", "extension": [{"url": SD + "valueset-conceptOrder", "valueInteger": 0},
                                         {"url": SD + "valueset-label", "valueString": "x."},
                                         {"url": SD + "valueset-deprecated", "valueBoolean": True},
                                         {"url": f"{EX}/unknown", "valueString": "dropped"}]}
    found = expand([EXTENDED], vs({"system": CS, "concept": [entry]}))
    [e1] = found["contains"]
    assert e1["extension"] == [{"url": SD + "valueset-deprecated", "valueBoolean": True},
                               {"url": SD + "rendering-style", "valueString": "bold"}]
    assert e1["property"] == [{"code": "order", "valueDecimal": 0}, {"code": "label", "valueString": "x."}]


def test_include_definition_echoes_the_definition():
    value_set = vs({"system": CS}, extension=[{"url": f"{EX}/x", "valueString": "kept"}])
    registry = Registry([EXTENDED])
    with_definition = rendered(expand_value_set(registry, ExpandRequest(value_set=value_set, include_definition=True)))
    assert with_definition["extension"] == value_set["extension"]
    assert with_definition["compose"] == value_set["compose"]
    plain = rendered(expand_value_set(registry, ExpandRequest(value_set=value_set)))
    assert "extension" not in plain and "compose" not in plain


def test_a_contained_value_set_is_imported_by_its_fragment_reference():
    tree = cs(concepts=[{"code": "p", "concept": [{"code": "c"}]}, {"code": "q"}])
    value_set = vs({"valueSet": ["#inner"]},
                   contained=[{"resourceType": "ValueSet", "id": "inner", "url": f"{EX}/ValueSet/inner",
                               "status": "active", "compose": {"include": [{"system": CS, "concept": [{"code": "c"}]}]}}])
    found = expand([tree], value_set)
    assert codes(found["contains"]) == ["c"]
    assert not any(p["name"] == "used-valueset" for p in found["parameter"])  # part of the ValueSet itself
    with pytest.raises(UnknownValueSet):
        expand([tree], vs({"valueSet": ["#missing"]}))


def test_text_filter_keeps_the_hierarchy_of_filter_includes_only():
    tree = cs(concepts=[{"code": "data", "display": "Data", "concept": [{"code": "data1", "display": "Data 1"}]}])
    by_filter = expand([tree], vs({"system": CS, "filter": [{"property": "concept", "op": "is-a", "value": "data"}]}),
                       filter="data")
    assert codes(by_filter["contains"]) == ["data"] and codes(by_filter["contains"][0]["contains"]) == ["data1"]
    whole = expand([tree], vs({"system": CS}), filter="data")
    assert codes(whole["contains"]) == ["data", "data1"]


def test_runaway_regexes_are_answered_quickly_and_correctly():
    long_codes = cs(concepts=[{"code": "a" * 59}, {"code": "a" * 59 + "!"}, {"code": "a" * 58 + "Y"}])
    for pattern in ("(a+)+", "((a+)+)+", "(a|a)*", "(a|aa)*"):
        found = expand([long_codes], vs({"system": CS, "filter": [{"property": "code", "op": "regex", "value": pattern}]}))
        assert codes(found["contains"]) == ["a" * 59]


def test_a_coding_property_without_a_code_matches_no_regex():
    # Coding.code is 0..1: such a value matches no pattern (the regex filter used to raise TypeError),
    # and still counts for `exists`
    kinds = cs(property=[{"code": "kind", "type": "Coding"}], concepts=[
        {"code": "a", "property": [{"code": "kind", "valueCoding": {"system": EX, "display": "No code"}}]},
        {"code": "b", "property": [{"code": "kind", "valueCoding": {"system": EX, "code": "k"}}]}])
    by_regex = expand([kinds], vs({"system": CS, "filter": [{"property": "kind", "op": "regex", "value": ".*"}]}))
    assert codes(by_regex["contains"]) == ["b"]
    by_exists = expand([kinds], vs({"system": CS, "filter": [{"property": "kind", "op": "exists", "value": "true"}]}))
    assert codes(by_exists["contains"]) == ["a", "b"]


def test_lookup_with_a_supplement():
    registry = Registry([EXTENDED, SUPPLEMENT])
    result = lookup_code(registry, LookupRequest(system=CS, code="e1", use_supplements=(f"{EX}/CodeSystem/supp",)))
    assert result.designations[-1] == Designation("een", "nl", None, f"{EX}/CodeSystem/supp|0.1")
    assert result.used_supplements == (f"{EX}/CodeSystem/supp|0.1",)
    with pytest.raises(UnknownSupplement) as raised:
        lookup_code(registry, LookupRequest(system=CS, code="e1", use_supplements=(f"{EX}/CodeSystem/nope",)))
    assert raised.value.expression is None
