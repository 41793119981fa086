"""Loading content: Bundles, FHIR packages, hostile archives and bombs, validation reports, progress,
and what a failed load leaves behind. Everything is written under tmp_path; no ICD-10-CM needed."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import pytest
from live_server import free_port
from helpers import load_content
from tgz import EX, MANIFEST_R4, code_system, member, r4_map, write_package, write_tgz

from fhir_plugin import load_service
from fhir_plugin.content import (
    Limits,
    LoadProgress,
    TerminalProgress,
    load_paths,
    read_paths,
    validate_paths,
)
from fhir_plugin.errors import InvalidContent
from fhir_plugin.terminology.models import LookupRequest

VS = {"resourceType": "ValueSet", "id": "vs", "url": f"{EX}/ValueSet/vs", "status": "active"}
BAD_CS = code_system("bad", f"{EX}/CodeSystem/bad", concept=[{"display": "no code"}])
BAD_CS_PROBLEM = "CodeSystem/bad is not valid FHIR R5: concept.0.code: Value for the field 'code' is required."


def write(path, document):
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def refused(message_id: str, text: str, call, *args, **kwargs) -> None:
    with pytest.raises(InvalidContent) as caught:
        call(*args, **kwargs)
    assert (caught.value.message_id, caught.value.text, caught.value.status) == (message_id, text, 422)


def bundle(kind: str, *entries: dict) -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


# --- Bundles -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind, request_", [("collection", None), ("batch", {"method": "POST", "url": "CodeSystem"}),
                                            ("transaction", {"method": "PUT", "url": "CodeSystem/test"})])
def test_bundles_of_each_type_load_every_entry(tmp_path, kind, request_):
    entries = [{"resource": code_system()}, {"resource": r4_map()}, {"resource": VS}]
    if request_:
        entries = [{**entry, "request": request_} for entry in entries]
    path = write(tmp_path / "b.json", bundle(kind, *entries))
    assert [(r["resourceType"], r["id"]) for r in read_paths([path])] == [
        ("CodeSystem", "test"), ("ConceptMap", "map"), ("ValueSet", "vs")]


def test_a_nested_bundle_is_opened_and_its_entries_named(tmp_path):
    path = write(tmp_path / "b.json", bundle("collection", {"resource": bundle("collection", {"resource": BAD_CS})}))
    refused("CONTENT_INVALID", f"{path} entry[0] entry[0]: {BAD_CS_PROBLEM}", read_paths, [path])


@pytest.mark.parametrize("entry, why", [
    ({"request": {"method": "DELETE", "url": "CodeSystem/test"}},
     "request.method DELETE; only POST and PUT can be loaded"),
    ({"resource": code_system(), "request": {"method": "GET", "url": "CodeSystem/test"}},
     "request.method GET; only POST and PUT can be loaded"),
    ({"resource": code_system()}, "request.method (none); only POST and PUT can be loaded"),
    ({"request": {"method": "PUT", "url": "CodeSystem/test"}}, "it has no resource"),
])
def test_a_transaction_entry_that_is_not_a_create_or_update_is_refused(tmp_path, entry, why):
    good = {"resource": VS, "request": {"method": "PUT", "url": "ValueSet/vs"}}
    path = write(tmp_path / "t.json", bundle("transaction", good, entry))
    refused("BUNDLE_ENTRY_REFUSED", f"{path} entry[1]: cannot load this Bundle entry: {why}", read_paths, [path])


def test_a_collection_entry_without_a_resource_and_a_searchset_are_refused(tmp_path):
    path = write(tmp_path / "c.json", bundle("collection", {"fullUrl": f"{EX}/CodeSystem/test"}))
    refused("BUNDLE_ENTRY_REFUSED", f"{path} entry[0]: cannot load this Bundle entry: it has no resource",
            read_paths, [path])
    path = write(tmp_path / "s.json", bundle("searchset", {"resource": code_system()}))
    refused("BUNDLE_TYPE_REFUSED", f"{path}: cannot load a Bundle of type 'searchset'; expected collection, batch or "
            "transaction", read_paths, [path])


# --- packages ------------------------------------------------------------------------------------

STRUCTURE_DEFINITION = {"resourceType": "StructureDefinition", "id": "sd", "url": f"{EX}/StructureDefinition/sd"}
IMPLEMENTATION_GUIDE = {"resourceType": "ImplementationGuide", "id": "ig"}


def test_a_package_loads_its_terminology_and_passes_over_the_rest(tmp_path):
    path = write_package(tmp_path / "p.tgz", {
        "CodeSystem-test.json": code_system(), "ConceptMap-map.json": r4_map(),
        "Bundle-b.json": bundle("collection", {"resource": VS}),
        "StructureDefinition-sd.json": STRUCTURE_DEFINITION, "ImplementationGuide-ig.json": IMPLEMENTATION_GUIDE,
    }, extra=[member("package/example/CodeSystem-x.json", {"not": "read"}), member("package/other/", type=tarfile.DIRTYPE)])
    report = validate_paths([path])
    assert [(r["resourceType"], r["id"]) for r in report.resources] == [
        ("CodeSystem", "test"), ("ConceptMap", "map"), ("ValueSet", "vs")]
    assert report.origins == [f"{path} (package/CodeSystem-test.json)", f"{path} (package/ConceptMap-map.json)",
                              f"{path} (package/Bundle-b.json) entry[0]"]
    assert (report.problems, dict(report.skipped)) == ([], {"StructureDefinition": 1, "ImplementationGuide": 1})
    assert report.passed_over == ["package/example/CodeSystem-x.json"]
    assert report.resources[1]["group"][0]["element"][0]["target"][0]["relationship"] == \
        "source-is-narrower-than-target"  # R4, as package.json says, converted to R5


def test_a_package_member_that_is_invalid_is_named_with_its_archive(tmp_path):
    path = write_package(tmp_path / "p.tgz", {"CodeSystem-test.json": code_system(), "CodeSystem-bad.json": BAD_CS})
    # fhirVersions 4.0.1: R4 is tried first, and R4's message is the one given
    refused("CONTENT_INVALID", f"{path} (package/CodeSystem-bad.json): CodeSystem/bad is not valid FHIR R4: "
            "concept.0.code: Value for the field 'code' is required.", load_paths, [path])


@pytest.mark.parametrize("content, message_id, why", [
    (b"\x89PNG\r\n", "CONTENT_NOT_JSON", "not valid JSON: 'utf-8' codec can't decode byte 0x89 in position 0: "
                                         "invalid start byte"),
    ({"name": "not FHIR"}, "CONTENT_NOT_FHIR", "not a FHIR resource: no resourceType"),
    ({"resourceType": "Spaceship"}, "CONTENT_NOT_FHIR", "not a FHIR resource: 'Spaceship' is not a FHIR resource type"),
])
def test_a_package_member_that_is_not_json_or_not_fhir_is_refused(tmp_path, content, message_id, why):
    path = write_package(tmp_path / "p.tgz", {"CodeSystem-test.json": code_system(), "x.json": content})
    refused(message_id, f"{path} (package/x.json): {why}", read_paths, [path])


@pytest.mark.parametrize("hostile, why", [
    (member("/etc/evil.json", code_system()), "an absolute path"),
    (member("../evil.json", code_system()), "a path that climbs out with '..'"),
    (member("package/../../evil.json", code_system()), "a path that climbs out with '..'"),
    (member("package/link.json", type=tarfile.SYMTYPE, linkname="/etc/passwd"), "a symbolic link to '/etc/passwd'"),
    (member("package/hard.json", type=tarfile.LNKTYPE, linkname="package/package.json"),
     "a hard link to 'package/package.json'"),
    (member("package/dev", type=tarfile.CHRTYPE, devmajor=1, devminor=3),
     "not a regular file or directory (a device, fifo or sparse file)"),
    (member("evil.json", code_system()), "outside the package/ folder"),
    (member("package/notes.txt", b"hello"), "not a JSON file"),
    (member("package/CodeSystem-test.json", code_system(title="replaced")), "it appears twice in the archive"),
])
def test_hostile_archive_members_are_refused(tmp_path, hostile, why):
    path = write_package(tmp_path / "p.tgz", {"CodeSystem-test.json": code_system()}, extra=[hostile])
    refused("PACKAGE_MEMBER_REFUSED", f"{path}: refused the archive member '{hostile[0].name}': {why}",
            read_paths, [path])


def test_a_member_declaring_more_than_the_default_limit_is_refused_before_it_is_read(tmp_path):
    info = tarfile.TarInfo("package/CodeSystem-huge.json")
    info.size = 200 * 1024 * 1024  # the header's claim; only 1 KB follows it
    path = tmp_path / "claim.tgz"
    path.write_bytes(gzip.compress(info.tobuf(tarfile.USTAR_FORMAT) + b"\0" * 1024))
    refused("CONTENT_TOO_LARGE", f"{path} (package/CodeSystem-huge.json): refused: it expands to more than 134217728 "
            "bytes (the limit set by FHIR_PLUGIN_MAX_MEMBER_BYTES)", read_paths, [path])


def test_a_compression_bomb_member_is_refused_by_the_member_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("FHIR_PLUGIN_MAX_MEMBER_BYTES", "1000000")
    path = write_package(tmp_path / "bomb.tgz", {"CodeSystem-test.json": code_system()},
                         extra=[member("package/zeros.json", b"0" * 2_000_000)])
    assert path.stat().st_size < 10_000
    refused("CONTENT_TOO_LARGE", f"{path} (package/zeros.json): refused: it expands to more than 1000000 bytes (the "
            "limit set by FHIR_PLUGIN_MAX_MEMBER_BYTES)", load_service, [path])


def test_many_members_together_over_the_package_limit_are_refused(tmp_path):
    members = {f"CodeSystem-{n}.json": code_system(str(n), f"{EX}/CodeSystem/{n}", title="x" * 4000) for n in range(5)}
    path = write_package(tmp_path / "p.tgz", members)
    refused("CONTENT_TOO_LARGE", f"{path}: refused: it expands to more than 10000 bytes (the limit set by "
            "FHIR_PLUGIN_MAX_PACKAGE_BYTES)", read_paths, [path], limits=Limits(10_000, 5_000))


def test_what_no_member_size_accounts_for_is_bounded_too(tmp_path):
    # a pax header is read before any member: the stream itself is bounded, not only the members
    info, data = member("package/package.json", MANIFEST_R4)
    info.pax_headers = {"comment": "x" * 50_000}
    path = write_tgz(tmp_path / "pax.tgz", [(info, data)])
    refused("CONTENT_TOO_LARGE", f"{path}: refused: it expands to more than 20000 bytes (the limit set by "
            "FHIR_PLUGIN_MAX_PACKAGE_BYTES)", read_paths, [path], limits=Limits(20_000, 20_000))


def test_a_gzipped_json_file_is_bounded(tmp_path, monkeypatch):
    path = tmp_path / "cs.json.gz"
    path.write_bytes(gzip.compress(json.dumps(code_system(title=" " * 5000)).encode()))
    refused("CONTENT_TOO_LARGE", f"{path}: refused: it expands to more than 5000 bytes (the limit set by "
            "FHIR_PLUGIN_MAX_MEMBER_BYTES)", read_paths, [path], limits=Limits(10_000, 5_000))
    monkeypatch.setenv("FHIR_PLUGIN_MAX_MEMBER_BYTES", "5000")
    with pytest.raises(InvalidContent):
        read_paths([path])
    monkeypatch.setenv("FHIR_PLUGIN_MAX_MEMBER_BYTES", "6000")
    assert [r["id"] for r in read_paths([path])] == ["test"]


@pytest.mark.parametrize("manifest, why", [
    (None, "package/package.json is missing or has no name"),
    ({"version": "1.0.0"}, "package/package.json is missing or has no name"),
    ({"name": "old", "fhirVersions": ["3.0.2"]}, "FHIR version 3.0.2 is not supported (R4 4.0.x, R4B 4.3.x or R5 5.0.x)"),
])
def test_a_package_without_a_usable_manifest_is_refused(tmp_path, manifest, why):
    path = write_package(tmp_path / "p.tgz", {"CodeSystem-test.json": code_system()}, manifest=manifest)
    refused("PACKAGE_INVALID", f"{path}: not a usable FHIR package: {why}", read_paths, [path])


def test_a_file_named_tgz_that_is_not_one_is_refused(tmp_path):
    path = tmp_path / "p.tgz"
    path.write_bytes(b"not gzip at all")
    refused("PACKAGE_INVALID", f"{path}: not a usable FHIR package: not a gzip-compressed tar archive (Not a gzipped "
            "file (b'no'))", read_paths, [path])


def test_a_directory_holds_packages_and_files_together(tmp_path):
    write_package(tmp_path / "p.tgz", {"ConceptMap-map.json": r4_map()})
    write(tmp_path / "cs.json", code_system())
    assert sorted(r["id"] for r in read_paths([tmp_path])) == ["map", "test"]


# --- duplicates, validation reports --------------------------------------------------------------


def test_a_duplicate_canonical_names_both_places(tmp_path):
    package = write_package(tmp_path / "p.tgz", {"CodeSystem-test.json": code_system()})
    file = write(tmp_path / "cs.json", code_system("other", title="different"))
    refused("CONTENT_DUPLICATE_CANONICAL", f"CodeSystem '{EX}/CodeSystem/test' version '1' is loaded twice with "
            f"different content: in {package} (package/CodeSystem-test.json) and in {file}",
            read_paths, [package, file])


def test_validate_collects_every_problem_and_counts(tmp_path):
    write(tmp_path / "a.json", bundle("collection", {"resource": code_system()}, {"resource": BAD_CS}))
    (tmp_path / "b.json").write_text("{", encoding="utf-8")
    write(tmp_path / "c.json", VS)
    write_package(tmp_path / "d.tgz", {"StructureDefinition-sd.json": STRUCTURE_DEFINITION},
                  extra=[member("../x.json", VS)])
    report = validate_paths([tmp_path, tmp_path / "missing"])
    assert [p.text for p in report.problems] == [
        f"{tmp_path / 'missing'}: no such file or directory",
        f"{tmp_path / 'a.json'} entry[1]: {BAD_CS_PROBLEM}",
        f"{tmp_path / 'b.json'}: not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 "
        "(char 1)",
        f"{tmp_path / 'd.tgz'}: refused the archive member '../x.json': a path that climbs out with '..'",
    ]
    assert [r["id"] for r in report.resources] == ["test", "vs"]


# --- progress ------------------------------------------------------------------------------------


def test_progress_reports_each_file_then_compiling(tmp_path):
    a = write(tmp_path / "a.json", code_system())
    b = write_package(tmp_path / "b.tgz", {"StructureDefinition-sd.json": STRUCTURE_DEFINITION,
                                           "ValueSet-vs.json": VS})
    events: list[LoadProgress] = []
    load_paths([tmp_path], progress=events.append)
    sizes = a.stat().st_size, b.stat().st_size
    total = sum(sizes)
    assert events == [
        LoadProgress("reading", str(a), sizes[0], 0, (), 0, 2, 0, total),
        LoadProgress("read", str(a), sizes[0], 1, (), 1, 2, sizes[0], total),
        LoadProgress("reading", str(b), sizes[1], 0, (), 1, 2, sizes[0], total),
        LoadProgress("read", str(b), sizes[1], 1, (("StructureDefinition", 1),), 2, 2, total, total),
        LoadProgress("compiling", resources=2),
        LoadProgress("done", resources=2),
    ]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_progress_redraws_one_line_on_a_tty_and_prints_lines_otherwise():
    events = [LoadProgress("reading", "big.json.gz", 3 * 1024 * 1024, 0, (), 0, 2, 0, 4 * 1024 * 1024),
              LoadProgress("read", "big.json.gz", 3 * 1024 * 1024, 1, (("StructureDefinition", 2),), 1, 2,
                           3 * 1024 * 1024, 4 * 1024 * 1024),
              LoadProgress("compiling", resources=5), LoadProgress("done", resources=5)]
    plain, tty = io.StringIO(), Terminal()
    for event in events:
        TerminalProgress(plain)(event)
    display = TerminalProgress(tty)
    for event in events:
        display(event)
    assert plain.getvalue() == ("[1/2] big.json.gz (3.0 MB): 1 resource, passed over 2 StructureDefinition\n"
                                "compiling 5 resources\n")
    reading = "[........................]   0% 0/2 files, reading big.json.gz (3.0 MB)"
    read = "[##################......]  75% 1/2 files"
    compiling = "[########################] 100% compiling 5 resources"
    done = "[########################] 100% 5 resources loaded"
    assert tty.getvalue() == (f"\r{reading}\r{read.ljust(len(reading))}\r{compiling.ljust(len(read))}"
                              f"\r{done.ljust(len(compiling))}\n")


# --- a failed load changes nothing ---------------------------------------------------------------


def test_a_failed_load_leaves_the_running_service_as_it_was(tmp_path):
    good = write(tmp_path / "good.json", code_system())
    service = load_content([good])
    registry, answer = service.registry, service.lookup(LookupRequest(system=f"{EX}/CodeSystem/test", code="A"))
    broken_bundle = write(tmp_path / "broken.json", bundle("collection", {"resource": code_system(
        "new", f"{EX}/CodeSystem/new")}, {"resource": BAD_CS}))
    broken_package = write_package(tmp_path / "broken.tgz", {"CodeSystem-new.json": code_system(
        "new", f"{EX}/CodeSystem/new")}, extra=[member("package/x", type=tarfile.SYMTYPE, linkname="/")])
    for broken in (broken_bundle, broken_package):
        with pytest.raises(InvalidContent):
            load_content([good, broken])
    assert service.registry is registry
    assert [cs.canonical for cs in registry.code_systems()] == [f"{EX}/CodeSystem/test|1"]
    assert service.lookup(LookupRequest(system=f"{EX}/CodeSystem/test", code="A")) == answer


# --- the command line ----------------------------------------------------------------------------


def run(capsys, *argv) -> tuple[int, list[str], list[str]]:
    from fhir_plugin.cli import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def test_fhir_plugin_validate_lists_problems_and_counts(capsys, tmp_path):
    good = write(tmp_path / "good.json", bundle("collection", {"resource": code_system()}, {"resource": VS}))
    bad = write(tmp_path / "bad.json", BAD_CS)
    package = write_package(tmp_path / "p.tgz", {"StructureDefinition-sd.json": STRUCTURE_DEFINITION,
                                                 "ConceptMap-map.json": r4_map()})
    code, out, err = run(capsys, "validate", good, bad, package)
    assert (code, out) == (1, [f"{bad}: {BAD_CS_PROBLEM}",
                               "passed over (not CodeSystem, ValueSet, ConceptMap or NamingSystem): 1 StructureDefinition",
                               "3 resources valid, 1 invalid"])
    assert err == [f"[1/3] {good} ({good.stat().st_size} B): 2 resources",
                   f"[2/3] {bad} ({bad.stat().st_size} B): 0 resources",
                   f"[3/3] {package} ({package.stat().st_size} B): 1 resource, passed over 1 "
                   "StructureDefinition"]
    assert run(capsys, "validate", good)[:2] == (0, ["2 resources valid, 0 invalid"])


def test_fhir_plugin_load_says_what_it_loaded(capsys, tmp_path):
    bundle_file = write(tmp_path / "b.json", bundle("transaction", *[
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        for r in (code_system(), code_system("t", f"{EX}/CodeSystem/t", version="2", content="fragment",
                                             concept=[{"code": "X"}, {"code": "Y"}]), VS)]))
    package = write_package(tmp_path / "p.tgz", {"StructureDefinition-sd.json": STRUCTURE_DEFINITION,
                                                 "ImplementationGuide-ig.json": IMPLEMENTATION_GUIDE,
                                                 "ConceptMap-map.json": r4_map()})
    code, out, err = run(capsys, "load", bundle_file, package)
    assert (code, out) == (0, [
        "loaded 4 resources: 2 CodeSystem, 1 ValueSet, 1 ConceptMap",
        f"  CodeSystem {EX}/CodeSystem/t version 2: 2 concepts (fragment)",
        f"  CodeSystem {EX}/CodeSystem/test version 1: 1 concept",
        f"  ValueSet {EX}/ValueSet/vs version (none)",
        f"  ConceptMap {EX}/ConceptMap/map version 1",
        "passed over (not CodeSystem, ValueSet, ConceptMap or NamingSystem): 1 ImplementationGuide, 1 StructureDefinition",
    ])
    assert err[-1] == "compiling 4 resources"


@pytest.mark.parametrize("command", ["load", "serve"])
def test_a_broken_bundle_or_package_stops_with_one_line(capsys, tmp_path, monkeypatch, command):
    broken_bundle = write(tmp_path / "b.json", bundle("batch", {"request": {"method": "DELETE", "url": "ValueSet/x"}}))
    broken_package = write_package(tmp_path / "p.tgz", {"CodeSystem-test.json": code_system()},
                                   extra=[member("/abs.json", VS)])
    for path, message in [
        (broken_bundle, f"{broken_bundle} entry[0]: cannot load this Bundle entry: request.method DELETE; only POST "
                        "and PUT can be loaded"),
        (broken_package, f"{broken_package}: refused the archive member '/abs.json': an absolute path"),
    ]:
        monkeypatch.setenv("FHIR_PLUGIN_CONTENT", str(path))  # serve reads it; load without PATH too
        monkeypatch.setenv("FHIR_PLUGIN_PORT", str(free_port()))  # serve checks its port before the content
        code, out, err = run(capsys, command)
        assert (code, out, err[-1]) == (2, [], f"error (HTTP 422): {message}")
