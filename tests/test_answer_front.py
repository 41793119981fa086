"""The answer cache's front door (web/front.py): in the standalone app, a request whose answer is
kept is answered before Flask sees it, with the very bytes Flask gave, observed like any other
request; everything else passes through to Flask unchanged."""

from __future__ import annotations

import gzip
import io
import json
import logging

import pytest
from flask import Flask
from helpers import CPT, ICD, ICD_VS, param, parameters

from fhir_plugin import FhirTerminology, create_app

LOOKUP = f"/r4/CodeSystem/$lookup?system={CPT}&code=97116"
LOOKUP_BODY = json.dumps(parameters(param("system", valueUri=CPT), param("code", valueCode="97116"))).encode()


class Flasked:
    """Counts the requests that reached Flask's request handling (its before-request hooks)."""

    def __init__(self, app: Flask):
        self.count = 0

        def seen() -> None:
            self.count += 1

        app.before_request(seen)


@pytest.fixture
def app(service):
    return create_app(service=service)


@pytest.fixture
def flasked(app):
    return Flasked(app)


def seen(response) -> tuple:
    headers = [(k, v) for k, v in response.headers.items() if k != "X-Request-ID"]
    return response.status, headers, response.get_data()


# (method, path, keyword arguments of the test client): answers and errors, GET and POST, JSON,
# XML and form bodies, compressed answers, both versions and the default base
KEPT = [
    ("GET", LOOKUP, {}),
    ("GET", LOOKUP + "&_format=xml", {}),
    ("GET", f"/r5/CodeSystem/$lookup?system={CPT}&code=97110", {}),  # 404, kept as deterministic
    ("GET", "/fhir/CodeSystem/$lookup?code=97116", {}),  # 400
    ("GET", f"/r4/ValueSet/$validate-code?url={ICD_VS}&system={ICD}&code=R26.2", {"headers": {"Accept-Language": "de"}}),
    ("GET", f"/r4/CodeSystem/icd-10-cm?_summary=true", {"headers": {"Accept-Encoding": "gzip"}}),
    ("POST", "/r4/CodeSystem/$lookup", {"data": LOOKUP_BODY, "content_type": "application/fhir+json"}),
    ("POST", "/r5/CodeSystem/$lookup", {"data": f"system={CPT}&code=97116",
                                        "content_type": "application/x-www-form-urlencoded"}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), KEPT, ids=[f"{m}-{p.split('?')[0]}-{i}" for i, (m, p, _) in enumerate(KEPT)])
def test_a_kept_answer_is_given_without_flask_and_is_the_same(app, flasked, method, path, kwargs):
    client = app.test_client()
    first = client.open(path, method=method, **kwargs)
    assert flasked.count == 1
    again = client.open(path, method=method, **kwargs)
    assert flasked.count == 1  # the front door answered
    assert seen(again) == seen(first)
    assert again.headers["X-Request-ID"] != first.headers["X-Request-ID"]


def test_a_compressed_kept_answer_is_still_compressed(app, flasked):
    client = app.test_client()
    path = "/r4/CodeSystem/icd-10-cm?_summary=true"
    first, again = (client.get(path, headers={"Accept-Encoding": "gzip"}) for _ in range(2))
    assert (flasked.count, again.headers["Content-Encoding"]) == (1, "gzip")
    assert json.loads(gzip.decompress(again.get_data()))["id"] == "icd-10-cm"
    assert client.get(path).headers.get("Content-Encoding") is None  # another key: Flask answers
    assert flasked.count == 2


@pytest.mark.parametrize(("method", "path", "kwargs"), [
    ("HEAD", LOOKUP, {}),
    ("GET", "/r4/metadata", {}),  # not kept
    ("GET", "/ui/", {}),  # outside the FHIR bases
    ("POST", "/r4/CodeSystem/$lookup", {"data": gzip.compress(LOOKUP_BODY), "content_type": "application/fhir+json",
                                        "headers": {"Content-Encoding": "gzip"}}),
])
def test_what_the_front_door_leaves_to_flask(app, flasked, method, path, kwargs):
    client = app.test_client()
    first = client.open(path, method=method, **kwargs)
    again = client.open(path, method=method, **kwargs)
    assert flasked.count == 2
    assert (first.status_code, again.status_code) == ((200, 200) if path != "/ui/" else (first.status_code,) * 2)


