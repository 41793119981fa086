"""The standalone app's lane for operations (web/lane.py): a GET or POST to an operation's path is
answered by its view without Flask's request context, with exactly the answer Flask gives, errors
included, and observed the same way; everything else goes through Flask."""

from __future__ import annotations

import gzip
import json
import logging
import re

import pytest
from helpers import CM_URL, CPT, ICD, ICD_VS, param, parameters

from fhir_plugin import create_app

LOOKUP_BODY = json.dumps(parameters(param("system", valueUri=CPT), param("code", valueCode="97116"))).encode()
INLINE_VS = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [
    {"system": ICD, "filter": [{"property": "concept", "op": "is-a", "value": "M62"}]}]}}
EXPAND_BODY = json.dumps(parameters({"name": "valueSet", "resource": INLINE_VS}, param("filter", valueString="weakness"),
                                    param("count", valueInteger=3))).encode()
XML_LOOKUP = (b'<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="system"/><valueUri value="'
              + CPT.encode() + b'"/></parameter><parameter><name value="code"/><valueCode value="97116"/>'
              b'</parameter></Parameters>')
JSON = "application/fhir+json"


class Dispatched:
    """Counts the requests Flask dispatched (routed and handed to a view)."""

    def __init__(self, app, monkeypatch):
        self.count = 0
        original = app.full_dispatch_request

        def counted():
            self.count += 1
            return original()

        monkeypatch.setattr(app, "full_dispatch_request", counted)


@pytest.fixture
def lane_app(service):
    return create_app(service=service)


@pytest.fixture
def flask_app(service):
    """The same app with its lane closed: every request that the door does not answer goes to Flask."""
    app = create_app(service=service)
    app.front.lanes = None
    return app


# (method, path, keyword arguments of the test client): answers and errors of every lane operation,
# both versions, type and instance level, JSON, XML and form bodies, compressed bodies and answers
REQUESTS = [
    ("GET", f"/r4/CodeSystem/$lookup?system={CPT}&code=97116", {}),
    ("GET", f"/r5/CodeSystem/$lookup?system={ICD}&code=M62.81&_format=xml", {}),
    ("GET", f"/r4/CodeSystem/$lookup?system={ICD}&code=M62.81&_pretty=true", {"headers": {"Accept-Encoding": "gzip"}}),
    ("GET", "/r4/CodeSystem/icd-10-cm/$lookup?code=R26.2", {}),
    ("GET", "/r4/CodeSystem/no-such-id/$lookup?code=R26.2", {}),  # 404
    ("GET", f"/r4/CodeSystem/$lookup?system={ICD}&code=X99.999", {}),  # 404
    ("GET", "/fhir/CodeSystem/$lookup?code=97116", {}),  # 400: no system
    ("GET", "/r4/CodeSystem/$lookup?code=97116&_format=xml", {}),  # 400 in R4's XML
    ("GET", f"/r4/CodeSystem/$lookup?system={CPT}&code=%FF", {}),  # 400: not UTF-8
    ("GET", f"/r4/CodeSystem/$lookup?system={CPT}&code=97116", {"headers": {"Accept": "text/csv"}}),  # 406
    ("GET", f"/r4/CodeSystem/$lookup?system={CPT}&code=97116", {"headers": {"Accept-Encoding": "br;q=1, *;q=0"}}),
    ("POST", "/r4/CodeSystem/$lookup", {"data": LOOKUP_BODY, "content_type": JSON}),
    ("POST", "/r4/CodeSystem/$lookup", {"data": XML_LOOKUP, "content_type": "application/fhir+xml"}),
    ("POST", "/r5/CodeSystem/$lookup", {"data": f"system={CPT}&code=97116",
                                        "content_type": "application/x-www-form-urlencoded"}),
    ("POST", "/r4/CodeSystem/$lookup", {"data": gzip.compress(LOOKUP_BODY), "content_type": JSON,
                                        "headers": {"Content-Encoding": "gzip"}}),
    ("POST", "/r4/CodeSystem/$lookup", {"data": b"{not json", "content_type": JSON}),  # 400
    ("POST", "/r4/CodeSystem/$lookup", {"data": LOOKUP_BODY, "content_type": "text/plain"}),  # 415
    ("POST", "/r4/CodeSystem/$lookup", {"data": b"[" * 5000 + b"]" * 5000, "content_type": JSON}),  # too deep
    ("GET", f"/r4/ValueSet/$validate-code?url={ICD_VS}&system={ICD}&code=R26.2", {"headers": {"Accept-Language": "de"}}),
    ("GET", f"/r5/ConceptMap/$translate?sourceSystem={CPT}&sourceCode=97116&targetSystem={ICD}", {}),
    ("GET", f"/r4/ConceptMap/$translate?url={CM_URL}&system={CPT}&code=97116", {}),
    ("GET", f"/r4/CodeSystem/$subsumes?system={ICD}&codeA=M62&codeB=M62.81", {}),
    ("GET", f"/r4/CodeSystem/$validate-code?url={ICD}&code=M62.81&display=wrong", {}),
    ("GET", f"/r4/ValueSet/$expand?url={ICD_VS}", {"headers": {"Accept-Encoding": "gzip"}}),
    ("GET", f"/r4/ValueSet/$expand?url={ICD_VS}&count=100000", {}),
    ("POST", "/r4/ValueSet/$expand", {"data": EXPAND_BODY, "content_type": JSON}),
    ("GET", "/r4/ValueSet/$expand?url=http://example.org/nothing", {}),  # 404
    ("POST", "/r4/ValueSet/$batch-validate-code", {"data": json.dumps(parameters(
        param("url", valueUri=ICD_VS),
        {"name": "validation", "part": [param("system", valueUri=ICD), param("code", valueCode="R26.2")]})).encode(),
        "content_type": JSON}),
    ("GET", "/r5/$versions", {}),
]


