"""The answer cache (runtime/answers.py): a repeated request gets the very bytes, status and headers
the first one got, never an answer of other content, other settings or another request shape."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

import pytest
from helpers import (
    CM_URL,
    CPT,
    CPT_VS,
    DISPLAY_97116,
    ICD,
    ICD_VS,
    body_of,
    load_content,
    param,
    parameters,
)

from fhir_plugin import TerminologyService, create_app
from fhir_plugin.config import bundled_dir, load_settings
from fhir_plugin.runtime import answers

LOOKUP = f"/CodeSystem/$lookup?system={CPT}&code=97116"


def lookup_body(code: str = "97116") -> dict:
    return parameters(param("system", valueUri=CPT), param("code", valueCode=code))


def tx_code_system(display: str) -> dict:
    return {"resourceType": "CodeSystem", "url": "http://example.org/fhir/CodeSystem/tx", "version": "1",
            "status": "active", "content": "complete", "concept": [{"code": "a", "display": display}]}


# (status, method, path after /r4 or /r5, request keyword arguments): every cached operation, both levels,
# GET and POST, formats and languages, answers and errors
REQUESTS = [
    (200, "GET", LOOKUP, {}),
    (200, "GET", LOOKUP + "&_pretty=true", {}),
    (200, "GET", LOOKUP + "&_format=json", {}),
    (200, "GET", LOOKUP + "&_format=xml", {}),
    (406, "GET", LOOKUP + "&_format=ttl", {}),
    (200, "GET", LOOKUP, {"headers": {"Accept": "application/json"}}),
    (200, "GET", LOOKUP, {"headers": {"Accept": "application/fhir+xml"}}),
    (200, "GET", LOOKUP, {"headers": {"Accept": "text/xml"}}),
    (406, "GET", LOOKUP, {"headers": {"Accept": "text/html"}}),
    (200, "POST", "/CodeSystem/$lookup", {"data": f'<Parameters xmlns="http://hl7.org/fhir"><parameter><name value='
                                                  f'"system"/><valueUri value="{CPT}"/></parameter><parameter><name '
                                                  'value="code"/><valueCode value="97116"/></parameter></Parameters>',
                                          "content_type": "application/fhir+xml"}),
    (400, "POST", "/CodeSystem/$lookup", {"data": "<Parameters", "content_type": "application/fhir+xml",
                                          "headers": {"Accept": "application/fhir+xml"}}),
    (200, "GET", f"/CodeSystem/$lookup?system={ICD}&code=M62.81&property=parent", {}),
    (404, "GET", f"/CodeSystem/$lookup?system={CPT}&code=97110", {}),  # unknown code in a fragment
    (400, "GET", "/CodeSystem/$lookup?code=97116", {}),  # no system
    (400, "GET", f"/CodeSystem/$lookup?system={CPT}&code=97116&date=yesterday", {}),  # bad dateTime
    (200, "GET", "/CodeSystem/cpt-97116-fragment/$lookup?code=97116", {}),
    (404, "GET", "/CodeSystem/no-such-id/$lookup?code=97116", {}),
    (200, "POST", "/CodeSystem/$lookup", {"json": lookup_body()}),
    (404, "POST", "/CodeSystem/$lookup", {"json": lookup_body("97110")}),
    (400, "POST", "/CodeSystem/$lookup", {"data": "not json", "content_type": "application/fhir+json"}),
    (200, "POST", "/CodeSystem/$lookup", {"data": urlencode({"system": CPT, "code": "97116"}),
                                          "content_type": "application/x-www-form-urlencoded"}),
    (200, "GET", f"/ConceptMap/$translate?system={CPT}&code=97116&targetsystem={ICD}", {}),
    (200, "GET", f"/ConceptMap/$translate?sourceSystem={CPT}&sourceCode=97116&targetSystem={ICD}&targetCode=R26.2", {}),
    (200, "GET", f"/ConceptMap/$translate?targetSystem={ICD}&targetCode=R26.2", {}),
    (200, "GET", f"/ConceptMap/$translate?sourceSystem={CPT}&sourceCode=99999", {}),  # result=false
    (200, "GET", f"/ConceptMap/cpt-97116-to-icd-10-cm/$translate?sourceCode=97116&sourceSystem={CPT}", {}),
    (400, "GET", f"/ConceptMap/$translate?url={CM_URL}", {}),  # nothing to translate
    (200, "GET", f"/ValueSet/$validate-code?url={ICD_VS}&system={ICD}&code=R26.2", {}),
    (200, "GET", f"/ValueSet/$validate-code?url={ICD_VS}&system={ICD}&code=R26.2&display=Wrong",
     {"headers": {"Accept-Language": "de"}}),
    (200, "GET", f"/ValueSet/$validate-code?url={ICD_VS}&system={ICD}&code=R26.2&display=Wrong",
     {"headers": {"Accept-Language": "en"}}),
    (200, "GET", f"/ValueSet/$validate-code?url={CPT_VS}&system={CPT}&code=97110", {}),  # result=false
    (404, "GET", "/ValueSet/$validate-code?url=http://example.org/none&system=x&code=y", {}),
    (200, "GET", f"/ValueSet/cpt-gait-training/$validate-code?system={CPT}&code=97116", {}),
    (200, "GET", f"/CodeSystem/$validate-code?url={CPT}&code=97116&display={DISPLAY_97116}", {}),
    (200, "GET", "/CodeSystem/cpt-97116-fragment/$validate-code?code=97116", {}),
    (200, "GET", f"/CodeSystem/$subsumes?system={ICD}&codeA=M62.8&codeB=M62.81", {}),
    (200, "GET", f"/CodeSystem/icd-10-cm/$subsumes?codeA=M62.81&codeB=M62.8", {}),
    (400, "GET", f"/CodeSystem/$subsumes?system={ICD}&codeA=M62.81", {}),
    (200, "POST", "/CodeSystem/$validate-code", {"json": parameters(
        param("url", valueUri="http://example.org/fhir/CodeSystem/tx"), param("code", valueCode="a"),
        param("tx-resource", resource=tx_code_system("A")))}),
]
IDS = [f"{i}-{method}-{path.split('?')[0]}" for i, (_, method, path, _) in enumerate(REQUESTS)]


def full(response) -> tuple:
    """Everything a client sees: status line, every header in order, the body's bytes."""
    return response.status, list(response.headers.items()), response.get_data()


