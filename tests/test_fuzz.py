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
    assert not 300 <= response.status_code < 400  # no path redirects (web/routing.py)
    if not response.get_data():
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


# --- the admin endpoint, enabled: whatever is uploaded, a 2xx or a 4xx, and the content stays whole ---

resource_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({"resourceType": st.sampled_from(["CodeSystem", "ValueSet", "ConceptMap", "Bundle", "x"])},
                          optional={"url": st.text(max_size=20), "status": json_values, "content": json_values,
                                    "concept": json_values, "type": json_values, "entry": json_values}),
)


@pytest.fixture(scope="module")
def admin_fuzz(service, tmp_path_factory):
    directory = tmp_path_factory.mktemp("loaded")
    app = create_app({"FHIR_PLUGIN_ADMIN_TOKEN": "t", "FHIR_PLUGIN_LOAD_DIR": str(directory)}, service=service)
    return app.test_client(), directory


@FUZZ
@given(body=st.one_of(resource_bodies.map(lambda b: json.dumps(b).encode()), st.binary(max_size=200)),
       name=st.none() | st.text(max_size=12) | st.sampled_from(["x.json", "x.tgz", "x.json.gz", "../x.json"]))
def test_fuzzed_uploads(admin_fuzz, body, name):
    client, directory = admin_fuzz
    response = client.post("/admin/content", data=body, query_string={"name": name} if name is not None else None,
                           headers={"Authorization": "Bearer t"})
    check(response)
    assert not [p.name for p in directory.iterdir() if p.name.startswith(".incoming")]
    if response.status_code < 300:  # an upload that loaded: it is served, then taken out again
        [location] = [response.headers["Location"].rsplit("/", 1)[1]]
        assert client.delete(f"/admin/content/{location}", headers={"Authorization": "Bearer t"}).status_code == 200
    lookup = client.get("/r4/CodeSystem/$lookup?system=http://www.ama-assn.org/go/cpt&code=97116")
    assert lookup.status_code == 200
