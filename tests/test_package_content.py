"""What packages bring, as the loader reads them: unpacked folders of the package cache (read
through their .index.json), ids that are each package's own, identifiers that packages give two
code systems (they name neither; content that is no package is still refused for it), the
choice-value extensions fhir.resources cannot read, and hierarchies declared by THO's `subsumedBy`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tgz import EX, code_system

from fhir_plugin import create_app
from fhir_plugin.content import scan_paths
from fhir_plugin.content.errors import InvalidContent
from fhir_plugin.runtime.build import load_service
from fhir_plugin.terminology.errors import UnknownCodeSystem
from fhir_plugin.terminology.models import ExpandRequest, LookupRequest, SubsumesRequest

OID = "urn:oid:1.2.3.4.5"


def unpacked(root: Path, name: str, resources: dict[str, dict], index: bool = True,
             fhir_version: str = "5.0.0") -> Path:
    """A package as the package cache keeps it: root/NAME#1.0.0/package/..."""
    folder = root / f"{name}#1.0.0" / "package"
    folder.mkdir(parents=True)
    (folder / "package.json").write_text(json.dumps({"name": name, "version": "1.0.0", "fhirVersions": [fhir_version]}))
    for file, resource in resources.items():
        (folder / file).write_text(json.dumps(resource))
    if index:
        (folder / ".index.json").write_text(json.dumps({"index-version": 2, "files": [
            {"filename": file, "resourceType": resource["resourceType"]} for file, resource in resources.items()]}))
    return folder.parent


def with_oid(id_: str, url: str) -> dict:
    return code_system(id_, url, identifier=[{"system": "urn:ietf:rfc:3986", "value": OID}])


STRUCTURE = {"resourceType": "StructureDefinition", "id": "huge"}  # not JSON a loader could read: never opened


def test_an_unpacked_package_is_read_through_its_index(tmp_path):
    folder = unpacked(tmp_path, "example.a", {"CodeSystem-a.json": code_system("a", f"{EX}/CodeSystem/a"),
                                              "StructureDefinition-huge.json": STRUCTURE})
    (folder / "package" / "StructureDefinition-huge.json").write_text("{ not json")
    (folder / "package" / "example").mkdir()
    (folder / "package" / "example" / "CodeSystem-example.json").write_text("{ not json either")
    report = scan_paths([folder])
    assert [r["url"] for r in report.resources] == [f"{EX}/CodeSystem/a"]
    assert report.origins == [f"{folder} (package/CodeSystem-a.json)"]
    assert report.passed_over == ["package/StructureDefinition-huge.json"]


def test_without_an_index_every_json_file_is_read(tmp_path):
    folder = unpacked(tmp_path, "example.a", {"CodeSystem-a.json": code_system("a", f"{EX}/CodeSystem/a"),
                                              "StructureDefinition-huge.json": STRUCTURE}, index=False)
    report = scan_paths([folder])
    assert [r["url"] for r in report.resources] == [f"{EX}/CodeSystem/a"]
    assert dict(report.skipped) == {"StructureDefinition": 1}


def test_a_folder_holding_packages_reads_each_as_a_package(tmp_path):
    unpacked(tmp_path, "example.a", {"CodeSystem-a.json": code_system("a", f"{EX}/CodeSystem/a")})
    unpacked(tmp_path, "example.b", {"CodeSystem-b.json": code_system("b", f"{EX}/CodeSystem/b")})
    assert sorted(r["url"] for r in scan_paths([tmp_path]).resources) == [f"{EX}/CodeSystem/a", f"{EX}/CodeSystem/b"]


@pytest.mark.parametrize("filename", ["../../outside.json", "sub/CodeSystem-a.json"])
def test_an_index_naming_a_file_outside_package_is_refused(tmp_path, filename):
    folder = unpacked(tmp_path, "example.a", {})
    (folder / "package" / ".index.json").write_text(json.dumps({"index-version": 2, "files": [
        {"filename": filename, "resourceType": "CodeSystem"}]}))
    with pytest.raises(InvalidContent) as refused:
        scan_paths([folder])
    assert refused.value.text == (f"{folder}: refused the archive member 'package/{filename}': a name that is not a "
                                  "file of package/")


def test_a_link_in_an_unpacked_package_is_refused(tmp_path):
    folder = unpacked(tmp_path, "example.a", {"CodeSystem-a.json": code_system("a", f"{EX}/CodeSystem/a")})
    target = folder / "package" / "CodeSystem-a.json"
    target.rename(tmp_path / "elsewhere.json")
    target.symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(InvalidContent, match="not a regular file"):
        scan_paths([folder])


