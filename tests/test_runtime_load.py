"""Loading content into a running server (/admin/content): off by default, token-protected, all or
nothing, and served by every process that shares the load directory from the next request on.
A broken Bundle or package is refused with a message naming the file, the resource and the
element, and the server goes on serving exactly what it had."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from fhir_plugin import create_app
from fhir_plugin.errors import InvalidContent
from fhir_plugin.terminology.models import LookupRequest
from helpers import CPT, DISPLAY_97116
from tgz import member, write_package, write_tgz

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DEMO = "http://example.org/fhir/CodeSystem/demo"


def demo(version: str = "1", display: str = "Alpha", **extra) -> dict:
    return {"resourceType": "CodeSystem", "id": "demo", "url": DEMO, "version": version, "status": "active",
            "content": "complete", "concept": [{"code": "A", "display": display}], **extra}


def lookup(client, code: str = "A", system: str = DEMO, base: str = "/r4"):
    return client.get(f"{base}/CodeSystem/$lookup", query_string={"system": system, "code": code})


def display_of(response) -> str:
    return next(p["valueString"] for p in response.get_json()["parameter"] if p["name"] == "display")


def issue(response) -> tuple[str, str, str]:
    [only] = response.get_json()["issue"]
    message_id = next((e["valueString"] for e in only.get("extension", [])), None)
    return only["code"], message_id, only["details"]["text"]


def stored(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith(".")) if directory.exists() else []


@pytest.fixture
def load_dir(tmp_path):
    return tmp_path / "loaded"


@pytest.fixture
def admin_app(service, load_dir):
    return create_app({"FHIR_PLUGIN_ADMIN_TOKEN": TOKEN, "FHIR_PLUGIN_LOAD_DIR": str(load_dir)}, service=service)


@pytest.fixture
def admin(admin_app):
    return admin_app.test_client()


def post(client, document, name: str | None = None, headers=AUTH):
    data = document if isinstance(document, bytes) else json.dumps(document).encode()
    return client.post("/admin/content", query_string={"name": name} if name else None, data=data,
                       headers=headers, content_type="application/fhir+json")


# --- off by default, and behind the token ------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
@pytest.mark.parametrize("path", ["/admin/content", "/admin/content/demo.json"])
def test_admin_endpoints_are_off_by_default(client, service, method, path):
    response = client.open(path, method=method, data=json.dumps(demo()), headers=AUTH)
    assert response.status_code == 403
    assert issue(response) == ("forbidden", "ADMIN_DISABLED", "Loading content into this server over HTTP is "
                               "disabled: start it with FHIR_PLUGIN_ADMIN_TOKEN set to enable the admin endpoints")
    assert lookup(client).status_code == 404
    assert client.application.extensions["fhir_plugin"].service is service


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer", f"Bearer {TOKEN}x"])
def test_admin_endpoints_need_the_token(admin, load_dir, header):
    headers = {"Authorization": header} if header else {}
    response = post(admin, demo(), "demo.json", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="fhir_plugin admin"'
    assert issue(response) == ("login", "ADMIN_UNAUTHORIZED",
                                "This admin endpoint needs the header 'Authorization: Bearer <FHIR_PLUGIN_ADMIN_TOKEN>'")
    assert stored(load_dir) == []
    assert lookup(admin).status_code == 404


def test_a_load_dir_alone_serves_loaded_content_but_opens_no_endpoint(service, load_dir):
    post(create_app({"FHIR_PLUGIN_ADMIN_TOKEN": TOKEN, "FHIR_PLUGIN_LOAD_DIR": str(load_dir)}, service=service)
         .test_client(), demo(), "demo.json")
    client = create_app({"FHIR_PLUGIN_LOAD_DIR": str(load_dir)}, service=service).test_client()
    assert display_of(lookup(client)) == "Alpha"
    assert post(client, demo("2"), "demo2.json").status_code == 403
    assert stored(load_dir) == ["demo.json"]


# --- loading and unloading ---------------------------------------------------------------------


def test_load_list_replace_and_unload(admin, load_dir):
    assert admin.get("/admin/content", headers=AUTH).get_json() == {"directory": str(load_dir), "files": []}
    created = post(admin, demo(), "demo.json")
    assert created.status_code == 201
    assert created.headers["Location"] == "http://localhost/admin/content/demo.json"
    assert [i["details"]["text"] for i in created.get_json()["issue"]] == [
        "demo.json: loaded 1 resource(s); every worker serves them from the next request",
        f"CodeSystem {DEMO} version 1"]
    assert display_of(lookup(admin)) == "Alpha"
    assert display_of(lookup(admin, base="/r5")) == "Alpha"
    assert admin.get("/admin/content", headers=AUTH).get_json()["files"] == [
        {"name": "demo.json", "state": "loaded",
         "resources": [{"resourceType": "CodeSystem", "url": DEMO, "version": "1", "id": "demo"}]}]

    replaced = post(admin, demo("2", "Alpha, second edition"), "demo.json")
    assert replaced.status_code == 200
    assert display_of(lookup(admin)) == "Alpha, second edition"
    versions = admin.get(f"/r4/CodeSystem/$lookup?system={DEMO}&code=A&version=1")
    assert versions.status_code == 404

    unloaded = admin.delete("/admin/content/demo.json", headers=AUTH)
    assert unloaded.status_code == 200
    assert issue(unloaded)[2] == "demo.json: unloaded; every worker stops serving it from the next request"
    assert lookup(admin).status_code == 404
    assert stored(load_dir) == []
    assert display_of(lookup(admin, "97116", CPT)) == DISPLAY_97116


def test_a_package_loads_and_an_unnamed_body_is_named_by_its_digest(admin, load_dir, tmp_path):
    package = write_package(tmp_path / "p.tgz", {"CodeSystem-demo.json": demo()})
    response = admin.post("/admin/content", data=package.read_bytes(), headers=AUTH,
                          content_type="application/gzip")
    assert response.status_code == 201
    [name] = stored(load_dir)
    assert name.startswith("loaded-") and name.endswith(".tgz") and len(name) == len("loaded-") + 16 + len(".tgz")
    assert response.headers["Location"].endswith(f"/admin/content/{name}")
    assert display_of(lookup(admin)) == "Alpha"


def test_content_identical_to_the_start_up_content_is_accepted_adds_nothing_and_is_listed(admin, service):
    shipped = service.read("CodeSystem", "cpt-97116-fragment").resource
    response = post(admin, shipped, "again.json")
    assert response.status_code == 201
    assert [i["details"]["text"] for i in response.get_json()["issue"]] == [
        "again.json: loaded 0 resource(s); every worker serves them from the next request",
        f"CodeSystem {CPT} version 2026: also in the content the server started with (served once)"]
    assert admin.application.extensions["fhir_plugin"].service.registry is service.registry
    assert admin.get("/admin/content", headers=AUTH).get_json()["files"] == [
        {"name": "again.json", "state": "duplicate", "resources": [
            {"resourceType": "CodeSystem", "url": CPT, "version": "2026", "id": "cpt-97116-fragment",
             "alsoIn": ["the content the server started with"]}]}]


def test_a_file_whose_resources_all_repeat_another_files_is_listed_as_a_duplicate(admin, load_dir):
    other = {"resourceType": "ValueSet", "id": "v", "url": "http://example.org/fhir/ValueSet/v", "status": "active"}
    assert post(admin, {"resourceType": "Bundle", "type": "collection",
                        "entry": [{"resource": demo()}, {"resource": other}]}, "first.json").status_code == 201
    copy = post(admin, demo(), "copy.json")
    assert copy.status_code == 201
    assert [i["details"]["text"] for i in copy.get_json()["issue"]] == [
        "copy.json: loaded 0 resource(s); every worker serves them from the next request",
        f"CodeSystem {DEMO} version 1: also in first.json (served once)"]
    assert post(admin, {"resourceType": "Bundle", "type": "collection", "entry": []}, "nothing.json").status_code == 201
    assert stored(load_dir) == ["copy.json", "first.json", "nothing.json"]
    assert admin.get("/admin/content", headers=AUTH).get_json() == {"directory": str(load_dir), "files": [
        {"name": "copy.json", "state": "duplicate", "resources": [
            {"resourceType": "CodeSystem", "url": DEMO, "version": "1", "id": "demo", "alsoIn": ["first.json"]}]},
        {"name": "first.json", "state": "loaded", "resources": [
            {"resourceType": "CodeSystem", "url": DEMO, "version": "1", "id": "demo", "alsoIn": ["copy.json"]},
            {"resourceType": "ValueSet", "url": "http://example.org/fhir/ValueSet/v", "id": "v"}]},
        {"name": "nothing.json", "state": "empty", "resources": []}]}
    # unloading the file it repeats leaves what they held in common served, now from the copy alone
    assert admin.delete("/admin/content/first.json", headers=AUTH).status_code == 200
    assert display_of(lookup(admin)) == "Alpha"
    assert admin.get("/r4/ValueSet/v").status_code == 404
    assert admin.get("/admin/content", headers=AUTH).get_json()["files"] == [
        {"name": "copy.json", "state": "loaded", "resources": [
            {"resourceType": "CodeSystem", "url": DEMO, "version": "1", "id": "demo"}]},
        {"name": "nothing.json", "state": "empty", "resources": []}]


# --- refused: the server keeps serving what it had ---------------------------------------------


def broken_bundle() -> dict:
    return {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": demo("9", "Changed")},
        {"resource": {"resourceType": "ValueSet", "url": "http://example.org/fhir/ValueSet/v", "status": "nope"}}]}


def refused_cases(tmp_path):
    bad_member = write_package(tmp_path / "bad.tgz", {"CodeSystem-demo.json": demo("9", "Changed"),
                                                       "ValueSet-v.json": {"resourceType": "ValueSet", "status": "x"}})
    escaping = write_tgz(tmp_path / "escape.tgz", [member("package/../../evil.json", demo("9"))])
    conflict = dict(demo(), url=CPT, version="2026", id="cpt-copy")
    return [
        ("broken.json", json.dumps(broken_bundle()).encode(), "CONTENT_INVALID",
         "broken.json entry[1]: ValueSet/http://example.org/fhir/ValueSet/v is not valid FHIR R5: status: 'nope' is "
         "not one of active, draft, retired, unknown"),
        ("bad.tgz", bad_member.read_bytes(), "CONTENT_INVALID",
         "bad.tgz (package/ValueSet-v.json): ValueSet/? is not valid FHIR R4: status: 'x' is not one of active, "
         "draft, retired, unknown"),
        ("escape.tgz", escaping.read_bytes(), "PACKAGE_MEMBER_REFUSED",
         "escape.tgz: refused the archive member 'package/../../evil.json': a path that climbs out with '..'"),
        ("notjson.json", b"{not json", "CONTENT_NOT_JSON",
         "notjson.json: not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        ("cpt.json", json.dumps(conflict).encode(), "CONTENT_DUPLICATE_CANONICAL",
         f"CodeSystem '{CPT}' version '2026' is loaded twice with different content: in the content the server "
         "started with and in cpt.json"),
        ("demo-again.json", json.dumps(demo("1", "Other")).encode(), "CONTENT_DUPLICATE_CANONICAL",
         f"CodeSystem '{DEMO}' version '1' is loaded twice with different content: in demo.json and in "
         "demo-again.json"),
    ]


@pytest.mark.parametrize("case", range(6))
def test_refused_content_changes_nothing(admin, load_dir, tmp_path, case):
    name, data, message_id, text = refused_cases(tmp_path)[case]
    assert post(admin, demo(), "demo.json").status_code == 201
    before = admin.get("/admin/content", headers=AUTH).get_json()
    service_before = admin.application.extensions["fhir_plugin"].service
    response = post(admin, data, name)
    assert response.status_code == 422
    assert issue(response) == ("invalid", message_id, text)
    assert stored(load_dir) == ["demo.json"]
    assert sorted(p.name for p in load_dir.iterdir() if p.name.startswith(".incoming")) == []
    assert admin.get("/admin/content", headers=AUTH).get_json() == before
    assert admin.application.extensions["fhir_plugin"].service is service_before
    assert display_of(lookup(admin)) == "Alpha"
    assert display_of(lookup(admin, "97116", CPT)) == DISPLAY_97116


@pytest.mark.parametrize("method,path,query,status,message_id,text", [
    ("POST", "/admin/content", {"name": "../evil.json"}, 400, "LOADED_NAME_INVALID",
     "'../evil.json' cannot name loaded content: use letters, digits, '.', '-' and '_' (at most 100), ending in "
     ".json, .json.gz or .tgz"),
    ("POST", "/admin/content", {"name": ".generation.json"}, 400, "LOADED_NAME_INVALID", None),
    ("POST", "/admin/content", {"name": "x.xml"}, 400, "LOADED_NAME_INVALID", None),
    ("DELETE", "/admin/content/nothing.json", None, 404, "LOADED_NOT_FOUND",
     "No content named 'nothing.json' was loaded into this server"),
    ("DELETE", "/admin/content/..%2F.lock", None, 404, None, None),
    ("PUT", "/admin/content", None, 405, "METHOD_NOT_ALLOWED", "Method PUT is not allowed on /admin/content"),
    ("GET", "/admin/content/demo.json", None, 405, "METHOD_NOT_ALLOWED",
     "Method GET is not allowed on /admin/content/demo.json"),
])
def test_bad_admin_requests(admin, load_dir, method, path, query, status, message_id, text):
    response = admin.open(path, method=method, query_string=query, data=json.dumps(demo()), headers=AUTH)
    assert response.status_code == status
    assert response.get_json()["resourceType"] == "OperationOutcome"
    code, got_id, got_text = issue(response)
    if message_id:
        assert got_id == message_id
    if text:
        assert got_text == text
    assert stored(load_dir) == []


def test_a_body_beyond_the_package_limit_is_a_413(service, load_dir):
    small = create_app({"FHIR_PLUGIN_ADMIN_TOKEN": TOKEN, "FHIR_PLUGIN_LOAD_DIR": str(load_dir),
                        "FHIR_PLUGIN_MAX_PACKAGE_BYTES": 100}, service=service).test_client()
    response = post(small, demo(), "demo.json")
    assert response.status_code == 413
    assert issue(response) == ("too-long", "BODY_TOO_LARGE", "The request body is larger than the 100 bytes this "
                               "server accepts")
    assert stored(load_dir) == []


# --- too costly: refused before validation -----------------------------------------------------


def bundle_of(*resources: dict) -> dict:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def nested(depth: int) -> list[dict]:
    """One concept with `depth` levels of children under it: `depth` + 1 concepts in all."""
    concept: dict = {"code": f"C{depth}"}
    for level in reversed(range(depth)):
        concept = {"code": f"C{level}", "concept": [concept]}
    return [concept]


VS = "http://example.org/fhir/ValueSet/listed"


def too_costly_cases(tmp_path):
    import gzip

    four = bundle_of(*(dict(demo(), id=f"d{n}", url=f"{DEMO}{n}") for n in range(4)))
    package = write_package(tmp_path / "four.tgz", {f"CodeSystem-d{n}.json": dict(demo(), id=f"d{n}", url=f"{DEMO}{n}")
                                                    for n in range(4)})
    listed = {"resourceType": "ValueSet", "id": "listed", "url": VS, "status": "active", "compose": {"include": [
        {"system": DEMO, "concept": [{"code": c} for c in "ABCD"]}]}}
    mapped = {"resourceType": "ConceptMap", "id": "m", "url": "http://example.org/fhir/ConceptMap/m", "status": "active",
              "group": [{"source": DEMO, "element": [{"code": c, "noMap": True} for c in "AB"]},
                        {"source": DEMO, "element": [{"code": c, "noMap": True} for c in "CD"]}]}
    def text(name: str, count: int, unit: str, limit: int = 3) -> str:
        setting = {"resources": "RESOURCES", "concepts": "CONCEPTS", "bytes": "BYTES"}[unit]
        return (f"{name}: refused before validation: it holds at least {count} {unit}, and one load may hold at most "
                f"{limit} (the limit set by FHIR_PLUGIN_MAX_LOAD_{setting})")

    big = json.dumps(demo(title="x" * 1000)).encode()
    return [
        ("four.json", json.dumps(four).encode(), "LOAD_TOO_COSTLY", text("four.json", 4, "resources")),
        ("four.tgz", package.read_bytes(), "LOAD_TOO_COSTLY", text("four.tgz", 4, "resources")),
        ("deep.json", json.dumps(demo(concept=nested(3))).encode(), "LOAD_TOO_COSTLY", text("deep.json", 4, "concepts")),
        ("listed.json", json.dumps(listed).encode(), "LOAD_TOO_COSTLY", text("listed.json", 4, "concepts")),
        ("mapped.json", json.dumps(mapped).encode(), "LOAD_TOO_COSTLY", text("mapped.json", 4, "concepts")),
        ("big.json", big, "LOAD_TOO_COSTLY", text("big.json", len(big), "bytes", 1000)),
        ("bomb.json.gz", gzip.compress(json.dumps(demo(title=" " * 5000)).encode()), "LOAD_TOO_LARGE",
         "bomb.json.gz: refused before validation: it is, or expands to, more than 1000 bytes, the most one load may "
         "hold (the limit set by FHIR_PLUGIN_MAX_LOAD_BYTES)"),
    ]


@pytest.mark.parametrize("case", range(7))
def test_a_load_beyond_its_bounds_is_too_costly_and_changes_nothing(service, load_dir, tmp_path, monkeypatch, case):
    import fhir_plugin.content.loader as loader

    name, data, message_id, text = too_costly_cases(tmp_path)[case]
    small = create_app({"FHIR_PLUGIN_ADMIN_TOKEN": TOKEN, "FHIR_PLUGIN_LOAD_DIR": str(load_dir),
                        "FHIR_PLUGIN_MAX_LOAD_BYTES": 1000 if "BYTES" in text else 100_000,
                        "FHIR_PLUGIN_MAX_LOAD_RESOURCES": 3, "FHIR_PLUGIN_MAX_LOAD_CONCEPTS": 3},
                       service=service).test_client()
    assert post(small, demo(), "demo.json").status_code == 201
    validated, validate = [], loader.load_resource
    monkeypatch.setattr(loader, "load_resource", lambda resource, origin, *args: validated.append(origin) or validate(
        resource, origin, *args))
    response = post(small, data, name)
    assert response.status_code == 400
    assert issue(response) == ("too-costly", message_id, text)
    assert [origin for origin in validated if name in origin] == []  # refused before any of it was validated
    assert stored(load_dir) == ["demo.json"]
    assert [p.name for p in load_dir.glob(".incoming-*")] == []
    assert display_of(lookup(small)) == "Alpha"


def test_a_body_longer_than_a_load_may_be_is_refused_before_it_is_read(service, load_dir):
    small = create_app({"FHIR_PLUGIN_ADMIN_TOKEN": TOKEN, "FHIR_PLUGIN_LOAD_DIR": str(load_dir),
                        "FHIR_PLUGIN_MAX_LOAD_BYTES": 1000}, service=service).test_client()
    for name, origin in (("demo.json", "demo.json"), (None, "the request body")):
        response = small.post("/admin/content", query_string={"name": name} if name else None, data=b"x" * 5000,
                              headers=AUTH)
        assert response.status_code == 400
        assert issue(response) == ("too-costly", "LOAD_TOO_COSTLY", f"{origin}: refused before validation: it holds "
                                   "at least 5000 bytes, and one load may hold at most 1000 (the limit set by "
                                   "FHIR_PLUGIN_MAX_LOAD_BYTES)")
    assert stored(load_dir) == []


def test_a_bad_name_is_told_before_the_size_of_the_body(service, load_dir):
    small = create_app({"FHIR_PLUGIN_ADMIN_TOKEN": TOKEN, "FHIR_PLUGIN_LOAD_DIR": str(load_dir),
                        "FHIR_PLUGIN_MAX_LOAD_BYTES": 1000}, service=service).test_client()
    response = post(small, b"x" * 5000, "../evil.json")
    assert (response.status_code, issue(response)[1]) == (400, "LOADED_NAME_INVALID")


def test_a_body_without_a_length_is_read_no_further_than_a_load_may_be(service, load_dir):
    import io

    small = create_app({"FHIR_PLUGIN_ADMIN_TOKEN": TOKEN, "FHIR_PLUGIN_LOAD_DIR": str(load_dir),
                        "FHIR_PLUGIN_MAX_LOAD_BYTES": 1000}, service=service).test_client()
    response = small.post("/admin/content?name=demo.json", input_stream=io.BytesIO(b"x" * 5000),
                          headers=dict(AUTH, **{"Transfer-Encoding": "chunked"}),
                          environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 400
    assert issue(response) == ("too-costly", "LOAD_TOO_LARGE", "demo.json: refused before validation: it is, or "
                               "expands to, more than 1000 bytes, the most one load may hold (the limit set by "
                               "FHIR_PLUGIN_MAX_LOAD_BYTES)")
    assert stored(load_dir) == []


def test_loads_within_their_bounds_are_loaded_and_files_already_there_are_read_whatever_the_bounds(service, load_dir):
    settings = {"FHIR_PLUGIN_ADMIN_TOKEN": TOKEN, "FHIR_PLUGIN_LOAD_DIR": str(load_dir),
                "FHIR_PLUGIN_MAX_LOAD_RESOURCES": 3, "FHIR_PLUGIN_MAX_LOAD_CONCEPTS": 4}
    admin = create_app(settings, service=service).test_client()
    three = bundle_of(*(dict(demo(), id=f"d{n}", url=f"{DEMO}{n}") for n in range(3)))
    assert post(admin, three, "three.json").status_code == 201
    assert post(admin, demo(concept=nested(3)), "deep.json").status_code == 201
    # bounds are for one load: a start reads what is there, even after the bounds were lowered
    lowered = create_app(dict(settings, FHIR_PLUGIN_MAX_LOAD_RESOURCES=1, FHIR_PLUGIN_MAX_LOAD_CONCEPTS=1),
                         service=service).test_client()
    assert [display_of(lookup(lowered, system=f"{DEMO}{n}")) for n in range(3)] == ["Alpha"] * 3
    assert lookup(lowered, "C3").status_code == 200


def test_a_load_that_is_not_valid_and_within_its_bounds_is_still_the_422(service, load_dir):
    small = create_app({"FHIR_PLUGIN_ADMIN_TOKEN": TOKEN, "FHIR_PLUGIN_LOAD_DIR": str(load_dir),
                        "FHIR_PLUGIN_MAX_LOAD_RESOURCES": 3}, service=service).test_client()
    response = post(small, broken_bundle(), "broken.json")
    assert response.status_code == 422
    assert issue(response)[1] == "CONTENT_INVALID"


# --- several processes, restarts, and files changed behind the server's back --------------------


def test_every_process_sharing_the_directory_serves_a_load_from_its_next_request(service, load_dir):
    settings = {"FHIR_PLUGIN_ADMIN_TOKEN": TOKEN, "FHIR_PLUGIN_LOAD_DIR": str(load_dir)}
    one, other = (create_app(settings, service=service).test_client() for _ in range(2))
    assert lookup(other).status_code == 404
    assert post(one, demo(), "demo.json").status_code == 201
    assert [f["name"] for f in other.get("/admin/content", headers=AUTH).get_json()["files"]] == ["demo.json"]
    assert display_of(lookup(other)) == "Alpha"
    assert one.delete("/admin/content/demo.json", headers=AUTH).status_code == 200
    assert lookup(other).status_code == 404


def test_loaded_content_is_served_again_after_a_restart(service, load_dir):
    settings = {"FHIR_PLUGIN_ADMIN_TOKEN": TOKEN, "FHIR_PLUGIN_LOAD_DIR": str(load_dir)}
    post(create_app(settings, service=service).test_client(), demo(), "demo.json")
    restarted = create_app(settings, service=service).test_client()
    assert display_of(lookup(restarted)) == "Alpha"


def test_a_start_with_broken_loaded_content_stops_with_the_error(service, load_dir):
    load_dir.mkdir()
    (load_dir / "broken.json").write_text(json.dumps(broken_bundle()))
    with pytest.raises(InvalidContent) as raised:
        create_app({"FHIR_PLUGIN_LOAD_DIR": str(load_dir)}, service=service)
    assert raised.value.text == ("broken.json entry[1]: ValueSet/http://example.org/fhir/ValueSet/v is not valid "
                                 "FHIR R5: status: 'nope' is not one of active, draft, retired, unknown")


def test_a_file_broken_behind_the_servers_back_leaves_it_serving_what_it_had(admin, load_dir, caplog):
    assert post(admin, demo(), "demo.json").status_code == 201
    (load_dir / "demo.json").write_text("{broken")
    (load_dir / ".generation").write_text("changed by hand")
    os.utime(load_dir / ".generation", ns=(1, 1))
    with caplog.at_level(logging.ERROR, logger="fhir_plugin.terminology.live"):
        assert display_of(lookup(admin)) == "Alpha"
        assert display_of(lookup(admin)) == "Alpha"
    assert [r.getMessage() for r in caplog.records] == [
        "content loaded at run time cannot be read; serving what was loaded before: demo.json: not valid JSON: "
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"]
    listing = admin.get("/admin/content", headers=AUTH).get_json()
    assert listing["problem"].startswith("demo.json: not valid JSON")
    assert listing["files"] == [{"name": "demo.json", "state": "loaded", "resources": [
        {"resourceType": "CodeSystem", "url": DEMO, "version": "1", "id": "demo"}], "problem": listing["problem"]}]


def test_a_file_put_in_the_directory_by_hand_that_cannot_be_read_is_listed_with_the_problem(admin, load_dir):
    assert post(admin, demo(), "demo.json").status_code == 201
    (load_dir / "zz-broken.json").write_text("{broken")
    (load_dir / ".generation").write_text("changed by hand")
    assert display_of(lookup(admin)) == "Alpha"
    problem = "zz-broken.json: not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    assert admin.get("/admin/content", headers=AUTH).get_json() == {"directory": str(load_dir), "problem": problem,
                                                                      "files": [
        {"name": "demo.json", "state": "loaded", "resources": [
            {"resourceType": "CodeSystem", "url": DEMO, "version": "1", "id": "demo"}]},
        {"name": "zz-broken.json", "state": "not-loaded", "resources": [], "problem": problem}]}


# --- staging folders left by a process killed mid-load ------------------------------------------


def staging_folder(load_dir, name: str = ".incoming-k1ll3d"):
    folder = load_dir / name
    folder.mkdir(parents=True)
    (folder / "half.json").write_text('{"resourceType": "CodeSy')
    return folder


def test_a_start_deletes_the_staging_folders_of_loads_that_did_not_finish(service, load_dir, caplog):
    assert post(create_app({"FHIR_PLUGIN_ADMIN_TOKEN": TOKEN, "FHIR_PLUGIN_LOAD_DIR": str(load_dir)},
                           service=service).test_client(), demo(), "demo.json").status_code == 201
    staging_folder(load_dir), staging_folder(load_dir, ".incoming-other")
    with caplog.at_level(logging.INFO, logger="fhir_plugin.runtime.store"):
        restarted = create_app({"FHIR_PLUGIN_LOAD_DIR": str(load_dir)}, service=service).test_client()
    assert sorted(p.name for p in load_dir.iterdir()) == [".compiled", ".generation", ".lock", "demo.json"]
    assert [r.getMessage() for r in caplog.records] == [
        "deleted 2 staging folder(s) of loads that did not finish: .incoming-k1ll3d, .incoming-other"]
    assert display_of(lookup(restarted)) == "Alpha"


def test_a_start_keeps_the_staging_folder_of_a_load_running_in_another_process(service, load_dir):
    import fcntl

    folder = staging_folder(load_dir)
    # flock belongs to the open file, not the process: this one stands for another process's load
    with open(load_dir / ".lock", "w") as other_process:
        fcntl.flock(other_process, fcntl.LOCK_EX)
        admin = create_app({"FHIR_PLUGIN_ADMIN_TOKEN": TOKEN, "FHIR_PLUGIN_LOAD_DIR": str(load_dir)},
                           service=service).test_client()
        assert folder.is_dir()
    # once that load is over, the next one knows the folder is stale (it holds the lock) and deletes it
    assert post(admin, demo(), "demo.json").status_code == 201
    assert sorted(p.name for p in load_dir.iterdir()) == [".compiled", ".generation", ".lock", "demo.json"]


def test_a_start_that_cannot_take_the_lock_serves_the_directory_and_leaves_its_staging_folders(service, load_dir,
                                                                                              caplog):
    assert post(create_app({"FHIR_PLUGIN_ADMIN_TOKEN": TOKEN, "FHIR_PLUGIN_LOAD_DIR": str(load_dir)},
                           service=service).test_client(), demo(), "demo.json").status_code == 201
    staging_folder(load_dir)
    (load_dir / ".lock").unlink()
    (load_dir / ".lock").mkdir()  # cannot be opened for writing, as in a read-only directory (even by root)
    with caplog.at_level(logging.WARNING, logger="fhir_plugin.runtime.store"):
        client = create_app({"FHIR_PLUGIN_LOAD_DIR": str(load_dir)}, service=service).test_client()
    assert display_of(lookup(client)) == "Alpha"
    assert (load_dir / ".incoming-k1ll3d").is_dir()
    assert [r.getMessage() for r in caplog.records] == [
        f"cannot clean the staging folders of {load_dir}: [Errno 21] Is a directory: '{load_dir / '.lock'}'"]


# --- a load is validated once: loaded files are not read again ---------------------------------


@pytest.fixture
def validations(monkeypatch):
    """The origins of every resource validated from now on."""
    import fhir_plugin.content.loader as loader

    seen, validate = [], loader.load_resource
    monkeypatch.setattr(loader, "load_resource", lambda resource, origin, *args: seen.append(origin) or validate(
        resource, origin, *args))
    return seen


def many(prefix: str, count: int) -> dict:
    return bundle_of(*(dict(demo(), id=f"{prefix}{n}", url=f"{DEMO}-{prefix}{n}") for n in range(count)))


def origins(seen: list[str]) -> list[str]:
    """Where each validated resource came from, without the staging folder's path."""
    return [origin.rsplit("/", 1)[-1] for origin in seen]


