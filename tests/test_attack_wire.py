"""Attacks on the wire features of read, search and compression: decompression bombs and corrupt
streams as request bodies, and paging and _elements abuse.

Against a real server (`fhir-plugin serve`, one worker, the nginx in front when installed): each
attack is answered with its exact status and message within ATTACK_SECONDS, a $lookup of CPT
97116 sent meanwhile on another connection is answered too, the worker's peak memory grows by
less than a few MiB however far a bomb would inflate, and the log gets no line. Then in-process:
what a host app without a request-line limit lets through (100,000 element names, 10,000
alternatives) is answered in bounded time.
"""

from __future__ import annotations

import gzip
import json
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from helpers import CPT, DISPLAY_97116, MESSAGE_ID_URL, param, parameters
from live_server import LiveServer, running_server
from test_load_faults import children

from fhir_plugin import create_app

ATTACK_SECONDS = 10.0  # generous: every attack below is answered in well under a second
LIMIT = 1_048_576  # FHIR_PLUGIN_MAX_REQUEST_BYTES
MiB = 1024 * 1024
LOOKUP_BODY = json.dumps(parameters(param("system", valueUri=CPT), param("code", valueCode="97116"))).encode()
FHIR = {"Content-Type": "application/fhir+json"}


def bomb(coding: str, inflated_mib: int) -> bytes:
    """A body of zeros that inflates to `inflated_mib` MiB, compressed at zlib's best (about 1,000 to 1)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, {"gzip": 31, "deflate": 15, "raw": -15}[coding])
    zeros = bytes(MiB)
    return b"".join(packer.compress(zeros) for _ in range(inflated_mib)) + packer.flush()


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    """960 MiB of zeros as 15 gzip members (gzip allows several, one after another), 128 MiB as one
    deflate stream, zlib's or raw: each well under the 1 MiB a body may be as sent."""
    member = bomb("gzip", 64)
    return {"gzip": member * 15, "deflate": bomb("deflate", 128), "raw": bomb("raw", 128), "member": member}


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with running_server() as live:
        yield live


def peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for {pid}")


def lookup_97116(server: LiveServer) -> None:
    answer = requests.get(f"{server.r4}/CodeSystem/$lookup", params={"system": CPT, "code": "97116"},
                          timeout=ATTACK_SECONDS)
    assert answer.status_code == 200
    assert {"name": "display", "valueString": DISPLAY_97116} in answer.json()["parameter"]


def attack(server: LiveServer, send: Callable[[], requests.Response], times: int = 1,
           quiet: bool = True) -> list[requests.Response]:
    """`send` `times` times from four threads while CPT 97116 is looked up on another connection;
    all within ATTACK_SECONDS, and (`quiet`) nothing written to the log."""
    log_before = len(server.output())
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        pending = [pool.submit(send) for _ in range(times)]
        lookup_97116(server)
        answers = [p.result() for p in pending]
    assert time.monotonic() - started < ATTACK_SECONDS
    assert server.output()[log_before:] == "" or not quiet
    return answers


def outcome_of(response: requests.Response) -> tuple[int, str, str]:
    issue = response.json()["issue"][0]
    [extension] = issue["extension"]
    assert extension["url"] == MESSAGE_ID_URL
    return response.status_code, extension["valueString"], issue["details"]["text"]


# --- bombs and corrupt streams ---------------------------------------------------------------------


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads a worker's memory from /proc")
@pytest.mark.parametrize("coding", ["gzip", "deflate", "raw"])
def test_a_bomb_is_a_413_after_inflating_no_more_than_the_limit(server, bombs, coding):
    body = bombs[coding]
    assert len(body) < LIMIT  # small enough to be read: the inflated size is what is refused
    [worker] = children(server.pid)
    lookup_97116(server)
    before = peak_mib(worker)
    header = "deflate" if coding == "raw" else coding
    answers = attack(server, lambda: requests.post(f"{server.r4}/CodeSystem/$lookup", data=body, timeout=ATTACK_SECONDS,
                                                   headers={**FHIR, "Content-Encoding": header}), times=12)
    assert {outcome_of(a) for a in answers} == {(413, "BODY_INFLATES_TOO_LARGE",
                                                 f"The request body inflates ({header}) to more than the {LIMIT} "
                                                 "bytes this server accepts")}
    # what a bomb costs the worker: its compressed body and at most the limit inflated, a few times over
    assert peak_mib(worker) - before < 16, f"the worker's peak grew by {peak_mib(worker) - before:.1f} MiB"


