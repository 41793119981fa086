"""Attacks on loading content at run time (/admin/content, with the admin token), against a real
server started by each test (`python -m fhir_plugin serve`, 2 gunicorn workers): a worker killed
mid-load, a load too large to validate, a file that only repeats another, and small loads while
many resources are loaded, with other clients' requests running meanwhile.

Time is bounded only generously: the machine is shared. Figures are printed (pytest -s).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from threading import Thread

import pytest
import requests
from helpers import CPT, DISPLAY_97116
from live_server import LiveServer, _wait_until_ready, clean_environ, free_port

from test_load_faults import children

TOKEN = "attack-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EX = "http://example.org/fhir/CodeSystem"
WORKERS = 2
TIMEOUT = 60.0


# The start-up content: CPT 97116 alone, so that a start takes a second, not the validation of
# ICD-10-CM whenever the compiled-content cache is cold (after any change to the code).
CONTENT = Path(__file__).resolve().parent.parent / "resources" / "CodeSystem-cpt-97116-fragment.json"


@contextmanager
def server(load_dir: Path, **settings: str) -> Iterator[LiveServer]:
    """CPT 97116 with `load_dir` for run-time loads, 2 workers, the admin token set."""
    port = free_port()
    environ = dict(clean_environ(), FHIR_PLUGIN_ADMIN_TOKEN=TOKEN, FHIR_PLUGIN_LOAD_DIR=str(load_dir),
                   FHIR_PLUGIN_CONTENT=str(CONTENT),
                   **{f"FHIR_PLUGIN_{key.upper()}": value for key, value in settings.items()})
    command = [sys.executable, "-m", "fhir_plugin", "serve", "--port", str(port), "--workers", str(WORKERS)]
    with open(load_dir.parent / f"server-{port}.log", "w+b") as log:
        live = LiveServer(f"http://127.0.0.1:{port}", port, log)
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environ)
        live.pid = process.pid
        try:
            _wait_until_ready(process, live)
            yield live
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Iterator[tuple[LiveServer, Path]]:
    """One server for the tests that need no restart, with its load directory."""
    load_dir = tmp_path_factory.mktemp("attack-loading") / "loaded"
    load_dir.mkdir()
    with server(load_dir) as live:
        yield live, load_dir


def code_systems(count: int, start: int = 0, prefix: str = "cs") -> bytes:
    """A Bundle of `count` small CodeSystems, each with two concepts."""
    return json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "CodeSystem", "id": f"{prefix}{n}", "url": f"{EX}/{prefix}{n}", "version": "1",
                      "status": "active", "content": "complete",
                      "concept": [{"code": "A", "display": f"Alpha {n}"}, {"code": "B", "display": "Beta"}]}}
        for n in range(start, start + count)]}).encode()


def load(live: LiveServer, data: bytes, name: str) -> requests.Response:
    return requests.post(f"{live.url}/admin/content", params={"name": name}, data=data, headers=AUTH,
                         timeout=TIMEOUT)


def lookup(live: LiveServer, system: str, code: str) -> requests.Response:
    # a fresh connection each time: gunicorn's sync workers take turns on new connections
    return requests.get(f"{live.r4}/CodeSystem/$lookup", params={"system": system, "code": code},
                        headers={"Connection": "close"}, timeout=TIMEOUT)


def display(response: requests.Response) -> str:
    assert response.status_code == 200, response.text
    return next(p["valueString"] for p in response.json()["parameter"] if p["name"] == "display")


def staging(load_dir: Path) -> list[str]:
    return sorted(p.name for p in load_dir.glob(".incoming-*"))


def lock_holder(lock: Path) -> int | None:
    """The pid holding the flock on `lock`, from /proc/locks (no psutil)."""
    inode = os.stat(lock).st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[5].rsplit(":", 1)[-1] == str(inode):
            return int(fields[4])
    return None


# --- a worker killed mid-load ------------------------------------------------------------------


def test_a_worker_killed_mid_load_leaves_no_staging_folder_after_a_restart(tmp_path):
    load_dir = tmp_path / "loaded"
    load_dir.mkdir()
    # gunicorn alone: its worker reads the body as it comes, so the load is caught mid-way (behind
    # nginx the body arrives whole and the load may be over before the kill)
    with server(load_dir, front="none") as live:
        outcome: dict[str, object] = {}

        def send() -> None:
            try:
                outcome["status"] = load(live, code_systems(6000), "big.json").status_code
            except requests.RequestException as error:
                outcome["error"] = error

        sender = Thread(target=send)
        sender.start()
        deadline = time.monotonic() + TIMEOUT
        while not staging(load_dir) and time.monotonic() < deadline:
            time.sleep(0.002)
        [folder] = staging(load_dir)
        loader = lock_holder(load_dir / ".lock")
        assert loader in children(live.pid)  # a worker, mid-load
        os.kill(loader, signal.SIGKILL)
        sender.join(TIMEOUT)
        assert isinstance(outcome.get("error"), requests.ConnectionError), outcome
        assert staging(load_dir) == [folder]  # left behind by the killed worker
        assert display(lookup(live, CPT, "97116")) == DISPLAY_97116
    with server(load_dir) as restarted:
        assert staging(load_dir) == []
        assert lookup(restarted, f"{EX}/cs0", "A").status_code == 404  # nothing of the killed load is served
        listing = requests.get(f"{restarted.url}/admin/content", headers=AUTH, timeout=TIMEOUT).json()
        assert listing["files"] == []


# --- a file that only repeats another ----------------------------------------------------------


def test_a_file_whose_resources_all_repeat_another_files_is_listed_by_every_worker(shared):
    live, load_dir = shared
    if True:
        assert load(live, code_systems(3, prefix="rep"), "first.json").status_code == 201
        repeat = load(live, code_systems(2, prefix="rep"), "repeat.json")
        assert repeat.status_code == 201
        assert [issue["details"]["text"] for issue in repeat.json()["issue"]] == [
            "repeat.json: loaded 0 resource(s); every worker serves them from the next request",
            f"CodeSystem {EX}/rep0 version 1: also in first.json (served once)",
            f"CodeSystem {EX}/rep1 version 1: also in first.json (served once)"]
        assert {"first.json", "repeat.json"} <= {p.name for p in load_dir.iterdir()}
        listings = [requests.get(f"{live.url}/admin/content", headers=dict(AUTH, Connection="close"),
                                 timeout=TIMEOUT).json() for _ in range(8)]  # fresh connections reach both workers
        [(name, state, resources)] = {(f["name"], f["state"], json.dumps(f["resources"]))
                                      for listing in listings for f in listing["files"] if f["name"] == "repeat.json"}
        assert (name, state, json.loads(resources)) == ("repeat.json", "duplicate", [
            {"resourceType": "CodeSystem", "url": f"{EX}/rep{n}", "version": "1", "id": f"rep{n}",
             "alsoIn": ["first.json"]} for n in range(2)])


# --- too costly: refused before validation, never a 500 ------------------------------------------
# (Lookups is defined here and used by the tests below and above.)


class Lookups:
    """$lookup requests sent one after another from a thread while something else runs: each is
    (seconds taken, status, display)."""

    def __init__(self, live: LiveServer, system: str = CPT, code: str = "97116"):
        self.live, self.system, self.code = live, system, code
        self.done, self.results = False, []
        self.thread = Thread(target=self._run)

    def _run(self) -> None:
        while not self.done:
            started = time.monotonic()
            response = lookup(self.live, self.system, self.code)
            answer = display(response) if response.status_code == 200 else response.text
            self.results.append((time.monotonic() - started, response.status_code, answer))

    @property
    def slowest(self) -> float:
        return max(seconds for seconds, _, _ in self.results)

    def __enter__(self) -> Lookups:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done = True
        self.thread.join(TIMEOUT)


def test_a_million_concept_code_system_is_too_costly_before_validation_not_a_500(shared):
    import gzip

    live, load_dir = shared
    concepts = ",".join(['{"code":"a"}'] * 1_000_000)
    body = gzip.compress(f'{{"resourceType":"CodeSystem","id":"million","url":"{EX}/million","status":"active",'
                         f'"content":"complete","concept":[{concepts}]}}'.encode(), 1)
    with Lookups(live) as lookups:
        started = time.monotonic()
        response = load(live, body, "million.json.gz")
        took = time.monotonic() - started
    print(f"\n1,000,000 concepts refused in {took:.2f} s; {len(lookups.results)} $lookup meanwhile, slowest "
          f"{max(t for t, _, _ in lookups.results):.2f} s")
    assert response.status_code == 400
    [issue] = response.json()["issue"]
    assert (issue["code"], issue["details"]["text"]) == (
        "too-costly", "million.json.gz: refused before validation: it holds at least 1000000 concepts, and one load "
        "may hold at most 50000 (the limit set by FHIR_PLUGIN_MAX_LOAD_CONCEPTS)")
    assert took < 20  # nothing was validated: seconds, where validating would take minutes
    assert {(status, answer) for _, status, answer in lookups.results} == {(200, DISPLAY_97116)}
    assert "million.json.gz" not in os.listdir(load_dir)
    assert lookup(live, f"{EX}/million", "a").status_code == 404


@pytest.mark.parametrize("name, body, text", [
    ("bomb.json.gz", lambda: __import__("gzip").compress(b" " * (64 << 20), 9),
     "bomb.json.gz: refused before validation: it is, or expands to, more than 16777216 bytes, the most one load may "
     "hold (the limit set by FHIR_PLUGIN_MAX_LOAD_BYTES)"),
    ("many.json", lambda: code_systems(10_001, prefix="many"),
     "many.json: refused before validation: it holds at least 10001 resources, and one load may hold at most 10000 "
     "(the limit set by FHIR_PLUGIN_MAX_LOAD_RESOURCES)"),
])
def test_loads_beyond_the_default_bounds_are_too_costly(shared, name, body, text):
    live, load_dir = shared
    response = load(live, body(), name)
    assert response.status_code == 400
    [issue] = response.json()["issue"]
    assert (issue["code"], issue["details"]["text"]) == ("too-costly", text)
    assert name not in os.listdir(load_dir)


# --- a small load with many resources loaded, and other requests meanwhile -----------------------

BULK_FILES = 3
BULK_RESOURCES = 3000  # per file: 9,000 small CodeSystems in all


def test_a_small_load_costs_about_the_small_file_with_many_resources_loaded(shared):
    live, load_dir = shared
    bulk_times, during = [], []
    for number in range(BULK_FILES):
        data = code_systems(BULK_RESOURCES, start=number * BULK_RESOURCES, prefix="bulk")
        with Lookups(live) as lookups:  # served by the other worker while one validates
            started = time.monotonic()
            response = load(live, data, f"bulk{number}.json")
            bulk_times.append(time.monotonic() - started)
            time.sleep(0.5)  # and while the other worker takes the change in
        assert response.status_code == 201, response.text
        during.append(lookups)
    print(f"\nbulk loads of {BULK_RESOURCES} resources: " + ", ".join(f"{t:.2f} s" for t in bulk_times)
          + "; slowest $lookup meanwhile: " + ", ".join(f"{lookups.slowest:.2f} s" for lookups in during))
    for lookups, took in zip(during, bulk_times):
        assert {(status, answer) for _, status, answer in lookups.results} == {(200, DISPLAY_97116)}
        # served by the other worker meanwhile, which then takes the new file in from its compiled
        # form, without validating anything: no $lookup waits as long as the load took
        assert lookups.slowest < took, ([lookups.slowest for lookups in during], bulk_times)

    small, small_times, first_lookups = code_systems(1, prefix="small"), [], []
    for number in range(3):
        started = time.monotonic()
        response = load(live, small.replace(b'"small0"', f'"small{number}"'.encode()).replace(
            b"/small0", f"/small{number}".encode()), f"small{number}.json")
        small_times.append(time.monotonic() - started)
        assert response.status_code == 201, response.text
        for _ in range(4):  # fresh connections: both workers, each catching up with the change
            started = time.monotonic()
            assert display(lookup(live, f"{EX}/small{number}", "A")) == "Alpha 0"
            first_lookups.append(time.monotonic() - started)
    loaded = BULK_FILES * BULK_RESOURCES
    print(f"small loads with {loaded} resources loaded: " + ", ".join(f"{t:.3f} s" for t in small_times)
          + f"; slowest $lookup of it after: {max(first_lookups):.3f} s")
    assert max(small_times) < 10  # generous: a shared machine
    assert max(small_times) < min(bulk_times) / 2, (small_times, bulk_times)  # it costs about the small file
    assert max(first_lookups) < min(bulk_times) / 2, (first_lookups, bulk_times)
    assert display(lookup(live, f"{EX}/bulk{loaded - 1}", "A")) == f"Alpha {loaded - 1}"