def test_a_load_validates_its_own_file_only_and_other_processes_validate_nothing(service, load_dir, validations):
    settings = {"FHIR_PLUGIN_ADMIN_TOKEN": TOKEN, "FHIR_PLUGIN_LOAD_DIR": str(load_dir)}
    one, other = (create_app(settings, service=service).test_client() for _ in range(2))
    assert post(one, many("a", 3), "a.json").status_code == 201
    assert origins(validations) == ["a.json entry[0]", "a.json entry[1]", "a.json entry[2]"]
    validations.clear()
    assert post(one, demo(), "b.json").status_code == 201
    assert origins(validations) == ["b.json"]
    # the other process catches up with both files from their compiled forms, validating nothing
    validations.clear()
    assert display_of(lookup(other, system=f"{DEMO}-a2")) == "Alpha"
    assert display_of(lookup(other)) == "Alpha"
    assert validations == []
    # a replaced file is validated again, and nothing else; an unload validates nothing
    assert post(other, demo(display="Beta"), "b.json").status_code == 200
    assert origins(validations) == ["b.json"]
    validations.clear()
    assert one.delete("/admin/content/a.json", headers=AUTH).status_code == 200
    assert (display_of(lookup(one)), display_of(lookup(other)), lookup(other, system=f"{DEMO}-a2").status_code) == (
        "Beta", "Beta", 404)
    # a start reads the compiled forms; one that cannot be read is validated again, and only it
    (load_dir / ".compiled" / next(p.name for p in (load_dir / ".compiled").iterdir())).write_bytes(b"not a pickle")
    restarted = create_app(settings, service=service).test_client()
    assert display_of(lookup(restarted)) == "Beta"
    assert validations == [str(load_dir / "b.json")]


