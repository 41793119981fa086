"""The importer of licensed CPT descriptor files (fhir_plugin.content.cpt) and `fhir-plugin import-cpt`.

Every code and descriptor here and in tests/data/cpt-synthetic/ is invented: CPT descriptors are AMA
copyright and never enter this repository. 97116 (needed for the merge of our enrichments) has an
invented descriptor; the fragment's own 97116 display is only ever read from the shipped file.
"""

from __future__ import annotations

import datetime
import gzip
import json
from pathlib import Path

import pytest
from helpers import (
    DEFINITION_97116,
    DESIGNATIONS_97116,
    USE_SYSTEM,
    load_content,
    ok_json,
    validate,
)

from fhir_plugin import TerminologyService, create_app
from fhir_plugin.cli import main
from fhir_plugin.config import bundled_dir
from fhir_plugin.content import cpt
from fhir_plugin.errors import InvalidContent, InvalidRequest
from fhir_plugin.fhirversions import FhirVersion, resource_for
from fhir_plugin.terminology.models import LookupRequest

DATA = Path(__file__).parent / "data" / "cpt-synthetic"
LONG, MEDIUM, SHORT, CONSUMER = (DATA / name for name in
                                 ("LONGULT.txt", "MEDU.txt", "SHORTU.txt", "ConsumerDescriptor.txt"))
CPT = "http://www.ama-assn.org/go/cpt"
TODAY = datetime.date(2026, 5, 1)
N = "(synthetic test data, not a CPT descriptor)"
FRAGMENT = json.loads((bundled_dir("resources") / "CodeSystem-cpt-97116-fragment.json").read_text(encoding="utf-8"))

THO = [{"code": "modifier", "valueBoolean": False}, {"code": "modified", "valueBoolean": False},
       {"code": "kind", "valueCode": "code"}]
MEDIUM_USE = {"system": USE_SYSTEM, "code": "cpt-medium", "display": "CPT medium descriptor"}
SHORT_USE = {"system": USE_SYSTEM, "code": "cpt-short", "display": "CPT short descriptor"}
CONSUMER_USE = {"system": USE_SYSTEM, "code": "cpt-consumer", "display": "CPT consumer-friendly descriptor"}


def designation(use: dict, value: str) -> dict:
    return {"language": "en", "use": use, "value": value}


def invented(code: str, display: str, *designations: dict) -> dict:
    concept = {"code": code, "display": display}
    if designations:
        concept["designation"] = list(designations)
    return {**concept, "property": THO}