def test_a_compressed_body_is_answered_from_the_cache_in_flask(app, flasked):
    """Its key is the inflated body's: the plain body's answer, found by views.handle."""
    client = app.test_client()
    plain = client.post("/r4/CodeSystem/$lookup", data=LOOKUP_BODY, content_type="application/fhir+json")
    packed = client.post("/r4/CodeSystem/$lookup", data=gzip.compress(LOOKUP_BODY), content_type="application/fhir+json",
                         headers={"Content-Encoding": "gzip"})
    assert flasked.count == 2
    assert packed.get_data() == plain.get_data()
    assert app.extensions["fhir_plugin"].runtime.answers.stats.hits == 1


def test_a_body_cut_short_fails_as_it_did_without_the_door(app, flasked):
    """The door reads a POST's body; one shorter than its Content-Length is handed on as read, and
    Flask's reading of it fails the same way."""
    app.test_client().post("/r4/CodeSystem/$lookup", data=LOOKUP_BODY, content_type="application/fhir+json")
    statuses: list[str] = []
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/r4/CodeSystem/$lookup", "QUERY_STRING": "",
               "SERVER_NAME": "localhost", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
               "wsgi.url_scheme": "http", "CONTENT_TYPE": "application/fhir+json",
               "CONTENT_LENGTH": str(len(LOOKUP_BODY)), "wsgi.input": io.BytesIO(LOOKUP_BODY[:20]),
               "wsgi.errors": io.StringIO()}
    body = b"".join(app.wsgi_app(environ, lambda status, headers, exc_info=None: statuses.append(status)))
    assert (statuses, flasked.count) == (["400 BAD REQUEST"], 2)
    assert json.loads(body)["resourceType"] == "OperationOutcome"


def test_a_hit_is_observed(app, caplog):
    from prometheus_client import REGISTRY

    client = app.test_client()
    labels = {"operation": "$lookup", "fhir_version": "R4", "status": "200", "cache": "hit"}
    before = REGISTRY.get_sample_value("fhir_plugin_requests_total", labels) or 0.0
    client.get(LOOKUP)
    with caplog.at_level(logging.INFO, logger="fhir_plugin.access"):
        again = client.get(LOOKUP, headers={"X-Request-ID": "front-1"})
    assert again.headers["X-Request-ID"] == "front-1"
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "fhir_plugin.access"]
    assert [(line["requestId"], line["method"], line["path"], line["operation"], line["fhirVersion"], line["status"],
             line["cache"], line["bytes"]) for line in lines] == [
        ("front-1", "GET", "/r4/CodeSystem/$lookup", "$lookup", "R4", 200, "hit", len(again.get_data()))]
    assert REGISTRY.get_sample_value("fhir_plugin_requests_total", labels) == before + 1


def test_new_content_is_not_answered_from_the_door(service, tmp_path):
    token = "front-token"
    app = create_app({"FHIR_PLUGIN_ADMIN_TOKEN": token, "FHIR_PLUGIN_LOAD_DIR": str(tmp_path)}, service=service)
    client = app.test_client()
    system = "http://example.org/front"

    def load(display: str) -> None:
        document = {"resourceType": "CodeSystem", "url": system, "version": "1", "status": "active",
                    "content": "complete", "concept": [{"code": "a", "display": display}]}
        response = client.post("/admin/content", query_string={"name": "front.json"}, json=document,
                               headers={"Authorization": f"Bearer {token}"})
        assert response.status_code in (200, 201)

    def display() -> str:
        answer = client.get(f"/r4/CodeSystem/$lookup?system={system}&code=a").get_json()
        return next(p["valueString"] for p in answer["parameter"] if p["name"] == "display")

    load("First")
    assert [display(), display()] == ["First", "First"]
    load("Second")
    assert [display(), display()] == ["Second", "Second"]


def test_a_host_app_has_no_front_door_and_still_its_cache(service):
    host = Flask("host")
    FhirTerminology(host, service=service, url_prefix="/tx")
    flasked = Flasked(host)
    client = host.test_client()
    first, again = (client.get(LOOKUP.replace("/r4", "/tx/r4")) for _ in range(2))
    assert flasked.count == 2
    assert again.get_data() == first.get_data()
    assert host.extensions["fhir_plugin"].runtime.answers.stats.hits == 1


