"""The real server under load, on loopback: started as `make serve` starts it (`.venv/bin/fhir-plugin
serve`, FHIR_PLUGIN_PORT, FHIR_PLUGIN_WORKERS=2), driven by concurrent clients over a mix of
$lookup, $translate, $validate-code and paged $expand, every answer checked for its exact status and
a key value; then one worker is killed mid-run.

Bounded in time (a few seconds of load each) and free of speed assertions: the machine is shared, so
only correctness is asserted, with generous timeouts. The numbers are printed (pytest -s).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import requests

from helpers import CPT, CPT_VS, DISPLAY_97116, ICD, ICD_TITLES, ICD_VS, MAPPED_CODES
from live_server import LiveServer, running_server

CLIENTS = 6
LOAD_SECONDS = 4.0
KILL_RUN_SECONDS = 6.0
REQUEST_TIMEOUT = 60.0  # generous: a slow, shared machine must not turn into failures
REPLACE_TIMEOUT = 60.0
WORKERS = 2


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with running_server(workers=WORKERS, make_serve=True) as live:
        yield live


# --- the request mix: (name, method, path, query or body, check) ---------------------------------

def value(parameters: list[dict], name: str):
    found = [p for p in parameters if p["name"] == name]
    assert len(found) == 1, (name, parameters)
    return next(v for k, v in found[0].items() if k.startswith("value"))


def lookup_check(display: str) -> Callable[[int, dict], None]:
    def check(status: int, body: dict) -> None:
        assert status == 200, body
        assert value(body["parameter"], "display") == display
    return check


def translate_check(status: int, body: dict) -> None:
    assert status == 200, body
    assert value(body["parameter"], "result") is True
    codes = [part["valueCoding"]["code"] for match in body["parameter"] if match["name"] == "match"
             for part in match["part"] if part["name"] == "concept"]
    assert codes == list(MAPPED_CODES)


def validate_check(result: bool, display: str) -> Callable[[int, dict], None]:
    def check(status: int, body: dict) -> None:
        assert status == 200, body
        assert value(body["parameter"], "result") is result
        assert value(body["parameter"], "display") == display
    return check


def page_check(offset: int) -> Callable[[int, dict], None]:
    def check(status: int, body: dict) -> None:
        assert status == 200, body
        expansion = body["expansion"]
        assert (expansion["total"], expansion["offset"]) == (3, offset)
        assert [c["code"] for c in expansion["contains"]] == [MAPPED_CODES[offset]]
        assert expansion["contains"][0]["display"] == ICD_TITLES[MAPPED_CODES[offset]]
    return check


def not_found_check(status: int, body: dict) -> None:
    assert status == 404, body
    assert (body["resourceType"], body["issue"][0]["code"]) == ("OperationOutcome", "not-found")


def coding(system: str, code: str) -> dict:
    return {"system": system, "code": code}


MIX = [
    ("lookup CPT", "GET", "/r4/CodeSystem/$lookup", {"system": CPT, "code": "97116"}, lookup_check(DISPLAY_97116)),
    *(("lookup ICD", "GET", "/r5/CodeSystem/$lookup", {"system": ICD, "code": code}, lookup_check(title))
      for code, title in ICD_TITLES.items()),
    ("lookup POST", "POST", "/r4/CodeSystem/$lookup",
     {"resourceType": "Parameters", "parameter": [{"name": "coding", "valueCoding": coding(ICD, "M62.81")}]},
     lookup_check(ICD_TITLES["M62.81"])),
    ("translate", "GET", "/r4/ConceptMap/$translate", {"system": CPT, "code": "97116"}, translate_check),
    ("translate POST", "POST", "/r5/ConceptMap/$translate",
     {"resourceType": "Parameters", "parameter": [{"name": "sourceCoding", "valueCoding": coding(CPT, "97116")}]},
     translate_check),
    ("validate VS", "GET", "/r4/ValueSet/$validate-code", {"url": CPT_VS, "system": CPT, "code": "97116"},
     validate_check(True, DISPLAY_97116)),
    ("validate VS false", "GET", "/r4/ValueSet/$validate-code", {"url": ICD_VS, "system": ICD, "code": "M62.82"},
     validate_check(False, "Rhabdomyolysis")),
    ("validate CS", "GET", "/r5/CodeSystem/$validate-code", {"url": ICD, "code": "R26.2"},
     validate_check(True, ICD_TITLES["R26.2"])),
    *((f"expand page {offset}", "GET", "/r4/ValueSet/$expand", {"url": ICD_VS, "count": "1", "offset": str(offset)},
       page_check(offset)) for offset in range(3)),
    ("lookup unknown", "GET", "/r4/CodeSystem/$lookup", {"system": ICD, "code": "M62.99"}, not_found_check),
]


@dataclass
class Outcome:
    name: str
    started: float
    ended: float
    status: int | None = None  # None: no HTTP answer
    error: str = ""  # the exception, when there was no answer or the check failed
    connection_error: bool = False


@dataclass
class Run:
    outcomes: list[Outcome] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.error]


def one_request(session: requests.Session, base: str, item) -> Outcome:
    name, method, path, data, check = item
    started = time.monotonic()
    try:
        if method == "GET":
            response = session.get(base + path, params=data, timeout=REQUEST_TIMEOUT)
        else:
            response = session.post(base + path, json=data, timeout=REQUEST_TIMEOUT,
                                    headers={"Content-Type": "application/fhir+json"})
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as error:
        # the connection broke: refused, reset, or closed before the whole answer was read
        return Outcome(name, started, time.monotonic(), error=repr(error), connection_error=True)
    except requests.RequestException as error:
        return Outcome(name, started, time.monotonic(), error=repr(error))
    outcome = Outcome(name, started, time.monotonic(), status=response.status_code)
    try:
        check(response.status_code, response.json())
    except Exception as error:  # noqa: BLE001 - every wrong answer is recorded, not just the first
        outcome.error = f"{response.status_code}: {error!r} {response.text[:300]}"
    return outcome


def drive(base: str, seconds: float, clients: int = CLIENTS, during: Callable[[], None] | None = None) -> Run:
    """`clients` threads, each sending the mix round-robin (from its own starting point) until
    `seconds` have passed; `during` runs on this thread meanwhile."""
    run = Run()
    stop = threading.Event()

    def client(index: int) -> None:
        with requests.Session() as session:
            i = index
            while not stop.is_set():
                outcome = one_request(session, base, MIX[i % len(MIX)])
                with run.lock:
                    run.outcomes.append(outcome)
                i += 1

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + seconds
    if during is not None:
        during()
    time.sleep(max(0.0, deadline - time.monotonic()))
    stop.set()
    for thread in threads:
        thread.join(REQUEST_TIMEOUT + 10)
    assert not any(thread.is_alive() for thread in threads), "a client hung"
    return run


def children(pid: int) -> set[int]:
    """The live worker processes of gunicorn's master `pid`, from /proc (no psutil): its children
    but the nginx it starts in front."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as stat:
                name, fields = stat.read().split("(", 1)[1].rsplit(")", 1)
        except OSError:
            continue  # gone meanwhile
        state, ppid = fields.split()[0], int(fields.split()[1])
        if ppid == pid and state != "Z" and name != "nginx":
            found.add(int(entry))
    return found