CONCEPT_97116 = {
    "code": "97116",
    "display": f"Invented long descriptor for the merge test {N}",
    "definition": DEFINITION_97116,
    "designation": [
        designation(MEDIUM_USE, "Invented medium for the merge test (synthetic)"),
        designation(SHORT_USE, "INVENTED SHORT MERGE TEST"),
        designation(CONSUMER_USE, "Invented plain-language text for the merge test (synthetic test data)"),
        *({"language": "en", "use": use, "value": value} for value, use in DESIGNATIONS_97116),
    ],
    "property": [*THO, {"code": "work-rvu", "valueDecimal": 0.45}, {"code": "unit-minutes", "valueInteger": 15}],
}
CONCEPTS = [
    invented("ZZ001", f"Invented test procedure alpha {N}",
             designation(MEDIUM_USE, "Invented medium alpha (synthetic)"),
             designation(SHORT_USE, "INVENTED SHORT ALPHA"),
             designation(CONSUMER_USE, "Invented plain-language text alpha (synthetic test data)")),
    invented("ZZ002", f"Invented test procedure beta; first variant {N}",
             designation(MEDIUM_USE, "Invented medium beta (synthetic)"),
             designation(SHORT_USE, "INVENTED SHORT BETA CAFÉ"),  # Latin-1 in SHORTU.txt
             designation(CONSUMER_USE, "Invented plain-language text beta (synthetic test data)")),
    invented("ZZ003", f"Invented test procedure gamma, naïve form {N}",  # UTF-8 in LONGULT.txt
             designation(MEDIUM_USE, "Invented medium gamma (synthetic)")),
    CONCEPT_97116,
    invented("ZZ004", f"Invented test procedure delta {N}"),
]
DESCRIPTION = (
    "CPT 2026, imported on 2026-05-01 by fhir_plugin (fhir-plugin import-cpt) from the licensee's AMA CPT data "
    "files: long descriptors LONGULT.txt; medium descriptors MEDU.txt; short descriptors SHORTU.txt; "
    "consumer-friendly descriptors ConsumerDescriptor.txt. The display is the long descriptor (HL7 THO: the long "
    "mixed-case description is the preferred general purpose display); the medium, short and consumer-friendly "
    "descriptors are designations with the uses cpt-medium, cpt-short and cpt-consumer of "
    "http://fhir-plugin.org/fhir/CodeSystem/designation-use. The properties modifier, modified and kind are "
    "defined by HL7 Terminology (THO) for CPT (https://terminology.hl7.org/CPT.html). Code 97116 also carries the "
    "fhir_plugin project's content from \"What is CPT Code 97116?: A Step Towards Better Moving\" (an "
    "informational coding article): the definition, three synonyms, the operating-room schedule and surgical "
    "consent form names, work-rvu (a CMS Physician Fee Schedule value, not a CPT property) and unit-minutes."
)
EXPECTED = {
    "resourceType": "CodeSystem",
    "id": "cpt-2026",
    "url": CPT,
    "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:oid:2.16.840.1.113883.6.12"}],
    "version": "2026",
    "name": "CPT",
    "title": "Current Procedural Terminology (CPT®)",
    "status": "active",
    "experimental": False,
    "date": "2026-05-01",
    "publisher": "American Medical Association (AMA)",
    "description": DESCRIPTION,
    "copyright": ("CPT © Copyright 2026 American Medical Association. All rights reserved. AMA and CPT are "
                  "registered trademarks of the American Medical Association."),
    "caseSensitive": True,
    "content": "complete",
    "language": "en",
    "count": 5,
    "property": FRAGMENT["property"],  # THO's three, work-rvu and unit-minutes: the fragment's definitions
    "concept": CONCEPTS,
}


def import_all(year: str = "2026", **options) -> cpt.CptImport:
    return cpt.import_cpt(year, LONG, MEDIUM, SHORT, CONSUMER, today=TODAY, **options)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- the CodeSystem -------------------------------------------------------------------------------


def test_import_gives_exactly_the_expected_code_system():
    imported = import_all()
    assert imported.resource == EXPECTED
    assert [p["code"] for p in imported.resource["property"]] == [
        "modifier", "modified", "kind", "work-rvu", "unit-minutes"]
    assert (imported.codes, imported.designations, imported.enrichments) == (
        5, {"medium": 4, "short": 3, "consumer": 3}, "merged")


def test_97116_keeps_the_licensed_display_and_gets_the_enrichments_on_top():
    concept = next(c for c in import_all().resource["concept"] if c["code"] == "97116")
    assert concept == CONCEPT_97116
    assert concept["display"] != FRAGMENT["concept"][0]["display"]


def test_97116_missing_from_the_licensed_files_is_the_fragment_entry(tmp_path):
    long = write(tmp_path / "LONG.txt", f"ZZ001\tInvented test procedure alpha {N}\n")
    imported = cpt.import_cpt("2026", long, today=TODAY)
    assert imported.enrichments == "added"
    assert [c["code"] for c in imported.resource["concept"]] == ["ZZ001", "97116"]
    assert imported.resource["concept"][1] == FRAGMENT["concept"][0]  # its display too: nothing better exists
    assert imported.resource["description"].endswith(
        " 97116 is not in the licensed files: its whole entry is the project's fragment.")


def test_without_enrichments_97116_is_only_what_the_files_say():
    imported = import_all(enrich=False)
    concept = next(c for c in imported.resource["concept"] if c["code"] == "97116")
    assert concept == {"code": "97116", "display": f"Invented long descriptor for the merge test {N}",
                       "designation": CONCEPT_97116["designation"][:3], "property": THO}
    assert [p["code"] for p in imported.resource["property"]] == ["modifier", "modified", "kind"]
    assert imported.enrichments is None
    assert imported.resource["description"] == DESCRIPTION[:DESCRIPTION.index(" Code 97116 also")]


