"""Every answer is FHIR: whatever the path and the method, a server started as `make serve` starts it
and a host app that mounts the plugin under a prefix answer with FHIR JSON (a resource or an
OperationOutcome), never HTML, never a redirect, never a 5xx; a 405 carries Allow, OPTIONS answers
Allow, HEAD answers GET's head; case mistakes name the right path; the host's own routes are its own."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from flask import Flask
from fhir_xml import from_xml
from helpers import CPT, FHIR_JSON, MESSAGE_ID_URL, TX_ISSUE_TYPE
from live_server import LiveServer, running_server, serving_app

from fhir_plugin import FhirTerminology

FHIR_XML = "application/fhir+xml"
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND", "FOO"]
LOOKUP = f"/CodeSystem/$lookup?system={CPT}&code=97116"
SEEDS = ["/r4/metadata", f"/r4{LOOKUP}", "/r5/ValueSet/cpt-gait-training", "/fhir/ConceptMap", "/r4",
         "/r5/CodeSystem/cpt-97116-fragment/$validate-code?code=97116", "/r4/$versions", "/admin/caches", ""]


def odd_paths() -> list[str]:
    """Variants of real paths a client might send by mistake or on purpose, a few hundred with the methods."""
    found: list[str] = []
    for seed in SEEDS:
        path, _, query = seed.partition("?")
        query = f"?{query}" if query else ""
        found += [seed, path.upper() + query, path.lower() + query, path.swapcase() + query, path + "/" + query,
                  path + "//" + query, "/" + path + query, path.replace("/", "//") + query,
                  path.replace("$", "%24") + query, path.replace("/", "%2F") + query, path + "/./" + query,
                  path + "/../" + query, path + "/%2e%2e/metadata", path + "%00" + query, path + "/%ff%fe",
                  path + "/%E2%82%AC", path + "?_format=xml", path + "?%ff=1"]
    found += ["/", "/xyz", "/r6/metadata", "/R4", "/FHIR/metadata", "/r4/Patient/1", "/r4/CodeSystem/$LOOKUP",
              "/r4/codesystem/$lookup", "/r4/CodeSystem/$compare", "/../../etc/passwd", "/r4/" + "a/" * 900,
              "/r4/" + "x" * 6000, "/r4/%", "/r4/%zz", "/r4/CodeSystem/" + "%41" * 300, "/.fhir-plugin-outcome/400.json",
              "/r4/metadata;jsessionid=1", "/r4/metadata#frag", "/r4/%C3%A9"]
    return list(dict.fromkeys(found))


def send(url: str, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request with the path exactly as given (no client-side normalisation), on its own connection."""
    address = urlsplit(url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Type", FHIR_JSON)
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def assert_fhir(status: int, headers: http.client.HTTPMessage, body: bytes, method: str, what: str) -> None:
    assert status < 500 and not 300 <= status < 400, (what, status, body[:300])
    assert b"<html" not in body.lower() and b"traceback" not in body.lower(), (what, body[:300])
    if status == 405:
        assert headers["Allow"], what
    if method == "OPTIONS" and status == 204:
        assert (body, headers["Allow"] is not None, headers["Content-Type"]) == (b"", True, None), what
        return
    content_type = headers.get_content_type()
    assert content_type in (FHIR_JSON, "application/json", FHIR_XML), (what, headers["Content-Type"])
    if method == "HEAD":
        assert body == b"", what
        return
    if content_type == FHIR_XML:  # asked for with _format=xml: FHIR XML, read by the tests' own reader
        document = from_xml(body)
        [(resource_type, content)] = document.items()
        severity = content[0]["issue"][0]["severity"][0]["@value"] if resource_type == "OperationOutcome" else None
    else:
        document = json.loads(body)
        resource_type = document.get("resourceType")
        severity = document["issue"][0]["severity"] if resource_type == "OperationOutcome" else None
    assert isinstance(resource_type, str), (what, body[:300])
    if status >= 400:
        assert (resource_type, severity in ("error", "fatal")) == ("OperationOutcome", True), (what, body[:300])


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with running_server(make_serve=True) as live:
        yield live


def host_app(service) -> Flask:
    host = Flask("host")

    @host.get("/hello")
    def hello():
        return "hello from the host"

    FhirTerminology(host, service=service, url_prefix="/terminology")
    return host


@pytest.fixture(scope="module")
def mounted(service) -> Iterator[str]:
    with serving_app(host_app(service)) as url:
        yield url


def test_a_few_hundred_odd_requests_to_the_server_are_answered_in_fhir(server):
    paths = odd_paths()
    assert len(paths) * len(METHODS) > 500
    for path in paths:
        for method in METHODS:
            body = b'{"resourceType":"Parameters"}' if method in ("POST", "PUT", "PATCH") else None
            assert_fhir(*send(server.url, method, path or "/", body), method, f"{method} {path}")


def test_a_few_hundred_odd_requests_below_the_prefix_are_answered_in_fhir(mounted):
    # below the prefix: what follows it starts a new segment ("/terminology%00" is a path of the host's)
    below = [p for p in odd_paths() if not p or p.startswith(("/", "?"))]
    paths = ["/terminology" + p for p in below] + ["/terminology", "/terminology/", "/terminology//r4/metadata"]
    assert len(paths) * len(METHODS) > 500
    for path in paths:
        for method in METHODS:
            assert_fhir(*send(mounted, method, path), method, f"{method} {path}")


def test_the_host_keeps_its_own_routes_and_pages(mounted):
    assert send(mounted, "GET", "/hello")[::2] == (200, b"hello from the host")
    status, headers, body = send(mounted, "GET", "/missing")
    assert (status, headers.get_content_type()) == (404, "text/html")  # the host's own 404 page
    status, headers, _ = send(mounted, "DELETE", "/hello")
    assert (status, headers.get_content_type()) == (405, "text/html")  # the host's own 405 page
    assert set(headers["Allow"].split(", ")) == {"HEAD", "GET", "OPTIONS"}
    assert send(mounted, "GET", "/terminologyx")[0] == 404 and send(mounted, "GET", "/r4/metadata")[0] == 404


def outcome_of(answer: tuple[int, http.client.HTTPMessage, bytes]) -> tuple[int, str, str]:
    status, _, body = answer
    issue = json.loads(body)["issue"][0]
    return status, issue["extension"][0]["valueString"], issue["details"]["text"]


@pytest.mark.parametrize("path, version", [("/r4", "R4"), ("/r4/", "R4"), ("/r5", "R5"), ("/fhir", "R4")])
def test_get_on_a_base_says_where_the_capability_statement_is(server, path, version):
    here = path.rstrip("/")
    status, headers, body = send(server.url, "GET", path)
    assert json.loads(body) == {"resourceType": "OperationOutcome", "issue": [{
        "extension": [{"url": MESSAGE_ID_URL, "valueString": "BASE_NOT_READABLE"}], "severity": "error",
        "code": "not-found", "details": {"coding": [{"system": TX_ISSUE_TYPE, "code": "not-found"}], "text": (
            f"{here} is the base of a FHIR {version} endpoint, not something to read: its CapabilityStatement is GET "
            f"{here}/metadata, and a batch or transaction Bundle is POSTed here")}}]}
    assert (status, headers.get_content_type()) == (404, FHIR_JSON)


@pytest.mark.parametrize("path", ["/r4/metadata", f"/r4/CodeSystem/$lookup/?system={CPT}&code=97116",
                                  "/r5/ValueSet/cpt-gait-training", "/r4/CodeSystem"])
def test_a_trailing_slash_answers_as_without_it(server, path):
    without = path.replace("/?", "?")
    slashed = path if "/?" in path else path + "/"
    first, second = send(server.url, "GET", without), send(server.url, "GET", slashed)
    assert first[0] == second[0] == 200
    one, other = json.loads(first[2]), json.loads(second[2])
    if one["resourceType"] == "Bundle":  # a searchset's self link names the search without the slash
        assert one["link"] == other["link"] == [{"relation": "self", "url": server.url + without}]
    assert one == other


@pytest.mark.parametrize("path, message_id, text", [
    ("/R4/metadata", "NO_SUCH_PATH_CASE",
     "There is no FHIR endpoint at /R4/metadata; paths are case-sensitive: did you mean /r4/metadata?"),
    ("/r4/codesystem/$lookup", "NO_SUCH_PATH_CASE",
     "There is no FHIR endpoint at /r4/codesystem/$lookup; paths are case-sensitive: did you mean "
     "/r4/CodeSystem/$lookup?"),
    ("/R5/valueset/cpt-gait-training/$Expand", "NO_SUCH_PATH_CASE",
     "There is no FHIR endpoint at /R5/valueset/cpt-gait-training/$Expand; paths are case-sensitive: did you mean "
     "/r5/ValueSet/cpt-gait-training/$expand?"),
    ("/r4/CodeSystem/$LOOKUP", "NO_SUCH_OPERATION_CASE",
     "This server has no operation $LOOKUP on CodeSystem; paths are case-sensitive: did you mean "
     "/r4/CodeSystem/$lookup?"),
    ("/r4/CodeSystem/$compare", "NO_SUCH_OPERATION", "This server has no operation $compare on CodeSystem"),
    ("/r4/Patient/1", "NO_SUCH_PATH", "There is no FHIR endpoint at /r4/Patient/1"),
    ("/xyz", "NO_SUCH_PATH_BASES",
     "There is no FHIR endpoint at /xyz; the FHIR bases here are /r4 (R4), /r5 (R5) and /fhir (R4)"),
    ("/r4//metadata", "NO_SUCH_PATH_BASES",
     "There is no FHIR endpoint at /r4//metadata; the FHIR bases here are /r4 (R4), /r5 (R5) and /fhir (R4)"),
])
def test_a_path_that_is_not_there_says_what_is(server, path, message_id, text):
    assert outcome_of(send(server.url, "GET", path)) == (404, message_id, text)


def test_the_root_names_the_bases(server, mounted):
    for url, root, prefix in ((server.url, "/", ""), (mounted, "/terminology", "/terminology"),
                              (mounted, "/terminology/", "/terminology")):
        status, headers, body = send(url, "GET", root)
        assert (status, headers.get_content_type()) == (200, FHIR_JSON)
        assert json.loads(body) == {"resourceType": "OperationOutcome", "issue": [{
            "severity": "information", "code": "informational", "details": {
                "text": f"fhir_plugin, a FHIR terminology server; its FHIR bases are {prefix}/r4 (R4), {prefix}/r5 (R5) "
                        f"and {prefix}/fhir (R4)"}}]}
    assert outcome_of(send(mounted, "GET", "/terminology/xyz")) == (
        404, "NO_SUCH_PATH_BASES", "There is no FHIR endpoint at /terminology/xyz; the FHIR bases here are "
                                   "/terminology/r4 (R4), /terminology/r5 (R5) and /terminology/fhir (R4)")


@pytest.mark.parametrize("method, path, allow", [
    ("DELETE", f"/r4{LOOKUP}", "GET, HEAD, POST, OPTIONS"),
    ("PUT", "/r5/metadata", "GET, HEAD, OPTIONS"),
    ("PATCH", "/r4/CodeSystem/cpt-97116-fragment", "GET, HEAD, OPTIONS"),
    ("POST", "/r4/ValueSet", "GET, HEAD, OPTIONS"),
    ("DELETE", "/r4", "GET, HEAD, POST, OPTIONS"),
    ("PROPFIND", "/fhir/$versions", "GET, HEAD, POST, OPTIONS"),
    ("PUT", "/", "GET, HEAD, OPTIONS"),
])
def test_a_405_says_what_is_allowed(server, method, path, allow):
    status, headers, body = send(server.url, method, path)
    assert (status, headers["Allow"]) == (405, allow)
    issue = json.loads(body)["issue"][0]
    assert (issue["code"], issue["details"]["text"]) == ("not-supported",
                                                          f"Method {method} is not allowed on {path.split('?')[0]}")


@pytest.mark.parametrize("path, allow", [(f"/r4{LOOKUP}", "GET, HEAD, POST, OPTIONS"),
                                         ("/r5/metadata", "GET, HEAD, OPTIONS"), ("/r4", "GET, HEAD, POST, OPTIONS"),
                                         ("/", "GET, HEAD, OPTIONS")])
def test_options_says_what_is_allowed(server, path, allow):
    status, headers, body = send(server.url, "OPTIONS", path)
    assert (status, headers["Allow"], headers["Content-Type"], body) == (204, allow, None, b"")


@pytest.mark.parametrize("path", ["/r4/metadata", f"/r4{LOOKUP}", "/r4/Patient/1", "/r4"])
def test_head_answers_the_head_of_get(server, path):
    got, head = send(server.url, "GET", path), send(server.url, "HEAD", path)
    assert head[0] == got[0] and head[2] == b""
    assert (head[1]["Content-Type"], head[1]["Content-Length"]) == (got[1]["Content-Type"], str(len(got[2])))
