"""The ICD-10-CM importer: a small synthetic tabular list for the rules, the April 2026 release
(as simple-icd-10-cm 1.5.0 ships it) for the counts, and the shipped file for reproducibility."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from fhir_plugin.cli import main
from fhir_plugin.content.icd10cm import import_tabular, release_version, simple_icd_10_cm_source, write_code_system

SHIPPED = Path(__file__).resolve().parent.parent / "resources" / "CodeSystem-icd-10-cm.json.gz"
INCLUSION = {"system": "http://fhir-plugin.org/fhir/CodeSystem/designation-use", "code": "inclusion-term",
             "display": "Inclusion term"}

SMALL = """<?xml version="1.0" encoding="utf-8"?>
<ICD10CM.tabular>
  <version>2031</version>
  <introduction><introSection type="title"><title>T</title></introSection></introduction>
  <chapter>
    <name>19</name>
    <desc>Injury (S00-T88)</desc>
    <notes><note>Use secondary code(s) to identify the cause</note></notes>
    <section id="S00-S09">
      <desc>Injuries to the head (S00-S09)</desc>
      <diag>
        <name>S06</name>
        <desc>Intracranial injury</desc>
        <sevenChrDef>
          <extension char="A">initial encounter</extension>
          <note>	initial encounter NOS</note>
          <extension char="D">subsequent encounter</extension>
        </sevenChrDef>
        <diag>
          <name>S06.0</name>
          <desc>Concussion</desc>
          <inclusionTerm><note>Commotio cerebri</note></inclusionTerm>
          <excludes1><note>concussion with other injury (S06.1-)</note></excludes1>
          <diag><name>S06.0X7</name><desc>Concussion with death</desc></diag>
          <diag><name>S06.0X9</name><desc>Concussion, unspecified</desc></diag>
        </diag>
      </diag>
    </section>
    <section id="S10">
      <desc>Neck (S10)</desc>
      <codeAlso><note>any wound</note></codeAlso>
      <diag><name>S10</name><desc>Superficial injury of throat</desc></diag>
    </section>
  </chapter>