def test_compiled_forms_are_kept_for_the_files_in_the_directory_only(admin, load_dir):
    assert post(admin, demo(), "demo.json").status_code == 201
    assert post(admin, many("a", 2), "a.json").status_code == 201
    assert len(list((load_dir / ".compiled").iterdir())) == 2
    assert post(admin, demo(display="Beta"), "demo.json").status_code == 200  # the old version's form goes
    assert len(list((load_dir / ".compiled").iterdir())) == 2
    assert admin.delete("/admin/content/a.json", headers=AUTH).status_code == 200
    assert len(list((load_dir / ".compiled").iterdir())) == 1
    assert admin.delete("/admin/content/demo.json", headers=AUTH).status_code == 200
    assert list((load_dir / ".compiled").iterdir()) == []
    # a file deleted by hand while no server ran: the next start deletes its compiled form
    assert post(admin, demo(), "demo.json").status_code == 201
    assert post(admin, many("a", 2), "a.json").status_code == 201
    (load_dir / "a.json").unlink()
    create_app({"FHIR_PLUGIN_LOAD_DIR": str(load_dir)}, service=admin.application.extensions["fhir_plugin"].runtime.base)
    [kept] = (load_dir / ".compiled").iterdir()
    assert kept.name == f"{admin.application.extensions['fhir_plugin'].runtime.layer.file('demo.json').digest}.pickle"


