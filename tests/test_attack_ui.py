"""Hostile requests to the web UI: each answered with a 4xx or a bounded page, in bounded time,
without a log line per request."""

from __future__ import annotations

import logging
import time

import pytest

from fhir_plugin import create_app
from fhir_plugin.extension import cache_stats
from fhir_plugin.terminology import expand
from fhir_plugin.terminology.evaluation import resolve_value_set
from fhir_plugin.terminology.models import ExpandRequest
from fhir_plugin.terminology.valueset import evaluate
from helpers import ICD

HTML = {"Accept": "text/html"}


@pytest.fixture
def ui_client(service):
    return create_app({"FHIR_PLUGIN_UI_MAX_UPLOAD_BYTES": "200000"}, service=service).test_client()


@pytest.mark.parametrize("path, query, status", [
    ("/ui/CodeSystem/icd-10-cm", {"q": "weakness " * 100_000}, 200),  # the text is cut at 200 characters
    ("/ui/CodeSystem/icd-10-cm", {"q": "a", "page": str(10 ** 30)}, 200),  # past the last page: an empty page
    ("/ui/CodeSystem/icd-10-cm", {"q": "*" * 150}, 400),  # a word beyond FHIR_PLUGIN_MAX_FILTER_WORD_LENGTH
    ("/ui/CodeSystem/icd-10-cm/suggest", {"q": "x" * 1_000_000}, 400),
    ("/ui/CodeSystem/icd-10-cm/concept/" + "M" * 50_000, {}, 404),
    ("/ui/CodeSystem/" + "x" * 50_000, {}, 404),
    ("/ui/check", {"source": "9" * 100_000, "target": "M" * 100_000, "target_system": "http://x/" * 10_000}, 200),
    ("/ui/ValueSet/icd-10-cm-gait-training-diagnoses", {"page": "-5"}, 200),
])
def test_hostile_queries_are_bounded(ui_client, path, query, status, caplog):
    caplog.set_level(logging.INFO)
    started = time.monotonic()
    for _ in range(3):
        response = ui_client.get(path, query_string=query, headers=HTML)
        assert response.status_code == status
        assert len(response.data) < 200_000
    assert time.monotonic() - started < 10
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_an_upload_at_the_limit_is_checked_within_the_budget(ui_client):
    form = ui_client.get("/ui/check-pairs")
    token = form.headers["Set-Cookie"].split("fhir_plugin_csrf=", 1)[1].split(";", 1)[0]
    rows = "cpt,icd10cm\n" + "97116,M6281\n" * 16_000  # about 195,000 bytes
    started = time.monotonic()
    response = ui_client.post("/ui/check-pairs", data={"csrf_token": token, "output": "csv",
                                                       "file": (__import__("io").BytesIO(rows.encode()), "p.csv")},
                              content_type="multipart/form-data")
    assert response.status_code in (200, 400)  # the report, or the time budget's too-costly answer
    assert time.monotonic() - started < 30
    if response.status_code == 200:
        assert response.data.decode().count("\n") == 16_001


def test_implicit_value_set_of_a_code_system(client):
    response = client.get("/r4/ValueSet/$validate-code", query_string={"url": f"{ICD}?fhir_vs", "system": ICD,
                                                                      "code": "M62.81"})
    assert response.get_json()["parameter"][0] == {"name": "result", "valueBoolean": True}
    response = client.get("/r4/ValueSet/$expand", query_string={"url": f"{ICD}?fhir_vs", "filter": "ataxic gait"})
    assert [c["code"] for c in response.get_json()["expansion"]["contains"]] == ["R26.0"]
    response = client.get("/r4/ValueSet/$expand", query_string={"url": "http://example.org/none?fhir_vs"})
    assert response.status_code == 404


def test_many_distinct_prefixes_and_pages_stay_within_the_answer_cache(service):
    """An attacker's stream of new type-ahead texts and concept pages: each is computed once and
    kept within FHIR_PLUGIN_ANSWER_CACHE slots (here 16 of 16 KiB), least recently used out; the word
    index is one per evaluation, whatever the number of texts."""
    app = create_app({"FHIR_PLUGIN_ANSWER_CACHE": "16"}, service=service)
    client = app.test_client()
    icd = service.code_system_by_id("icd-10-cm")
    codes = sorted(icd.concepts)[:150]
    for number, code in enumerate(codes):
        assert client.get("/ui/CodeSystem/icd-10-cm/suggest", query_string={"q": f"a{number:03d}"}).status_code == 200
        assert client.get(f"/ui/CodeSystem/icd-10-cm/concept/{code}", headers=HTML).status_code == 200
    answers = cache_stats(app)["answers"]
    assert (answers.entries, answers.size, answers.maxsize) == (16, 16, 16)
    assert answers.evictions == 2 * 150 - 16
    value_set = resolve_value_set(service.registry, f"{ICD}?fhir_vs")
    search = evaluate(service.registry, value_set, expand._options(ExpandRequest(url=f"{ICD}?fhir_vs"))).search
    assert sorted(search) == ["words"]


def test_raw_query_bytes_that_are_not_utf8_are_a_400(ui_client, caplog):
    caplog.set_level(logging.INFO)
    client = ui_client
    for path in ("/ui/CodeSystem/icd-10-cm/suggest", "/ui/CodeSystem/icd-10-cm", "/ui/check"):
        response = client.get(path, environ_overrides={"QUERY_STRING": "q=\xf6"}, headers=HTML)
        assert response.status_code == 400, path
        assert "the query string is not valid UTF-8" in response.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