</ICD10CM.tabular>
"""


def _flat(concepts: list[dict], parent: str | None = None, out: dict | None = None) -> dict:
    """code -> (concept without its children, parent code)."""
    out = {} if out is None else out
    for concept in concepts:
        out[concept["code"]] = ({k: v for k, v in concept.items() if k != "concept"}, parent)
        _flat(concept.get("concept", []), concept["code"], out)
    return out


@pytest.fixture
def small(tmp_path) -> Path:
    path = tmp_path / "icd10cm-tabular-July-4-2031.xml"
    path.write_text(SMALL, encoding="utf-8")
    return path


def test_small_release_hierarchy_seventh_characters_and_notes(small):
    cs = import_tabular(small)
    flat = _flat(cs["concept"])
    assert cs["version"] == "2031-07-04" and cs["date"] == "2031-07-04"
    assert list(flat) == ["19", "S00-S09", "S06", "S06.0", "S06.0X7", "S06.0X7A", "S06.0X9", "S06.0X9A",
                          "S06.0X9D", "S10"]
    assert cs["count"] == 10
    assert {code: parent for code, (_, parent) in flat.items()} == {
        "19": None, "S00-S09": "19", "S06": "S00-S09", "S06.0": "S06", "S06.0X7": "S06.0", "S06.0X7A": "S06.0X7",
        "S06.0X9": "S06.0", "S06.0X9A": "S06.0X9", "S06.0X9D": "S06.0X9", "S10": "19"}
    # S06 with 6th character 7 takes no D (the prose rule of the release); the note after A is an
    # inclusion term of the generated code, not part of its title
    assert flat["S06.0X9A"][0] == {
        "code": "S06.0X9A", "display": "Concussion, unspecified, initial encounter",
        "designation": [{"language": "en", "use": INCLUSION, "value": "Concussion, unspecified, initial encounter NOS"}],
        "property": [{"code": "notSelectable", "valueBoolean": False}]}
    assert flat["S06.0"][0] == {
        "code": "S06.0", "display": "Concussion",
        "designation": [{"language": "en", "use": INCLUSION, "value": "Commotio cerebri"}],
        "property": [{"code": "notSelectable", "valueBoolean": True},
                     {"code": "excludes1", "valueString": "concussion with other injury (S06.1-)"}]}
    assert flat["19"][0]["property"] == [{"code": "notSelectable", "valueBoolean": True},
                                         {"code": "notes", "valueString": "Use secondary code(s) to identify the cause"}]
    # a one-category block is its category, which takes the block's notes
    assert flat["S10"][0] == {"code": "S10", "display": "Superficial injury of throat",
                              "property": [{"code": "notSelectable", "valueBoolean": False},
                                           {"code": "codeAlso", "valueString": "any wound"}]}


def test_code_list_drops_generated_codes_the_release_does_not_list(small):
    cs = import_tabular(small, version="2031", valid_codes={"S060X9A"})
    assert [c for c in _flat(cs["concept"]) if len(c) == 8] == ["S06.0X9A"]
    assert cs["version"] == "2031" and "date" not in cs


def test_release_version_from_the_file_name_or_the_version_element(small, tmp_path):
    assert release_version(small) == "2031-07-04"
    other = tmp_path / "icd10cm_tabular_2031.xml"
    other.write_text(SMALL, encoding="utf-8")
    assert release_version(other) == "2031"


def test_not_a_tabular_list_is_refused(tmp_path):
    path = tmp_path / "x.xml"
    path.write_text("<ClaML/>", encoding="utf-8")
    with pytest.raises(ValueError, match=r"not an ICD-10-CM tabular list \(root <ClaML>\)"):
        import_tabular(path)


@pytest.mark.parametrize("cut, problem", [
    ("<name>S06.0</name>", "<diag> without <name>"),
    (' id="S10"', "<section> without the attribute id"),
    (' char="D"', "<extension> without the attribute char"),
])
def test_a_missing_name_description_or_attribute_is_refused(tmp_path, cut, problem):
    path = tmp_path / "icd10cm-tabular-July-4-2031.xml"
    path.write_text(SMALL.replace(cut, ""), encoding="utf-8")
    with pytest.raises(ValueError, match=problem):
        import_tabular(path)


def test_cli_writes_the_code_system(small, tmp_path, capsys):
    out = tmp_path / "cs.json.gz"
    assert main(["import-icd10cm", str(small), "--out", str(out)]) == 0
    written = json.loads(gzip.decompress(out.read_bytes()))
    assert written["count"] == 10 and written["url"] == "http://hl7.org/fhir/sid/icd-10-cm"
    assert capsys.readouterr().out == f"{out}: ICD-10-CM 2031-07-04, 10 concepts, {out.stat().st_size} bytes\n"
    assert main(["import-icd10cm", "--out", str(out)]) == 2
    assert capsys.readouterr().err == "error: give the tabular XML file, or --from-simple-icd-10-cm\n"


# --- the April 2026 release -------------------------------------------------------------------


@pytest.fixture(scope="module")
def release() -> dict:
    xml, source = simple_icd_10_cm_source()
    return import_tabular(xml, source=source)


def test_release_counts(release):
    flat = _flat(release["concept"])
    chapters = [c for c, (_, parent) in flat.items() if parent is None]
    blocks = [c for c, (_, parent) in flat.items() if parent in chapters and "-" in c]
    assert len(flat) == release["count"] == 98_466
    assert len(chapters) == 22
    assert len(blocks) == 258  # 297 sections; 39 hold one category of the same code (B20, F99, ...)
    assert len(flat) - len(chapters) - len(blocks) == 98_186  # categories, subcategories and codes
    billable = [c for c, (concept, _) in flat.items() if concept["property"][0] == {"code": "notSelectable",
                                                                                   "valueBoolean": False}]
    assert len(billable) == 74_719  # the leaves (billable codes)


def test_release_header(release):
    assert release["version"] == "2026-04-01"
    assert release["content"] == "complete" and release["hierarchyMeaning"] == "classified-with"
    assert release["description"].startswith(
        "The complete ICD-10-CM tabular list, release 2026-04-01 (CDC/NCHS), read from the file "
        "icd10c-tabular-April-1-2026.xml, as distributed in the PyPI package simple-icd-10-cm 1.5.0, by the "
        "fhir_plugin importer")


def test_the_shipped_file_is_the_regenerated_release(release, tmp_path):
    out = tmp_path / "again.json.gz"
    write_code_system(release, out)
    assert out.read_bytes() == SHIPPED.read_bytes()


# --- served: the shipped release through the operations -----------------------------------------

ICD = "http://hl7.org/fhir/sid/icd-10-cm"


def _prop(code: str, kind: str, value, description: str | None = None) -> dict:
    parts = [{"name": "code", "valueCode": code}, {"name": "value", kind: value}]
    return {"name": "property", "part": parts + ([{"name": "description", "valueString": description}]
                                                  if description else [])}


def test_lookup_m62_81_official_title_parent_and_notes(client):
    body = client.get(f"/r4/CodeSystem/$lookup?system={ICD}&code=M62.81").get_json()
    assert body["parameter"][2:] == [
        {"name": "display", "valueString": "Muscle weakness (generalized)"},
        {"name": "code", "valueCode": "M62.81"},
        {"name": "system", "valueUri": ICD},
        {"name": "abstract", "valueBoolean": False},
        {"name": "designation", "part": [
            {"name": "language", "valueCode": "en"},
            {"name": "use", "valueCoding": {"system": "http://terminology.hl7.org/CodeSystem/hl7TermMaintInfra",
                                            "code": "preferredForLanguage", "display": "Preferred For Language"}},
            {"name": "value", "valueString": "Muscle weakness (generalized)"}]},
        _prop("parent", "valueCode", "M62.8", "Other specified disorders of muscle"),
        _prop("notSelectable", "valueBoolean", False),
        _prop("excludes1", "valueString", "muscle weakness in sarcopenia (M62.84)"),
        _prop("inactive", "valueBoolean", False)]
    assert body["parameter"][:2] == [{"name": "name", "valueString": "ICD10CM"},
                                     {"name": "version", "valueString": "2026-04-01"}]


def test_lookup_inclusion_terms_are_designations(client):
    body = client.get(f"/r5/CodeSystem/$lookup?system={ICD}&code=R26.0&property=designation").get_json()
    assert [p for p in body["parameter"] if p["name"] == "designation"][-1] == {"name": "designation", "part": [
        {"name": "language", "valueCode": "en"}, {"name": "use", "valueCoding": INCLUSION},
        {"name": "value", "valueString": "Staggering gait"}]}


def test_lookup_a_chapter_with_its_notes(client):
    body = client.get(f"/r4/CodeSystem/$lookup?system={ICD}&code=13&property=notes&property=child").get_json()
    assert body["parameter"][2] == {"name": "display", "valueString":
                                    "Diseases of the musculoskeletal system and connective tissue (M00-M99)"}
    notes = [p["part"][1]["valueString"] for p in body["parameter"] if p["name"] == "property"
             and p["part"][0]["valueCode"] == "notes"]
    assert notes[0] == ("Use an external cause code following the code for the musculoskeletal condition, if "
                        "applicable, to identify the cause of the musculoskeletal condition")
    children = [p["part"][1]["valueCode"] for p in body["parameter"] if p["name"] == "property"
                and p["part"][0]["valueCode"] == "child"]
    # M00-M25 (Arthropathies) is a heading block of the tabular list: a note, no codes
    assert children[:3] == ["M00-M25", "M00-M02", "M04"] and len(children) == 24


def test_validate_code_on_the_release(client):
    good = client.get(f"/r5/CodeSystem/$validate-code?url={ICD}&code=R26.2"
                      "&display=Difficulty%20in%20walking,%20not%20elsewhere%20classified").get_json()
    assert good["parameter"][0] == {"name": "result", "valueBoolean": True}
    wrong = client.get(f"/r5/CodeSystem/$validate-code?url={ICD}&code=M62.81&display=Muscle%20weakness").get_json()
    assert wrong["parameter"][0] == {"name": "result", "valueBoolean": False}
    assert {"name": "message", "valueString": (
        f"Wrong Display Name 'Muscle weakness' for {ICD}#M62.81. Valid display is 'Muscle weakness (generalized)' "
        "(en) (for the language(s) '--')")} in wrong["parameter"]
    unknown = client.get(f"/r5/CodeSystem/$validate-code?url={ICD}&code=M62.99").get_json()
    assert {"name": "message", "valueString": f"Unknown code 'M62.99' in the CodeSystem '{ICD}' version "
            "'2026-04-01'"} in unknown["parameter"]  # complete: invalid, not "maybe in another fragment"


def test_subsumes_m62_m62_81_over_http(client):
    body = client.get(f"/r4/CodeSystem/$subsumes?system={ICD}&codeA=M62&codeB=M62.81").get_json()
    assert body == {"resourceType": "Parameters", "parameter": [{"name": "outcome", "valueCode": "subsumes"}]}