def test_a_file_put_there_by_hand_that_conflicts_is_not_served_and_the_rest_is(admin, load_dir, caplog):
    assert post(admin, demo(), "demo.json").status_code == 201
    (load_dir / "clash.json").write_text(json.dumps(demo(display="Other")))
    (load_dir / "fine.json").write_text(json.dumps(dict(demo(), id="fine", url=f"{DEMO}-fine")))
    (load_dir / ".generation").write_text("changed by hand")
    assert display_of(lookup(admin)) == "Alpha"
    assert display_of(lookup(admin, system=f"{DEMO}-fine")) == "Alpha"
    problem = (f"CodeSystem '{DEMO}' version '1' is loaded twice with different content: in demo.json and in "
               "clash.json")
    listing = admin.get("/admin/content", headers=AUTH).get_json()
    assert listing["problem"] == problem
    assert [(f["name"], f["state"], f.get("problem")) for f in listing["files"]] == [
        ("clash.json", "not-loaded", problem), ("demo.json", "loaded", None), ("fine.json", "loaded", None)]
    # the next load is not held up by it
    assert post(admin, dict(demo(), id="next", url=f"{DEMO}-next"), "next.json").status_code == 201
    assert display_of(lookup(admin, system=f"{DEMO}-next")) == "Alpha"
    # once the file it clashes with is gone, it is served
    assert admin.delete("/admin/content/demo.json", headers=AUTH).status_code == 200
    (load_dir / ".generation").write_text("changed by hand again")
    assert display_of(lookup(admin)) == "Other"
    assert "problem" not in admin.get("/admin/content", headers=AUTH).get_json()