def test_the_import_validates_as_r5_and_as_r4():
    resource = import_all().resource
    validate(resource, FhirVersion.R5)
    validate(resource_for(FhirVersion.R4, resource), FhirVersion.R4)


def test_designation_uses_are_defined_in_our_designation_use_code_system():
    shipped = json.loads((bundled_dir("resources") / "CodeSystem-designation-use.json").read_text(encoding="utf-8"))
    displays = {c["code"]: c["display"] for c in shipped["concept"]}
    for use in (MEDIUM_USE, SHORT_USE, CONSUMER_USE):
        assert displays[use["code"]] == use["display"]
    assert shipped["count"] == len(shipped["concept"])


# --- reading the files ----------------------------------------------------------------------------


def test_each_synthetic_format_is_read():
    assert cpt.read_descriptor_file(MEDIUM, "medium") == {  # | separated, blank line, trailing empty column
        "ZZ001": (1, "Invented medium alpha (synthetic)"), "ZZ002": (2, "Invented medium beta (synthetic)"),
        "ZZ003": (4, "Invented medium gamma (synthetic)"),
        "97116": (5, "Invented medium for the merge test (synthetic)")}
    assert cpt.read_descriptor_file(SHORT, "short") == {  # Latin-1, CRLF
        "ZZ001": (1, "INVENTED SHORT ALPHA"), "ZZ002": (2, "INVENTED SHORT BETA CAFÉ"),
        "97116": (3, "INVENTED SHORT MERGE TEST")}
    assert cpt.read_descriptor_file(CONSUMER, "consumer") == {  # header row, code in the second column
        "ZZ001": (2, "Invented plain-language text alpha (synthetic test data)"),
        "ZZ002": (3, "Invented plain-language text beta (synthetic test data)"),
        "97116": (4, "Invented plain-language text for the merge test (synthetic test data)")}


def test_a_header_names_the_code_column_and_a_utf8_bom_is_ignored(tmp_path):
    path = tmp_path / "long.txt"
    path.write_bytes("\ufeffConcept Id|Code|Descriptor\n9900001|ZZ001|Invented text alpha\n".encode("utf-8"))
    assert cpt.read_descriptor_file(path) == {"ZZ001": (2, "Invented text alpha")}


def test_a_consumer_file_of_two_columns_has_the_code_first(tmp_path):
    path = write(tmp_path / "consumer.txt", "ZZ001\tInvented plain-language text alpha\n")
    assert cpt.read_descriptor_file(path, "consumer") == {"ZZ001": (1, "Invented plain-language text alpha")}


def test_only_the_first_line_can_be_a_header(tmp_path):
    path = write(tmp_path / "long.txt", "ZZ001\tInvented text alpha\nCode\tDescriptor\n")
    with pytest.raises(InvalidContent) as caught:
        cpt.read_descriptor_file(path)
    assert caught.value.text == (f"{path}, line 2: 'Code' in column 1 is not a CPT code "
                                 "(5 upper-case letters or digits)")


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, line, reason", [
    ("ZZ001\tInvented text alpha\n\nZZ002 Invented text beta\n", 3,
     "no tab or '|' between the code and its descriptor"),
    ("ZZ001\tInvented text alpha\nZZ02\tInvented text beta\n", 2,
     "'ZZ02' in column 1 is not a CPT code (5 upper-case letters or digits)"),
    ("ZZ001\tInvented text alpha\nZZ002\t\t\n", 2, "no descriptor after the code ZZ002"),
    ("ZZ001\tInvented text alpha\nZZ002\tInvented text beta\nZZ001\tInvented text gamma\n", 3,
     "code ZZ001 is given twice (also on line 1)"),
    ("ZZ001\tInvented \x93text\x94 alpha\n", 1,
     "control character U+0093 (a Windows-1252 file? save it as UTF-8)"),
], ids=["no-separator", "not-a-code", "no-descriptor", "duplicate", "windows-1252"])
def test_a_malformed_line_is_an_error_naming_file_and_line(tmp_path, text, line, reason):
    path = tmp_path / "LONG.txt"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(InvalidContent) as caught:
        cpt.import_cpt("2026", path)
    assert (caught.value.message_id, caught.value.text) == ("CPT_FILE_INVALID", f"{path}, line {line}: {reason}")