def answered(response) -> tuple:
    """What a client receives, but for the request id and what makes each expansion its own (its
    identifier and time: a compressed expansion's length may differ with them)."""
    body = response.get_data()
    packed = response.headers.get("Content-Encoding") == "gzip"
    if packed:
        body = gzip.decompress(body)
    body = re.sub(rb'"identifier":"urn:uuid:[0-9a-f-]{36}","timestamp":"[^"]+"', b'"identifier":-,"timestamp":-', body)
    left_out = {"X-Request-ID", "Content-Length"} if packed else {"X-Request-ID"}
    headers = sorted((k, v) for k, v in response.headers.items() if k not in left_out)
    return response.status, headers, body


@pytest.mark.parametrize(("method", "path", "kwargs"), REQUESTS,
                         ids=[f"{i}-{m}-{p.split('?')[0]}" for i, (m, p, _) in enumerate(REQUESTS)])
def test_the_lane_answers_what_flask_answers(lane_app, flask_app, monkeypatch, method, path, kwargs):
    through_lane, through_flask = Dispatched(lane_app, monkeypatch), Dispatched(flask_app, monkeypatch)
    mine = lane_app.test_client().open(path, method=method, **kwargs)
    theirs = flask_app.test_client().open(path, method=method, **kwargs)
    assert (through_lane.count, through_flask.count) == (0, 1)
    assert answered(mine) == answered(theirs)


def test_an_unexpected_error_is_the_same_500_and_logged_once(lane_app, flask_app, monkeypatch, caplog):
    from fhir_plugin.terminology import service as service_module

    def broken(self, request):
        raise RuntimeError("broken on purpose")

    monkeypatch.setattr(service_module.TerminologyService, "lookup", broken)
    path = f"/r4/CodeSystem/$lookup?system={CPT}&code=97116"
    with caplog.at_level(logging.ERROR, logger="fhir_plugin.web.errors"):
        mine = lane_app.test_client().get(path)
        theirs = flask_app.test_client().get(path)
    assert mine.status_code == 500
    assert answered(mine) == answered(theirs)
    reports = [r.getMessage().splitlines()[0] for r in caplog.records if r.name == "fhir_plugin.web.errors"]
    assert len(reports) == 2 and all("RuntimeError: broken on purpose" in line for line in reports)


@pytest.mark.parametrize(("method", "path"), [
    ("HEAD", f"/r4/CodeSystem/$lookup?system={CPT}&code=97116"),
    ("OPTIONS", "/r4/CodeSystem/$lookup"),
    ("PUT", "/r4/CodeSystem/$lookup"),  # a 405, by Flask
    ("GET", f"/r4/CodeSystem/$lookup/?system={CPT}&code=97116"),  # a trailing slash
    ("GET", "/r4/CodeSystem/$x/$lookup?code=1"),  # an id that is an operation's name
    ("GET", "/r4/CodeSystem/%C3%A9/$lookup?code=1"),  # an id that is not ASCII
    ("GET", "/r4/CodeSystem/a/b/$lookup?code=1"),
    ("GET", "/r4/ValueSet/$compare"),
    ("GET", "/r4/metadata"),
    ("GET", "/r4/CodeSystem?url=" + ICD),
])
def test_what_the_lane_leaves_to_flask(lane_app, flask_app, monkeypatch, method, path):
    through_lane, through_flask = Dispatched(lane_app, monkeypatch), Dispatched(flask_app, monkeypatch)
    mine = lane_app.test_client().open(path, method=method)
    theirs = flask_app.test_client().open(path, method=method)
    assert (through_lane.count, through_flask.count) == (1, 1)
    assert answered(mine) == answered(theirs)