@pytest.fixture
def cached(service):
    return create_app(service=service)


@pytest.fixture
def uncached(service):
    return create_app({"FHIR_PLUGIN_ANSWER_CACHE": 0}, service=service)


def cache_of(app) -> answers.AnswerCache:
    return app.extensions["fhir_plugin"].runtime.answers


class Counting:
    """Counts the calls of the service's operations: a cache hit calls none."""

    def __init__(self, service, monkeypatch):
        self.calls = 0
        for name in ("lookup", "translate", "validate_code", "subsumes"):
            original = getattr(service, name)
            monkeypatch.setattr(service, name, self.counted(original))

    def counted(self, original):
        def call(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)
        return call


def test_the_default_size():
    assert load_settings(environ={})["FHIR_PLUGIN_ANSWER_CACHE"] == 2048
    assert load_settings(environ={"FHIR_PLUGIN_ANSWER_CACHE": "0"})["FHIR_PLUGIN_ANSWER_CACHE"] == 0


@pytest.mark.parametrize("version", ["r4", "r5"])
@pytest.mark.parametrize("status, method, path, kwargs", REQUESTS, ids=IDS)
def test_a_cached_answer_is_the_uncached_answer(cached, uncached, version, status, method, path, kwargs):
    send = {"GET": "get", "POST": "post"}[method]
    expected = full(getattr(uncached.test_client(), send)(f"/{version}{path}", **kwargs))
    assert int(expected[0][:3]) == status
    client = cached.test_client()
    first = full(getattr(client, send)(f"/{version}{path}", **kwargs))
    size = len(cache_of(cached))
    again = full(getattr(client, send)(f"/{version}{path}", **kwargs))
    assert first == expected
    assert again == expected
    assert (size, len(cache_of(cached))) == (1, 1)


def test_a_hit_does_not_run_the_operation(cached, service, monkeypatch):
    counting = Counting(service, monkeypatch)
    client = cached.test_client()
    for _ in range(3):
        assert client.get(f"/r4{LOOKUP}").status_code == 200
        assert client.get(f"/r4/CodeSystem/$lookup?system={CPT}&code=97110").status_code == 404
    assert counting.calls == 2


