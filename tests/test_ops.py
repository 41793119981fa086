"""Running it in production (issue 14): what `fhir-plugin serve` says while it starts (the port
checked first, the banner), content added beside the bundled content, /healthz and /readyz, the
Prometheus metrics added up over two gunicorn workers, the request id and the JSON access log.
Over real HTTP: a server of two workers (behind nginx when installed) with content added through
FHIR_PLUGIN_EXTRA_CONTENT."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from fhir_plugin.version import __version__
from helpers import CPT, DISPLAY_97116
from live_server import LiveServer, clean_environ, free_port, running_server

MINE = "http://example.org/fhir/CodeSystem/my-codes"
MY_CODES = {"resourceType": "CodeSystem", "id": "my-codes", "url": MINE, "version": "3", "status": "active",
            "content": "complete", "concept": [{"code": "A", "display": "Alpha"}, {"code": "B", "display": "Beta"}]}
GENERATED_ID = re.compile(r"[0-9a-f]{16}-[0-9a-f]+")
LOG_KEYS = ["time", "requestId", "method", "path", "operation", "fhirVersion", "status", "ms", "bytes", "cache"]


@pytest.fixture(scope="module")
def extra(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("extra") / "my-codes.json"
    path.write_text(json.dumps(MY_CODES))
    return path


@pytest.fixture(scope="module")
def server(extra) -> Iterator[LiveServer]:
    with running_server(workers=2, settings={"FHIR_PLUGIN_EXTRA_CONTENT": str(extra)}) as live:
        yield live


def access_lines(server: LiveServer) -> list[dict]:
    return server.access_lines()


def logged(server: LiveServer, request_id: str) -> dict:
    found = [line for line in access_lines(server) if line["requestId"] == request_id]
    assert len(found) == 1, found
    return found[0]


def lookup(server: LiveServer, code: str, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.get(f"{server.r4}/CodeSystem/$lookup", params={"system": CPT if code == "97116" else MINE,
                                                                   "code": code}, headers=headers, timeout=30)


# --- start-up ------------------------------------------------------------------------------------


def test_a_taken_port_stops_the_start_at_once_with_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "fhir_plugin", "serve", "--port", str(port)],
                              capture_output=True, text=True, env=clean_environ(), timeout=60)
    # stderr holds this line only: no progress line, so nothing was loaded before the check
    assert (done.returncode, done.stdout, done.stderr) == (
        1, "", f"fhir-plugin: cannot listen on 127.0.0.1:{port}: the port is already in use\n")


def test_a_metrics_directory_that_cannot_be_written_stops_the_start(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")
    done = subprocess.run([sys.executable, "-m", "fhir_plugin", "serve", "--port", str(free_port())],
                          capture_output=True, text=True, timeout=60,
                          env={**clean_environ(), "PROMETHEUS_MULTIPROC_DIR": str(blocked / "metrics")})
    assert done.returncode == 1
    assert done.stderr.startswith("fhir-plugin: the metrics directory (PROMETHEUS_MULTIPROC_DIR) cannot be "
                                  "written: [Errno 20] Not a directory:"), done.stderr
    assert done.stderr.count("\n") == 1


def test_the_banner_lists_what_is_served(server, extra):
    lines = server.output().splitlines()
    base = server.url
    start = lines.index(f"fhir-plugin {__version__} serving on {base} with 2 worker(s)")
    banner = lines[start:start + 17]
    assert banner[1:4] == [f"  R4: {base}/r4", f"  R5: {base}/r5", f"  R4 (default): {base}/fhir"]
    assert banner[4] in ("  front: nginx in front (client timeout 10 s)", "  front: gunicorn alone")
    assert banner[5] == (f"  health: {base}/healthz (live), {base}/readyz (ready); metrics: {base}/metrics (open); "
                         "access log: on")
    resources = Path(__file__).resolve().parent.parent / "resources"
    assert banner[6:8] == [f"  content: {resources} (the bundled content)",
                           f"  extra content: {extra} (FHIR_PLUGIN_EXTRA_CONTENT)"]
    assert banner[8].startswith("  compiled-content cache: ")
    assert re.fullmatch(r"  loaded in \d+\.\d s: 4 code system\(s\), 2 value set\(s\), 1 concept map\(s\)", banner[9])
    assert banner[10:] == [
        "    CodeSystem http://example.org/fhir/CodeSystem/my-codes|3: 2 concepts",
        "    CodeSystem http://fhir-plugin.org/fhir/CodeSystem/designation-use|1.0.0: 6 concepts",
        "    CodeSystem http://hl7.org/fhir/sid/icd-10-cm|2026-04-01: 98,466 concepts",
        "    CodeSystem http://www.ama-assn.org/go/cpt|2026: 1 concepts",
        "    ValueSet http://fhir-plugin.org/fhir/ValueSet/cpt-gait-training|1.0.0: 1 includes",
        "    ValueSet http://fhir-plugin.org/fhir/ValueSet/icd-10-cm-gait-training-diagnoses|1.0.0: 1 includes",
        "    ConceptMap http://fhir-plugin.org/fhir/ConceptMap/cpt-97116-to-icd-10-cm|1.0.0: 1 mapped codes"]


def test_the_load_progress_came_before_the_banner(server, extra):
    lines = server.output().splitlines()
    resources = Path(__file__).resolve().parent.parent / "resources"
    assert lines[0] == f"fhir-plugin: loading {resources}, {extra}"


def test_extra_content_is_served_beside_the_bundled_content(server):
    with lookup(server, "A") as mine, lookup(server, "97116") as bundled:
        assert (mine.status_code, bundled.status_code) == (200, 200)
        assert [p["valueString"] for p in mine.json()["parameter"] if p["name"] == "display"] == ["Alpha"]
        assert [p["valueString"] for p in bundled.json()["parameter"] if p["name"] == "display"] == [DISPLAY_97116]


# --- health --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "body"), [("/healthz", {"status": "alive"}), ("/readyz", {"status": "ready"})])
def test_health(server, path, body):
    with requests.get(f"{server.url}{path}", timeout=10) as response:
        assert (response.status_code, response.headers["Content-Type"], response.headers["Cache-Control"],
                response.json()) == (200, "application/json", "no-store", body)


# --- request ids and the access log --------------------------------------------------------------


def test_a_request_id_is_echoed_and_logged_without_the_query(server):
    with lookup(server, "97116", {"X-Request-ID": "trace-1.a:b"}) as response:
        assert (response.status_code, response.headers["X-Request-ID"]) == (200, "trace-1.a:b")
    line = logged(server, "trace-1.a:b")
    assert list(line) == LOG_KEYS
    assert {k: v for k, v in line.items() if k not in ("time", "ms", "cache")} == {
        "requestId": "trace-1.a:b", "method": "GET", "path": "/r4/CodeSystem/$lookup", "operation": "$lookup",
        "fhirVersion": "R4", "status": 200, "bytes": int(response.headers["Content-Length"])}  # as sent (gzip)
    assert line["cache"] in ("hit", "miss") and line["ms"] >= 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    assert "97116" not in json.dumps(line)  # no query value


def test_without_a_request_id_one_is_made_and_echoed(server):
    with requests.get(f"{server.r5}/CodeSystem/nothing-here", timeout=10) as response:
        made = response.headers["X-Request-ID"]
    assert GENERATED_ID.fullmatch(made), made
    line = logged(server, made)
    assert (line["status"], line["operation"], line["fhirVersion"], line["cache"]) == (404, "read", "R5", "miss")  # reads join the answer cache


# --- metrics over two workers --------------------------------------------------------------------


def scrape(server: LiveServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    time.sleep(1.1)  # a worker answers scrapes within a second of each other with the same text
    with requests.get(f"{server.url}/metrics", timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = response.text
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def count(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_every_request_of_both_workers(server):
    before = scrape(server)
    workers: set[str] = set()

    def one(code: str) -> tuple[int, str]:
        with lookup(server, code) as response:
            return response.status_code, response.headers["X-Request-ID"].split("-")[0]

    # Concurrent requests, so that both workers answer; a generated id's first part names its worker.
    sent = {"B": 0, "nope": 0}
    with ThreadPoolExecutor(8) as pool:
        for _ in range(10):
            for code, (status, worker) in zip(["B"] * 6 + ["nope"] * 2, pool.map(one, ["B"] * 6 + ["nope"] * 2)):
                assert status == (200 if code == "B" else 404)
                sent[code] += 1
                workers.add(worker)
            if len(workers) == 2:
                break
    assert len(workers) == 2, "both workers answered"
    after = scrape(server)

    def delta(name: str, **labels: str) -> float:
        return count(after, name, **labels) - count(before, name, **labels)

    ok = {"operation": "$lookup", "fhir_version": "R4", "status": "200"}
    # each worker computed the answer once (its own answer cache), then answered from it
    assert delta("fhir_plugin_requests_total", **ok, cache="miss") == 2
    assert delta("fhir_plugin_requests_total", **ok, cache="hit") == sent["B"] - 2
    not_found = {"operation": "$lookup", "fhir_version": "R4", "status": "404"}
    assert (delta("fhir_plugin_requests_total", **not_found, cache="miss")
            + delta("fhir_plugin_requests_total", **not_found, cache="hit")) == sent["nope"]
    assert delta("fhir_plugin_request_duration_seconds_count", operation="$lookup") == sent["B"] + sent["nope"]
    assert delta("fhir_plugin_request_duration_seconds_bucket", operation="$lookup", le="+Inf") == (
        sent["B"] + sent["nope"])
    # the scrape before this one is counted (after its text was made)
    assert delta("fhir_plugin_requests_total", operation="metrics", fhir_version="", status="200",
                 cache="none") == 1
    assert count(after, "fhir_plugin_content_loads_total", kind="startup", result="ok") == 1
    assert count(after, "fhir_plugin_content", type="CodeSystem", url=MINE, version="3") == 2
    assert count(after, "fhir_plugin_content", type="CodeSystem", url="http://hl7.org/fhir/sid/icd-10-cm",
                 version="2026-04-01") == 98466
    assert count(after, "fhir_plugin_cache_maxsize", cache="evaluations") == 2 * 300_000  # summed over 2 workers


def test_a_worker_that_exits_keeps_its_counts_and_the_others_keep_counting(server):
    """gunicorn replaces a worker that exits (here SIGTERM); its counters stay in the totals (they
    only go up), its cache gauges leave the sums (child_exit marks it dead), and the directory the
    other workers write to stays (a worker leaves through the frames that made it)."""
    import os
    import signal

    before = scrape(server)
    children = [int(p) for p in Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()]
    workers = [pid for pid in children if b"nginx" not in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGTERM)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{workers[0]}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    def one(_: int) -> str:
        with lookup(server, "A") as response:
            assert response.status_code == 200
            return response.headers["X-Request-ID"].split("-")[0]

    seen: set[str] = set()
    sent = 0
    with ThreadPoolExecutor(8) as pool:
        while len(seen) < 2 and sent < 800:  # until both live workers (the new one too) have answered
            seen.update(pool.map(one, range(8)))
            sent += 8
    assert len(seen) == 2
    after = scrape(server)
    total = sum(v for (name, labels), v in after.items() if name == "fhir_plugin_requests_total")
    total_before = sum(v for (name, labels), v in before.items() if name == "fhir_plugin_requests_total")
    assert total - total_before == sent + 1  # the lookups and the scrape before
    # the two live workers' figures; the dead one's left the sum (else 3 x 300,000)
    assert count(after, "fhir_plugin_cache_maxsize", cache="evaluations") == 2 * 300_000
