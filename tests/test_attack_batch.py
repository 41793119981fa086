"""Attack: batch Bundles that try to make one request cost without bound, against a real server. Each
is refused or stopped with a 4xx OperationOutcome in bounded time: more entries than
FHIR_PLUGIN_MAX_BUNDLE_ENTRIES, a body beyond FHIR_PLUGIN_MAX_REQUEST_BYTES, Bundles nested in
Bundles, entries of expensive $expand that together outrun the time budget, and entries whose
answers together grow beyond what one answer may hold. Nothing of it reaches the log, and the server
answers normally afterwards."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import CPT, DISPLAY_97116, ICD, MESSAGE_ID_URL, param, parameters
from live_server import LiveServer, running_server

from fhir_plugin.web.batch import MAX_ANSWER_BYTES

BUDGET_MS = 3000


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with running_server(settings={"FHIR_PLUGIN_TIME_BUDGET_MS": str(BUDGET_MS)}) as live:
        yield live


def post(url: str, body: bytes | dict, timeout: float = 60) -> tuple[int, dict, float]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/fhir+json"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            status, raw = error.code, error.read()
    return status, json.loads(raw), time.monotonic() - started


def batch(entries: list[dict]) -> dict:
    return {"resourceType": "Bundle", "type": "batch", "entry": entries}


def issue_of(body: dict) -> tuple[str, str, str]:
    issue = body["issue"][0]
    return issue["extension"][0]["valueString"], issue["code"], issue["details"]["text"]


def still_answers(server: LiveServer) -> None:
    with urllib.request.urlopen(f"{server.r4}/CodeSystem/$lookup?system={CPT}&code=97116", timeout=20) as response:
        assert {"name": "display", "valueString": DISPLAY_97116} in json.loads(response.read())["parameter"]


def test_too_many_entries_are_refused_before_any_runs(server):
    entries = [{"request": {"method": "GET", "url": "$versions"}}] * 15_000  # about 700 KB
    status, body, took = post(server.r4, batch(entries))
    assert (status, issue_of(body)) == (400, ("BUNDLE_TOO_MANY_ENTRIES", "too-costly",
                                              "The Bundle has 15000 entries; this server answers at most 1000 in "
                                              "one Bundle"))
    assert took < 10
    still_answers(server)


def test_a_bundle_beyond_the_request_size_is_refused(server):
    entries = [{"request": {"method": "GET", "url": f"CodeSystem/$lookup?system={CPT}&code={n}"}} for n in range(40_000)]
    data = json.dumps(batch(entries)).encode()
    assert len(data) > 1_048_576
    status, body, _ = post(server.r4, data)
    # refused by the nginx in front, or by the app where there is none: either way unread
    assert (status, body["issue"][0]["code"]) == (413, "too-long")


def nested(levels: int) -> dict:
    """A batch whose one entry posts a batch whose one entry posts a batch ... `levels` deep."""
    bundle: dict[str, Any] = batch([{"request": {"method": "GET", "url": "$versions"}}])
    for _ in range(levels):
        bundle = batch([{"request": {"method": "POST", "url": ""}, "resource": bundle}])
    return bundle


def test_bundles_nested_in_bundles_are_not_processed(server):
    status, body, took = post(server.r4, nested(30))  # 91 levels of JSON: within the depth limit
    assert status == 200
    assert body["entry"] == [{"resource": body["entry"][0]["resource"], "response": {
        "status": "400 Bad Request", "outcome": body["entry"][0]["resource"]}}]
    assert issue_of(body["entry"][0]["resource"])[::2] == (
        "BUNDLE_NESTED", "Bundle.entry[0] posts a Bundle; a Bundle inside a Bundle is not processed")
    status, body, took = post(server.r4, nested(40))  # 121 levels: refused before anything reads it
    assert (status, issue_of(body)[:2]) == (400, ("BODY_TOO_DEEP", "too-costly"))
    # a Bundle posted to an operation in an entry is refused the same way
    status, body, _ = post(server.r4, batch([{"request": {"method": "POST", "url": "ValueSet/$expand"},
                                              "resource": nested(1)}]))
    assert body["entry"][0]["response"]["status"] == "400 Bad Request"
    assert issue_of(body["entry"][0]["resource"])[0] == "BUNDLE_NESTED"


def expensive_expand(tag: str) -> dict:
    """$expand of all of ICD-10-CM less a code of its own: an evaluation no cache holds, each time."""
    value_set = {"resourceType": "ValueSet", "status": "active",
                 "compose": {"include": [{"system": ICD}], "exclude": [{"system": ICD, "concept": [{"code": tag}]}]}}
    return {"request": {"method": "POST", "url": "ValueSet/$expand"},
            "resource": parameters(param("valueSet", resource=value_set), param("filter", valueString="walking"),
                                   param("count", valueInteger=5))}


def test_a_batch_of_expensive_expansions_is_stopped_by_the_one_budget(server):
    tag = uuid.uuid4()
    status, body, took = post(server.r4, batch([expensive_expand(f"{tag}-{n}") for n in range(200)]))
    assert (status, body) == (400, {"resourceType": "OperationOutcome", "issue": [{
        "extension": [{"url": MESSAGE_ID_URL, "valueString": "REQUEST_OVER_BUDGET"}],
        "severity": "error", "code": "too-costly",
        "details": {"text": f"The request was stopped after its time budget of {BUDGET_MS} ms; this server answers a "
                            "request in at most that time (ask for less: a filter, a count, fewer codes)"}}]})
    assert took < BUDGET_MS / 1000 + 10  # one budget for the Bundle, not one per entry (200 of them)
    still_answers(server)


def test_answers_that_together_grow_too_large_stop_the_bundle(server):
    read = {"request": {"method": "GET", "url": "CodeSystem/icd-10-cm"}}  # about 20 MB each, 0.1 s on R5
    status, body, took = post(server.r5, batch([read] * 10))
    assert (status, issue_of(body)) == (400, (
        "BUNDLE_ANSWER_TOO_LARGE", "too-costly",
        f"The answers to the Bundle's entries come to more than {MAX_ANSWER_BYTES} bytes; send fewer or smaller "
        "requests in one Bundle"))
    still_answers(server)


def test_nothing_of_it_reached_the_log(server):
    for attack in (nested(2), batch([{"request": {"method": "PUT", "url": "CodeSystem/x"}}] * 100),
                   {"resourceType": "Bundle", "type": "batch", "entry": [None, 1, "x", [], {}] * 100}):
        assert post(server.r4, attack)[0] == 200
    output = server.output()
    assert "Traceback" not in output and "unexpected error" not in output and "ERROR" not in output, output[-2000:]