def test_requests_never_wait_for_a_load_running_in_another_process(admin, load_dir, service):
    import fcntl
    from concurrent.futures import ThreadPoolExecutor

    settings = {"FHIR_PLUGIN_ADMIN_TOKEN": TOKEN, "FHIR_PLUGIN_LOAD_DIR": str(load_dir)}
    assert post(admin, demo(), "demo.json").status_code == 201
    other = create_app(settings, service=service).test_client()
    # flock belongs to the open file: this stands for another process, mid-load, holding the lock
    # (the lock is released before the pool is waited for: a request that waited for it would fail, not hang)
    with ThreadPoolExecutor(1) as pool, open(load_dir / ".lock", "w") as other_process:
        fcntl.flock(other_process, fcntl.LOCK_EX)
        # that process finishes a change (a file and the marker) while it still holds the lock
        (load_dir / "more.json").write_text(json.dumps(dict(demo(), id="more", url=f"{DEMO}-more")))
        (load_dir / ".generation").write_text("changed by the other process")
        answers = pool.submit(lambda: (display_of(lookup(other)), display_of(lookup(other, system=f"{DEMO}-more")),
                                       [f["name"] for f in other.get("/admin/content", headers=AUTH).get_json()["files"]]))
        assert answers.result(timeout=30) == ("Alpha", "Alpha", ["demo.json", "more.json"])