def wait_for_workers(master: int, count: int, timeout: float = REPLACE_TIMEOUT, exclude: frozenset = frozenset()) -> set[int]:
    deadline = time.monotonic() + timeout
    while True:
        workers = children(master) - exclude
        if len(workers) == count and not (children(master) & exclude):
            return workers
        if time.monotonic() > deadline:
            raise AssertionError(f"workers of {master}: {children(master)}, wanted {count} without {set(exclude)}")
        time.sleep(0.05)


def summary(label: str, run: Run, seconds: float) -> str:
    statuses: dict[int | None, int] = {}
    for outcome in run.outcomes:
        statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
    return (f"{label}: {len(run.outcomes)} requests in {seconds:.1f} s by {CLIENTS} clients, "
            f"{len(run.failures())} failed, statuses {statuses}")


# --- the tests -------------------------------------------------------------------------------------

def test_every_request_of_the_mix_is_right_alone(server):
    """Each request of the mix, once, before any load: the checks themselves hold."""
    with requests.Session() as session:
        outcomes = [one_request(session, server.url, item) for item in MIX]
    assert [(o.name, o.error) for o in outcomes if o.error] == []
    assert len(wait_for_workers(server.pid, WORKERS)) == WORKERS  # the second may still be starting


def test_concurrent_clients_get_only_right_answers(server):
    started = time.monotonic()
    run = drive(server.url, LOAD_SECONDS)
    print("\n" + summary("load", run, time.monotonic() - started))
    assert [(o.name, o.error) for o in run.failures()] == []
    assert {o.name for o in run.outcomes} == {item[0] for item in MIX}  # the whole mix was sent
    assert len(run.outcomes) >= 2 * len(MIX)


