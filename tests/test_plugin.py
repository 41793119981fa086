"""Embedding: FhirTerminology in a host Flask app, and the FHIR_PLUGIN_* settings."""

from __future__ import annotations

import json

import pytest
from flask import Flask
from helpers import (
    CPT,
    DISPLAY_97116,
    FHIR_JSON,
    assert_outcome,
    body_of,
    load_content,
    ok_json,
)

from fhir_plugin import FhirTerminology, create_app
from fhir_plugin.config import load_settings
from fhir_plugin.errors import InvalidContent


def host_app() -> Flask:
    host = Flask("host")
    host.config["HOST_SETTING"] = "kept"

    @host.get("/hello")
    def hello():
        return "hello from the host"

    @host.post("/echo")
    def echo():
        return {"received": len(__import__("flask").request.get_data())}

    @host.errorhandler(404)
    def not_found(error):
        return "the host's own 404 page", 404, {"Content-Type": "text/plain; charset=utf-8"}

    return host


@pytest.fixture
def host(service):
    app = host_app()
    FhirTerminology(service=service).init_app(app, url_prefix="/terminology")
    return app


def test_host_routes_still_work(host):
    client = host.test_client()
    response = client.get("/hello")
    assert (response.status_code, response.get_data(as_text=True)) == (200, "hello from the host")
    assert client.post("/echo", data=b"x" * 5000).get_json() == {"received": 5000}
    assert host.config["HOST_SETTING"] == "kept"
    assert host.config["MAX_CONTENT_LENGTH"] is None  # the plugin does not cap the host's requests


@pytest.mark.parametrize("path", ["/missing", "/terminologyx", "/r4/metadata"])
def test_host_404_is_the_hosts_own(host, path):
    response = host.test_client().get(path)
    assert response.status_code == 404
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == "the host's own 404 page"


@pytest.mark.parametrize("path, message_id", [("/terminology/r6/metadata", "NO_SUCH_PATH_BASES"),
                                               ("/terminology/R4/metadata", "NO_SUCH_PATH_CASE"),
                                               ("/terminology//r4/metadata", "NO_SUCH_PATH_BASES")])
def test_paths_below_the_prefix_are_the_plugins(host, path, message_id):
    assert_outcome(host.test_client().get(path), 404, "not-found", message_id=message_id)


def test_host_405_is_not_turned_into_fhir(host):
    response = host.test_client().delete("/hello")
    assert response.status_code == 405
    assert response.mimetype == "text/html"


def test_plugin_answers_under_the_prefix(host):
    client = host.test_client()
    body = ok_json(client.get(f"/terminology/r5/CodeSystem/$lookup?system={CPT}&code=97116&property=work-rvu"), "R5")
    assert body["parameter"][2] == {"name": "display", "valueString": DISPLAY_97116}
    assert body["parameter"][-1] == {"name": "property", "part": [
        {"name": "code", "valueCode": "work-rvu"}, {"name": "value", "valueDecimal": 0.45}]}
    body = ok_json(client.get(f"/terminology/r4/ConceptMap/$translate?code=97116&system={CPT}"), "R4")
    assert body["parameter"][0] == {"name": "result", "valueBoolean": True}
    assert ok_json(client.get("/terminology/fhir/metadata"), "R4")["fhirVersion"] == "4.0.1"


def test_plugin_errors_under_the_prefix_are_fhir(host):
    client = host.test_client()
    assert_outcome(client.get("/terminology/r4/Patient/1"), 404, "not-found",
                   text="There is no FHIR endpoint at /terminology/r4/Patient/1", message_id="NO_SUCH_PATH")
    assert_outcome(client.delete("/terminology/r5/CodeSystem/$lookup"), 405, "not-supported",
                   text="Method DELETE is not allowed on /terminology/r5/CodeSystem/$lookup",
                   message_id="METHOD_NOT_ALLOWED")
    assert_outcome(client.get(f"/terminology/r4/CodeSystem/$lookup?system={CPT}&code=1"), 404, "not-found",
                   message_id="UNKNOWN_CODE_IN_FRAGMENT")


def test_plugin_urls_carry_the_prefix(host):
    client = host.test_client()
    bundle = ok_json(client.get("/terminology/r5/ValueSet?_id=cpt-gait-training"), "R5")
    assert bundle["entry"][0]["fullUrl"] == "http://localhost/terminology/r5/ValueSet/cpt-gait-training"
    metadata = ok_json(client.get("/terminology/r4/metadata"), "R4")
    assert metadata["implementation"]["url"] == "http://localhost/terminology/r4"


def test_plugin_body_limit_applies_without_the_host_cap(service):
    app = host_app()
    app.config["FHIR_PLUGIN_MAX_REQUEST_BYTES"] = 100
    FhirTerminology(app, service=service)
    client = app.test_client()
    assert_outcome(client.post("/r4/CodeSystem/$lookup", data="x" * 101, content_type=FHIR_JSON), 413, "too-long",
                   text="The request body is larger than the 100 bytes this server accepts",
                   message_id="BODY_TOO_LARGE")
    assert client.post("/echo", data=b"x" * 101).get_json() == {"received": 101}


