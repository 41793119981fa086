"""The on-disk content cache (fhir_plugin/runtime/compiled.py): used for the same content, never stale,
never in the way. Whether a load was served from the cache is told by whether the loader ran."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import pytest

import fhir_plugin.runtime.build as build
from fhir_plugin import TerminologyService, load_service
from fhir_plugin.config import cache_dir
from fhir_plugin.runtime import compiled as cache
from fhir_plugin.terminology.models import LookupRequest

EX = "http://example.org/fhir/CodeSystem/cached"


@pytest.fixture
def loads(monkeypatch) -> list[list[Path]]:
    """Every call of the real loader (validation and compilation), with the paths it was given."""
    calls: list[list[Path]] = []
    real = build.load_paths

    def counting(paths, *args, **kwargs):
        calls.append(list(paths))
        return real(paths, *args, **kwargs)

    monkeypatch.setattr(build, "load_paths", counting)
    monkeypatch.setattr(cache, "MIN_CACHED_BYTES", 0)  # cache even this small content
    return calls


def write_code_system(folder: Path, display: str = "Alpha") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    resource = {"resourceType": "CodeSystem", "id": "cached", "url": EX, "version": "1", "status": "active",
                "content": "complete", "concept": [{"code": "A", "display": display}]}
    (folder / "cs.json").write_text(json.dumps(resource), encoding="utf-8")
    return folder


def display(service: TerminologyService) -> str | None:
    return service.lookup(LookupRequest(system=EX, code="A")).display


def entries(cache_dir: Path) -> list[str]:
    return sorted(p.name for p in cache_dir.glob("content-*.pickle"))


def test_a_second_load_of_the_same_content_reads_the_cache(tmp_path, loads):
    folder, cache_dir = write_code_system(tmp_path / "content"), tmp_path / "cache"
    first = load_service([folder], cache=cache_dir)
    second = load_service([folder], cache=cache_dir)
    assert loads == [[folder]]  # validated and compiled once
    assert display(first) == display(second) == "Alpha"
    assert entries(cache_dir) == [f"content-{cache.content_key([folder])}.pickle"]


def test_changed_content_is_loaded_again(tmp_path, loads):
    folder, cache_dir = write_code_system(tmp_path / "content"), tmp_path / "cache"
    load_service([folder], cache=cache_dir)
    write_code_system(folder, "Alpha, changed")
    assert display(load_service([folder], cache=cache_dir)) == "Alpha, changed"
    assert len(loads) == 2
    assert len(entries(cache_dir)) == 2


def test_the_key_depends_on_the_bytes_not_on_where_the_files_are(tmp_path):
    one, two = write_code_system(tmp_path / "one"), write_code_system(tmp_path / "two")
    assert cache.content_key([one]) == cache.content_key([two])
    assert cache.content_key([one]) != cache.content_key([write_code_system(tmp_path / "three", "Other")])
    assert cache.content_key([one]) != cache.content_key([one, two])


@pytest.mark.parametrize("garbage", [b"", b"not a pickle", b"\x80\x05\x95truncated"])
def test_a_corrupt_entry_is_ignored_and_replaced(tmp_path, loads, garbage):
    folder, cache_dir = write_code_system(tmp_path / "content"), tmp_path / "cache"
    cache_dir.mkdir()
    entry = cache_dir / f"content-{cache.content_key([folder])}.pickle"
    entry.write_bytes(garbage)
    assert display(load_service([folder], cache=cache_dir)) == "Alpha"
    assert display(load_service([folder], cache=cache_dir)) == "Alpha"
    assert len(loads) == 1  # the corrupt entry was replaced by a good one


def test_a_cache_that_cannot_be_written_does_not_stop_the_load(tmp_path, loads):
    folder = write_code_system(tmp_path / "content")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    for _ in range(2):
        assert display(load_service([folder], cache=blocker / "cache")) == "Alpha"
    assert len(loads) == 2


def test_small_content_is_not_cached(tmp_path, loads, monkeypatch):
    monkeypatch.setattr(cache, "MIN_CACHED_BYTES", 10_000)
    folder, cache_dir = write_code_system(tmp_path / "content"), tmp_path / "cache"
    load_service([folder], cache=cache_dir)
    load_service([folder], cache=cache_dir)
    assert len(loads) == 2 and not cache_dir.exists()


def test_without_cache_the_loader_always_runs(tmp_path, loads):
    folder, cache_dir = write_code_system(tmp_path / "content"), tmp_path / "cache"
    load_service([folder])
    assert len(loads) == 1 and not cache_dir.exists()


def test_old_entries_are_pruned(tmp_path, loads, monkeypatch):
    monkeypatch.setattr(cache, "KEEP_ENTRIES", 2)
    cache_dir = tmp_path / "cache"
    for index in range(3):
        load_service([write_code_system(tmp_path / f"c{index}", f"D{index}")], cache=cache_dir)
    assert len(entries(cache_dir)) == 2


def test_the_default_directory_is_per_user_and_configurable(tmp_path):
    assert cache_dir({"FHIR_PLUGIN_CACHE_DIR": str(tmp_path)}, server=True) == tmp_path
    assert cache_dir({}, server=True, environ={"XDG_CACHE_HOME": "/x"}) == Path("/x/fhir_plugin")
    assert cache_dir({}, server=True, environ={}) == Path.home() / ".cache" / "fhir_plugin"


def test_the_library_writes_no_cache_unless_asked(tmp_path):
    assert cache_dir({}, server=False, environ={"XDG_CACHE_HOME": str(tmp_path)}) is None
    assert cache_dir({"FHIR_PLUGIN_CACHE_DIR": str(tmp_path)}, server=False) == tmp_path


def test_loading_content_changes_nothing_outside_the_service(tmp_path, loads, monkeypatch):
    """The library writes no file and leaves the garbage collector as it was; the server asks for
    both itself (FHIR_PLUGIN_CACHE_DIR, gc.freeze in fhir_plugin.server)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.delenv("FHIR_PLUGIN_CACHE_DIR", raising=False)
    folder = write_code_system(tmp_path / "content")
    frozen, enabled = gc.get_freeze_count(), gc.isenabled()
    assert display(load_service([folder])) == "Alpha"
    assert (gc.get_freeze_count(), gc.isenabled()) == (frozen, enabled)
    assert list(home.rglob("*")) == [] and sorted(p.name for p in folder.iterdir()) == ["cs.json"]
