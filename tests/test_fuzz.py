"""Property-based fuzzing of every route: whatever arrives, the answer is a 2xx resource or a 4xx
OperationOutcome, never a 5xx or a stack trace. Bounded: a fixed number of examples, no deadline
flakiness (the shared machine is noisy), derandomised so that CI runs are reproducible."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_plugin import create_app

ROUTES = [
    "/CodeSystem/$lookup", "/CodeSystem/cpt-97116-fragment/$lookup", "/CodeSystem/$subsumes",
    "/CodeSystem/$validate-code", "/ValueSet/$validate-code", "/ValueSet/$expand", "/ValueSet/$batch-validate-code",
    "/ConceptMap/$translate", "/ConceptMap/cpt-97116-to-icd-10-cm/$translate", "/CodeSystem", "/ValueSet/x",
    "/metadata", "/$versions",
]
NAMES = ["system", "code", "version", "coding", "codeableConcept", "url", "valueSet", "display", "property",
         "sourceCode", "sourceSystem", "targetCode", "targetSystem", "targetsystem", "reverse", "conceptMap",
         "count", "offset", "filter", "activeOnly", "displayLanguage", "tx-resource", "useSupplement", "codeA",
         "codeB", "systemVersion", "system-version", "force-system-version", "includeDesignations", "_format"]
VALUE_KEYS = ["valueString", "valueUri", "valueCode", "valueBoolean", "valueInteger", "valueCoding",
              "valueCodeableConcept", "valueCanonical", "resource", "part", "valueDecimal"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
codings = st.fixed_dictionaries({}, optional={
    "system": st.sampled_from(["http://www.ama-assn.org/go/cpt", "http://hl7.org/fhir/sid/icd-10-cm", "", "x"]),
    "code": st.sampled_from(["97116", "M62.81", "R26.2", "", " ", "../x"]) | st.text(max_size=8),
    "version": st.text(max_size=6) | st.integers(),
    "display": st.text(max_size=10)})
parameter = st.builds(
    lambda name, key, value: {"name": name, key: value},
    st.sampled_from(NAMES) | st.text(max_size=10),
    st.sampled_from(VALUE_KEYS),
    json_values | codings | st.fixed_dictionaries({"coding": st.lists(codings, max_size=3)}),
)
bodies = st.one_of(
    st.builds(lambda ps: {"resourceType": "Parameters", "parameter": ps}, st.lists(parameter, max_size=6)),
    json_values,
    st.dictionaries(st.sampled_from(["resourceType", "parameter", "id"]), json_values, max_size=3),
)
queries = st.lists(st.tuples(st.sampled_from(NAMES) | st.text(string.printable, max_size=8),
                             st.text(max_size=20)), max_size=6)

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def fuzz_client(service):
    return create_app(service=service).test_client()


def check(response) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    if response.status_code in (301, 308) or not response.get_data():
        return
    body = json.loads(response.get_data())
    assert "Traceback" not in response.get_data(as_text=True)
    if response.status_code >= 400:
        assert body["resourceType"] == "OperationOutcome"
        assert body["issue"][0]["severity"] == "error"


@FUZZ
@given(route=st.sampled_from(ROUTES), version=st.sampled_from(["r4", "r5"]), query=queries)
def test_fuzzed_query_strings(fuzz_client, route, version, query):
    check(fuzz_client.get(f"/{version}{route}", query_string=query))


@FUZZ
@given(route=st.sampled_from(ROUTES), version=st.sampled_from(["r4", "r5"]), body=bodies)
def test_fuzzed_json_bodies(fuzz_client, route, version, body):
    check(fuzz_client.post(f"/{version}{route}", data=json.dumps(body), content_type="application/fhir+json"))


@FUZZ
@given(route=st.sampled_from(ROUTES), raw=st.binary(max_size=200))
def test_fuzzed_raw_bytes(fuzz_client, route, raw):
    check(fuzz_client.post(f"/r5{route}", data=raw, content_type="application/fhir+json"))