def test_constructor_form_with_prefix(service):
    app = host_app()
    extension = FhirTerminology(app, service=service, url_prefix="/tx/")
    assert app.extensions["fhir_plugin"].service is service
    client = app.test_client()
    assert ok_json(client.get("/tx/r5/metadata"), "R5")["fhirVersion"] == "5.0.0"
    assert client.get("/r5/metadata").status_code == 404
    # one extension object can serve a second app
    other = host_app()
    extension.init_app(other, url_prefix="/other")
    assert ok_json(other.test_client().get("/other/r4/$versions"), "R4")["parameter"][0]["valueCode"] == "4.0"


def test_plugin_loads_content_from_the_setting(tmp_path):
    (tmp_path / "cs.json").write_text(json.dumps({
        "resourceType": "CodeSystem", "id": "local", "url": "http://example.org/local", "version": "1",
        "status": "active", "content": "complete", "concept": [{"code": "x", "display": "Local X"}]}), encoding="utf-8")
    app = host_app()
    app.config["FHIR_PLUGIN_CONTENT"] = str(tmp_path)
    FhirTerminology(app)
    client = app.test_client()
    body = ok_json(client.get("/r4/CodeSystem/$lookup?system=http://example.org/local&code=x"), "R4")
    assert body["parameter"][2] == {"name": "display", "valueString": "Local X"}
    assert_outcome(client.get(f"/r4/CodeSystem/$lookup?system={CPT}&code=97116"), 404, "not-found",
                   message_id="UNKNOWN_CODESYSTEM_LOOKUP")


def test_plugin_refuses_invalid_content_at_startup(tmp_path):
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    app = host_app()
    app.config["FHIR_PLUGIN_CONTENT"] = str(tmp_path)
    with pytest.raises(InvalidContent) as info:
        FhirTerminology(app)
    assert info.value.message_id == "CONTENT_NOT_JSON"
    assert "fhir_plugin" not in app.extensions


def test_default_version_r5_from_config(service):
    client = create_app({"FHIR_PLUGIN_DEFAULT_VERSION": "R5"}, service=service).test_client()
    assert ok_json(client.get("/fhir/metadata"), "R5")["fhirVersion"] == "5.0.0"
    assert ok_json(client.get("/r4/metadata"), "R4")["fhirVersion"] == "4.0.1"
    body = ok_json(client.get(f"/fhir/ConceptMap/$translate?code=97116&system={CPT}"), "R5")
    assert body["parameter"][1]["part"][0] == {"name": "relationship", "valueCode": "related-to"}


def test_default_version_r5_from_the_environment(service, monkeypatch):
    monkeypatch.setenv("FHIR_PLUGIN_DEFAULT_VERSION", "r5")
    client = create_app(service=service).test_client()
    assert ok_json(client.get("/fhir/metadata"), "R5")["fhirVersion"] == "5.0.0"
    assert ok_json(client.get("/fhir/$versions"), "R5")["parameter"][0] == {"name": "version", "valueCode": "5.0"}


def test_explicit_config_wins_over_the_environment(service, monkeypatch):
    monkeypatch.setenv("FHIR_PLUGIN_DEFAULT_VERSION", "R5")
    client = create_app({"FHIR_PLUGIN_DEFAULT_VERSION": "R4"}, service=service).test_client()
    assert ok_json(client.get("/fhir/metadata"), "R4")["fhirVersion"] == "4.0.1"


def test_default_version_is_r4(client):
    assert ok_json(client.get("/fhir/metadata"), "R4")["fhirVersion"] == "4.0.1"


@pytest.mark.parametrize("config, message", [
    ({"FHIR_PLUGIN_DEFAULT_VERSION": "R3"}, "FHIR_PLUGIN_DEFAULT_VERSION must be R4 or R5, not 'R3'"),
    ({"FHIR_PLUGIN_DEFAULT_VERSION": "4.0.1"}, "FHIR_PLUGIN_DEFAULT_VERSION must be R4 or R5, not '4.0.1'"),
    ({"FHIR_PLUGIN_MAX_REQUEST_BYTES": "lots"}, "FHIR_PLUGIN_MAX_REQUEST_BYTES must be an integer, not 'lots'"),
    ({"FHIR_PLUGIN_PORT": None}, "FHIR_PLUGIN_PORT must be an integer, not None"),
])
def test_config_errors(service, config, message):
    with pytest.raises(ValueError) as info:
        create_app(config, service=service)
    assert str(info.value) == message


def test_config_error_from_the_environment(service, monkeypatch):
    monkeypatch.setenv("FHIR_PLUGIN_DEFAULT_VERSION", "R3")
    with pytest.raises(ValueError, match="FHIR_PLUGIN_DEFAULT_VERSION must be R4 or R5, not 'R3'"):
        create_app(service=service)
    app = host_app()
    with pytest.raises(ValueError):
        FhirTerminology(app, service=service)


