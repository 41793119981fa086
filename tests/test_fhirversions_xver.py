"""R5 elements that R4 carries as cross-version extensions (fhirversions, last section): each
conversion both ways, and every setup resource of the HL7 tests' general suites through R4 and back."""

from __future__ import annotations

import copy
import json

import pytest
from pydantic import ValidationError

from fhir_plugin.fhirversions import (
    EXT_CONTAINS_PROPERTY,
    EXT_EXPANSION_PROPERTY,
    EXT_FILTER_OP,
    EXT_UNMAPPED_RELATIONSHIP,
    EXT_VERSION_ALGORITHM,
    FhirVersion,
    model_class,
    resource_for,
    to_r5,
)
from fhir_plugin.txtests.manifest import MANIFEST, default_tests_dir, load_cases


def _value_set(compose=None, expansion=None):
    vs = {"resourceType": "ValueSet", "url": "http://example.org/vs", "status": "active"}
    if compose:
        vs["compose"] = compose
    if expansion:
        vs["expansion"] = {"timestamp": "2024-01-01T00:00:00Z", **expansion}
    return vs


def _include(op, system="http://example.org/cs"):
    return {"system": system, "filter": [{"property": "concept", "op": op, "value": "a"}]}


def _include_r4(op, system="http://example.org/cs"):
    return {"system": system, "filter": [{"property": "concept", "_op": {"extension": [
        {"url": EXT_FILTER_OP, "valueCode": op}]}, "value": "a"}]}


def _code_system(**extra):
    return {"resourceType": "CodeSystem", "url": "http://example.org/cs", "status": "active", "content": "complete", **extra}


def _concept_map(unmapped, unmapped_r4):
    def make(target, unmapped_part):
        return {"resourceType": "ConceptMap", "url": "http://example.org/cm", "status": "active", "group": [{
            "source": "http://example.org/a", "target": "http://example.org/b",
            "element": [{"code": "x", "target": [{"code": "y", **target}]}], "unmapped": unmapped_part}]}
    return make({"relationship": "equivalent"}, unmapped), make({"equivalence": "equivalent"}, unmapped_r4)


CM_R5, CM_R4 = _concept_map({"mode": "fixed", "code": "temp", "relationship": "related-to"},
                            {"mode": "fixed", "code": "temp", "extension": [
                                {"url": EXT_UNMAPPED_RELATIONSHIP, "valueCode": "related-to"}]})

CONVERSIONS = {
    "filter child-of": (_value_set({"include": [_include("child-of")]}),
                        _value_set({"include": [_include_r4("child-of")]})),
    "filter descendent-leaf in exclude": (
        _value_set({"include": [_include("is-a")], "exclude": [_include("descendent-leaf")]}),
        _value_set({"include": [_include("is-a")], "exclude": [_include_r4("descendent-leaf")]})),
    "R4 filter ops stay": (_value_set({"include": [_include("exists"), _include("=")]}),
                           _value_set({"include": [_include("exists"), _include("=")]})),
    "expansion.property": (
        _value_set(expansion={"property": [{"code": "prop", "uri": "http://example.org/cs#prop"}, {"code": "other"}],
                              "extension": [{"url": "http://example.org/keep", "valueString": "x"}]}),
        _value_set(expansion={"extension": [
            {"url": "http://example.org/keep", "valueString": "x"},
            {"url": EXT_EXPANSION_PROPERTY, "extension": [{"url": "code", "valueCode": "prop"},
                                                          {"url": "uri", "valueUri": "http://example.org/cs#prop"}]},
            {"url": EXT_EXPANSION_PROPERTY, "extension": [{"url": "code", "valueCode": "other"}]}]})),
    "expansion.contains.property, nested": (
        _value_set(expansion={"contains": [{"system": "http://example.org/cs", "code": "a", "property": [
            {"code": "prop", "valueCode": "x"}, {"code": "flag", "valueBoolean": True}],
            "contains": [{"system": "http://example.org/cs", "code": "b", "property": [{"code": "n", "valueInteger": 2}]}]}]}),
        _value_set(expansion={"contains": [{"system": "http://example.org/cs", "code": "a", "extension": [
            {"url": EXT_CONTAINS_PROPERTY, "extension": [{"url": "code", "valueCode": "prop"}, {"url": "value", "valueCode": "x"}]},
            {"url": EXT_CONTAINS_PROPERTY, "extension": [{"url": "code", "valueCode": "flag"}, {"url": "value", "valueBoolean": True}]}],
            "contains": [{"system": "http://example.org/cs", "code": "b", "extension": [
                {"url": EXT_CONTAINS_PROPERTY, "extension": [{"url": "code", "valueCode": "n"}, {"url": "value", "valueInteger": 2}]}]}]}]})),
    "CodeSystem.versionAlgorithmCoding": (
        _code_system(versionAlgorithmCoding={"system": "http://hl7.org/fhir/version-algorithm", "code": "semver"}),
        _code_system(extension=[{"url": EXT_VERSION_ALGORITHM, "valueCoding": {
            "system": "http://hl7.org/fhir/version-algorithm", "code": "semver"}}])),
    "CodeSystem.versionAlgorithmString": (
        _code_system(versionAlgorithmString="date"),
        _code_system(extension=[{"url": EXT_VERSION_ALGORITHM, "valueString": "date"}])),
    "ConceptMap unmapped.relationship": (CM_R5, CM_R4),
    "inside Parameters": (
        {"resourceType": "Parameters", "parameter": [
            {"name": "url", "valueUri": "http://example.org/vs"},
            {"name": "tx-resource", "resource": _value_set({"include": [_include("child-of")]})}]},
        {"resourceType": "Parameters", "parameter": [
            {"name": "url", "valueUri": "http://example.org/vs"},
            {"name": "tx-resource", "resource": _value_set({"include": [_include_r4("child-of")]})}]}),
}


