"""The shipped resources: valid FHIR in both versions, and saying exactly what content-97116.md says."""

from __future__ import annotations

import copy
import gzip
import importlib.util
import json
from decimal import Decimal
from pathlib import Path

import pytest

from fhir_plugin.content import load_resource
from fhir_plugin.fhirversions import (
    R4_TO_R5_RELATIONSHIP,
    R5_TO_R4_EQUIVALENCE,
    FhirVersion,
    looks_like_r4,
    relationship_for,
    resource_for,
    to_r5,
)
from helpers import (
    AMA_COPYRIGHT,
    ARTICLE,
    CM_URL,
    CONSENT_USE,
    CPT,
    CPT_VERSION,
    DEFINITION_97116,
    DESIGNATIONS_97116,
    DISPLAY_97116,
    ICD,
    ICD_TITLES,
    ICD_VERSION,
    MAPPED_CODES,
    OR_SCHEDULE_USE,
    SYNONYM_USE,
    validate,
)

ROOT = Path(__file__).resolve().parent.parent
# The hand-made resources; the generated ICD-10-CM (.json.gz) has tests of its own below.
RESOURCE_FILES = sorted((ROOT / "resources").glob("*.json"))
ICD_FILE = ROOT / "resources" / "CodeSystem-icd-10-cm.json.gz"
ICD_SOURCE = "ICD-10-CM tabular list, April 1, 2026 release (CDC/NCHS)"


def read(name: str) -> dict:
    return json.loads((ROOT / "resources" / name).read_text(encoding="utf-8"))


def flatten(concepts: list[dict], parent: str | None = None) -> dict[str, tuple[dict, str | None]]:
    """code -> (concept, parent code) over nested concepts."""
    out: dict[str, tuple[dict, str | None]] = {}
    for concept in concepts:
        out[concept["code"]] = (concept, parent)
        out.update(flatten(concept.get("concept", []), concept["code"]))
    return out


@pytest.fixture(scope="module")
def cpt() -> dict:
    return read("CodeSystem-cpt-97116-fragment.json")


@pytest.fixture(scope="module")
def icd() -> dict:
    return json.loads(gzip.decompress(ICD_FILE.read_bytes()))


@pytest.fixture(scope="module")
def icd_concepts(icd) -> dict[str, tuple[dict, str | None]]:
    return flatten(icd["concept"])


@pytest.fixture(scope="module")
def concept_map() -> dict:
    return read("ConceptMap-cpt-97116-to-icd-10-cm.json")


def test_the_shipped_files_are_the_expected_six():
    assert sorted(p.name for p in (ROOT / "resources").iterdir()) == [
        "CodeSystem-cpt-97116-fragment.json",
        "CodeSystem-designation-use.json",
        "CodeSystem-icd-10-cm.json.gz",
        "ConceptMap-cpt-97116-to-icd-10-cm.json",
        "ValueSet-cpt-gait-training.json",
        "ValueSet-icd-10-cm-gait-training-diagnoses.json",
    ]


@pytest.mark.parametrize("path", RESOURCE_FILES, ids=lambda p: p.name)
def test_resource_is_valid_r5(path):
    resource = json.loads(path.read_text(encoding="utf-8"))
    assert path.name == f"{resource['resourceType']}-{resource['id']}.json"
    validate(resource, FhirVersion.R5)
    assert not looks_like_r4(resource)
    assert load_resource(resource, str(path)) == resource


@pytest.mark.parametrize("path", RESOURCE_FILES, ids=lambda p: p.name)
def test_resource_r4_rendering_is_valid_r4(path):
    resource = json.loads(path.read_text(encoding="utf-8"))
    before = copy.deepcopy(resource)
    r4 = resource_for(FhirVersion.R4, resource)
    validate(r4, FhirVersion.R4)
    assert resource == before  # rendering never mutates the stored resource