class Recording(io.BytesIO):
    def __init__(self, data: bytes):
        super().__init__(data)
        self.asked: list[int | None] = []

    def read(self, size: int | None = -1) -> bytes:
        self.asked.append(size)
        return super().read(size)


def test_a_body_over_the_limit_is_not_read_by_the_door(service):
    """An attack on the door: a POST announcing more than the request limit. Nothing reads any of
    it, neither the door nor the lane (web/lane.py) it goes on to, which refuses it (413) as Flask
    did."""
    app = create_app({"FHIR_PLUGIN_MAX_REQUEST_BYTES": 1000}, service=service)
    stream = Recording(b"x" * 5000)
    statuses: list[str] = []
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/r4/CodeSystem/$lookup", "QUERY_STRING": "",
               "SERVER_NAME": "localhost", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
               "wsgi.url_scheme": "http", "CONTENT_TYPE": "application/fhir+json", "CONTENT_LENGTH": "5000",
               "wsgi.input": stream, "wsgi.errors": io.StringIO()}
    body = b"".join(app.wsgi_app(environ, lambda status, headers, exc_info=None: statuses.append(status)))
    assert stream.asked == []
    assert statuses == ["413 REQUEST ENTITY TOO LARGE"]
    assert json.loads(body)["issue"][0]["code"] == "too-long"


def test_the_door_counts_no_miss_for_what_is_never_kept(app):
    """The door looks for every request below a base; only a request the cache is for (counted in
    views.handle) is a miss in the cache's figures."""
    client = app.test_client()
    for _ in range(2):
        client.get("/r4/metadata")
        client.post("/r4/ValueSet/$expand", query_string={"url": ICD_VS})
    client.get(LOOKUP)
    client.get(LOOKUP)
    stats = app.extensions["fhir_plugin"].runtime.answers.stats
    assert (stats.misses, stats.hits) == (1, 1)


def test_a_page_naming_its_host_is_never_kept(app, flasked):
    """An attack on the cache: a browser's read of a resource is the UI's page, whose links name
    the host asked. A request with a forged Host must not leave its links for the next client."""
    client = app.test_client()
    browser = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    path = "/r4/CodeSystem/icd-10-cm"
    for _ in range(2):
        forged = client.get(path, headers={**browser, "Host": "evil.example"})
        assert forged.status_code == 200 and b"http://evil.example/" in forged.get_data()
    honest = client.get(path, headers=browser)
    assert b"evil.example" not in honest.get_data() and b"http://localhost/r4" in honest.get_data()
    assert flasked.count == 3
    assert app.extensions["fhir_plugin"].runtime.answers.stats.hits == 0


def test_the_door_looks_only_where_answers_are_kept(app):
    """front.may_be_kept says of a path what the views' routes say (route(..., cached=True)): every
    rule of a FHIR base, with sample values in its placeholders."""
    import re
    from functools import partial

    from fhir_plugin.web import front

    checked = {}
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("fhir_plugin_r4."):
            continue
        view = app.view_functions[rule.endpoint]
        if not isinstance(view, partial):
            continue
        path = re.sub(r"<(?:[^:>]*:)?([^>]+)>", lambda m: {"resource_type": "CodeSystem"}.get(m.group(1), "x"),
                      rule.rule)
        checked[path] = (front.may_be_kept(path), view.args[0].cached)
    assert {path for path, (door, view) in checked.items() if door != view} == set()
    assert sorted(path for path, (door, _) in checked.items() if door) == [
        "/r4/CodeSystem/$lookup", "/r4/CodeSystem/$subsumes", "/r4/CodeSystem/$validate-code", "/r4/CodeSystem/x",
        "/r4/CodeSystem/x/$lookup", "/r4/CodeSystem/x/$subsumes", "/r4/CodeSystem/x/$validate-code",
        "/r4/ConceptMap/$translate", "/r4/ConceptMap/x/$translate", "/r4/ValueSet/$validate-code",
        "/r4/ValueSet/x/$validate-code"]