def _errors(version: FhirVersion, resource: dict) -> list[tuple]:
    try:
        model_class(version, resource["resourceType"]).model_validate(resource)
    except ValidationError as error:
        return sorted((tuple(map(str, e["loc"])), e["type"]) for e in error.errors())
    return []


@pytest.mark.parametrize(("r5", "r4"), CONVERSIONS.values(), ids=CONVERSIONS.keys())
def test_conversion_both_ways(r5, r4):
    before = copy.deepcopy(r5)
    assert resource_for(FhirVersion.R4, r5) == r4
    assert r5 == before  # never mutates its argument
    assert to_r5(r4) == r5
    assert _errors(FhirVersion.R5, r5) == []
    assert _errors(FhirVersion.R4, r4) == []


def test_an_r4_filter_keeps_its_other_op_extensions():
    other = {"url": "http://example.org/other", "valueString": "x"}
    r4 = _value_set({"include": [{"system": "http://example.org/cs", "filter": [
        {"property": "concept", "_op": {"extension": [other, {"url": EXT_FILTER_OP, "valueCode": "child-of"}]}, "value": "a"}]}]})
    assert to_r5(r4)["compose"]["include"][0]["filter"][0] == {
        "property": "concept", "op": "child-of", "_op": {"extension": [other]}, "value": "a"}


def test_loading_an_r4_value_set_with_a_filter_op_extension_gives_the_r5_op():
    r4 = _value_set({"include": [_include_r4("descendent-leaf")]})
    assert to_r5(r4)["compose"]["include"][0]["filter"][0]["op"] == "descendent-leaf"


# --- every setup resource of the general suites ---------------------------------------------------

TESTS_DIR = default_tests_dir()
HAVE_TESTS = (TESTS_DIR / MANIFEST).is_file()


def _setup_files() -> list[str]:
    if not HAVE_TESTS:
        return []
    files: dict[str, None] = {}
    for case in load_cases(TESTS_DIR):
        files.update(dict.fromkeys(case.setup))
    return list(files)


@pytest.mark.skipif(not HAVE_TESTS, reason=f"HL7 terminology tests not found at {TESTS_DIR}")
@pytest.mark.parametrize("path", _setup_files())
def test_every_setup_resource_survives_r4_and_back(path):
    resource = json.loads((TESTS_DIR / path).read_text(encoding="utf-8-sig"))
    r4 = resource_for(FhirVersion.R4, resource)
    # Nothing the setup uses is dropped on the way: a new R5-only element in the tests needs a
    # conversion in fhirversions.
    assert to_r5(r4) == resource
    # R4B accepts the R4 form exactly when R5 accepts the original (a few test files are invalid
    # in both, e.g. a CodeSystem without status).
    assert _errors(FhirVersion.R4, r4) == _errors(FhirVersion.R5, resource)


@pytest.mark.skipif(not HAVE_TESTS, reason=f"HL7 terminology tests not found at {TESTS_DIR}")
def test_the_setup_of_the_general_suites_needs_the_conversions():
    """The conversions above are the ones the tests use (guards against testing nothing)."""
    text = "".join((TESTS_DIR / path).read_text(encoding="utf-8-sig") for path in _setup_files())
    assert '"child-of"' in text and '"versionAlgorithmCoding"' in text
    assert len(_setup_files()) == 153  # distinct files; 189 setup entries over the 24 general suites