@pytest.mark.parametrize("hook", ["before_request", "after_request", "teardown_request"])
def test_a_hook_on_the_app_sends_operations_through_flask(lane_app, monkeypatch, hook):
    ran: list[str] = []

    def noted(*args):
        ran.append(hook)
        return args[0] if hook == "after_request" else None

    getattr(lane_app, hook)(noted)
    dispatched = Dispatched(lane_app, monkeypatch)
    response = lane_app.test_client().get(f"/r4/CodeSystem/$lookup?system={CPT}&code=97116")
    assert (response.status_code, dispatched.count, ran) == (200, 1, [hook])


@pytest.mark.parametrize("signal", ["request_started", "request_finished", "request_tearing_down"])
def test_a_signal_receiver_sends_operations_through_flask(lane_app, monkeypatch, signal):
    import flask

    seen: list[str] = []

    def receiver(sender, **extra):
        seen.append(signal)

    dispatched = Dispatched(lane_app, monkeypatch)
    with getattr(flask, signal).connected_to(receiver, lane_app):
        lane_app.test_client().get(f"/r4/CodeSystem/$lookup?system={CPT}&code=97116")
    lane_app.test_client().get(f"/r4/CodeSystem/$lookup?system={CPT}&code=M62.81")
    assert (seen, dispatched.count) == ([signal], 1)


def test_a_lane_request_is_observed(lane_app, caplog):
    from prometheus_client import REGISTRY

    labels = {"operation": "$expand", "fhir_version": "R5", "status": "200", "cache": "none"}
    before = REGISTRY.get_sample_value("fhir_plugin_requests_total", labels) or 0.0
    client = lane_app.test_client()
    with caplog.at_level(logging.INFO, logger="fhir_plugin.access"):
        lookup = client.get(f"/r4/CodeSystem/icd-10-cm/$lookup?code=R26.2", headers={"X-Request-ID": "lane-1"})
        expanded = client.get(f"/r5/ValueSet/$expand?url={ICD_VS}")
    assert lookup.headers["X-Request-ID"] == "lane-1"
    assert expanded.headers["X-Request-ID"] not in ("", "lane-1")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "fhir_plugin.access"]
    assert [(line["requestId"], line["method"], line["path"], line["operation"], line["fhirVersion"], line["status"],
             line["cache"], line["bytes"]) for line in lines] == [
        ("lane-1", "GET", "/r4/CodeSystem/icd-10-cm/$lookup", "$lookup", "R4", 200, "miss", len(lookup.get_data())),
        (expanded.headers["X-Request-ID"], "GET", "/r5/ValueSet/$expand", "$expand", "R5", 200, "none",
         len(expanded.get_data()))]
    assert REGISTRY.get_sample_value("fhir_plugin_requests_total", labels) == before + 1


def test_a_miss_answered_by_the_lane_is_kept_for_the_door(lane_app, monkeypatch):
    dispatched = Dispatched(lane_app, monkeypatch)
    client = lane_app.test_client()
    path = f"/r4/ValueSet/$validate-code?url={ICD_VS}&system={ICD}&code=R26.2"
    first, again = client.get(path), client.get(path)
    stats = lane_app.extensions["fhir_plugin"].runtime.answers.stats
    assert (dispatched.count, stats.misses, stats.hits) == (0, 1, 1)
    assert again.get_data() == first.get_data()


def test_a_client_error_on_the_lane_writes_nothing_to_the_log(lane_app, monkeypatch, caplog):
    """An attack on the log: bad requests by the hundred, each a 4xx answered on the lane, none
    of them logged (only the access log's one line each, which is bounded: web/observe.py)."""
    dispatched = Dispatched(lane_app, monkeypatch)
    client = lane_app.test_client()
    bad = [("GET", "/r4/CodeSystem/$lookup?code=" + "x" * 5000, {}),
           ("POST", "/r4/CodeSystem/$lookup", {"data": b"[" * 100_000, "content_type": JSON}),
           ("POST", "/r4/ValueSet/$expand", {"data": b"\xff\xfe" * 1000, "content_type": JSON}),
           ("GET", "/r4/ValueSet/x/$expand?filter=" + "a%20" * 5000, {})]
    with caplog.at_level(logging.DEBUG):
        statuses = {client.open(path, method=method, **kwargs).status_code
                    for _ in range(50) for method, path, kwargs in bad}
    assert (statuses, dispatched.count) == ({400, 404}, 0)  # 404: there is no ValueSet x
    assert [r for r in caplog.records if r.name != "fhir_plugin.access"] == []
