"""Attack: requests that cost seconds of work each, sent in a loop by two clients, against a real
server (2 gunicorn workers) with a time budget of 200 ms. Each is stopped with the budget's
too-costly answer long before gunicorn's 30 s worker timeout, nothing is a 5xx or a stack trace,
and a normal $lookup from a third client is answered meanwhile."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest

from helpers import MESSAGE_ID_URL, param, parameters
from live_server import running_server

ICD = "http://hl7.org/fhir/sid/icd-10-cm"
BUDGET_MS = 200


@pytest.fixture(scope="module")
def server():
    with running_server(workers=2, settings={"FHIR_PLUGIN_TIME_BUDGET_MS": str(BUDGET_MS)}) as live:
        yield live


def post(url: str, body: dict, timeout: float = 30) -> tuple[int, dict, float]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/fhir+json"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, data = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, data = error.code, error.read()
    return status, json.loads(data), time.monotonic() - started


def costly_batch() -> dict:
    """40 validations, each against its own value set of all of ICD-10-CM (a different exclude
    each, so no evaluation is shared or kept): several seconds of work on any machine."""
    tag = uuid.uuid4()
    validations = [
        parameters(param("valueSet", resource={
            "resourceType": "ValueSet", "status": "active",
            "compose": {"include": [{"system": ICD}],
                        "exclude": [{"system": ICD, "concept": [{"code": f"{tag}-{n}"}]}]}}),
            param("code", valueCode="R26.2"), param("system", valueUri=ICD))
        for n in range(40)]
    return parameters(*(param("validation", resource=v) for v in validations))


def lookup(server) -> tuple[int, float]:
    status, body, took = post(f"{server.r4}/CodeSystem/$lookup",
                              parameters(param("system", valueUri="http://www.ama-assn.org/go/cpt"),
                                         param("code", valueCode="97116")), timeout=20)
    assert body["resourceType"] == "Parameters"
    return status, took


def test_a_costly_batch_is_stopped_by_the_budget(server):
    status, body, took = post(f"{server.r4}/ValueSet/$batch-validate-code", costly_batch())
    assert status == 400
    assert body == {"resourceType": "OperationOutcome", "issue": [{
        "extension": [{"url": MESSAGE_ID_URL, "valueString": "REQUEST_OVER_BUDGET"}],
        "severity": "error", "code": "too-costly",
        "details": {"text": f"The request was stopped after its time budget of {BUDGET_MS} ms; this server answers "
                            "a request in at most that time (ask for less: a filter, a count, fewer codes)"}}]}
    assert took < 10  # generously: the budget is 0.2 s, gunicorn's worker timeout 30 s


def test_two_clients_looping_costly_requests_leave_room_for_a_lookup(server):
    stop = threading.Event()
    statuses: list[int] = []

    def attack():
        while not stop.is_set():
            statuses.append(post(f"{server.r5}/ValueSet/$batch-validate-code", costly_batch())[0])

    attackers = [threading.Thread(target=attack) for _ in range(2)]
    for thread in attackers:
        thread.start()
    try:
        time.sleep(0.5)
        answers = [lookup(server) for _ in range(5)]
    finally:
        stop.set()
        for thread in attackers:
            thread.join(timeout=30)
    assert [status for status, _ in answers] == [200] * 5
    assert max(took for _, took in answers) < 10
    assert statuses and set(statuses) == {400}
    assert "Traceback" not in server.output()
