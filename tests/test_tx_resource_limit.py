"""FHIR_PLUGIN_MAX_TX_RESOURCES: a request may carry at most that many tx-resource parameters;
beyond it, a too-costly OperationOutcome (TooCostly, 400), on every operation and both versions."""

from __future__ import annotations

import pytest

from fhir_plugin import create_app
from fhir_plugin.config import load_settings
from helpers import CPT, FHIR_JSON, MESSAGE_ID_URL, body_of, param, parameters, validate


def code_system(n: int) -> dict:
    return {"resourceType": "CodeSystem", "id": f"tx-{n}", "url": f"http://example.org/fhir/CodeSystem/tx-{n}",
            "version": "1", "status": "active", "content": "complete", "concept": [{"code": "a", "display": f"A{n}"}]}


def lookup_body(count: int) -> dict:
    return parameters(param("system", valueUri="http://example.org/fhir/CodeSystem/tx-0"), param("code", valueCode="a"),
                      *(param("tx-resource", resource=code_system(n)) for n in range(count)))


def limit_outcome(count: int, limit: int) -> dict:
    return {"resourceType": "OperationOutcome", "issue": [{
        "extension": [{"url": MESSAGE_ID_URL, "valueString": "TX_RESOURCE_LIMIT"}],
        "severity": "error", "code": "too-costly",
        "details": {"text": f"The request has {count} tx-resource parameters; this server accepts at most {limit} "
                            "in one request"},
        "expression": ["tx-resource"]}]}


@pytest.fixture
def client3(service):
    return create_app({"FHIR_PLUGIN_MAX_TX_RESOURCES": 3}, service=service).test_client()


def test_the_default_is_100():
    assert load_settings(environ={})["FHIR_PLUGIN_MAX_TX_RESOURCES"] == 100
    assert load_settings(environ={"FHIR_PLUGIN_MAX_TX_RESOURCES": "7"})["FHIR_PLUGIN_MAX_TX_RESOURCES"] == 7


@pytest.mark.parametrize("version", ["r4", "r5"])
def test_at_the_limit_is_answered(client3, version):
    response = client3.post(f"/{version}/CodeSystem/$lookup", json=lookup_body(3))
    assert response.status_code == 200
    assert body_of(response)["parameter"][2] == {"name": "display", "valueString": "A0"}


@pytest.mark.parametrize("version", ["r4", "r5"])
def test_beyond_the_limit_is_too_costly(client3, version):
    response = client3.post(f"/{version}/CodeSystem/$lookup", json=lookup_body(4))
    assert response.status_code == 400
    assert response.mimetype == FHIR_JSON
    assert body_of(response) == limit_outcome(4, 3)
    validate(body_of(response), version)


@pytest.mark.parametrize("version", ["r4", "r5"])
@pytest.mark.parametrize("path, own", [
    ("/ValueSet/$validate-code", [param("url", valueUri="http://example.org/vs"), param("code", valueCode="a")]),
    ("/CodeSystem/$validate-code", [param("url", valueUri=CPT), param("code", valueCode="97116")]),
    ("/ConceptMap/$translate", [param("sourceCode", valueCode="97116"), param("sourceSystem", valueUri=CPT)]),
    ("/ValueSet/$expand", [param("url", valueUri="http://example.org/vs")]),
    ("/CodeSystem/$subsumes", [param("system", valueUri=CPT), param("codeA", valueCode="97116"),
                               param("codeB", valueCode="97116")]),
    ("/ValueSet/$batch-validate-code", []),
])
def test_every_operation_counts_them(client3, version, path, own):
    """Counted before anything else is read: the request is refused whatever else it holds."""
    body = parameters(*own, *(param("tx-resource", resource=code_system(n)) for n in range(5)))
    response = client3.post(f"/{version}{path}", json=body)
    assert (response.status_code, body_of(response)) == (400, limit_outcome(5, 3))


def test_the_default_limit_over_http(client):
    assert client.post("/r5/CodeSystem/$lookup", json=lookup_body(100)).status_code == 200
    response = client.post("/r5/CodeSystem/$lookup", json=lookup_body(101))
    assert (response.status_code, body_of(response)) == (400, limit_outcome(101, 100))


def test_query_string_tx_resources_count_too(client3):
    response = client3.get(f"/r4/CodeSystem/$lookup?system={CPT}&code=97116" + "&tx-resource=x" * 4)
    assert (response.status_code, body_of(response)) == (400, limit_outcome(4, 3))


def test_zero_allows_none(service):
    client = create_app({"FHIR_PLUGIN_MAX_TX_RESOURCES": 0}, service=service).test_client()
    assert client.post("/r4/CodeSystem/$lookup", json=parameters(
        param("system", valueUri=CPT), param("code", valueCode="97116"))).status_code == 200
    response = client.post("/r4/CodeSystem/$lookup", json=lookup_body(1))
    assert (response.status_code, body_of(response)) == (400, limit_outcome(1, 0))
