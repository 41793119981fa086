"""Reads by id on each endpoint give that FHIR release's copy where FHIR core's packages of R4 and R5
give the same id (CodeSystem/administrative-gender: 4.0.1 on /r4, 5.0.0 on /r5; /fhir follows
FHIR_PLUGIN_DEFAULT_VERSION), as $lookup, $validate-code and $expand choose (Registry.preferring);
`_id` matches what a read gives; a search by url lists both copies, the endpoint's first.

Over the app's test client with the default content (`default_service`); over real HTTP in
tests/test_default_content.py."""

from __future__ import annotations

import pytest
from fhir_xml import from_json, from_xml

from fhir_plugin import create_app
from fhir_plugin.terminology.registry import Registry
from fhir_plugin.terminology.service import TerminologyService

GENDER = "http://hl7.org/fhir/administrative-gender"
RELEASES = [("r4", "4.0.1", "5.0.0"), ("r5", "5.0.0", "4.0.1")]


@pytest.fixture(scope="module")
def app(default_service):
    return create_app(service=default_service)


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


def read(client, path: str) -> dict:
    answer = client.get(path)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    found: dict = answer.get_json()
    return found


def listed(client, path: str, total: int | None = None) -> list[tuple[str, str, str]]:
    """(fullUrl's last two segments, id, version) of each entry of a searchset (of `total` matches:
    by default as many as it lists)."""
    bundle = read(client, path)
    assert bundle["type"] == "searchset" and bundle["total"] == (len(bundle.get("entry", [])) if total is None else total)
    return [("/".join(e["fullUrl"].split("/")[-2:]), e["resource"]["id"], e["resource"]["version"])
            for e in bundle.get("entry", [])]


@pytest.mark.parametrize("endpoint, release, other", RELEASES)
@pytest.mark.parametrize("resource_type", ["CodeSystem", "ValueSet"])
def test_a_read_gives_the_endpoints_release(client, endpoint, release, other, resource_type):
    found = read(client, f"/{endpoint}/{resource_type}/administrative-gender")
    assert (found["resourceType"], found["id"], found["version"]) == (resource_type, "administrative-gender", release)
    xml = client.get(f"/{endpoint}/{resource_type}/administrative-gender?_format=xml")
    assert xml.status_code == 200 and xml.content_type.startswith("application/fhir+xml")
    assert from_xml(xml.get_data()) == from_json(found)  # the same copy, in XML
    assert f'<version value="{release}"/>'.encode() in xml.get_data()


@pytest.mark.parametrize("endpoint, release, other", RELEASES)
def test_a_concept_map_read_and_an_instance_operation(client, endpoint, release, other):
    assert read(client, f"/{endpoint}/ConceptMap/cm-administrative-gender-v2")["version"] == release
    looked_up = read(client, f"/{endpoint}/CodeSystem/administrative-gender/$lookup?code=male")
    assert {p["name"]: p.get("valueString") for p in looked_up["parameter"]}["version"] == release
    expanded = read(client, f"/{endpoint}/ValueSet/administrative-gender/$expand")
    assert (expanded["version"], [(p["name"], p["valueUri"]) for p in expanded["expansion"]["parameter"]
                                  if p["name"] == "used-codesystem"]) == (release, [("used-codesystem", f"{GENDER}|{release}")])


@pytest.mark.parametrize("endpoint", ["r4", "r5"])
@pytest.mark.parametrize("resource_type, resource_id, version", [
    ("CodeSystem", "icd-10-cm", "2026-04-01"),  # ours, one copy
    ("CodeSystem", "v3-ActCode", "9.0.0"),  # HL7 Terminology's
    ("CodeSystem", "abstract-types", "4.0.1"),  # R4 core's alone: served on /r5 too
])
def test_an_id_that_one_resource_holds_reads_the_same_on_both(client, endpoint, resource_type, resource_id, version):
    found = read(client, f"/{endpoint}/{resource_type}/{resource_id}?_elements=id,version")
    assert (found["id"], found["version"]) == (resource_id, version)


@pytest.mark.parametrize("endpoint, release, other", RELEASES)
def test_id_search_gives_what_a_read_gives(client, endpoint, release, other):
    assert listed(client, f"/{endpoint}/CodeSystem?_id=administrative-gender") == [
        ("CodeSystem/administrative-gender", "administrative-gender", release)]
    assert listed(client, f"/{endpoint}/CodeSystem?_id=administrative-gender,icd-10-cm&_elements=id,version") == [
        ("CodeSystem/icd-10-cm", "icd-10-cm", "2026-04-01"),  # the registry's order: the bundled content first
        ("CodeSystem/administrative-gender", "administrative-gender", release)]
    assert listed(client, f"/{endpoint}/CodeSystem?_id=administrative-gender&version={other}") == []