def test_a_request_keeps_the_content_it_started_with_while_a_load_is_swapped_in(admin, load_dir):
    assert post(admin, demo(), "demo.json").status_code == 201
    runtime = admin.application.extensions["fhir_plugin"].runtime
    running = runtime.current()  # what a request in flight holds
    assert post(admin, demo("1", "Changed"), "demo.json").status_code == 200
    assert running.lookup(LookupRequest(system=DEMO, code="A")).display == "Alpha"
    assert runtime.current().lookup(LookupRequest(system=DEMO, code="A")).display == "Changed"
    assert display_of(lookup(admin)) == "Changed"


def test_a_registry_changed_entry_by_entry_serves_what_one_built_at_once_would():
    import random

    from fhir_plugin.terminology.registry import Registry, compile_entry

    # as the canonical index keeps them: no url|version and no id twice (versions of one url, yes)
    def cs(n: int, version: str) -> dict:
        return dict(demo(version, f"Alpha {n} {version}"), id=f"cs{n}-{version}", url=f"{DEMO}{n}")

    def cm(n: int) -> dict:
        return {"resourceType": "ConceptMap", "id": f"cm{n}", "url": f"http://example.org/cm{n % 2}", "version": str(n),
                "status": "active"}

    def vs(n: int) -> dict:
        return {"resourceType": "ValueSet", "id": f"vs{n}", "url": f"http://example.org/vs{n % 3}", "version": str(n),
                "status": "active"}

    pool = [compile_entry(r) for r in [*(cs(n, v) for n in range(3) for v in ("1", "2", "3")), *map(cm, range(5)),
                                       *map(vs, range(6))]]
    base = Registry([dict(demo("0"), id="base", url=f"{DEMO}0"), vs(9)])
    ids = [("CodeSystem", "base"), ("ValueSet", "vs9"), *(("ValueSet", f"vs{n}") for n in range(6)),
           *(("CodeSystem", f"cs{n}-{v}") for n in range(3) for v in "123"), *(("ConceptMap", f"cm{n}") for n in range(5))]

    def shape(registry: Registry) -> tuple:
        # (the order of urls is the order they came in, which differs; versions of one url: newest first)
        return (sorted({c.url: [v.version for v in registry.code_system_versions(c.url)]
                        for c in registry.code_systems()}.items()),
                [(c.url, c.version) for c in sorted(registry.code_systems(), key=lambda c: c.url)],
                sorted((m.url, m.version) for m in registry.concept_maps()),
                {t: sorted((e.url, e.version, e.id) for e in registry.entries(t))
                 for t in ("CodeSystem", "ValueSet", "ConceptMap")},
                [(key, getattr(registry.by_id(*key), "version", None)) for key in ids],
                [[e.version for e in registry.resource_versions("ValueSet", f"http://example.org/vs{n}")]
                 for n in range(3)])

    rng = random.Random(97116)
    held: list = []
    registry = Registry(compiled=[], parent=base)
    for _ in range(60):
        removed = rng.sample(held, k=rng.randint(0, min(3, len(held))))
        held = [e for e in held if e not in removed]
        free = [e for e in pool if e not in held]
        added = rng.sample(free, k=rng.randint(0, min(3, len(free))))
        held += added
        before = shape(registry)
        changed = registry.changed(added, [e.resource for e in removed])
        assert shape(changed) == shape(Registry(compiled=held, parent=base))
        assert shape(registry) == before  # the registry changed from is left as it was
        assert changed.token != registry.token and changed.caches is registry.caches and changed.parent is base
        registry = changed


