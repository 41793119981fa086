"""Attacks on the operator's side (issue 14), over HTTP against a server of two workers: hostile
X-Request-IDs are replaced, never echoed or logged; a huge path writes one bounded log line; a
flood of /metrics is answered in bounded time with one log line per scrape; unknown paths make no
new metric series."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from live_server import LiveServer, running_server

GENERATED = r"[0-9a-f]{16}-[0-9a-f]+"
BOUND = 60.0  # seconds for a whole flood: generous, on a shared machine
MAX_LINE = 1600  # bytes: the longest access line (observe.py's bounds)


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with running_server(workers=2) as live:
        yield live


def access_lines(server: LiveServer) -> list[str]:
    return [line for line in server.output(access=True).splitlines() if line.startswith('{"time":')]


def raw_request(server: LiveServer, head: bytes) -> bytes:
    """`head` as sent, byte for byte (requests would refuse some of these headers itself)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(head)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("hostile", [
    b"x" * 129, b"x" * 8000, b"a b c", b"\xc3\xa9t\xc3\xa9", b'{"requestId":"forged"}', b"id\tid", b"<script>",
])
def test_a_hostile_request_id_is_replaced(server, hostile):
    answer = raw_request(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Request-ID: "
                         + hostile + b"\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and body == b'{"status":"alive"}'
    echoed = [line.split(b": ", 1)[1].decode() for line in head.split(b"\r\n") if line.lower().startswith(b"x-request-id:")]
    assert len(echoed) == 1
    import re

    assert re.fullmatch(GENERATED, echoed[0]), echoed
    lines = [json.loads(line) for line in access_lines(server)]
    assert [line["path"] for line in lines if line["requestId"] == echoed[0]] == ["/healthz"]
    assert hostile.decode("latin-1") not in server.output(access=True)


def test_a_huge_path_writes_one_bounded_line(server):
    path = "/r4/" + "a" * 4000  # within gunicorn's 4094-byte request line
    with requests.get(f"{server.url}{path}", headers={"X-Request-ID": "huge-path"}, timeout=10) as response:
        assert (response.status_code, response.json()["resourceType"]) == (404, "OperationOutcome")
    mine = [line for line in access_lines(server) if '"huge-path"' in line]
    assert len(mine) == 1
    assert len(mine[0].encode()) <= MAX_LINE
    assert json.loads(mine[0])["path"] == path[:256] + f"...({len(path) - 256} more)"


def test_a_line_break_in_the_path_cannot_forge_a_line(server):
    answer = raw_request(server, b"GET /r4/a%0A%7B%22forged%22:1%7D HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                         b"X-Request-ID: crlf-1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 404 ")
    mine = [line for line in access_lines(server) if '"crlf-1"' in line]
    assert len(mine) == 1 and json.loads(mine[0])["path"] == '/r4/a\n{"forged":1}'
    assert not any(line.startswith('{"forged"') for line in server.output(access=True).splitlines())


def test_a_metrics_flood_is_bounded_and_logs_one_line_each(server):
    before = len([line for line in access_lines(server) if '"operation":"metrics"' in line])
    began = time.monotonic()

    def scrape(_: int) -> int:
        with requests.get(f"{server.url}/metrics", timeout=BOUND) as response:
            return response.status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(scrape, range(400)))
    assert statuses == [200] * 400
    assert time.monotonic() - began < BOUND
    after = len([line for line in access_lines(server) if '"operation":"metrics"' in line])
    assert after - before == 400


def test_unknown_paths_make_no_new_series(server):
    def series() -> set[str]:
        time.sleep(1.1)  # past the scrape memo
        with requests.get(f"{server.url}/metrics", timeout=10) as response:
            return {line.rsplit(" ", 1)[0] for line in response.text.splitlines()
                    if line.startswith("fhir_plugin_requests_total{")}

    for n in range(3):  # one series of unknown paths, whatever they are
        requests.get(f"{server.r4}/first-{n}", timeout=10).close()
    known = series()
    for n in range(200):
        requests.get(f"{server.r4}/x{n}/y", timeout=10).close()
    assert series() - known <= {'fhir_plugin_requests_total{cache="none",fhir_version="",operation="metrics",'
                                'status="200"}'}
