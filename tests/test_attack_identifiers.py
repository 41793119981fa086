"""Hostile code system identifiers, against a real server (`fhir-plugin serve`, two workers): a
`urn:oid:` of nearly a megabyte, odd characters, thousands of codings named by OIDs, a tx-resource
NamingSystem with thousands of identifiers. Each is answered with its exact status (an unknown code
system: 404, or a result=false $validate-code) within ATTACK_SECONDS, never a 5xx, while a $lookup
of CPT 97116 on another connection is answered too; and hundreds of them leave the log as it was.

An alias costs one dict look-up of the string sent (its hash: linear in its length, once), so
nothing here is slower than reading the request.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from helpers import CPT, DISPLAY_97116, ICD, param, parameters
from live_server import LiveServer, running_server

ATTACK_SECONDS = 10.0
ICD_OID = "urn:oid:2.16.840.1.113883.6.90"
CPT_OID = "urn:oid:2.16.840.1.113883.6.12"
HUGE = "urn:oid:" + "1." * 450_000 + "1"  # 900 KB, under FHIR_PLUGIN_MAX_REQUEST_BYTES (1 MiB)


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with running_server(workers=2) as live:
        yield live


def attack(server: LiveServer, method: str, path: str, **kwargs: Any) -> requests.Response:
    """The request, and meanwhile on another connection a $lookup of CPT 97116: both within ATTACK_SECONDS."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        started = time.monotonic()
        pending = pool.submit(requests.request, method, f"{server.r4}/{path}", timeout=ATTACK_SECONDS, **kwargs)
        lookup = requests.get(f"{server.r4}/CodeSystem/$lookup", params={"system": CPT, "code": "97116"},
                              timeout=ATTACK_SECONDS)
        response = pending.result()
        elapsed = time.monotonic() - started
    assert lookup.status_code == 200
    assert {"name": "display", "valueString": DISPLAY_97116} in lookup.json()["parameter"]
    assert elapsed < ATTACK_SECONDS, elapsed
    assert response.status_code < 500, response.text[:500]
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    return response


def unknown_lookup(system: str) -> str:
    return f"A definition for CodeSystem '{system}' could not be found, so the code cannot be looked up"


# (system, whether FHIR's uri type allows it): a uri has no whitespace, so one with a space or a
# line break is a bad parameter (400); anything else is a system, which nothing declares (404)
ODD = [("urn:oid:", True), ("urn:oid:2.16..840", True), ("urn:oid:\u202e09.6.388311.1.048.61.2", True),
       ("urn:oid:\u0000", True), ("urn:oid:\U0001f600", True), ("urn:oid:2.16.840.1.113883.6.90|2026", True),
       ("urn:oid:2.16.840.1.113883.6.90#x", True), ("urn:oid:%2E%2E", True), ("urn:OID:2.16", True),
       ("urn:oid:2.16.840.1.113883.6.90 ", False), (" urn:oid:2.16.840.1.113883.6.90", False),
       ("urn:oid:1\n2", False), ("urn:oid:1\t2", False)]


@pytest.mark.parametrize("system, uri", ODD, ids=range(len(ODD)))
def test_odd_characters_are_an_unknown_code_system_or_a_bad_uri(server, system, uri):
    response = attack(server, "GET", "CodeSystem/$lookup", params={"system": system, "code": "R26.2"})
    issue = response.json()["issue"][0]
    if uri:
        assert (response.status_code, issue["details"]["text"]) == (404, unknown_lookup(system))
    else:
        assert (response.status_code, issue["extension"][0]["valueString"], issue["details"]["text"]) == (
            400, "PARAM_BAD_VALUE", f"Parameter 'system' has an invalid uri value: {system!r}")