@pytest.mark.parametrize("path", RESOURCE_FILES, ids=lambda p: p.name)
def test_resources_are_what_make_resources_generates(path):
    spec = importlib.util.spec_from_file_location("make_resources", ROOT / "tools" / "make_resources.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the writing is under `if __name__ == "__main__"`
    generated = {f"{r['resourceType']}-{r['id']}.json": r for r in (
        module.cpt, module.designation_use, module.cpt_vs, module.icd_vs, module.concept_map)}
    assert json.loads(path.read_text(encoding="utf-8")) == generated[path.name]


# --- CPT ---------------------------------------------------------------------------------------


def test_cpt_is_a_fragment_with_only_97116_and_the_ama_copyright(cpt):
    assert cpt["url"] == CPT
    assert cpt["version"] == CPT_VERSION
    assert cpt["content"] == "fragment"
    assert cpt["copyright"] == AMA_COPYRIGHT
    assert [c["code"] for c in cpt["concept"]] == ["97116"]
    assert "concept" not in cpt["concept"][0]
    assert "count" not in cpt  # a fragment does not claim a total
    assert cpt["identifier"] == [{"system": "urn:ietf:rfc:3986", "value": "urn:oid:2.16.840.1.113883.6.12"}]


def test_cpt_97116_display_and_definition(cpt):
    concept = cpt["concept"][0]
    assert concept["display"] == DISPLAY_97116
    assert concept["definition"] == DEFINITION_97116


def test_cpt_97116_designations(cpt):
    designations = cpt["concept"][0]["designation"]
    assert [(d["value"], d["use"]) for d in designations] == DESIGNATIONS_97116
    assert {d["language"] for d in designations} == {"en"}
    synonyms = [d["value"] for d in designations if d["use"] == SYNONYM_USE]
    assert synonyms == ["Gait Training", "Walking Therapy", "Mobility Training"]
    assert [d["value"] for d in designations if d["use"] == OR_SCHEDULE_USE] == ["Walking practice session"]
    assert [d["value"] for d in designations if d["use"] == CONSENT_USE] == [
        "Agreement to perform walking and stair practice"]


def test_designation_use_codes_are_defined(cpt):
    uses = read("CodeSystem-designation-use.json")
    defined = {c["code"]: c["display"] for c in uses["concept"]}
    for _, use in DESIGNATIONS_97116:
        if use["system"] == uses["url"]:
            assert defined[use["code"]] == use["display"]
    assert defined["inclusion-term"] == "Inclusion term"  # the ICD-10-CM inclusion terms' use
    assert uses["content"] == "complete"
    assert uses["count"] == len(uses["concept"])


def test_cpt_97116_properties(cpt):
    values = {p["code"]: p for p in cpt["concept"][0]["property"]}
    assert values == {
        "modifier": {"code": "modifier", "valueBoolean": False},
        "modified": {"code": "modified", "valueBoolean": False},
        "kind": {"code": "kind", "valueCode": "code"},
        "work-rvu": {"code": "work-rvu", "valueDecimal": 0.45},
        "unit-minutes": {"code": "unit-minutes", "valueInteger": 15},
    }
    definitions = {p["code"]: p for p in cpt["property"]}
    assert definitions.keys() == values.keys()
    assert definitions["work-rvu"]["type"] == "decimal"
    assert definitions["unit-minutes"]["type"] == "integer"
    assert "CMS Physician Fee Schedule" in definitions["work-rvu"]["description"]
    assert "not a CPT property" in definitions["work-rvu"]["description"]
    # the decimal survives parsing exactly, as the engine sees it
    assert Decimal(str(values["work-rvu"]["valueDecimal"])) == Decimal("0.45")


# --- ICD-10-CM ---------------------------------------------------------------------------------


def test_icd_is_the_complete_release_with_titles_and_hierarchy(icd):
    assert icd["url"] == ICD
    assert icd["id"] == "icd-10-cm"
    assert icd["version"] == ICD_VERSION
    assert icd["content"] == "complete"
    assert icd["count"] == 98_466  # 22 chapters, 258 blocks, 98,186 categories and codes
    assert icd["hierarchyMeaning"] == "classified-with"
    assert icd["identifier"] == [{"system": "urn:ietf:rfc:3986", "value": "urn:oid:2.16.840.1.113883.6.90"}]
    concepts = flatten(icd["concept"])
    assert len(concepts) == 98_466
    assert {code: concepts[code][0]["display"] for code in ICD_TITLES} == ICD_TITLES
    chains = {}
    for code in MAPPED_CODES:
        chain, parent = [], concepts[code][1]
        while parent:
            chain.append(parent)
            parent = concepts[parent][1]
        chains[code] = chain
    assert chains == {"M62.81": ["M62.8", "M62", "M60-M63", "13"], "R26.2": ["R26", "R25-R29", "18"],
                      "G81.90": ["G81.9", "G81", "G80-G83", "6"]}
    assert concepts["M62.81"][0]["property"] == [
        {"code": "notSelectable", "valueBoolean": False},
        {"code": "excludes1", "valueString": "muscle weakness in sarcopenia (M62.84)"}]
    assert [f["code"] for f in icd["filter"]] == ["concept", "notSelectable"]


@pytest.mark.parametrize("code, selectable", [
    ("6", False), ("G80-G83", False), ("G81", False), ("G81.9", False), ("G81.90", True),
    ("13", False), ("M60-M63", False), ("M62", False), ("M62.8", False), ("M62.81", True),
    ("18", False), ("R25-R29", False), ("R26", False), ("R26.2", True),
    ("S06.1X7", False), ("S06.1X7A", True),
])
def test_icd_billable_codes_are_selectable_and_the_rest_is_not(icd_concepts, code, selectable):
    concept, _ = icd_concepts[code]
    not_selectable = [p["valueBoolean"] for p in concept["property"] if p["code"] == "notSelectable"]
    assert not_selectable == [not selectable]


def test_icd_is_valid_r5_and_its_r4_rendering_valid_r4(icd):
    """The one expensive check of the generated file: what integrators load must validate."""
    validate(icd, FhirVersion.R5)
    validate(resource_for(FhirVersion.R4, icd), FhirVersion.R4)


# --- ConceptMap --------------------------------------------------------------------------------


def test_concept_map_maps_97116_to_the_three_codes_as_related_to(concept_map):
    assert concept_map["url"] == CM_URL
    [group] = concept_map["group"]
    assert group["source"] == f"{CPT}|{CPT_VERSION}"
    assert group["target"] == f"{ICD}|{ICD_VERSION}"
    [element] = group["element"]
    assert (element["code"], element["display"]) == ("97116", DISPLAY_97116)
    assert [(t["code"], t["display"], t["relationship"]) for t in element["target"]] == [
        (code, ICD_TITLES[code], "related-to") for code in MAPPED_CODES]


def test_concept_map_r4_rendering_uses_relatedto(concept_map):
    r4 = resource_for(FhirVersion.R4, concept_map)
    [group] = r4["group"]
    assert (group["source"], group["sourceVersion"]) == (CPT, CPT_VERSION)
    assert (group["target"], group["targetVersion"]) == (ICD, ICD_VERSION)
    assert r4["sourceUri"] == concept_map["sourceScopeUri"]
    assert r4["targetUri"] == concept_map["targetScopeUri"]
    targets = group["element"][0]["target"]
    assert [(t["code"], t["equivalence"]) for t in targets] == [(code, "relatedto") for code in MAPPED_CODES]
    assert all("relationship" not in t for t in targets)


def test_concept_map_targets_carry_the_articles_explanations(concept_map):
    comments = {t["code"]: t["comment"] for t in concept_map["group"][0]["element"][0]["target"]}
    source = f" (Source: {ARTICLE} (an informational coding article).)"
    assert comments == {
        "M62.81": "The muscles are not as strong as they should be, making walking difficult." + source,
        "R26.2": "Any trouble someone might have with walking normally." + source,
        "G81.90": "One side of the body is weakened or paralysed, often requiring help to improve mobility." + source,
    }


def test_concept_map_says_it_is_informational_not_a_coverage_rule(concept_map):
    description = concept_map["description"]
    assert "This mapping is informational, not a coverage or billing rule" in description
    assert "not a substitute for medical advice" in description
    assert "a procedure is not equivalent to a diagnosis" in description


def test_concept_map_scopes_are_the_shipped_value_sets(concept_map):
    assert concept_map["sourceScopeUri"] == read("ValueSet-cpt-gait-training.json")["url"]
    assert concept_map["targetScopeUri"] == read("ValueSet-icd-10-cm-gait-training-diagnoses.json")["url"]


# --- ValueSets and provenance ------------------------------------------------------------------


def test_every_resource_that_includes_cpt_carries_the_ama_copyright():
    including_cpt = []
    for path in RESOURCE_FILES:
        resource = json.loads(path.read_text(encoding="utf-8"))
        includes = resource.get("compose", {}).get("include", [])
        if any(include.get("system") == CPT for include in includes):
            including_cpt.append(path.name)
            assert resource["copyright"] == AMA_COPYRIGHT, path.name
    assert including_cpt == ["ValueSet-cpt-gait-training.json"]


def test_value_sets_list_the_expected_codes():
    cpt_vs = read("ValueSet-cpt-gait-training.json")
    icd_vs = read("ValueSet-icd-10-cm-gait-training-diagnoses.json")
    assert cpt_vs["compose"]["include"] == [
        {"system": CPT, "version": CPT_VERSION, "concept": [{"code": "97116", "display": DISPLAY_97116}]}]
    assert icd_vs["compose"]["include"] == [
        {"system": ICD, "version": ICD_VERSION,
         "concept": [{"code": code, "display": ICD_TITLES[code]} for code in MAPPED_CODES]}]
    assert "Informational, not a coverage rule" in icd_vs["description"]


@pytest.mark.parametrize("name, sources", [
    ("CodeSystem-cpt-97116-fragment.json", [ARTICLE, "https://terminology.hl7.org/CPT.html"]),
    ("CodeSystem-designation-use.json", [ARTICLE]),
    ("ConceptMap-cpt-97116-to-icd-10-cm.json", [ARTICLE, ICD_SOURCE]),
    ("ValueSet-cpt-gait-training.json", [ARTICLE]),
    ("ValueSet-icd-10-cm-gait-training-diagnoses.json", [ARTICLE, ICD_SOURCE]),
])
def test_each_resource_names_its_source(name, sources):
    description = read(name)["description"]
    for source in sources:
        assert source in description


def test_icd_names_its_source_and_nchs(icd):
    for source in ("release 2026-04-01 (CDC/NCHS)", "icd10c-tabular-April-1-2026.xml", "simple-icd-10-cm 1.5.0",
                   'the chapter number ("13") and the block\'s code range ("M60-M63")'):
        assert source in icd["description"]
    assert icd["copyright"] == ("ICD-10-CM is maintained and published by the National Center for Health Statistics "
                                "(NCHS), Centers for Disease Control and Prevention. The tabular list carries no "
                                "copyright notice.")


# --- R4 <-> R5 ---------------------------------------------------------------------------------


def test_concept_map_round_trips_r5_r4_r5(concept_map):
    r4 = resource_for(FhirVersion.R4, concept_map)
    assert looks_like_r4(r4)
    assert to_r5(r4) == concept_map


def test_concept_map_r4_rendering_loads_back_as_the_same_r5(concept_map):
    assert load_resource(resource_for(FhirVersion.R4, concept_map)) == concept_map


# The FML maps (StructureMap-ConceptMap4to5 / 5to4), fhir-terminology-notes.md section 2.3.
R4_TO_R5 = [
    ("relatedto", "related-to"),
    ("inexact", "related-to"),
    ("equivalent", "equivalent"),
    ("equal", "equivalent"),
    ("wider", "source-is-narrower-than-target"),
    ("subsumes", "source-is-narrower-than-target"),
    ("narrower", "source-is-broader-than-target"),
    ("specializes", "source-is-broader-than-target"),
    ("unmatched", "not-related-to"),
    ("disjoint", "not-related-to"),
]
R5_TO_R4 = [
    ("related-to", "relatedto"),
    ("equivalent", "equivalent"),
    ("source-is-narrower-than-target", "wider"),
    ("source-is-broader-than-target", "narrower"),
    ("not-related-to", "unmatched"),
]


def test_relationship_tables_cover_every_code():
    assert R4_TO_R5_RELATIONSHIP == dict(R4_TO_R5)
    assert R5_TO_R4_EQUIVALENCE == dict(R5_TO_R4)


def _r4_map(equivalence: str, code: str | None = "B") -> dict:
    target: dict = {"equivalence": equivalence}
    if code:
        target["code"] = code
    if equivalence in ("narrower", "inexact", "unmatched", "disjoint"):
        target["comment"] = "required by cmd-1 in R4"
    return {"resourceType": "ConceptMap", "status": "active",
            "group": [{"source": "http://example.org/a", "target": "http://example.org/b",
                       "element": [{"code": "A", "target": [target]}]}]}


@pytest.mark.parametrize("equivalence, relationship", R4_TO_R5)
def test_r4_equivalence_converts_to_r5_relationship(equivalence, relationship):
    r4 = _r4_map(equivalence)
    validate(r4, FhirVersion.R4)
    r5 = to_r5(r4)
    validate(r5, FhirVersion.R5)
    assert r5["group"][0]["element"][0]["target"][0]["relationship"] == relationship
    assert "equivalence" not in r5["group"][0]["element"][0]["target"][0]


def test_r4_unmatched_without_a_code_becomes_no_map():
    r5 = to_r5(_r4_map("unmatched", code=None))
    validate(r5, FhirVersion.R5)
    assert r5["group"][0]["element"][0] == {"code": "A", "noMap": True}
    back = resource_for(FhirVersion.R4, r5)
    validate(back, FhirVersion.R4)
    assert back["group"][0]["element"][0] == {"code": "A", "target": [{"equivalence": "unmatched"}]}


@pytest.mark.parametrize("relationship, equivalence", R5_TO_R4)
def test_r5_relationship_renders_as_r4_equivalence(relationship, equivalence):
    assert relationship_for(FhirVersion.R4, relationship) == ("equivalence", equivalence)
    assert relationship_for(FhirVersion.R5, relationship) == ("relationship", relationship)
    r5 = to_r5(_r4_map("relatedto"))
    r5["group"][0]["element"][0]["target"][0]["relationship"] = relationship
    if relationship in ("source-is-broader-than-target", "not-related-to"):
        r5["group"][0]["element"][0]["target"][0]["comment"] = "required by cmd-1 in R5"
    validate(r5, FhirVersion.R5)
    r4 = resource_for(FhirVersion.R4, r5)
    validate(r4, FhirVersion.R4)
    assert r4["group"][0]["element"][0]["target"][0]["equivalence"] == equivalence


@pytest.mark.parametrize("r4_mode, r5_mode", [("provided", "use-source-code"), ("fixed", "fixed"),
                                              ("other-map", "other-map")])
def test_unmapped_modes_convert_both_ways(r4_mode, r5_mode):
    r4 = _r4_map("equivalent")
    unmapped = {"mode": r4_mode}
    if r4_mode == "fixed":
        unmapped["code"] = "X"
    if r4_mode == "other-map":
        unmapped["url"] = "http://example.org/other-map"
    r4["group"][0]["unmapped"] = unmapped
    validate(r4, FhirVersion.R4)
    r5 = to_r5(r4)
    validate(r5, FhirVersion.R5)
    assert r5["group"][0]["unmapped"]["mode"] == r5_mode
    if r4_mode == "other-map":
        assert r5["group"][0]["unmapped"]["otherMap"] == "http://example.org/other-map"
    assert resource_for(FhirVersion.R4, r5) == r4


def test_the_validate_helper_tells_the_versions_apart(concept_map):
    """R4 JSON fails the R5 models and R5 JSON fails the R4B models, so validate() proves the version."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        validate(resource_for(FhirVersion.R4, concept_map), FhirVersion.R5)
    with pytest.raises(ValidationError):
        validate(concept_map, FhirVersion.R4)