def test_ids_are_each_packages_own(tmp_path):
    first = unpacked(tmp_path, "example.a", {"CodeSystem-x.json": code_system("x", f"{EX}/CodeSystem/a")})
    second = unpacked(tmp_path, "example.b", {"CodeSystem-x.json": code_system("x", f"{EX}/CodeSystem/b")})
    service = load_service([first, second])
    assert {cs.url for cs in service.registry.code_systems()} == {f"{EX}/CodeSystem/a", f"{EX}/CodeSystem/b"}
    body = create_app(service=service).test_client().get("/r5/CodeSystem/x").get_json()
    assert body["url"] == f"{EX}/CodeSystem/a"  # a read by id: the first loaded
    # two files that are not packages are still held to one resource per id
    (tmp_path / "one.json").write_text(json.dumps(code_system("x", f"{EX}/CodeSystem/a")))
    (tmp_path / "two.json").write_text(json.dumps(code_system("x", f"{EX}/CodeSystem/b")))
    with pytest.raises(InvalidContent) as refused:
        scan_paths([tmp_path / "one.json", tmp_path / "two.json"])
    assert refused.value.message_id == "CONTENT_DUPLICATE_ID"


def test_an_identifier_packages_give_two_code_systems_names_neither(tmp_path):
    first = unpacked(tmp_path, "example.a", {"CodeSystem-a.json": with_oid("a", f"{EX}/CodeSystem/a")})
    second = unpacked(tmp_path, "example.b", {"CodeSystem-b.json": with_oid("b", f"{EX}/CodeSystem/b")})
    report = scan_paths([first, second])
    assert report.problems == [] and len(report.resources) == 2
    assert report.ambiguous == {OID: (f"{EX}/CodeSystem/a", f"{EX}/CodeSystem/b")}
    service = load_service([first, second])
    with pytest.raises(UnknownCodeSystem):
        service.lookup(LookupRequest(system=OID, code="A"))
    assert service.lookup(LookupRequest(system=f"{EX}/CodeSystem/b", code="A")).display == "Alpha"


def test_content_that_is_no_package_is_refused_for_such_an_identifier(tmp_path):
    package = unpacked(tmp_path, "example.a", {"CodeSystem-a.json": with_oid("a", f"{EX}/CodeSystem/a")})
    (tmp_path / "mine.json").write_text(json.dumps(with_oid("b", f"{EX}/CodeSystem/b")))
    with pytest.raises(InvalidContent) as refused:
        scan_paths([package, tmp_path / "mine.json"])
    assert refused.value.text == (f"The identifier '{OID}' names two code systems: '{EX}/CodeSystem/b' in "
                                  f"{tmp_path}/mine.json and '{EX}/CodeSystem/a' in {package} (package/CodeSystem-a.json)")


def test_an_extension_on_a_choice_value_is_read_past(tmp_path):
    """FHIR R5 core's discriminator-type: `_valueCode` beside `valueCode` in an extension."""
    resource = code_system("d", f"{EX}/CodeSystem/d", concept=[{"code": "A", "display": "Alpha", "extension": [{
        "url": "http://hl7.org/fhir/StructureDefinition/structuredefinition-standards-status", "valueCode": "deprecated",
        "_valueCode": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/structuredefinition-standards-"
                                             "status-reason", "valueMarkdown": "why"}]}}]}])
    (tmp_path / "d.json").write_text(json.dumps(resource))
    [loaded] = scan_paths([tmp_path / "d.json"]).resources
    assert loaded["concept"][0]["extension"] == [{
        "url": "http://hl7.org/fhir/StructureDefinition/structuredefinition-standards-status", "valueCode": "deprecated"}]


def test_a_hierarchy_declared_by_a_property_with_the_parent_uri(tmp_path):
    """THO's v3 code systems: `subsumedBy`, defined as http://hl7.org/fhir/concept-properties#parent."""
    resource = code_system("h", f"{EX}/CodeSystem/h", property=[
        {"code": "subsumedBy", "uri": "http://hl7.org/fhir/concept-properties#parent", "type": "code"}], concept=[
        {"code": "_Top", "display": "Top"},
        {"code": "A", "display": "Alpha", "property": [{"code": "subsumedBy", "valueCode": "_Top"}]},
        {"code": "B", "display": "Beta", "property": [{"code": "subsumedBy", "valueCode": "A"}]},
        {"code": "C", "display": "Gamma"}])
    (tmp_path / "h.json").write_text(json.dumps(resource))
    service = load_service([tmp_path / "h.json"])
    value_set = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [{
        "system": f"{EX}/CodeSystem/h", "filter": [{"property": "concept", "op": "is-a", "value": "_Top"}]}]}}
    expanded = service.expand(ExpandRequest(value_set=value_set))
    assert [(e.code, len(e.contains)) for e in expanded.contains] == [("_Top", 0), ("A", 0), ("B", 0)]  # listed flat
    assert service.subsumes(SubsumesRequest(code_a="_Top", code_b="B", system=f"{EX}/CodeSystem/h")).outcome == "subsumes"
    whole = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [{"system": f"{EX}/CodeSystem/h"}]}}
    assert [e.code for e in service.expand(ExpandRequest(value_set=whole)).contains] == ["_Top", "A", "B", "C"]