# --- the command line against a real server -----------------------------------------------------


def test_load_and_unload_through_a_real_server_with_two_workers(tmp_path):
    from live_server import LiveServer, _wait_until_ready, clean_environ, free_port

    port = free_port()
    environ = dict(clean_environ(), FHIR_PLUGIN_ADMIN_TOKEN=TOKEN, FHIR_PLUGIN_LOAD_DIR=str(tmp_path / "loaded"),
                   FHIR_PLUGIN_CONTENT=str(tmp_path / "content"))
    (tmp_path / "content").mkdir()
    (tmp_path / "content" / "base.json").write_text(json.dumps(dict(demo(), id="base", url=f"{DEMO}-base")))
    (tmp_path / "demo.json").write_text(json.dumps(demo()))
    (tmp_path / "broken.json").write_text(json.dumps(broken_bundle()))
    cli = [sys.executable, "-m", "fhir_plugin"]
    server = f"http://127.0.0.1:{port}"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(cli + list(args), capture_output=True, text=True, env=environ, timeout=60)

    with open(tmp_path / "server.log", "w+b") as log:
        process = subprocess.Popen(cli + ["serve", "--port", str(port), "--workers", "2"], stdout=log,
                                   stderr=subprocess.STDOUT, env=environ)
        try:
            _wait_until_ready(process, LiveServer(server, port, log))
            loaded = run("load", "--server", server, str(tmp_path / "demo.json"))
            assert (loaded.returncode, loaded.stdout) == (0, "demo.json: loaded 1 resource(s); every worker serves "
                                                             f"them from the next request\nCodeSystem {DEMO} version 1\n")
            refused = run("load", "--server", f"{server}/r4", str(tmp_path / "broken.json"))
            assert (refused.returncode, refused.stdout) == (2, "")
            assert refused.stderr == ("error (HTTP 422): broken.json entry[1]: ValueSet/http://example.org/fhir/"
                                      "ValueSet/v is not valid FHIR R5: status: 'nope' is not one of active, draft, "
                                      "retired, unknown\n")
            # Each sync worker takes one connection at a time: 20 fresh connections reach both.
            answers = {run_lookup(server) for _ in range(20)}
            assert answers == {(200, "Alpha")}
            assert run("unload", "demo.json", "--server", server).returncode == 0
            assert {run_lookup(server) for _ in range(20)} == {(404, None)}
            assert {run_lookup(server, f"{DEMO}-base") for _ in range(4)} == {(200, "Alpha")}
            no_token = subprocess.run(cli + ["unload", "demo.json", "--server", server], capture_output=True,
                                      text=True, env=clean_environ(), timeout=60)
            assert (no_token.returncode, no_token.stderr) == (
                2, "error: --server needs the server's admin token: --token or FHIR_PLUGIN_ADMIN_TOKEN\n")
        finally:
            process.terminate()
            process.wait(timeout=15)