def test_settings_layering():
    settings = load_settings({"FHIR_PLUGIN_PORT": "9000", "OTHER": "ignored"},
                             environ={"FHIR_PLUGIN_PORT": "7000", "FHIR_PLUGIN_WORKERS": "4", "HOME": "/x"})
    assert settings["FHIR_PLUGIN_PORT"] == 9000
    assert settings["FHIR_PLUGIN_WORKERS"] == 4
    assert "OTHER" not in settings and "HOME" not in settings
    assert load_settings(environ={}) == {
        "FHIR_PLUGIN_CONTENT": "", "FHIR_PLUGIN_DEFAULT_VERSION": "R4", "FHIR_PLUGIN_HOST": "127.0.0.1",
        "FHIR_PLUGIN_PORT": 8080, "FHIR_PLUGIN_WORKERS": 2, "FHIR_PLUGIN_MAX_REQUEST_BYTES": 1_048_576,
        "FHIR_PLUGIN_FRONT": "auto", "FHIR_PLUGIN_CLIENT_TIMEOUT": 10, "FHIR_PLUGIN_WORKER_TIMEOUT": 30,
        "FHIR_PLUGIN_BASE_URL": "", "FHIR_PLUGIN_MAX_EXPANSION": 10_000,
        "FHIR_PLUGIN_MAX_PACKAGE_BYTES": 268_435_456, "FHIR_PLUGIN_MAX_MEMBER_BYTES": 134_217_728,
        "FHIR_PLUGIN_ADMIN_TOKEN": "", "FHIR_PLUGIN_LOAD_DIR": "", "FHIR_PLUGIN_ANSWER_CACHE": 2048,
        "FHIR_PLUGIN_LOAD_DATABASE": "", "FHIR_PLUGIN_LOAD_POLL": 5,
        "FHIR_PLUGIN_MAX_TX_RESOURCES": 100, "FHIR_PLUGIN_MAX_BUNDLE_ENTRIES": 1000, "FHIR_PLUGIN_CACHE_DIR": "",
        "FHIR_PLUGIN_TX_TESTS": "",
        "FHIR_PLUGIN_PID_FILE": "",
        "FHIR_PLUGIN_TIME_BUDGET_MS": 5000,
        "FHIR_PLUGIN_MAX_FILTER_WORDS": 40, "FHIR_PLUGIN_MAX_FILTER_WORD_LENGTH": 100,
        "FHIR_PLUGIN_MAX_JSON_DEPTH": 100,
        "FHIR_PLUGIN_EXTRA_CONTENT": "", "FHIR_PLUGIN_ACCESS_LOG": "on", "FHIR_PLUGIN_METRICS": "open",
        "FHIR_PLUGIN_MAX_LOAD_BYTES": 16_777_216, "FHIR_PLUGIN_MAX_LOAD_RESOURCES": 10_000,
        "FHIR_PLUGIN_MAX_LOAD_CONCEPTS": 50_000,
        "FHIR_PLUGIN_TX_RESOURCE_MEMORY": 128, "FHIR_PLUGIN_GZIP_MIN_BYTES": 1024, "FHIR_PLUGIN_SEARCH_PAGE_SIZE": 100,
        "FHIR_PLUGIN_UI_MAX_UPLOAD_BYTES": 524_288,

        "FHIR_PLUGIN_PACKAGES": "hl7.fhir.r5.core#5.0.0 fhir-plugin.r4-core-terminology#4.0.1 hl7.terminology.r5#7.0.1",
        "FHIR_PLUGIN_PACKAGE_CACHE": "", "FHIR_PLUGIN_PACKAGE_REGISTRIES": "https://packages.fhir.org https://registry.npmjs.org",
        "FHIR_PLUGIN_PACKAGE_SKIP": "hl7.fhir.r4.core hl7.fhir.r4b.core hl7.fhir.r5.core hl7.fhir.r6.core "
                                    "hl7.fhir.uv.extensions*"}


def test_standalone_app_loads_the_bundled_content_by_itself():
    client = create_app().test_client()
    body = ok_json(client.get(f"/r5/CodeSystem/$lookup?system={CPT}&code=97116&property=unit-minutes"), "R5")
    assert body["parameter"][-1]["part"][1] == {"name": "value", "valueInteger": 15}


def test_two_apps_do_not_share_state(service, tmp_path):
    (tmp_path / "cs.json").write_text(json.dumps({
        "resourceType": "CodeSystem", "id": "only-here", "url": "http://example.org/only-here", "status": "active",
        "content": "complete", "concept": [{"code": "x"}]}), encoding="utf-8")
    first = create_app(service=service).test_client()
    second = create_app(service=load_content([tmp_path])).test_client()
    assert body_of(first.get("/r4/CodeSystem"))["total"] == 3
    assert body_of(second.get("/r4/CodeSystem"))["total"] == 1
    assert body_of(first.get("/r4/CodeSystem"))["total"] == 3