def test_a_megabyte_oid_is_an_unknown_code_system_on_every_operation(server):
    looked_up = attack(server, "POST", "CodeSystem/$lookup", json=parameters(
        param("system", valueUri=HUGE), param("code", valueCode="R26.2")))
    assert looked_up.status_code == 404
    assert looked_up.json()["issue"][0]["details"]["text"] == unknown_lookup(HUGE)
    validated = attack(server, "POST", "ValueSet/$validate-code", json=parameters(
        param("valueSet", resource={"resourceType": "ValueSet", "status": "active",
                                    "compose": {"include": [{"system": ICD}]}}),
        param("coding", valueCoding={"system": HUGE, "code": "R26.2"})))
    assert validated.status_code == 200
    assert validated.json()["parameter"][0] == {"name": "result", "valueBoolean": False}
    expanded = attack(server, "POST", "ValueSet/$expand", json=parameters(param("valueSet", resource={
        "resourceType": "ValueSet", "status": "active", "compose": {"include": [{"system": HUGE}]}})))
    assert expanded.status_code == 404
    assert expanded.json()["issue"][0]["extension"][0]["valueString"] == "UNKNOWN_CODESYSTEM_EXP"


def test_a_larger_oid_is_refused_as_too_large(server):
    response = attack(server, "POST", "CodeSystem/$lookup", json=parameters(
        param("system", valueUri=HUGE + "1" * 200_000), param("code", valueCode="R26.2")))
    assert response.status_code == 413


def test_thousands_of_codings_named_by_oids(server):
    codings = [{"system": ICD_OID, "code": "R26.2"} if n % 2 else {"system": CPT_OID, "code": "97116"}
               for n in range(4000)]
    response = attack(server, "POST", "ValueSet/$validate-code", json=parameters(
        param("url", valueUri="http://fhir-plugin.org/fhir/ValueSet/icd-10-cm-gait-training-diagnoses"),
        param("codeableConcept", valueCodeableConcept={"coding": codings})))
    assert response.status_code == 200
    answer = {p["name"]: p for p in response.json()["parameter"]}
    assert (answer["result"]["valueBoolean"], answer["system"]["valueUri"]) == (True, ICD)
    warnings = [i for i in answer["issues"]["resource"]["issue"]
                if i["extension"][0]["valueString"] == "VALUESET_INCLUDE_WRONG_CS_OID"]
    assert len(warnings) == 4000
    assert warnings[-1]["expression"] == ["CodeableConcept.coding[3999].system"]
    assert answer["message"]["valueString"] == (
        f"It is not valid to refer to a CodeSystem by an identifier like this '{CPT_OID}' - use '{CPT}'; "
        f"It is not valid to refer to a CodeSystem by an identifier like this '{ICD_OID}' - use '{ICD}'")


def test_a_tx_resource_naming_system_of_many_identifiers(server):
    naming = {"resourceType": "NamingSystem", "name": "Many", "status": "active", "kind": "codesystem",
              "date": "2026-01-01", "uniqueId": [{"type": "uri", "value": ICD, "preferred": True}] + [
                  {"type": "other", "value": f"ALIAS-{n}"} for n in range(10_000)]}
    response = attack(server, "POST", "CodeSystem/$lookup", json=parameters(
        param("system", valueUri="ALIAS-9999"), param("code", valueCode="R26.2"), param("tx-resource", resource=naming)))
    assert response.status_code == 200
    assert {"name": "system", "valueUri": ICD} in response.json()["parameter"]


def test_hundreds_of_hostile_identifiers_leave_the_log_as_it_was(server):
    before = len(server.output().encode())
    with requests.Session() as session:
        for n in range(300):
            system = f"urn:oid:{n}\u0000{'9' * 1000}" + ("\n\r" if n % 2 else "\u202e")
            response = session.get(f"{server.r4}/CodeSystem/$lookup", timeout=ATTACK_SECONDS,
                                   params={"system": system, "code": "x"})
            assert response.status_code == (400 if n % 2 else 404)
    log = server.output()
    assert len(log.encode()) - before < 2_000, log[before:][-2000:]
    assert "Traceback" not in log