def run_lookup(server: str, system: str = DEMO) -> tuple[int, str | None]:
    import requests

    response = requests.get(f"{server}/r4/CodeSystem/$lookup", params={"system": system, "code": "A"}, timeout=10,
                            headers={"Connection": "close"})
    if response.status_code != 200:
        return response.status_code, None
    return 200, next(p["valueString"] for p in response.json()["parameter"] if p["name"] == "display")



def test_where_loaded_content_is_kept():
    from pathlib import Path

    from fhir_plugin.config import load_dir

    assert load_dir({}, environ={"XDG_DATA_HOME": "/d"}) is None
    assert load_dir({"FHIR_PLUGIN_ADMIN_TOKEN": "t"}, environ={"XDG_DATA_HOME": "/d"}) == Path("/d/fhir_plugin/loaded")
    assert load_dir({"FHIR_PLUGIN_ADMIN_TOKEN": "t"}, environ={}) == Path.home() / ".local/share/fhir_plugin/loaded"
    assert load_dir({"FHIR_PLUGIN_LOAD_DIR": "/x"}, environ={"XDG_DATA_HOME": "/d"}) == Path("/x")


@pytest.mark.parametrize("method, path", [("POST", "/admin/content"), ("GET", "/admin/content"),
                                          ("DELETE", "/admin/content/x.json")])
@pytest.mark.parametrize("query", [b"name=\xff.json", b"name=%FF"])
def test_a_query_string_that_is_not_utf_8_is_a_400_on_the_admin_endpoints(admin, load_dir, method, path, query):
    response = admin.open(path, method=method, environ_overrides={"QUERY_STRING": query.decode("latin-1")},
                          data=json.dumps(demo()), headers=AUTH)
    assert response.status_code == 400
    assert issue(response) == ("invalid", "BODY_BAD_PARAMETERS",
                               "The Parameters resource is malformed: the query string is not valid UTF-8")
    assert stored(load_dir) == []


def test_concurrent_loads_through_two_processes_sharing_the_directory_all_land(service, load_dir):
    from concurrent.futures import ThreadPoolExecutor

    settings = {"FHIR_PLUGIN_ADMIN_TOKEN": TOKEN, "FHIR_PLUGIN_LOAD_DIR": str(load_dir)}
    apps = [create_app(settings, service=service) for _ in range(2)]

    def load(n: int) -> int:
        resource = dict(demo(), id=f"demo{n}", url=f"{DEMO}{n}")
        return post(apps[n % 2].test_client(), resource, f"demo{n}.json").status_code

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(load, range(6))) == [201] * 6
    assert stored(load_dir) == [f"demo{n}.json" for n in range(6)]
    for app in apps:
        client = app.test_client()
        assert [display_of(lookup(client, system=f"{DEMO}{n}")) for n in range(6)] == ["Alpha"] * 6
    assert (load_dir / ".generation").read_text().count("\n") == 6


def test_load_name_with_several_files_is_refused_before_anything_is_sent(capsys, tmp_path):
    from fhir_plugin.cli import main

    code = main(["load", "--server", "http://127.0.0.1:9", "--token", TOKEN, "--name", "x.json",
                 str(tmp_path / "a.json"), str(tmp_path / "b.json")])
    assert (code, capsys.readouterr().err) == (2, "error: --name names one file; give one PATH with it\n")