def test_a_bomb_inside_a_bomb_is_inflated_once(server, bombs):
    """A gzip of a gzip bomb: the outer layer inflates to less than the limit, and the inner bomb is
    then just bytes that are not JSON."""
    nested = gzip.compress(bombs["gzip"])
    [answer] = attack(server, lambda: requests.post(f"{server.r5}/CodeSystem/$lookup", data=nested,
                                                    headers={**FHIR, "Content-Encoding": "gzip"},
                                                    timeout=ATTACK_SECONDS))
    assert outcome_of(answer)[:2] == (400, "BODY_NOT_JSON")


def test_corrupt_streams_are_400s(server, bombs):
    streams = [gzip.compress(LOOKUP_BODY)[:-9], b"\x1f\x8b" + bytes(range(256)) * 100, bombs["member"][:300]]  # the start of a bomb: it ends inflating less than the limit
    answers = attack(server, lambda: requests.post(f"{server.r4}/CodeSystem/$lookup", data=streams[0],
                                                   headers={**FHIR, "Content-Encoding": "gzip"},
                                                   timeout=ATTACK_SECONDS), times=8)
    for data in streams[1:]:
        answers.append(requests.post(f"{server.r4}/CodeSystem/$lookup", data=data, timeout=ATTACK_SECONDS,
                                     headers={**FHIR, "Content-Encoding": "gzip"}))
    assert [outcome_of(a)[:2] for a in answers] == [(400, "BODY_BAD_CODING")] * 10


def test_a_body_beyond_the_limit_before_inflating_is_refused_unread(server, bombs):
    huge = bombs["member"] * 40  # 2,560 MiB inflated, about 2.6 MB compressed
    assert len(huge) > LIMIT
    # refused by the nginx in front (which logs one line for it, as for any body too large) or by the app
    [answer] = attack(server, lambda: requests.post(f"{server.r4}/CodeSystem/$lookup", data=huge, timeout=ATTACK_SECONDS,
                                                    headers={**FHIR, "Content-Encoding": "gzip"}), quiet=False)
    assert answer.status_code == 413 and answer.json()["resourceType"] == "OperationOutcome"


# --- paging and _elements abuse --------------------------------------------------------------------


@pytest.mark.parametrize("query, total, shown, self_query", [
    ("_count=" + "9" * 4000, 3, 3, "_count=100"),  # lowered to FHIR_PLUGIN_SEARCH_PAGE_SIZE
    ("_count=1&_offset=" + "9" * 4000, 3, 0, "_count=1&_offset=" + "9" * 4000),
    ("_count=1&_offset=2", 3, 1, "_count=1&_offset=2"),
    ("title=" + ",".join(["x"] * 1900) + ",cur", 1, 1, "title=" + ",".join(["x"] * 1900) + ",cur"),
    ("&".join(["title:contains=i"] * 200), 3, 3, "&".join(["title:contains=i"] * 200)),
])
def test_paging_and_criteria_abuse_is_answered(server, query, total, shown, self_query):
    [answer] = attack(server, lambda: requests.get(f"{server.r4}/CodeSystem?{query}", timeout=ATTACK_SECONDS))
    bundle = answer.json()
    assert (answer.status_code, bundle["total"], len(bundle.get("entry", []))) == (200, total, shown)
    assert bundle["link"][0]["url"] == f"{server.r4}/CodeSystem?{self_query}"


