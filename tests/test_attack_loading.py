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

import requests
from helpers import CPT, DISPLAY_97116
from live_server import LiveServer, _wait_until_ready, clean_environ, free_port

from test_load_faults import children

TOKEN = "attack-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EX = "http://example.org/fhir/CodeSystem"
WORKERS = 2
TIMEOUT = 60.0


@contextmanager
def server(load_dir: Path, **settings: str) -> Iterator[LiveServer]:
    """The bundled content with `load_dir` for run-time loads, 2 workers, the admin token set."""
    port = free_port()
    environ = dict(clean_environ(), FHIR_PLUGIN_ADMIN_TOKEN=TOKEN, FHIR_PLUGIN_LOAD_DIR=str(load_dir),
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
    with server(load_dir) as live:
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


def test_a_file_whose_resources_all_repeat_another_files_is_listed_by_every_worker(tmp_path):
    load_dir = tmp_path / "loaded"
    load_dir.mkdir()
    with server(load_dir) as live:
        assert load(live, code_systems(3), "first.json").status_code == 201
        repeat = load(live, code_systems(2), "repeat.json")
        assert repeat.status_code == 201
        assert [issue["details"]["text"] for issue in repeat.json()["issue"]] == [
            "repeat.json: loaded 0 resource(s); every worker serves them from the next request",
            f"CodeSystem {EX}/cs0 version 1: also in first.json (served once)",
            f"CodeSystem {EX}/cs1 version 1: also in first.json (served once)"]
        assert sorted(p.name for p in load_dir.iterdir() if not p.name.startswith(".")) == ["first.json", "repeat.json"]
        listings = [requests.get(f"{live.url}/admin/content", headers=dict(AUTH, Connection="close"),
                                 timeout=TIMEOUT).json() for _ in range(8)]  # fresh connections reach both workers
        [(name, state, resources)] = {(f["name"], f["state"], json.dumps(f["resources"]))
                                      for listing in listings for f in listing["files"] if f["name"] == "repeat.json"}
        assert (name, state, json.loads(resources)) == ("repeat.json", "duplicate", [
            {"resourceType": "CodeSystem", "url": f"{EX}/cs{n}", "version": "1", "id": f"cs{n}",
             "alsoIn": ["first.json"]} for n in range(2)])