def test_a_code_missing_from_the_long_file_is_an_error(tmp_path):
    medium = write(tmp_path / "MEDU.txt", "ZZ001|Invented medium alpha\nZZ009|Invented medium nine\n")
    with pytest.raises(InvalidContent) as caught:
        cpt.import_cpt("2026", LONG, medium=medium)
    assert caught.value.text == f"{medium}, line 2: code ZZ009 is not in the long descriptor file LONGULT.txt"


@pytest.mark.parametrize("text", ["", "\n\n", "CPT Code\tLong Descriptor\n"], ids=["empty", "blank", "header-only"])
def test_a_file_without_codes_is_an_error(tmp_path, text):
    path = write(tmp_path / "LONG.txt", text)
    with pytest.raises(InvalidContent) as caught:
        cpt.import_cpt("2026", path)
    assert (caught.value.message_id, caught.value.text) == ("CPT_FILE_EMPTY", f"{path}: no CPT codes in this file")


def test_a_missing_file_is_an_error(tmp_path):
    with pytest.raises(InvalidContent) as caught:
        cpt.import_cpt("2026", LONG, short=tmp_path / "SHORTU.txt")
    assert (caught.value.message_id, caught.value.text) == (
        "CONTENT_NOT_FOUND", f"{tmp_path / 'SHORTU.txt'}: no such file or directory")


def test_the_version_must_be_a_year():
    with pytest.raises(InvalidRequest) as caught:
        cpt.import_cpt("26", LONG)
    assert caught.value.text == "Parameter 'version' has an invalid CPT year value: 26"


# --- loading and serving the output ---------------------------------------------------------------


@pytest.fixture(scope="module")
def imported_service(tmp_path_factory) -> TerminologyService:
    """Our designation uses and an import (version 2027) written as .json.gz, loaded like FHIR_PLUGIN_CONTENT."""
    out = tmp_path_factory.mktemp("cpt") / "CodeSystem-cpt-2027.json.gz"
    cpt.write_code_system(import_all("2027").resource, out)
    return load_content([bundled_dir("resources") / "CodeSystem-designation-use.json", out])


def test_the_written_gzip_file_is_the_resource(tmp_path):
    resource = import_all().resource
    cpt.write_code_system(resource, tmp_path / "cpt.json.gz")
    cpt.write_code_system(resource, tmp_path / "cpt.json")
    assert json.loads(gzip.decompress((tmp_path / "cpt.json.gz").read_bytes())) == resource
    assert json.loads((tmp_path / "cpt.json").read_text(encoding="utf-8")) == resource


def test_the_output_loads_and_answers_lookup(imported_service):
    result = imported_service.lookup(LookupRequest(system=CPT, code="ZZ004"))
    assert (result.version, result.display) == ("2027", f"Invented test procedure delta {N}")
    enriched = imported_service.lookup(LookupRequest(system=CPT, code="97116"))
    assert enriched.display == f"Invented long descriptor for the merge test {N}"
    assert enriched.definition == DEFINITION_97116


def test_lookup_over_http_gives_the_display_and_the_three_descriptors(imported_service):
    client = create_app(service=imported_service).test_client()
    body = ok_json(client.get("/r5/CodeSystem/$lookup", query_string={"system": CPT, "code": "ZZ001"}), "R5")
    values = {p["name"]: p for p in body["parameter"]}
    assert values["display"] == {"name": "display", "valueString": f"Invented test procedure alpha {N}"}
    assert values["version"] == {"name": "version", "valueString": "2027"}
    designations = [{part["name"]: part for part in p["part"]} for p in body["parameter"] if p["name"] == "designation"]
    assert [(d["use"]["valueCoding"]["code"], d["value"]["valueString"]) for d in designations] == [
        ("preferredForLanguage", f"Invented test procedure alpha {N}"),
        ("cpt-medium", "Invented medium alpha (synthetic)"),
        ("cpt-short", "INVENTED SHORT ALPHA"),
        ("cpt-consumer", "Invented plain-language text alpha (synthetic test data)"),
    ]
    assert [d["use"]["valueCoding"] for d in designations[1:]] == [MEDIUM_USE, SHORT_USE, CONSUMER_USE]
    ok_json(client.get("/r4/CodeSystem/$lookup", query_string={"system": CPT, "code": "ZZ001"}), "R4")


