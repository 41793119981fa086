"""Batch and transaction Bundles POSTed to a FHIR base, over HTTP against a real server (and a host
app that mounts the plugin under a prefix): every entry answers exactly what the same request
answers alone, in order, with its status; one bad entry spoils only itself in a batch, and a whole
transaction; writes are refused; the Bundle is bounded; repeated entries come from the answer cache."""

from __future__ import annotations

import json
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from helpers import (
    CPT,
    CPT_VS,
    DISPLAY_97116,
    FHIR_JSON,
    ICD,
    ICD_TITLES,
    ICD_VS,
    MESSAGE_ID_URL,
    TX_ISSUE_TYPE,
    param,
    parameters,
    validate,
)
from fhir_xml import from_json, from_xml
from live_server import LiveServer, running_server, serving_app

from fhir_plugin import FhirTerminology
from fhir_plugin.fhirversions import FhirVersion
from fhir_plugin.render.xml_writer import dumps_xml

FHIR_XML = "application/fhir+xml"

TOKEN = "batch-token"


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with tempfile.TemporaryDirectory() as loaded, running_server(settings={
            "FHIR_PLUGIN_ADMIN_TOKEN": TOKEN, "FHIR_PLUGIN_LOAD_DIR": loaded}) as live:
        yield live


def call_bytes(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
    """(status, headers, body) of one request; a dict or list body is sent as FHIR JSON."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    sent = {"Content-Type": FHIR_JSON, **(headers or {})} if data is not None else dict(headers or {})
    request = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read()


def call(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    """(status, headers, JSON body or None) of one request."""
    status, got, raw = call_bytes(method, url, body, headers)
    return status, got, json.loads(raw) if raw else None


def batch(*entries: dict, kind: str = "batch") -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def post_entry(url: str, resource: dict) -> dict:
    return {"request": {"method": "POST", "url": url}, "resource": resource}


def get_entry(url: str, method: str = "GET") -> dict:
    return {"request": {"method": method, "url": url}}


def alone(base: str, entry: dict) -> tuple[int, Any]:
    """The answer to an entry's request sent on its own."""
    request = entry["request"]
    status, _, body = call(request["method"], f"{base}/{request['url']}", entry.get("resource"))
    return status, body


def outcome(message_id: str, code: str, text: str, expression: str | None = None, tx: str | None = None) -> dict:
    details: dict[str, Any] = {"text": text}
    if tx:
        details["coding"] = [{"system": TX_ISSUE_TYPE, "code": tx}]
    issue: dict[str, Any] = {"extension": [{"url": MESSAGE_ID_URL, "valueString": message_id}], "severity": "error",
                             "code": code, "details": details}
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def entry_statuses(bundle: dict) -> list[str]:
    return [e["response"]["status"] for e in bundle["entry"]]


def validator_batch() -> dict:
    """A batch as the HL7 validator's terminology client builds one: each entry a POST of
    CodeSystem/$validate-code (or ValueSet/$validate-code) with a Parameters of a `coding`, its
    options and the expansion `profile`; one of them is broken (its coding is a string)."""
    profile = parameters(param("includeDefinition", valueBoolean=False), param("excludeNested", valueBoolean=True))
    return batch(
        post_entry("CodeSystem/$validate-code", parameters(
            param("coding", valueCoding={"system": CPT, "code": "97116", "display": DISPLAY_97116}),
            param("default-to-latest-version", valueBoolean=True), param("profile", resource=profile))),
        post_entry("CodeSystem/$validate-code", parameters(
            param("coding", valueCoding={"system": ICD, "code": "R26.2"}), param("profile", resource=profile))),
        post_entry("ValueSet/$validate-code", parameters(
            param("coding", valueCoding={"system": ICD, "code": "M62.81"}), param("url", valueUri=ICD_VS),
            param("profile", resource=profile))),
        post_entry("CodeSystem/$validate-code", parameters(
            param("coding", valueString=f"{CPT}|97116"), param("profile", resource=profile))),
        post_entry("ValueSet/$validate-code", parameters(
            param("coding", valueCoding={"system": ICD, "code": "A00.0"}), param("url", valueUri=ICD_VS),
            param("profile", resource=profile))),
    )


@pytest.mark.parametrize("endpoint, version", [("r4", "R4"), ("r5", "R5"), ("fhir", "R4")])
def test_a_batch_of_validate_code_as_the_hl7_validator_sends_it(server, endpoint, version):
    base = f"{server.url}/{endpoint}"
    sent = validator_batch()
    status, headers, answer = call("POST", base, sent)
    assert (status, headers.get_content_type()) == (200, FHIR_JSON)
    validate(answer, version)
    assert (answer["resourceType"], answer["type"]) == ("Bundle", "batch-response")
    assert entry_statuses(answer) == ["200 OK", "200 OK", "200 OK", "400 Bad Request", "200 OK"]
    results = [next(p["valueBoolean"] for p in e["resource"]["parameter"] if p["name"] == "result")
               for e in answer["entry"] if e["resource"]["resourceType"] == "Parameters"]
    assert results == [True, True, True, False]
    assert {"name": "display", "valueString": ICD_TITLES["R26.2"]} in answer["entry"][1]["resource"]["parameter"]
    broken = outcome("PARAM_BAD_TYPE", "invalid", "Parameter 'coding' must be given as a Coding", "coding")
    assert answer["entry"][3] == {"resource": broken, "response": {"status": "400 Bad Request", "outcome": broken}}
    # each entry answers what the same request answers alone, byte for byte once parsed
    for sent_entry, got in zip(sent["entry"], answer["entry"]):
        status, body = alone(base, sent_entry)
        assert got["resource"] == body
        assert got["response"]["status"].split()[0] == str(status)


@pytest.mark.parametrize("endpoint, version", [("r4", FhirVersion.R4), ("r5", FhirVersion.R5)])
def test_a_batch_in_xml_and_its_answer_in_xml(server, endpoint, version):
    base = f"{server.url}/{endpoint}"
    sent = validator_batch()
    by_json = call("POST", base, sent)[2]
    xml = dumps_xml(sent, version)  # our writer; the independent reader checks that it holds the Bundle
    assert from_xml(xml) == from_json(sent)
    status, headers, answer = call("POST", base, xml, {"Content-Type": FHIR_XML, "Accept": FHIR_JSON})
    assert (status, headers.get_content_type(), answer) == (200, FHIR_JSON, by_json)
    for body, content_type in ((sent, FHIR_JSON), (xml, FHIR_XML)):
        status, headers, raw = call_bytes("POST", base, body, {"Content-Type": content_type, "Accept": FHIR_XML})
        assert (status, headers.get_content_type()) == (200, FHIR_XML)
        assert from_xml(raw) == from_json(by_json)
    # a failed transaction's OperationOutcome is negotiated too
    refused = call("POST", base, {**sent, "type": "transaction"})[2]
    status, headers, raw = call_bytes("POST", f"{base}?_format=xml", {**sent, "type": "transaction"})
    assert (status, headers.get_content_type(), from_xml(raw)) == (400, FHIR_XML, from_json(refused))


def test_the_trailing_slash_and_the_default_endpoint_answer_the_same(server):
    sent = validator_batch()
    answers = [call("POST", url, sent)[2] for url in (server.r4, f"{server.r4}/", f"{server.url}/fhir/")]
    assert answers[0] == answers[1] == answers[2]


def test_get_and_post_entries_read_search_and_operations(server):
    base = server.r4
    sent = batch(
        get_entry("CodeSystem/cpt-97116-fragment"),
        get_entry(f"ValueSet?url={CPT_VS}"),
        get_entry(f"CodeSystem/$lookup?system={CPT}&code=97116"),
        post_entry("ConceptMap/$translate", parameters(param("system", valueUri=CPT), param("code", valueCode="97116"),
                                                       param("targetsystem", valueUri=ICD))),
        get_entry(f"/CodeSystem/$subsumes?system={ICD}&codeA=M62.8&codeB=M62.81"),
        get_entry(f"{base}/CodeSystem/$lookup?system={ICD}&code=G81.90"),
        get_entry("metadata"),
        get_entry("CodeSystem/no-such-code-system"),
        get_entry("Patient/1"),
        get_entry(f"CodeSystem/$lookup?system={CPT}&code=97110"),
        get_entry("CodeSystem/cpt-97116-fragment", "HEAD"),
    )
    status, _, answer = call("POST", base, sent)
    assert status == 200
    validate(answer, "R4")
    assert entry_statuses(answer) == ["200 OK"] * 7 + ["404 Not Found"] * 3 + ["200 OK"]
    assert answer["entry"][0]["resource"]["id"] == "cpt-97116-fragment"
    assert answer["entry"][1]["resource"]["entry"][0]["fullUrl"] == f"{base}/ValueSet/cpt-gait-training"
    assert answer["entry"][2]["resource"]["parameter"][2] == {"name": "display", "valueString": DISPLAY_97116}
    assert answer["entry"][5]["resource"]["parameter"][2] == {"name": "display", "valueString": ICD_TITLES["G81.90"]}
    assert answer["entry"][8]["response"]["outcome"] == outcome(
        "NO_SUCH_PATH", "not-found", "There is no FHIR endpoint at /r4/Patient/1", tx="not-found")
    assert answer["entry"][10] == {"response": {"status": "200 OK"}}  # HEAD: the status, no resource
    for index in range(10):
        request = sent["entry"][index]["request"]
        url = request["url"].removeprefix(base).lstrip("/")
        assert (alone(base, {**sent["entry"][index], "request": {**request, "url": url}})[1]
                == answer["entry"][index]["resource"]), index


def test_r5_entries_answer_in_r5(server):
    sent = batch(get_entry(f"ConceptMap/$translate?sourceSystem={CPT}&sourceCode=97116&targetSystem={ICD}"),
                 get_entry("$versions"))
    status, _, answer = call("POST", server.r5, sent)
    assert status == 200
    validate(answer, "R5")
    assert answer["entry"][0]["resource"]["parameter"][1]["part"][0] == {"name": "relationship",
                                                                         "valueCode": "related-to"}
    assert answer["entry"][1]["resource"]["parameter"] == [{"name": "version", "valueCode": "5.0"},
                                                           {"name": "default", "valueCode": "5.0"}]


WRITES = [("PUT", "CodeSystem/cpt-97116-fragment", "update"), ("PATCH", "ValueSet/cpt-gait-training", "patch"),
          ("DELETE", "ConceptMap/cpt-97116-to-icd-10-cm", "delete"), ("POST", "CodeSystem", "create")]


def write_refused(index: int, method: str, url: str, action: str) -> dict:
    return outcome("BUNDLE_WRITE_REFUSED", "not-supported",
                   f"Bundle.entry[{index}] ({method} {url}) would {action} content, which this server does not do "
                   "through FHIR: a batch or transaction may hold reads, searches and operations only",
                   f"Bundle.entry[{index}]")


def test_writes_in_a_batch_are_refused_entry_by_entry(server):
    resource = {"resourceType": "CodeSystem", "id": "x", "status": "draft", "content": "not-present"}
    sent = batch(get_entry("$versions"),
                 *({"request": {"method": m, "url": u}, "resource": resource} for m, u, _ in WRITES))
    status, _, answer = call("POST", server.r4, sent)
    assert status == 200
    assert entry_statuses(answer) == ["200 OK"] + ["400 Bad Request"] * 4
    for index, (method, url, action) in enumerate(WRITES, start=1):
        assert answer["entry"][index]["response"]["outcome"] == write_refused(index, method, url, action)
    # nothing was written: the resource read afterwards is the shipped one
    assert call("GET", f"{server.r4}/CodeSystem/cpt-97116-fragment")[2]["status"] == "active"


def test_a_transaction_with_a_write_is_refused_whole(server):
    sent = batch(get_entry(f"CodeSystem/$lookup?system={CPT}&code=97116"),
                 {"request": {"method": "PUT", "url": "CodeSystem/x"},
                  "resource": {"resourceType": "CodeSystem", "id": "x"}}, kind="transaction")
    status, headers, answer = call("POST", server.r4, sent)
    assert (status, headers.get_content_type()) == (400, FHIR_JSON)
    failed = outcome("TRANSACTION_FAILED", "processing",
                     "The transaction failed at Bundle.entry[1] (PUT CodeSystem/x), which answered 400 Bad Request; "
                     "a transaction is answered whole or not at all", "Bundle.entry[1]")
    assert answer == {"resourceType": "OperationOutcome",
                      "issue": failed["issue"] + write_refused(1, "PUT", "CodeSystem/x", "update")["issue"]}


def test_a_transaction_of_reads_and_operations(server):
    sent = batch(get_entry(f"CodeSystem/$lookup?system={CPT}&code=97116"), get_entry("ValueSet/cpt-gait-training"),
                 post_entry("ValueSet/$validate-code", parameters(param("url", valueUri=ICD_VS),
                                                                  param("system", valueUri=ICD),
                                                                  param("code", valueCode="R26.2"))),
                 kind="transaction")
    status, _, answer = call("POST", server.r5, sent)
    assert status == 200
    validate(answer, "R5")
    assert (answer["type"], entry_statuses(answer)) == ("transaction-response", ["200 OK"] * 3)
    assert answer["entry"][2]["resource"]["parameter"][0] == {"name": "result", "valueBoolean": True}


def test_a_transaction_fails_with_the_status_of_its_failing_entry(server):
    sent = batch(get_entry("$versions"), get_entry(f"CodeSystem/$lookup?system={CPT}&code=97110"),
                 kind="transaction")
    status, _, answer = call("POST", server.r4, sent)
    _, own = alone(server.r4, sent["entry"][1])
    assert status == 404
    assert answer["issue"][0]["details"]["text"] == (
        f"The transaction failed at Bundle.entry[1] (GET CodeSystem/$lookup?system={CPT}&code=97110), which "
        "answered 404 Not Found; a transaction is answered whole or not at all")
    assert answer["issue"][1:] == own["issue"]


def test_bad_entries_spoil_only_themselves(server):
    sent = batch(
        "not an entry",
        {"request": {"method": "GET"}},
        {"request": {"method": "FETCH", "url": "metadata"}},
        {"resource": {"resourceType": "Parameters"}},
        get_entry("http://elsewhere.example.org/r4/metadata"),
        post_entry("", batch(get_entry("metadata"))),
        post_entry("CodeSystem/$lookup", batch(get_entry("metadata"))),
        post_entry("CodeSystem/$lookup", "not a resource"),
        get_entry("$versions"),
    )
    status, _, answer = call("POST", server.r4, sent)
    assert status == 200
    assert entry_statuses(answer) == ["400 Bad Request"] * 8 + ["200 OK"]
    texts = [e["response"]["outcome"]["issue"][0]["details"]["text"] for e in answer["entry"][:8]]
    assert texts == [
        "Bundle.entry[0] is not a request this server can read: an entry must be a JSON object",
        "Bundle.entry[1] is not a request this server can read: request.url must be a string",
        "Bundle.entry[2] is not a request this server can read: request.method must be one of GET, HEAD, POST, PUT, "
        "DELETE, PATCH, not 'FETCH'",
        "Bundle.entry[3] is not a request this server can read: it has no request (method and url)",
        "Bundle.entry[4] is not a request this server can read: request.url "
        f"'http://elsewhere.example.org/r4/metadata' is not below this endpoint's base, {server.r4}",
        "Bundle.entry[5] posts a Bundle; a Bundle inside a Bundle is not processed",
        "Bundle.entry[6] posts a Bundle; a Bundle inside a Bundle is not processed",
        "Bundle.entry[7] is not a request this server can read: its resource must be a JSON object (a Parameters "
        "resource)",
    ]


@pytest.mark.parametrize("body, status, message_id, text", [
    (b"{", 400, "BODY_NOT_JSON", "The request body is not valid JSON: Expecting property name enclosed in double "
                                 "quotes: line 1 column 2 (char 1)"),
    (parameters(), 400, "BUNDLE_NOT_BUNDLE",
     "The body POSTed to a FHIR base must be a Bundle of type batch or transaction, not Parameters"),
    ([], 400, "BUNDLE_NOT_BUNDLE",
     "The body POSTed to a FHIR base must be a Bundle of type batch or transaction, not list"),
    ({"resourceType": "Bundle", "type": "collection"}, 400, "BUNDLE_BAD_TYPE",
     "A Bundle POSTed to a FHIR base must be of type batch or transaction, not 'collection'"),
    ({"resourceType": "Bundle", "type": "batch", "entry": {}}, 400, "BUNDLE_BAD_ENTRY",
     "Bundle.entry[*] is not a request this server can read: Bundle.entry must be an array"),
])
def test_bundle_level_errors(server, body, status, message_id, text):
    got, headers, answer = call("POST", server.r4, body)
    assert (got, headers.get_content_type()) == (status, FHIR_JSON)
    issue = answer["issue"][0]
    assert (issue["extension"][0]["valueString"], issue["details"]["text"]) == (message_id, text)


def test_an_empty_batch_and_a_bundle_the_client_cannot_take(server):
    assert call("POST", server.r4, batch())[:3:2] == (200, {"resourceType": "Bundle", "type": "batch-response"})
    status, _, answer = call("POST", server.r4, validator_batch(), {"Accept": "text/turtle"})
    assert (status, answer["issue"][0]["extension"][0]["valueString"]) == (406, "NOT_ACCEPTABLE")


def test_the_entries_limit(server):
    limit = 1000
    status, _, answer = call("POST", server.r4, batch(*[get_entry("$versions")] * limit))
    assert (status, len(answer["entry"])) == (200, limit)
    status, _, answer = call("POST", server.r4, batch(*[get_entry("$versions")] * (limit + 1)))
    assert (status, answer) == (400, outcome(
        "BUNDLE_TOO_MANY_ENTRIES", "too-costly",
        f"The Bundle has {limit + 1} entries; this server answers at most {limit} in one Bundle", "Bundle.entry"))


def caches(server: LiveServer) -> dict:
    return call("GET", f"{server.url}/admin/caches", headers={"Authorization": f"Bearer {TOKEN}"})[2]


def test_repeated_entries_are_answered_from_the_answer_cache(server):
    lookup = f"CodeSystem/$lookup?system={ICD}&code=M62.81&property=parent"  # asked by no other test
    before = caches(server)["answers"]
    status, _, answer = call("POST", server.r4, batch(*[get_entry(lookup)] * 5))
    after = caches(server)["answers"]
    assert status == 200
    assert (after["misses"] - before["misses"], after["hits"] - before["hits"]) == (1, 4)
    assert len({json.dumps(e) for e in answer["entry"]}) == 1
    # the same request alone is the same cache's hit, and the same answer
    status, _, single = call("GET", f"{server.r4}/{lookup}", headers={"Accept": FHIR_JSON})
    assert caches(server)["answers"]["hits"] - after["hits"] == 1
    assert single == answer["entry"][0]["resource"]


# --- mounted in a host app ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mounted(service) -> Iterator[str]:
    host = Flask("host")

    @host.get("/hello")
    def hello():
        return "hello from the host"

    FhirTerminology(host, service=service, url_prefix="/terminology")
    with serving_app(host) as url:
        yield url


def test_a_batch_under_a_prefix(mounted):
    base = f"{mounted}/terminology/r4"
    sent = batch(get_entry(f"CodeSystem/$lookup?system={CPT}&code=97116"), get_entry("Patient/1"),
                 get_entry(f"{base}/ValueSet?_id=cpt-gait-training"))
    for url in (base, f"{base}/"):
        status, _, answer = call("POST", url, sent)
        assert (status, entry_statuses(answer)) == (200, ["200 OK", "404 Not Found", "200 OK"])
        assert answer["entry"][0]["resource"]["parameter"][2] == {"name": "display", "valueString": DISPLAY_97116}
        assert answer["entry"][1]["resource"]["issue"][0]["details"]["text"] == (
            "There is no FHIR endpoint at /terminology/r4/Patient/1")
        assert answer["entry"][2]["resource"]["entry"][0]["fullUrl"] == f"{base}/ValueSet/cpt-gait-training"


def test_a_gzip_client_gets_the_bundle_compressed_and_every_entry_whole(server: LiveServer) -> None:
    """Accept-Encoding applies to the Bundle's answer, never to an entry's (their JSON is spliced in)."""
    import gzip

    entries = (get_entry(f"CodeSystem/$lookup?system={CPT}&code=97116"),  # an answer above the gzip threshold
               post_entry("CodeSystem/$validate-code", parameters(param("url", valueUri=ICD), param("code", valueCode="R26.2"))))
    bundle = json.dumps(batch(*entries)).encode()
    plain_status, _, plain = call_bytes("POST", f"{server.url}/r4", bundle)
    status, headers, raw = call_bytes("POST", f"{server.url}/r4", gzip.compress(bundle),
                                      {"Accept-Encoding": "gzip", "Content-Encoding": "gzip"})
    assert (plain_status, status, headers["Content-Encoding"]) == (200, 200, "gzip")
    answer = json.loads(gzip.decompress(raw))
    assert answer == json.loads(plain)
    assert [e["response"]["status"] for e in answer["entry"]] == ["200 OK", "200 OK"]
    lookup = {p["name"]: p for p in answer["entry"][0]["resource"]["parameter"]}
    assert lookup["display"]["valueString"] == DISPLAY_97116
    assert len(json.dumps(answer["entry"][0]["resource"])) > 1024  # above the threshold: not compressed on its own


def test_a_repeated_batch_is_answered_from_kept_answers_without_a_view(service, monkeypatch):
    """Entries whose answers are kept are looked up as the front door looks (no request object, no
    route match, no view); the Bundle is the same bytes as when every entry went to its view."""
    from fhir_plugin import create_app
    from fhir_plugin.web import views

    app = create_app(service=service)
    asked: list[str] = []
    original = views.answer

    def counted(req, *args):
        asked.append(f"{req.method} {req.path}")
        return original(req, *args)

    monkeypatch.setattr(views, "answer", counted)
    validations = [post_entry("CodeSystem/$validate-code", parameters(param("url", valueUri=ICD), param("code", valueCode=c)))
                   for c in ("R26.2", "M62.81", "X99.999")]
    sent = batch(*validations, get_entry(f"CodeSystem/$lookup?system={CPT}&code=97116"),
                 get_entry("CodeSystem/icd-10-cm?_summary=true"), get_entry("$versions"),
                 get_entry(f"CodeSystem/$lookup?system={CPT}&code=97116", "HEAD"))
    client = app.test_client()
    first = client.post("/r4", json=sent)
    asked_first, asked[:] = list(asked), []
    again = client.post("/r4", json=sent)
    assert first.status_code == again.status_code == 200
    assert again.get_data() == first.get_data()
    assert asked_first == ["POST /r4", *(["POST /r4/CodeSystem/$validate-code"] * 3), "GET /r4/CodeSystem/$lookup",
                           "GET /r4/CodeSystem/icd-10-cm", "GET /r4/$versions", "HEAD /r4/CodeSystem/$lookup"]
    assert asked == ["POST /r4", "GET /r4/$versions"]  # $versions is never kept
    assert [e["response"]["status"] for e in again.get_json()["entry"]] == ["200 OK"] * 7
    stats = app.extensions["fhir_plugin"].runtime.answers.stats
    assert (stats.misses, stats.hits) == (6, 6)