@pytest.mark.parametrize("query, message_id", [
    ("_offset=-1", "PAGE_BAD_VALUE"),
    ("_count=-100", "PAGE_BAD_VALUE"),
    ("_count=1e9", "PAGE_BAD_VALUE"),
    ("_count=0x10", "PAGE_BAD_VALUE"),
    ("_count=" + "1" * 4400, None),  # more digits than a request line holds: gunicorn's 414
])
def test_bad_paging_is_refused(server, query, message_id):
    # gunicorn logs a line for a request line it refuses, as for any
    [answer] = attack(server, lambda: requests.get(f"{server.r5}/ValueSet?{query}", timeout=ATTACK_SECONDS),
                      quiet=message_id is not None)
    if message_id is None:
        assert answer.status_code == 414 and answer.json()["resourceType"] == "OperationOutcome"
    else:
        assert outcome_of(answer)[:2] == (400, message_id)


def test_thousands_of_elements_on_the_complete_icd_10_cm(server):
    names = ",".join(["x"] * 1900 + ["name"] + ["id"] * 50)
    answers = attack(server, lambda: requests.get(f"{server.r4}/CodeSystem/icd-10-cm?_elements={names}",
                                                  timeout=ATTACK_SECONDS), times=8)
    assert {a.status_code for a in answers} == {200}
    assert answers[0].json() == {"resourceType": "CodeSystem", "id": "icd-10-cm", "name": "ICD10CM", "status": "active",
                                 "content": "complete", "meta": {"tag": [{
                                     "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                                     "code": "SUBSETTED", "display": "subsetted"}]}}
    [strict] = attack(server, lambda: requests.get(f"{server.r4}/CodeSystem?_elements={names}", timeout=ATTACK_SECONDS,
                                                   headers={"Prefer": "handling=strict"}))
    assert outcome_of(strict) == (400, "ELEMENT_UNKNOWN",
                                  "Unknown element 'x' in _elements for CodeSystem (Prefer: handling=strict)")


# --- in-process: no request-line limit ------------------------------------------------------------


@pytest.fixture(scope="module")
def app_client(service):
    return create_app(service=service).test_client()


def test_a_hundred_thousand_element_names_are_answered_in_bounded_time(app_client):
    started = time.monotonic()
    names = ",".join(f"e{n}" for n in range(100_000))
    answer = app_client.get(f"/r5/CodeSystem/icd-10-cm?_elements=title,{names}")
    assert answer.status_code == 200 and answer.json["title"].startswith("International Classification of Diseases")
    assert "concept" not in answer.json
    assert time.monotonic() - started < ATTACK_SECONDS


def test_ten_thousand_alternatives_and_a_huge_offset_in_bounded_time(app_client):
    started = time.monotonic()
    values = ",".join(f"v{n}" for n in range(10_000))
    answer = app_client.get(f"/r4/ValueSet?title:contains={values}&_offset={10 ** 4000}")
    assert answer.status_code == 200 and answer.json["total"] == 0
    assert time.monotonic() - started < ATTACK_SECONDS


def test_every_id_of_the_default_content_in_one_id_search_in_bounded_time(default_service):
    """`_id` naming every ValueSet id of the default content (FHIR core's copies of R4 and R5 share
    hundreds of them), twice over and repeated as a second criterion: each id matches once, the copy a
    read gives, and the grouping of copies that share an id stays linear."""
    client = create_app(service=default_service).test_client()
    ids = sorted({e.id for e in default_service.registry.entries("ValueSet") if e.id})
    values = ",".join(ids * 2)
    started = time.monotonic()
    answer = client.get(f"/r4/ValueSet?_id={values}&_id={values}&_count=5&_elements=id")
    assert answer.status_code == 200 and answer.json["total"] == len(ids)
    listed = client.get(f"/r4/ValueSet?_count=5&_elements=id").json
    assert listed["total"] == len(default_service.registry.entries("ValueSet"))  # a search without _id: every copy
    assert time.monotonic() - started < ATTACK_SECONDS