def test_an_import_of_the_fragments_year_cannot_be_loaded_beside_the_fragment(tmp_path):
    """Why the README says: load the import instead of the fragment (same url|version 2026)."""
    out = tmp_path / "CodeSystem-cpt-2026.json"
    cpt.write_code_system(import_all("2026").resource, out)
    with pytest.raises(InvalidContent) as caught:
        load_content([bundled_dir("resources") / "CodeSystem-cpt-97116-fragment.json", out])
    assert f"'{CPT}' version '2026' is loaded twice with different content" in caught.value.text


# --- the command line -----------------------------------------------------------------------------


def test_import_cpt_command(tmp_path, capsys):
    out = tmp_path / "cpt-2026.json.gz"
    code = main(["import-cpt", "--version", "2026", "--long", str(LONG), "--medium", str(MEDIUM),
                 "--short", str(SHORT), "--consumer", str(CONSUMER), "--out", str(out)])
    printed = capsys.readouterr()
    assert (code, printed.err) == (0, "")
    assert printed.out.splitlines() == [
        "CPT 2026: 5 codes imported from LONGULT.txt",
        "designations: 4 medium (MEDU.txt), 3 short (SHORTU.txt), 3 consumer-friendly (ConsumerDescriptor.txt)",
        "97116 enrichments: applied (definition, synonyms, schedule and consent-form names, work-rvu, "
        "unit-minutes merged into the licensed 97116)",
        f"written: {out}",
    ]
    written = json.loads(gzip.decompress(out.read_bytes()))
    today = datetime.date.today().isoformat()
    assert written == {**EXPECTED, "date": today,
                       "description": DESCRIPTION.replace("imported on 2026-05-01", f"imported on {today}")}


def test_import_cpt_command_long_file_only_without_enrichments(tmp_path, capsys):
    out = tmp_path / "cpt.json"
    code = main(["import-cpt", "--version", "2027", "--long", str(LONG), "--no-enrichments", "--out", str(out)])
    assert (code, capsys.readouterr().out.splitlines()) == (0, [
        "CPT 2027: 5 codes imported from LONGULT.txt",
        "designations: none (no --medium, --short or --consumer file)",
        "97116 enrichments: not applied (--no-enrichments)",
        f"written: {out}",
    ])
    assert [c.get("designation") for c in json.loads(out.read_text(encoding="utf-8"))["concept"]] == [None] * 5


def test_import_cpt_command_error_is_one_line(tmp_path, capsys):
    out = tmp_path / "cpt.json"
    code = main(["import-cpt", "--version", "2026", "--long", str(tmp_path / "LONGULT.txt"), "--out", str(out)])
    assert (code, capsys.readouterr().err) == (2, f"error: {tmp_path / 'LONGULT.txt'}: no such file or directory\n")
    assert not out.exists()


def test_an_import_of_another_year_loads_beside_the_fragment_and_is_the_default(tmp_path):
    """The README's other case: a 2027 import next to the shipped content, fragment included."""
    out = tmp_path / "CodeSystem-cpt-2027.json.gz"
    cpt.write_code_system(import_all("2027").resource, out)
    shipped = bundled_dir("resources")
    service = load_content([shipped / "CodeSystem-cpt-97116-fragment.json",
                                             shipped / "CodeSystem-designation-use.json", out])
    latest = service.lookup(LookupRequest(system=CPT, code="97116"))
    assert (latest.version, latest.display) == ("2027", f"Invented long descriptor for the merge test {N}")
    pinned = service.lookup(LookupRequest(system=CPT, code="97116", version="2026"))
    assert pinned.display == FRAGMENT["concept"][0]["display"]
