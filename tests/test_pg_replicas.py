"""Replicas on several machines (issue 14, point 7), over real HTTP: `fhir-plugin serve` replicas of
two workers each, sharing run-time loads through one PostgreSQL database (a throwaway cluster,
tests/postgres.py), behind a real nginx load balancer this module starts. A load through one replica
is answered by the other; killing a replica under load loses no idempotent request; the database
going away during a load loses nothing committed and is told; a replica started later serves what
was loaded. Skipped without PostgreSQL (apt-get install postgresql) or nginx (apt-get install nginx).

The times printed (pytest -s) are the README's figures ("Replicas on several machines")."""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from fhir_plugin.nginx_front import find_nginx
from helpers import CPT, DISPLAY_97116
from live_server import LiveServer, free_port, running_server
from postgres import Cluster, throwaway_cluster

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed: pip install fhir-plugin[postgres]")

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MINE = "http://example.org/fhir/CodeSystem/replicated"
from fhir_plugin.runtime.pgschema import LOCK  # noqa: E402 - the advisory lock of changes


def codes(version: str, display: str) -> bytes:
    return json.dumps({"resourceType": "CodeSystem", "id": f"replicated-{version}", "url": MINE,
                       "version": version, "status": "active", "content": "complete",
                       "concept": [{"code": "R", "display": display}]}).encode()


def display(base: str, version: str | None = None, system: str = MINE, code: str = "R") -> str | int:
    """The display $lookup answers at `base` (a server's URL), or the status when it is not 200."""
    query = {"system": system, "code": code, **({"version": version} if version else {})}
    response = requests.get(f"{base}/r4/CodeSystem/$lookup", params=query, timeout=30)
    if response.status_code != 200:
        return response.status_code
    return next(p["valueString"] for p in response.json()["parameter"] if p["name"] == "display")


def load(base: str, name: str, data: bytes) -> requests.Response:
    return requests.post(f"{base}/admin/content", params={"name": name}, data=data, headers=AUTH, timeout=60)


def served_after(base: str, version: str, expected: str, seconds: float = 20.0) -> float:
    """Seconds until `base` answers `expected` for `version` (polled every 5 ms)."""
    started = time.monotonic()
    while display(base, version) != expected:
        assert time.monotonic() - started < seconds, f"{base} did not serve version {version} in {seconds} s"
        time.sleep(0.005)
    return time.monotonic() - started


def settings(conninfo: str) -> dict[str, str]:
    return {"FHIR_PLUGIN_LOAD_DATABASE": conninfo, "FHIR_PLUGIN_ADMIN_TOKEN": TOKEN, "FHIR_PLUGIN_LOAD_POLL": "1"}


