"""`fhir-plugin package`: the FHIR NPM package of our resources, for R4 and R5, is valid FHIR of its
version, indexes every file, is reproducible, and loads back into our server unchanged.

The package is built from the CPT fragment, the designation uses, the ValueSets and the ConceptMap
of resources/, plus a three-code ICD-10-CM stand-in written here (the shipped ICD-10-CM is being
replaced by the complete release and is too slow to validate in every test run)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from helpers import CM_URL, CPT, ICD, ICD_VERSION, load_content, ok_json

from fhir_plugin import __version__, create_app
from fhir_plugin.cli import main
from fhir_plugin.config import bundled_dir
from fhir_plugin.content.package_build import MTIME, build_package
from fhir_plugin.fhirversions import FhirVersion, model_class
from fhir_plugin.terminology.service import TerminologyService

SHIPPED = ["CodeSystem-cpt-97116-fragment.json", "CodeSystem-designation-use.json",
           "ConceptMap-cpt-97116-to-icd-10-cm.json", "ValueSet-cpt-gait-training.json",
           "ValueSet-icd-10-cm-gait-training-diagnoses.json"]
ICD_STAND_IN = {
    "resourceType": "CodeSystem", "id": "icd-10-cm-stand-in", "url": ICD, "version": ICD_VERSION, "name": "ICD10CM",
    "status": "active", "content": "fragment", "hierarchyMeaning": "is-a",
    "concept": [
        {"code": "M62.8", "display": "Other specified disorders of muscle",
         "concept": [{"code": "M62.81", "display": "Muscle weakness (generalized)"}]},
        {"code": "R26.2", "display": "Difficulty in walking, not elsewhere classified"},
        {"code": "G81.90", "display": "Hemiplegia, unspecified affecting unspecified side"},
    ],
}
CORE = {"R4": ("4.0.1", "hl7.fhir.r4.core"), "R5": ("5.0.0", "hl7.fhir.r5.core")}
FILES = ["package/.index.json", "package/CodeSystem-cpt-97116-fragment.json", "package/CodeSystem-designation-use.json",
         "package/CodeSystem-icd-10-cm-stand-in.json", "package/ConceptMap-cpt-97116-to-icd-10-cm.json",
         "package/ValueSet-cpt-gait-training.json", "package/ValueSet-icd-10-cm-gait-training-diagnoses.json",
         "package/package.json"]
INDEX = [
    {"filename": "CodeSystem-cpt-97116-fragment.json", "resourceType": "CodeSystem", "id": "cpt-97116-fragment",
     "url": CPT, "version": "2026", "content": "fragment"},
    {"filename": "CodeSystem-designation-use.json", "resourceType": "CodeSystem", "id": "designation-use",
     "url": "http://fhir-plugin.org/fhir/CodeSystem/designation-use", "version": "1.0.0", "content": "complete"},
    {"filename": "CodeSystem-icd-10-cm-stand-in.json", "resourceType": "CodeSystem", "id": "icd-10-cm-stand-in",
     "url": ICD, "version": ICD_VERSION, "content": "fragment"},
    {"filename": "ConceptMap-cpt-97116-to-icd-10-cm.json", "resourceType": "ConceptMap",
     "id": "cpt-97116-to-icd-10-cm", "url": CM_URL, "version": "1.0.0"},
    {"filename": "ValueSet-cpt-gait-training.json", "resourceType": "ValueSet", "id": "cpt-gait-training",
     "url": "http://fhir-plugin.org/fhir/ValueSet/cpt-gait-training", "version": "1.0.0"},
    {"filename": "ValueSet-icd-10-cm-gait-training-diagnoses.json", "resourceType": "ValueSet",
     "id": "icd-10-cm-gait-training-diagnoses",
     "url": "http://fhir-plugin.org/fhir/ValueSet/icd-10-cm-gait-training-diagnoses", "version": "1.0.0"},
]


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> list[Path]:
    stand_in = tmp_path_factory.mktemp("icd") / "CodeSystem-icd-10-cm-stand-in.json"
    stand_in.write_text(json.dumps(ICD_STAND_IN), encoding="utf-8")
    return [bundled_dir("resources") / name for name in SHIPPED] + [stand_in]


@pytest.fixture(scope="module", params=["R4", "R5"])
def built(request, sources, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"package-{request.param}")
    return request.param, build_package(FhirVersion(request.param), out, sources).path


def members(path: Path) -> dict[str, dict]:
    with tarfile.open(path, "r:gz") as tar:
        return {m.name: json.loads(tar.extractfile(m).read()) for m in tar.getmembers()}


def test_the_package_has_the_manifest_and_index_of_its_version(built):
    version, path = built
    assert path.name == f"fhir-plugin.terminology.{version.lower()}-{__version__}.tgz"
    files = members(path)
    assert list(files) == FILES
    fhir_version, core = CORE[version]
    assert files["package/package.json"] == {
        "name": f"fhir-plugin.terminology.{version.lower()}", "version": __version__, "type": "Conformance",
        "title": f"fhir_plugin terminology ({version})",
        "description": "CodeSystems, ValueSets and ConceptMaps of fhir_plugin: CPT 97116 (gait training) and its "
                       "associated ICD-10-CM diagnoses, with the mapping between them. CPT content is copyright the "
                       "American Medical Association (see each resource's copyright).",
        "author": "fhir_plugin project", "license": "Apache-2.0", "canonical": "http://fhir-plugin.org/fhir",
        "fhirVersions": [fhir_version], "dependencies": {core: fhir_version}}
    assert files["package/.index.json"] == {"index-version": 2, "files": INDEX}


def test_every_resource_in_the_package_is_valid_fhir_of_its_version(built):
    version, path = built
    resources = {name: r for name, r in members(path).items() if "resourceType" in r}
    assert len(resources) == 6
    for resource in resources.values():
        model_class(FhirVersion(version), resource["resourceType"]).model_validate(resource)
    target = resources["package/ConceptMap-cpt-97116-to-icd-10-cm.json"]["group"][0]["element"][0]["target"][0]
    target.pop("comment")
    # R4 speaks equivalence, R5 relationship
    assert target == ({"code": "M62.81", "display": "Muscle weakness (generalized)", "equivalence": "relatedto"}
                      if version == "R4" else
                      {"code": "M62.81", "display": "Muscle weakness (generalized)", "relationship": "related-to"})


def test_the_archive_is_reproducible(built, tmp_path, sources):
    version, path = built
    again = build_package(FhirVersion(version), tmp_path, sources).path
    assert again.read_bytes() == path.read_bytes()
    assert path.read_bytes()[4:8] == b"\0\0\0\0"  # gzip mtime
    with tarfile.open(path, "r:gz") as tar:
        assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in tar.getmembers()} == {
            (MTIME, 0, 0, "", "", 0o644)}


def canonical_resources(service: TerminologyService) -> dict[str, list]:
    registry = service.registry
    return {rtype: sorted(((e.url, e.version), e.resource) for e in registry.entries(rtype))
            for rtype in ("CodeSystem", "ValueSet", "ConceptMap")}


def test_the_package_loads_back_unchanged(built, sources):
    _, path = built
    from_package, from_files = load_content([path]), load_content(sources)
    expected = canonical_resources(from_files)
    assert [key for key, _ in expected["CodeSystem"]] == [
        ("http://fhir-plugin.org/fhir/CodeSystem/designation-use", "1.0.0"), (ICD, ICD_VERSION), (CPT, "2026")]
    assert canonical_resources(from_package) == expected


@pytest.mark.parametrize("query", [
    f"CodeSystem/$lookup?system={CPT}&code=97116",
    f"CodeSystem/$lookup?system={ICD}&code=M62.81&property=parent",
    f"ConceptMap/$translate?url={CM_URL}&system={CPT}&code=97116&targetsystem={ICD}",
    f"ConceptMap/$translate?sourceSystem={CPT}&sourceCode=97116&targetSystem={ICD}&targetCode=R26.2",
])
def test_the_package_answers_as_the_files_do(built, sources, query):
    _, path = built
    package_app = create_app(service=load_content([path])).test_client()
    files_app = create_app(service=load_content(sources)).test_client()
    for version in ("r4", "r5"):
        answer = ok_json(package_app.get(f"/{version}/{query}"), version.upper())
        assert answer == ok_json(files_app.get(f"/{version}/{query}"), version.upper())
        assert answer["parameter"][0]["name"] in ("name", "result")


def test_fhir_plugin_package_writes_the_tgz_and_lists_it(capsys, tmp_path, sources):
    assert main(["package", "--fhir-version", "r5", "--out", str(tmp_path / "out"), *map(str, sources)]) == 0
    out = capsys.readouterr().out.splitlines()
    path = tmp_path / "out" / f"fhir-plugin.terminology.r5-{__version__}.tgz"
    assert out[0] == f"{path} ({path.stat().st_size} bytes)"
    with tarfile.open(path, "r:gz") as tar:
        assert out[1:] == [f"  {m.name} ({m.size} bytes)" for m in tar.getmembers()]


def test_map_groups_name_plain_code_systems_with_their_versions_beside(built, sources):
    """What other servers read: R4's sourceVersion/targetVersion, and in R5 the same versions in their
    cross-version extensions, never `url|version` in group.source or group.target (FHIRsmith 0.9.4
    finds no map for an unversioned system then); reading the package back puts them in place."""
    version, path = built
    [group] = members(path)["package/ConceptMap-cpt-97116-to-icd-10-cm.json"]["group"]
    heads = {key: value for key, value in group.items() if key != "element"}
    if version == "R4":
        assert heads == {"source": CPT, "sourceVersion": "2026", "target": ICD, "targetVersion": ICD_VERSION}
    else:
        assert heads == {"source": CPT, "target": ICD, "extension": [
            {"url": "http://hl7.org/fhir/4.0/StructureDefinition/extension-ConceptMap.group.sourceVersion",
             "valueString": "2026"},
            {"url": "http://hl7.org/fhir/4.0/StructureDefinition/extension-ConceptMap.group.targetVersion",
             "valueString": ICD_VERSION}]}
    [loaded] = [cm for cm in TerminologyService(load_content([path]).registry).registry.entries("ConceptMap")]
    assert {k: v for k, v in loaded.resource["group"][0].items() if k != "element"} == {
        "source": f"{CPT}|2026", "target": f"{ICD}|{ICD_VERSION}"}
