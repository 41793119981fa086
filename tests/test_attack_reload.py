"""Attacks on reloading (issue 14): no HTTP request can start a reload (only a signal from the
server's own user can); a flood of SIGHUPs makes at most two reloads, not one per signal, and a
bounded log; `fhir-plugin reload` never signals a process that is not the server (a stale or
planted pid file); a SIGHUP during the start-up load does not end the server."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from live_server import LiveServer, clean_environ, free_port, running_server

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
TOKEN = "reload-attack-token"
WAIT = 60.0


@pytest.fixture(scope="module")
def content(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("content")
    for name in ("CodeSystem-cpt-97116-fragment.json", "ValueSet-cpt-gait-training.json"):
        shutil.copy(RESOURCES / name, directory / name)
    return directory


@pytest.fixture(scope="module")
def pid_file(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pid") / "server.pid"


@pytest.fixture(scope="module")
def server(content, pid_file, tmp_path_factory) -> Iterator[LiveServer]:
    with running_server(workers=2, settings={
            "FHIR_PLUGIN_CONTENT": str(content), "FHIR_PLUGIN_PID_FILE": str(pid_file),
            "FHIR_PLUGIN_ADMIN_TOKEN": TOKEN,
            "FHIR_PLUGIN_LOAD_DIR": str(tmp_path_factory.mktemp("loaded"))}) as live:
        yield live


def status(pid_file: Path) -> dict:
    return json.loads(pid_file.with_name(pid_file.name + ".reload.json").read_text())


def reload_command(pid_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fhir_plugin", "reload", "--pid-file", str(pid_file)],
                          capture_output=True, text=True, env=clean_environ(), timeout=WAIT)


@pytest.mark.parametrize("method, path, status_code", [
    ("POST", "/reload", 404), ("GET", "/reload", 404), ("POST", "/admin/reload", 404),
    ("POST", "/r4/$reload", 404), ("POST", "/-/reload", 404),
])
def test_no_http_request_starts_a_reload(server, pid_file, method, path, status_code):
    for headers in ({}, {"Authorization": f"Bearer {TOKEN}"}):
        answer = requests.request(method, f"{server.url}{path}", headers=headers, timeout=10)
        assert answer.status_code == status_code
        assert answer.json()["resourceType"] == "OperationOutcome"
    assert status(pid_file)["started"] == 0
    assert "loading the content again" not in server.output()


def test_a_flood_of_sighups_makes_at_most_two_reloads(server, pid_file):
    deadline = time.monotonic() + WAIT
    while server.output().count("Booting worker with pid") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)  # the server answered once one worker was up; the other one boots just after
    booted = server.output().count("Booting worker with pid")
    assert booted == 2
    for _ in range(200):
        os.kill(server.pid, signal.SIGHUP)
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        now = status(pid_file)
        if now["started"] and now["finished"] == now["started"]:
            time.sleep(2)  # time for a last queued reload to start
            if status(pid_file)["finished"] == now["finished"]:
                break
        time.sleep(0.05)
    reloads = status(pid_file)["finished"]
    # the signals taken from the queue in one turn are one reload: the first turn, and at most one
    # more for those that came during it
    assert reloads in (1, 2)
    log = server.output()
    assert log.count("loading the content again") == reloads
    deadline = time.monotonic() + 5
    while log.count("Booting worker with pid") < booted + 2 * reloads and time.monotonic() < deadline:
        time.sleep(0.05)  # a new worker writes its line itself, just after the fork
        log = server.output()
    assert log.count("Booting worker with pid") == booted + 2 * reloads
    assert log.count("reload signals at once") <= reloads
    assert requests.get(f"{server.url}/readyz", timeout=10).json() == {"status": "ready"}


def test_fhir_plugin_reload_never_signals_another_process(tmp_path):
    bystander = subprocess.Popen(["sleep", "60"])  # SIGHUP would end it
    try:
        planted = tmp_path / "planted.pid"
        planted.write_text(f"{bystander.pid}\n")
        done = reload_command(planted)
        assert (done.returncode, done.stdout, done.stderr) == (
            2, "", f"fhir-plugin: no server to reload: the process {bystander.pid} named in {planted} is not "
                   f"fhir-plugin serve\n")
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
    stale = tmp_path / "stale.pid"
    stale.write_text(f"{bystander.pid}\n")  # the process is gone now
    done = reload_command(stale)
    assert (done.returncode, done.stderr) == (
        2, f"fhir-plugin: no server to reload: the process {bystander.pid} named in {stale} is not running (the "
           f"server was killed?)\n")
    for text in ("", "1\n", "not a number\n", "-5\n"):
        stale.write_text(text)
        done = reload_command(stale)
        assert done.returncode == 2
        assert done.stderr.startswith(f"fhir-plugin: no server to reload: ")
    missing = tmp_path / "missing.pid"
    done = reload_command(missing)
    assert (done.returncode, done.stderr) == (
        2, f"fhir-plugin: no server to reload: {missing} does not exist: no `fhir-plugin serve` is running with this "
           f"port (give its --port, or the FHIR_PLUGIN_PID_FILE it was started with)\n")


def test_a_sighup_during_the_start_up_load_is_ignored(tmp_path):
    # A code system large enough to take a few seconds to validate and compile, with no compiled
    # cache to read it from: the signal surely comes during the load.
    concepts = [{"code": f"C{n}", "display": f"Concept {n}"} for n in range(30_000)]
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"resourceType": "CodeSystem", "url": "http://example.org/big", "status": "active",
                               "content": "complete", "concept": concepts}))
    port = free_port()
    environ = {**clean_environ(), "FHIR_PLUGIN_CONTENT": str(big), "FHIR_PLUGIN_CACHE_DIR": str(tmp_path / "cache"),
               "FHIR_PLUGIN_PID_FILE": str(tmp_path / "server.pid")}
    log = tmp_path / "log"
    with open(log, "wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "fhir_plugin", "serve", "--port", str(port), "--workers",
                                    "1"], stdout=output, stderr=subprocess.STDOUT, env=environ)
    try:
        deadline = time.monotonic() + WAIT
        while "fhir-plugin: loading" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGHUP)
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            try:
                if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        text = log.read_text()
        assert "fhir-plugin: a reload signal during the start is ignored: the content is being loaded\n" in text
        assert text.index("a reload signal during the start is ignored") < text.index("serving on")
        assert "loading the content again" not in text
    finally:
        process.terminate()
        process.wait(timeout=30)
