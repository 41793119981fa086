"""The operator's side in-process (issue 14), where no socket is needed: the request id rules,
the settings, /metrics access, readiness, the access log and start-up messages through `logging`
when the plugin is mounted in an app, and the request id in the error log."""

from __future__ import annotations

import json
import logging
import re

import pytest
from flask import Flask

from fhir_plugin import FhirTerminology, create_app
from fhir_plugin.config import content_paths, load_settings
from fhir_plugin.web import observe, ops, views
from helpers import CPT, assert_outcome

GENERATED = re.compile(r"[0-9a-f]{16}-[0-9a-f]+")
MY_CODES = {"resourceType": "CodeSystem", "url": "http://example.org/mine", "version": "1", "status": "active",
            "content": "complete", "concept": [{"code": "x", "display": "X"}]}


@pytest.mark.parametrize("given", ["abc", "0f8fad5b-d9cb-469f-a165-70867728950e", "a.b:c/d+e=f@g_h-i", "x" * 128])
def test_a_sensible_request_id_is_kept(given):
    assert observe.request_id(given) == given


@pytest.mark.parametrize("given", [None, "", "x" * 129, "a b", "a\nb", "é", '"quoted"', "{json}", "a;b", "\x00"])
def test_any_other_request_id_is_replaced_by_a_new_one(given):
    made = observe.request_id(given)
    assert GENERATED.fullmatch(made), made


def test_new_request_ids_differ():
    assert len({observe.request_id(None) for _ in range(1000)}) == 1000


@pytest.mark.parametrize(("name", "value", "message"), [
    ("FHIR_PLUGIN_ACCESS_LOG", "verbose", "FHIR_PLUGIN_ACCESS_LOG must be one of on, query, off, not 'verbose'"),
    ("FHIR_PLUGIN_METRICS", "token", "FHIR_PLUGIN_METRICS must be one of open, admin, off, not 'token'"),
])
def test_a_bad_choice_is_refused_by_name(name, value, message):
    with pytest.raises(ValueError) as refused:
        load_settings({name: value})
    assert str(refused.value) == message


def test_extra_content_comes_after_the_content(tmp_path):
    bundled = content_paths({})
    assert content_paths({"FHIR_PLUGIN_EXTRA_CONTENT": f"{tmp_path}/a.json:{tmp_path}/b"}) == [
        *bundled, tmp_path / "a.json", tmp_path / "b"]
    assert content_paths({"FHIR_PLUGIN_CONTENT": "x.json", "FHIR_PLUGIN_EXTRA_CONTENT": "y.json"}) == [
        type(tmp_path)("x.json"), type(tmp_path)("y.json")]


@pytest.fixture
def fresh_scrapes(monkeypatch):
    monkeypatch.setattr(ops, "SCRAPE_MEMO", 0.0)


def test_metrics_off_is_404(service, fresh_scrapes):
    client = create_app({"FHIR_PLUGIN_METRICS": "off"}, service=service).test_client()
    assert_outcome(client.get("/metrics"), 404, "not-found")


def test_metrics_behind_the_admin_token(service, fresh_scrapes):
    without = create_app({"FHIR_PLUGIN_METRICS": "admin"}, service=service).test_client()
    assert_outcome(without.get("/metrics"), 403, "forbidden")
    client = create_app({"FHIR_PLUGIN_METRICS": "admin", "FHIR_PLUGIN_ADMIN_TOKEN": "s3cret"},
                        service=service).test_client()
    assert_outcome(client.get("/metrics"), 401, "login")
    assert_outcome(client.get("/metrics", headers={"Authorization": "Bearer wrong"}), 401, "login")
    answered = client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert answered.status_code == 200
    assert "fhir_plugin_requests_total{" in answered.get_data(as_text=True)


def test_not_ready_is_503(service):
    app = create_app(service=service)
    app.extensions["fhir_plugin"].runtime.ready = False
    response = app.test_client().get("/readyz")
    assert (response.status_code, response.get_json()) == (503, {"status": "not-ready"})


def test_mounted_in_an_app_it_logs_instead_of_printing(tmp_path, capsys, caplog):
    text = json.dumps(MY_CODES)
    (tmp_path / "mine.json").write_text(text)
    app = Flask("host")
    app.config["FHIR_PLUGIN_CONTENT"] = str(tmp_path / "mine.json")
    with caplog.at_level(logging.INFO, logger="fhir_plugin"):
        FhirTerminology(app, url_prefix="/tx")
    assert capsys.readouterr() == ("", "")
    messages = [(r.name, r.getMessage()) for r in caplog.records]
    assert messages[0] == ("fhir_plugin.content", f"[1/1] {tmp_path / 'mine.json'} ({len(text)} B): 1 resource")
    assert messages[1] == ("fhir_plugin.content", "compiling 1 resources")
    assert re.fullmatch(r"fhir_plugin serves 1 resources \(\d+\.\d s\): CodeSystem http://example.org/mine\|1: "
                        r"1 concepts", messages[2][1])

    @app.get("/own")
    def own() -> str:
        return "the host's"

    probe = app.test_client().get("/tx/healthz", headers={"X-Request-ID": "host-1"})
    assert (probe.get_json(), probe.headers["X-Request-ID"]) == ({"status": "alive"}, "host-1")
    assert "X-Request-ID" not in app.test_client().get("/own").headers  # the host app's routes are its own


@pytest.mark.parametrize(("chosen", "query"), [("on", None), ("query", "system=http://www.ama-assn.org/go/cpt&code=97116")])
def test_the_access_log_on_the_logger(service, caplog, chosen, query):
    client = create_app({"FHIR_PLUGIN_ACCESS_LOG": chosen}, service=service).test_client()
    with caplog.at_level(logging.INFO, logger="fhir_plugin.access"):
        client.get(f"/r5/CodeSystem/$lookup?system={CPT}&code=97116", headers={"X-Request-ID": "r-1"})
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "fhir_plugin.access"]
    assert [(line["requestId"], line["path"], line["operation"], line.get("query")) for line in lines] == [
        ("r-1", "/r5/CodeSystem/$lookup", "$lookup", query)]


def test_the_access_log_off(service, caplog):
    client = create_app({"FHIR_PLUGIN_ACCESS_LOG": "off"}, service=service).test_client()
    with caplog.at_level(logging.INFO, logger="fhir_plugin.access"):
        response = client.get("/r4/metadata", headers={"X-Request-ID": "r-2"})
    assert response.headers["X-Request-ID"] == "r-2"  # echoed all the same
    assert [r for r in caplog.records if r.name == "fhir_plugin.access"] == []


def test_the_error_log_names_the_request_id(service, caplog, monkeypatch):
    def broken(version):
        raise RuntimeError("broken on purpose")

    monkeypatch.setattr(views, "versions_parameters", broken)
    client = create_app(service=service).test_client()
    with caplog.at_level(logging.ERROR):
        response = client.get("/r4/$versions", headers={"X-Request-ID": "err-7"})
    assert (response.status_code, response.headers["X-Request-ID"]) == (500, "err-7")
    errors = [r.getMessage().splitlines()[0] for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].startswith("unexpected error on GET /r4/$versions (request err-7): RuntimeError: broken on "
                                "purpose (at ")