@pytest.mark.parametrize("variant", [
    {"path": f"/r5{LOOKUP}"},  # the other version
    {"path": f"/fhir{LOOKUP}"},  # the default endpoint: another path
    {"path": f"/r4{LOOKUP}&_pretty=true"},
    {"path": f"/r4{LOOKUP}&_format=application/json"},
    {"path": f"/r4{LOOKUP}", "headers": {"Accept": "application/json"}},
    {"path": f"/r4{LOOKUP}", "headers": {"Accept": "application/fhir+xml"}},
    {"path": f"/r4{LOOKUP}&_format=xml"},
    {"path": f"/r4{LOOKUP}", "headers": {"Accept-Language": "de"}},
    {"path": f"/r4{LOOKUP}&property=display"},
])
def test_anything_that_can_change_the_bytes_is_another_entry(cached, service, monkeypatch, variant):
    counting = Counting(service, monkeypatch)
    client = cached.test_client()
    client.get(f"/r4{LOOKUP}")
    client.get(variant["path"], headers=variant.get("headers", {}))
    assert counting.calls == 2
    assert len(cache_of(cached)) == 2


def test_formats_and_versions_differ_in_content_type_and_body(cached):
    client = cached.test_client()
    for _ in range(2):  # the second round is answered from the cache
        plain = client.get(f"/r4{LOOKUP}")
        as_json = client.get(f"/r4{LOOKUP}", headers={"Accept": "application/json"})
        pretty = client.get(f"/r4{LOOKUP}&_pretty=true")
        assert (plain.content_type, as_json.content_type) == ("application/fhir+json", "application/json")
        assert plain.get_data() == as_json.get_data() != pretty.get_data()
        assert json.loads(pretty.get_data()) == json.loads(plain.get_data())
        assert pretty.get_data().startswith(b'{\n  "resourceType": "Parameters"')
        r4 = client.get(f"/r4/ConceptMap/$translate?system={CPT}&code=97116&targetsystem={ICD}")
        r5 = client.get(f"/r5/ConceptMap/$translate?system={CPT}&code=97116&targetsystem={ICD}")
        assert body_of(r4)["parameter"][1]["part"][0] == {"name": "equivalence", "valueCode": "relatedto"}
        assert body_of(r5)["parameter"][1]["part"][0] == {"name": "relationship", "valueCode": "related-to"}


def test_tx_resources_are_keyed_by_content(cached):
    client = cached.test_client()

    def validate(display: str) -> dict:
        return body_of(client.post("/r5/CodeSystem/$validate-code", json=parameters(
            param("url", valueUri="http://example.org/fhir/CodeSystem/tx"), param("code", valueCode="a"),
            param("display", valueString="A"), param("tx-resource", resource=tx_code_system(display)))))

    for _ in range(2):
        assert validate("A")["parameter"][0] == {"name": "result", "valueBoolean": True}
        assert validate("B")["parameter"][0] == {"name": "result", "valueBoolean": False}


def changed_service(tmp_path: Path) -> TerminologyService:
    """The CPT fragment only, with another display for 97116."""
    resource = json.loads((bundled_dir("resources") / "CodeSystem-cpt-97116-fragment.json").read_text())
    resource["concept"][0]["display"] = "Gait training (changed)"
    (tmp_path / "cpt.json").write_text(json.dumps(resource))
    return load_content([tmp_path])


def test_a_new_service_does_not_see_the_old_answers(cached, tmp_path):
    """Content reloaded at run time is a new service in the app's state: it starts empty."""
    client = cached.test_client()
    assert body_of(client.get(f"/r4{LOOKUP}"))["parameter"][2]["valueString"] == DISPLAY_97116
    runtime = cached.extensions["fhir_plugin"].runtime
    old = runtime.base
    runtime.serve(changed_service(tmp_path))
    assert len(cache_of(cached)) == 0
    for _ in range(2):
        assert body_of(client.get(f"/r4{LOOKUP}"))["parameter"][2]["valueString"] == "Gait training (changed)"
    assert len(cache_of(cached)) == 1
    runtime.serve(old)
    assert body_of(client.get(f"/r4{LOOKUP}"))["parameter"][2]["valueString"] == DISPLAY_97116


def test_apps_sharing_a_service_do_not_share_answers(service):
    """Settings change answers (here the version of /fhir), so each app has its own cache."""
    r4 = create_app(service=service).test_client()
    r5 = create_app({"FHIR_PLUGIN_DEFAULT_VERSION": "R5"}, service=service).test_client()
    path = f"/fhir/ConceptMap/$translate?system={CPT}&code=97116&targetsystem={ICD}"
    for _ in range(2):
        assert body_of(r4.get(path))["parameter"][1]["part"][0]["name"] == "equivalence"
        assert body_of(r5.get(path))["parameter"][1]["part"][0]["name"] == "relationship"