@pytest.mark.parametrize("endpoint, release, other", RELEASES)
def test_a_search_by_url_lists_both_copies_the_endpoints_first(client, endpoint, release, other):
    both = [("CodeSystem/administrative-gender", "administrative-gender", release),
            ("CodeSystem/administrative-gender", "administrative-gender", other)]
    assert listed(client, f"/{endpoint}/CodeSystem?url={GENDER}") == both
    assert listed(client, f"/{endpoint}/CodeSystem?url={GENDER}|{other}") == [both[1]]
    # paged one at a time: the same order
    assert [listed(client, f"/{endpoint}/CodeSystem?url={GENDER}&_count=1&_offset={n}", 2)[0] for n in (0, 1)] == both


def test_the_answer_cache_keeps_each_endpoints_read_apart(app, client):
    answers = app.extensions["fhir_plugin"].runtime.answers
    answers.clear()
    paths = {"/r4/CodeSystem/administrative-gender": "4.0.1", "/r5/CodeSystem/administrative-gender": "5.0.0",
             "/fhir/CodeSystem/administrative-gender": "4.0.1"}
    for _ in range(3):  # the first round fills the cache, the others are answered from it
        assert {path: read(client, path)["version"] for path in paths} == paths
    assert answers.stats.size == 3 and answers.stats.hits == 6


@pytest.mark.parametrize("default, release", [("R4", "4.0.1"), ("R5", "5.0.0")])
def test_the_fhir_base_follows_the_default_version(default_service, default, release):
    client = create_app({"FHIR_PLUGIN_DEFAULT_VERSION": default}, service=default_service).test_client()
    assert read(client, "/fhir/CodeSystem/administrative-gender")["version"] == release
    assert listed(client, "/fhir/CodeSystem?_id=administrative-gender")[0][2] == release


def test_the_ui_shows_what_the_r4_endpoint_serves(client):
    page = client.get("/ui/CodeSystem/administrative-gender")
    assert page.status_code == 200 and "4.0.1" in page.get_data(as_text=True)
    assert "5.0.0" not in page.get_data(as_text=True)
    html = client.get("/r5/CodeSystem/administrative-gender", headers={"Accept": "text/html"})
    assert html.status_code == 200 and "4.0.1" in html.get_data(as_text=True)


# --- the registry: which entry a view reads, on content made here --------------------------------


def code_system(version: str, url: str = "http://example.org/status", rid: str = "status") -> dict:
    return {"resourceType": "CodeSystem", "id": rid, "url": url, "version": version, "status": "active",
            "content": "complete", "concept": [{"code": "on", "display": f"On ({version})"}]}


def test_a_view_reads_its_versions_copy_of_an_id_several_entries_hold():
    # what two packages may give: one id twice (the content layer refuses it outside packages)
    base = Registry([code_system("5.0.0"), code_system("4.0.1"), code_system("4.0.1", "http://example.org/x", "x"),
                     code_system("5.0.0", "http://example.org/y", "y"), code_system("1.0.0", "http://example.org/y", "y")])
    r4, r5 = Registry.preferring(base, "4.0.1"), Registry.preferring(base, "5.0.0")
    assert [base.by_id("CodeSystem", i).version for i in ("status", "x", "y")] == ["5.0.0", "4.0.1", "5.0.0"]
    assert [r4.by_id("CodeSystem", i).version for i in ("status", "x", "y")] == ["4.0.1", "4.0.1", "5.0.0"]
    assert [r5.by_id("CodeSystem", i).version for i in ("status", "x", "y")] == ["5.0.0", "4.0.1", "5.0.0"]
    assert r4.by_id("CodeSystem", "none") is None
    overlay = Registry([code_system("2.0.0", "http://example.org/z", "z")], parent=r4)  # a request's tx-resources
    assert overlay.by_id("CodeSystem", "status").version == "4.0.1"
    searched = TerminologyService(r4).search("CodeSystem", {})
    assert [(e.id, e.version) for e in searched] == [("status", "4.0.1"), ("status", "5.0.0"), ("x", "4.0.1"),
                                                     ("y", "5.0.0"), ("y", "1.0.0")]
    assert [e.version for e in TerminologyService(r4).search("CodeSystem", {"_id": "status"})] == ["4.0.1"]
    assert Registry.preferring(base, "6.0.0") is base  # no copy of that release: no view