@contextmanager
def balancer(*replicas: LiveServer) -> Iterator[str]:
    """A real nginx in front of `replicas` (round robin); an idempotent request that meets a
    replica that is gone (refused, reset, or its front's 502) is passed to the next one."""
    nginx = find_nginx()
    if nginx is None:
        pytest.skip("nginx is not installed: apt-get install nginx")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="fhir-plugin-lb-") as folder:
        user = "user root root;\n" if os.geteuid() == 0 else ""  # master_process off: no workers to drop to
        servers = "\n".join(f"        server 127.0.0.1:{replica.port} max_fails=1 fail_timeout=10s;"
                            for replica in replicas)
        temp = " ".join(f"{kind}_temp_path {folder}/{kind};" for kind in ("client_body", "proxy", "fastcgi",
                                                                          "uwsgi", "scgi"))
        Path(folder, "nginx.conf").write_text(f"""{user}master_process off;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log error;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    {temp}
    upstream replicas {{
{servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 20m;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_connect_timeout 2s;
        proxy_next_upstream error timeout http_502 http_504;
        proxy_next_upstream_tries 2;
        location / {{ proxy_pass http://replicas; }}
    }}
}}
""")
        process = subprocess.Popen([nginx, "-p", folder, "-c", f"{folder}/nginx.conf"], stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                    break
                except requests.ConnectionError:
                    assert process.poll() is None, Path(folder, "error.log").read_text()
                    assert time.monotonic() < deadline, "nginx did not listen"
                    time.sleep(0.05)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(10)


def kill_replica(replica: LiveServer) -> None:
    """SIGKILL a replica's whole process tree (gunicorn's master, its workers, its nginx front), as
    when its machine goes away: nothing of it finishes a request."""
    tree = [replica.pid]
    for pid in tree:
        try:
            tree += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            pass
    for pid in tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with throwaway_cluster() as running:
        yield running


@pytest.fixture(scope="module")
def database(cluster) -> str:
    return cluster.create_database("replicas")


@pytest.fixture(scope="module")
def replicas(database) -> Iterator[tuple[LiveServer, LiveServer]]:
    with running_server(workers=2, settings=settings(database)) as one, \
            running_server(workers=2, settings=settings(database)) as other:
        yield one, other


def test_a_load_through_one_replica_is_answered_by_the_other(replicas):
    one, other = replicas
    assert (display(one.url, "1"), display(other.url, "1")) == (404, 404)
    response = load(one.url, "replicated.json", codes("1", "Replicated one"))
    assert response.status_code == 201, response.text
    # both workers of the replica that took it serve it from the next request (they share a marker file)
    assert {display(one.url, "1") for _ in range(10)} == {"Replicated one"}
    seen = served_after(other.url, "1", "Replicated one")
    # each worker of the other replica (2) answers it: every answer of 20 is exact
    assert {display(other.url, "1") for _ in range(20)} == {"Replicated one"}
    # and so on: five more loads, each timed from its 201 to its first answer at the other replica
    delays = [seen]
    for version in "23456":
        assert load(one.url, f"replicated-{version}.json", codes(version, f"Version {version}")).status_code == 201
        delays.append(served_after(other.url, version, f"Version {version}"))
    print(f"\nload on one replica -> served by the other: median {statistics.median(delays) * 1000:.0f} ms, "
          f"max {max(delays) * 1000:.0f} ms over {len(delays)} loads")


def test_a_replica_started_after_a_load_serves_it(replicas, database):
    one, _ = replicas
    assert load(one.url, "before-start.json", codes("7", "Before the start")).status_code == 201
    started = time.monotonic()
    with running_server(workers=1, settings=settings(database)) as late:
        print(f"\na replica's start with the loads in the database: {time.monotonic() - started:.1f} s")
        assert display(late.url, "7") == "Before the start"  # its very first request


def test_killing_a_replica_under_load_loses_no_idempotent_request(replicas, database):
    one, _ = replicas
    assert load(one.url, "under-load.json", codes("20", "Under load")).status_code in (200, 201)
    # its temporary files (the compiled forms of loads, gunicorn's and nginx's folders) in a folder
    # removed here: a process killed with SIGKILL removes nothing
    temporary = tempfile.mkdtemp(prefix="fhir-doomed-")
    try:
        with running_server(workers=2, settings={**settings(database), "TMPDIR": temporary}) as doomed, \
                balancer(one, doomed) as front:
            assert display(doomed.url, "20") == "Under load"  # read from the table at its start
            stop = threading.Event()
            answers: list[str | int] = []

            def client() -> None:
                while not stop.is_set():
                    answers.append(display(front, "20"))
                    answers.append(display(front, system=CPT, code="97116"))

            with ThreadPoolExecutor(4) as pool:
                running = [pool.submit(client) for _ in range(4)]
                time.sleep(1.5)
                before = len(answers)
                kill_replica(doomed)
                time.sleep(3)
                stop.set()
                for future in running:
                    future.result()
            assert before > 0 and len(answers) > before
            failures = [answer for answer in answers if answer not in ("Under load", DISPLAY_97116)]
            print(f"\nkilling a replica under load: {len(answers)} requests, {len(answers) - before} after the kill, "
                  f"{len(failures)} failed")
            assert failures == []
            assert answers.count("Under load") == answers.count(DISPLAY_97116) == len(answers) // 2
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def test_the_database_going_away_during_a_load_loses_nothing_and_is_told(replicas, cluster, database):
    one, other = replicas
    with balancer(one, other) as front:
        assert load(front, "committed.json", codes("8", "Committed")).status_code == 201
        served_after(other.url, "8", "Committed")
        # a load waiting for the lock of changes (held here) when the database goes away
        blocker = psycopg.connect(database)
        blocker.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK,))
        answer: list[requests.Response] = []
        waiting = threading.Thread(target=lambda: answer.append(load(front, "lost.json", codes("9", "Lost"))))
        waiting.start()
        time.sleep(1)
        cluster.stop()
        try:
            waiting.join(60)
            where = f"host=127.0.0.1 port={cluster.port} dbname=replicas user=fhir_plugin"
            assert (answer[0].status_code, answer[0].headers["Content-Type"]) == (503, "application/fhir+json")
            [issue] = answer[0].json()["issue"]
            assert (issue["severity"], issue["code"], issue["details"]["text"]) == ("error", "transient", (
                f"The database of content loaded at run time ({where}) cannot be reached: nothing was loaded or "
                "unloaded, and this server keeps serving what it has; try again once the database is back (the "
                "server log says why it cannot be reached)"))
            # serving goes on, both replicas, what was committed included
            for base in (one.url, other.url, front):
                assert (display(base, "8"), display(base, "9"), display(base, system=CPT, code="97116")) == (
                    "Committed", 404, DISPLAY_97116)
                assert requests.get(f"{base}/readyz", timeout=10).status_code == 200
            assert load(front, "while-down.json", codes("10", "Down")).status_code == 503
        finally:
            cluster.start()
            blocker.close()
        # back: a load through one is served by the other again, and nothing refused was kept
        started = time.monotonic()
        while load(other.url, "after.json", codes("11", "After")).status_code == 503:
            assert time.monotonic() - started < 30
            time.sleep(0.2)
        accepted = time.monotonic() - started
        for base in (one.url, other.url, front):
            assert served_after(base, "11", "After") >= 0
            assert (display(base, "8"), display(base, "9"), display(base, "10")) == ("Committed", 404, 404)
        print(f"\nthe database back: a load accepted after {accepted:.1f} s, served by both replicas after "
              f"{time.monotonic() - started:.1f} s")
        with psycopg.connect(database) as connection:
            names = [row[0] for row in connection.execute("SELECT name FROM fhir_plugin_loads ORDER BY name")]
        assert "lost.json" not in names and "while-down.json" not in names
        assert {"committed.json", "after.json"} <= set(names)
    # the replicas said so in their logs, once a process for each reason, not on every request
    for replica in (one, other):
        lines = [line for line in replica.output().splitlines() if "cannot be used" in line]
        assert lines and len(lines) <= 12, lines


def test_a_replica_whose_database_cannot_be_reached_starts_and_serves(tmp_path):
    nowhere = f"host=127.0.0.1 port={free_port()} dbname=nowhere user=fhir_plugin connect_timeout=2"
    with running_server(workers=2, settings=settings(nowhere)) as lonely:
        assert requests.get(f"{lonely.url}/readyz", timeout=10).status_code == 200
        assert display(lonely.url, system=CPT, code="97116") == DISPLAY_97116
        response = load(lonely.url, "x.json", codes("1", "X"))
        assert (response.status_code, response.json()["issue"][0]["code"]) == (503, "transient")
        for _ in range(50):
            display(lonely.url, system=CPT, code="97116")
        time.sleep(2.5)  # two more tries of each listener
        lines = [line for line in lonely.output().splitlines() if "cannot be used" in line]
        # one line per process (the master and two workers) and reason: the log is not flooded
        assert 1 <= len(lines) <= 3, lines
        assert all("Connection refused" in line for line in lines)