def test_the_bound_holds_and_the_least_recently_used_goes(service, monkeypatch):
    app = create_app({"FHIR_PLUGIN_ANSWER_CACHE": 3}, service=service)
    client = app.test_client()
    counting = Counting(service, monkeypatch)
    codes = ["M62.81", "R26.2", "G81.90", "M62.8"]
    for code in codes[:3]:
        client.get(f"/r4/CodeSystem/$lookup?system={ICD}&code={code}")
    client.get(f"/r4/CodeSystem/$lookup?system={ICD}&code=M62.81")  # used again: now the most recent
    client.get(f"/r4/CodeSystem/$lookup?system={ICD}&code=M62.8")  # evicts R26.2
    assert (counting.calls, len(cache_of(app))) == (4, 3)
    client.get(f"/r4/CodeSystem/$lookup?system={ICD}&code=M62.81")
    assert counting.calls == 4
    client.get(f"/r4/CodeSystem/$lookup?system={ICD}&code=R26.2")
    assert (counting.calls, len(cache_of(app))) == (5, 3)
    for n in range(20):
        client.get(f"/r4/CodeSystem/$lookup?system={ICD}&code=M62.81&n={n}")
    assert len(cache_of(app)) == 3


def test_size_zero_turns_it_off(uncached, service, monkeypatch):
    counting = Counting(service, monkeypatch)
    client = uncached.test_client()
    for _ in range(3):
        client.get(f"/r4{LOOKUP}")
    assert counting.calls == 3
    assert len(cache_of(uncached)) == 0 and not cache_of(uncached).enabled


def test_a_server_error_is_not_kept(cached, service, monkeypatch):
    def boom(request):
        raise RuntimeError("transient")

    client = cached.test_client()
    monkeypatch.setattr(service, "lookup", boom)
    assert client.get(f"/r4{LOOKUP}").status_code == 500
    monkeypatch.undo()
    assert client.get(f"/r4{LOOKUP}").status_code == 200


def test_expand_search_and_metadata_are_not_cached_but_reads_are(cached):
    client = cached.test_client()
    first = client.get(f"/r4/ValueSet/$expand?url={CPT_VS}")
    second = client.get(f"/r4/ValueSet/$expand?url={CPT_VS}")
    assert body_of(first)["expansion"]["identifier"] != body_of(second)["expansion"]["identifier"]
    client.get("/r4/metadata")
    client.get("/r4/CodeSystem?name=cpt")
    assert len(cache_of(cached)) == 0
    read = client.get("/r4/CodeSystem/cpt-97116-fragment?_summary=true")
    assert len(cache_of(cached)) == 1
    assert client.get("/r4/CodeSystem/cpt-97116-fragment?_summary=true").get_data() == read.get_data()
    assert cache_of(cached).stats.hits == 1


def test_large_answers_are_not_kept(cached):
    """Four slots of 16 KiB: an answer takes one per 16 KiB it holds, one larger than a quarter of
    the cache is not kept."""
    cache = answers.AnswerCache(4)
    cache.put(("k",), answers.Answer(b"x" * (answers.SLOT_BYTES + 1), 200, "application/fhir+json"))
    assert len(cache) == 0
    cache.put(("k",), answers.Answer(b"x" * answers.SLOT_BYTES, 200, "application/fhir+json"))
    assert len(cache) == 1
    large = answers.AnswerCache(2048)
    for n in range(10):
        large.put(("big", n), answers.Answer(b"x" * (200 * answers.SLOT_BYTES), 200, "application/fhir+json"))
    assert (len(large), large.stats.size) == (10, 2000)
    large.put(("big", 10), answers.Answer(b"x" * (512 * answers.SLOT_BYTES), 200, "application/fhir+json"))
    assert (len(large), large.stats.size) == (8, 1912)  # the three least recently used made room
    assert large.get(("big", 2)) is None and large.get(("big", 3)) is not None
    large.put(("too big",), answers.Answer(b"x" * (512 * answers.SLOT_BYTES + 1), 200, "application/fhir+json"))
    assert len(large) == 8


def test_an_app_context_kept_open_carries_nothing_between_requests(cached):
    """flask.g outlives a request when the app context is kept open; the request's body must not."""
    client = cached.test_client()
    with cached.app_context():
        assert client.post("/r4/CodeSystem/$lookup", json=lookup_body()).status_code == 200
        expanded = client.post("/r4/ValueSet/$expand", json=parameters(param("url", valueUri=CPT_VS)))
        assert [c["code"] for c in body_of(expanded)["expansion"]["contains"]] == ["97116"]
        assert body_of(client.post("/r4/CodeSystem/$lookup", json=lookup_body("97110")))["issue"][0]["code"] \
            == "not-found"