def test_killing_a_worker_loses_at_most_the_requests_in_flight(server):
    workers = wait_for_workers(server.pid, WORKERS)
    killed: dict[str, float | int] = {}

    def kill_one() -> None:
        time.sleep(1.5)  # let the load get going first
        victim = min(workers)
        killed["at"] = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        killed["pid"] = victim

    started = time.monotonic()
    run = drive(server.url, KILL_RUN_SECONDS, during=kill_one)
    print("\n" + summary("kill", run, time.monotonic() - started) + f"; killed worker {killed['pid']}")
    failures = run.failures()
    print("failures: " + "; ".join(f"{o.name}: {o.error[:120]}" for o in failures))
    # at most one request in flight per client, and each lost one is a lost connection or, from the
    # nginx in front, a 502 OperationOutcome that says so; never a wrong answer or another 5xx
    assert len(failures) <= CLIENTS
    bad_gateway = "Bad Gateway: no answer from the workers (a request that runs longer than 30 s is stopped)"
    assert [o for o in failures if not o.connection_error and not (o.status == 502 and bad_gateway in o.error)] == []
    assert all(o.status is None or o.status < 500 or o in failures for o in run.outcomes)
    # lost requests were in flight when the worker died
    assert all(o.started <= killed["at"] + 1.0 for o in failures), [(o.started - killed["at"]) for o in failures]
    # the server kept answering: requests sent after the kill got right answers
    after = [o for o in run.outcomes if o.started > killed["at"] and not o.error]
    assert len(after) >= len(MIX), len(after)
    # the master replaced the worker: as many workers as before, the killed one gone, a new one there
    replaced = wait_for_workers(server.pid, WORKERS, exclude=frozenset({killed["pid"]}))
    assert killed["pid"] not in replaced
    assert len(replaced - workers) == 1 and (workers - {killed["pid"]}) <= replaced
    # and once replaced, every request of the mix is right again
    with requests.Session() as session:
        final = [one_request(session, server.url, item) for item in MIX * 2]
    assert [(o.name, o.error) for o in final if o.error] == []


# --- what gunicorn refuses before the app sees it is still an OperationOutcome ------------------


def raw_request(server: LiveServer, request: bytes) -> tuple[int, str, dict]:
    import json
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=REQUEST_TIMEOUT) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers["Content-Type"], json.loads(body)


@pytest.mark.parametrize("request_bytes, status, text_start", [
    (b"GET /r4/CodeSystem/$lookup?code=" + b"9" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "URI Too Long: "),
    (b"GET /r4/metadata HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431,
     "Request Header Fields Too Large: Error parsing headers: "),
    (b"GET /r4/metadata HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(150)) + b"\r\n", 431,
     "Request Header Fields Too Large: Error parsing headers: "),
    (b"NONSENSE\r\n\r\n", 400, "Bad Request: "),
])
def test_requests_gunicorn_refuses_get_an_operation_outcome(server, request_bytes, status, text_start):
    got_status, content_type, body = raw_request(server, request_bytes)
    assert (got_status, content_type) == (status, "application/fhir+json")
    [issue] = body["issue"]
    assert (body["resourceType"], issue["severity"], issue["code"]) == (
        "OperationOutcome", "error", "too-long" if status != 400 else "invalid")
    assert issue["details"]["text"].startswith(text_start)
