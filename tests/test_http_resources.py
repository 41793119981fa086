"""Read, search, /metadata, $versions and content negotiation; the CapabilityStatement against the routes."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from helpers import (
    CM_URL,
    CPT,
    CPT_VS,
    FHIR_JSON,
    ICD,
    ICD_VS,
    assert_outcome,
    body_of,
    load_content,
    ok_json,
    validate,
)

from fhir_plugin import __version__, create_app
from fhir_plugin.fhirversions import FhirVersion, resource_for
from fhir_plugin.web.views import ROUTES

ROOT = Path(__file__).resolve().parent.parent
ENDPOINTS = [("/r4", "R4"), ("/r5", "R5"), ("/fhir", "R4")]
IDS = {
    "CodeSystem": ["cpt-97116-fragment", "designation-use", "icd-10-cm"],
    "ValueSet": ["cpt-gait-training", "icd-10-cm-gait-training-diagnoses"],
    "ConceptMap": ["cpt-97116-to-icd-10-cm"],
}


def shipped(resource_type: str, resource_id: str) -> dict:
    path = ROOT / "resources" / f"{resource_type}-{resource_id}.json"
    if not path.exists():  # the generated ICD-10-CM
        return json.loads(gzip.decompress(path.with_name(path.name + ".gz").read_bytes()))
    return json.loads(path.read_text(encoding="utf-8"))


SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED",
             "display": "subsetted"}


def listed(resource: dict) -> dict:
    """A resource as a search lists it: the complete ICD-10-CM without its 98,466 concepts, tagged
    SUBSETTED (read it for them); every other shipped resource whole."""
    if resource["id"] != "icd-10-cm":
        return resource
    return {**{k: v for k, v in resource.items() if k != "concept"}, "meta": {"tag": [SUBSETTED]}}


# --- read --------------------------------------------------------------------------------------

READS = [(rtype, rid) for rtype, ids in IDS.items() for rid in ids]


@pytest.mark.parametrize("rtype, rid", READS)
@pytest.mark.parametrize("base, version", ENDPOINTS)
def test_read(client, base, version, rtype, rid):
    body = ok_json(client.get(f"{base}/{rtype}/{rid}"), version)
    assert body == resource_for(FhirVersion(version), shipped(rtype, rid))


def test_read_r5_is_the_shipped_file(client):
    assert ok_json(client.get("/r5/ConceptMap/cpt-97116-to-icd-10-cm"), "R5") == shipped(
        "ConceptMap", "cpt-97116-to-icd-10-cm")


@pytest.mark.parametrize("base", ["/r4", "/fhir"])
def test_read_r4_concept_map_has_equivalence(client, base):
    body = ok_json(client.get(f"{base}/ConceptMap/cpt-97116-to-icd-10-cm"), "R4")
    [group] = body["group"]
    assert (group["source"], group["sourceVersion"], group["target"], group["targetVersion"]) == (
        CPT, "2026", ICD, "2026-04-01")
    assert [(t["code"], t["equivalence"]) for t in group["element"][0]["target"]] == [
        ("M62.81", "relatedto"), ("R26.2", "relatedto"), ("G81.90", "relatedto")]
    assert (body["sourceUri"], body["targetUri"]) == (CPT_VS, ICD_VS)
    assert "sourceScopeUri" not in body and "relationship" not in json.dumps(body)


def test_read_r5_concept_map_has_relationship(client):
    body = ok_json(client.get("/r5/ConceptMap/cpt-97116-to-icd-10-cm"), "R5")
    assert [t["relationship"] for t in body["group"][0]["element"][0]["target"]] == ["related-to"] * 3
    assert "equivalence" not in json.dumps(body)


def test_read_unknown_id(client):
    assert_outcome(client.get("/r5/ValueSet/nope"), 404, "not-found", text="ValueSet/nope not found",
                   message_id="RESOURCE_NOT_FOUND")


def test_read_id_of_another_type(client):
    assert_outcome(client.get("/r4/ValueSet/cpt-97116-fragment"), 404, "not-found",
                   text="ValueSet/cpt-97116-fragment not found", message_id="RESOURCE_NOT_FOUND")


# --- search ------------------------------------------------------------------------------------

SEARCHES = [
    ("CodeSystem", "", IDS["CodeSystem"]),
    ("ValueSet", "", IDS["ValueSet"]),
    ("ConceptMap", "", IDS["ConceptMap"]),
    ("CodeSystem", f"url={CPT}", ["cpt-97116-fragment"]),
    ("CodeSystem", f"url={CPT}|2026", ["cpt-97116-fragment"]),
    ("CodeSystem", f"url={CPT}|2025", []),
    ("CodeSystem", "url=http://www.ama-assn.org/go", []),
    ("ConceptMap", f"url={CM_URL}", ["cpt-97116-to-icd-10-cm"]),
    ("ValueSet", f"url={ICD_VS}|1.0.0", ["icd-10-cm-gait-training-diagnoses"]),
    ("CodeSystem", "version=2026", ["cpt-97116-fragment"]),
    ("CodeSystem", "version=2026-04-01", ["icd-10-cm"]),
    ("ValueSet", "version=1.0.0", IDS["ValueSet"]),
    ("CodeSystem", "version=2026-04", []),
    ("CodeSystem", "name=CPT", ["cpt-97116-fragment"]),
    ("CodeSystem", "name=cpt", ["cpt-97116-fragment"]),
    ("CodeSystem", "name=icd", ["icd-10-cm"]),
    ("CodeSystem", "name=ICD10CM", ["icd-10-cm"]),
    ("CodeSystem", "name=10CM", []),
    ("CodeSystem", "name=fhirplugin", ["designation-use"]),
    ("ValueSet", "name=cpt", ["cpt-gait-training"]),
    ("ConceptMap", "name=CPT97116", ["cpt-97116-to-icd-10-cm"]),
    ("CodeSystem", "title=current%20procedural", ["cpt-97116-fragment"]),
    ("ValueSet", "title=ICD-10-CM%20diagnoses", ["icd-10-cm-gait-training-diagnoses"]),
    ("ValueSet", "title=gait", []),
    ("CodeSystem", "status=active", IDS["CodeSystem"]),
    ("CodeSystem", "status=draft", []),
    ("CodeSystem", "_id=designation-use", ["designation-use"]),
    ("ConceptMap", "_id=nope", []),
    ("CodeSystem", "name=icd&status=active&version=2026-04-01", ["icd-10-cm"]),
    ("CodeSystem", "name=icd&status=retired", []),
    ("CodeSystem", "_count=10&_sort=name&foo=bar", IDS["CodeSystem"]),
]


# The self link names what was applied, normalised (FHIR search.html#selflink): the parameters in
# the CapabilityStatement's order, a '|' percent-encoded; _count as used, and nothing that was ignored.
SELF = {
    f"url={CPT}|2026": f"url={CPT}%7C2026",
    f"url={CPT}|2025": f"url={CPT}%7C2025",
    f"url={ICD_VS}|1.0.0": f"url={ICD_VS}%7C1.0.0",
    "name=icd&status=active&version=2026-04-01": "version=2026-04-01&name=icd&status=active",
    "_count=10&_sort=name&foo=bar": "_count=10",
}


@pytest.mark.parametrize("rtype, query, ids", SEARCHES)
@pytest.mark.parametrize("base, version", ENDPOINTS)
def test_search(client, base, version, rtype, query, ids):
    url = f"{base}/{rtype}" + (f"?{query}" if query else "")
    body = ok_json(client.get(url), version)
    assert body["resourceType"] == "Bundle"
    assert body["type"] == "searchset"
    assert body["total"] == len(ids)
    applied = SELF.get(query, query)
    assert body["link"] == [{"relation": "self", "url": f"http://localhost{base}/{rtype}" + (f"?{applied}" if applied else "")}]
    assert [e["fullUrl"] for e in body.get("entry", [])] == [f"http://localhost{base}/{rtype}/{i}" for i in ids]
    assert [e["search"] for e in body.get("entry", [])] == [{"mode": "match"}] * len(ids)
    assert [e["resource"] for e in body.get("entry", [])] == [
        resource_for(FhirVersion(version), listed(shipped(rtype, i))) for i in ids]


def test_search_r4_bundle_carries_r4_concept_maps(client):
    body = ok_json(client.get("/r4/ConceptMap"), "R4")
    target = body["entry"][0]["resource"]["group"][0]["element"][0]["target"][0]
    assert (target["code"], target["equivalence"]) == ("M62.81", "relatedto")


@pytest.mark.parametrize("prefer", ["handling=strict", "handling = strict", "return=minimal, handling=strict"])
def test_search_unknown_parameter_with_strict_handling(client, prefer):
    assert_outcome(client.get("/r4/CodeSystem?foo=bar", headers={"Prefer": prefer}), 400, "invalid",
                   text="Unknown search parameter 'foo' for CodeSystem (Prefer: handling=strict)",
                   message_id="SEARCH_PARAM_UNKNOWN")


def test_search_unknown_parameter_with_lenient_handling(client):
    body = ok_json(client.get("/r5/ValueSet?foo=bar", headers={"Prefer": "handling=lenient"}), "R5")
    assert body["total"] == 2


def test_search_strict_handling_still_accepts_control_parameters(client):
    body = ok_json(client.get("/r4/CodeSystem?name=cpt&_format=json&_pretty=false",
                              headers={"Prefer": "handling=strict"}), "R4")
    assert body["total"] == 1


def test_search_repeated_parameter_must_hold_each_time(client):
    assert ok_json(client.get("/r4/CodeSystem?name=cpt&name=icd"), "R4")["total"] == 0
    assert [e["resource"]["id"] for e in ok_json(client.get("/r4/CodeSystem?name=cp&name=CPT"), "R4")["entry"]] == [
        "cpt-97116-fragment"]
    assert_outcome(client.get("/r4/CodeSystem?_count=1&_count=2"), 400, "invalid",
                   text="Parameter '_count' may be given at most once", message_id="PARAM_REPEATED")


def test_search_base_url_setting(service):
    client = create_app({"FHIR_PLUGIN_BASE_URL": "https://tx.example.org/"}, service=service).test_client()
    body = ok_json(client.get("/r5/ConceptMap"), "R5")
    assert body["entry"][0]["fullUrl"] == "https://tx.example.org/r5/ConceptMap/cpt-97116-to-icd-10-cm"
    metadata = ok_json(client.get("/r5/metadata"), "R5")
    assert metadata["implementation"]["url"] == "https://tx.example.org/r5"


# --- content negotiation -----------------------------------------------------------------------


@pytest.mark.parametrize("query, accept, mimetype", [
    ("", None, FHIR_JSON),
    ("", "application/fhir+json", FHIR_JSON),
    ("", "application/json", "application/json"),
    ("", "text/json", "application/json"),
    ("", "*/*", FHIR_JSON),
    ("", "application/*", FHIR_JSON),
    ("", "text/html, application/json;q=0.9, */*;q=0.8", "application/json"),
    ("", "application/json;q=0.5, application/fhir+json", FHIR_JSON),
    ("", "application/fhir+json;q=0, application/json", "application/json"),
    ("", "application/json;q=bad", "application/json"),  # a malformed weight is ignored
    ("?_format=json", None, FHIR_JSON),  # FHIR's _format=json means application/fhir+json
    ("?_format=application/json", None, "application/json"),
    ("?_format=application/fhir%2Bjson", None, FHIR_JSON),
    ("?_format=application/json", "application/fhir+xml", "application/json"),  # _format wins over Accept
])
def test_content_negotiation(client, query, accept, mimetype):
    headers = {"Accept": accept} if accept else {}
    response = client.get(f"/r4/CodeSystem/cpt-97116-fragment{query}", headers=headers)
    assert response.status_code == 200
    assert response.mimetype == mimetype
    assert body_of(response)["id"] == "cpt-97116-fragment"


def test_application_json_on_an_operation(client):
    response = client.get(f"/r5/CodeSystem/$lookup?system={CPT}&code=97116",
                          headers={"Accept": "application/json"})
    assert response.mimetype == "application/json"
    validate(body_of(response), "R5")


def test_pretty(client):
    pretty = client.get("/r4/ValueSet/cpt-gait-training?_pretty=true").get_data(as_text=True)
    compact = client.get("/r4/ValueSet/cpt-gait-training").get_data(as_text=True)
    resource = shipped("ValueSet", "cpt-gait-training")
    assert pretty == json.dumps(resource, indent=2, ensure_ascii=False)
    assert pretty.startswith('{\n  "resourceType": "ValueSet",\n  "id": "cpt-gait-training",')
    assert compact == json.dumps(resource, separators=(",", ":"), ensure_ascii=False)
    assert "\n" not in compact


def test_non_ascii_is_sent_as_utf8(client):
    raw = client.get("/r5/CodeSystem/cpt-97116-fragment").get_data()
    assert "CPT © Copyright 2026".encode() in raw
    assert "(CPT®)".encode() in raw


# --- /metadata ---------------------------------------------------------------------------------


@pytest.mark.parametrize("base, version, release", [("/r4", "R4", "4.0.1"), ("/r5", "R5", "5.0.0"),
                                                    ("/fhir", "R4", "4.0.1")])
def test_capability_statement(client, base, version, release):
    body = ok_json(client.get(f"{base}/metadata"), version)
    assert body["resourceType"] == "CapabilityStatement"
    assert body["fhirVersion"] == release
    assert body["instantiates"] == ["http://hl7.org/fhir/CapabilityStatement/terminology-server"]
    assert body["kind"] == "instance"
    assert body["status"] == "active"
    assert body["version"] == body["software"]["version"] == __version__
    assert body["software"]["name"] == "fhir_plugin"
    assert body["implementation"]["url"] == f"http://localhost{base}"
    assert body["format"] == ["application/fhir+json", "application/json", "application/fhir+xml", "application/xml",
                              "text/xml"]
    [rest] = body["rest"]
    assert rest["mode"] == "server"
    assert [r["type"] for r in rest["resource"]] == ["CodeSystem", "ValueSet", "ConceptMap"]


def test_capability_statement_operations_point_to_the_hl7_definitions(client):
    rest = ok_json(client.get("/r5/metadata"), "R5")["rest"][0]
    operations = {(r["type"], o["name"]): o["definition"] for r in rest["resource"] for o in r.get("operation", [])}
    assert operations == {
        ("CodeSystem", "lookup"): "http://hl7.org/fhir/OperationDefinition/CodeSystem-lookup",
        ("CodeSystem", "subsumes"): "http://hl7.org/fhir/OperationDefinition/CodeSystem-subsumes",
        ("ValueSet", "expand"): "http://hl7.org/fhir/OperationDefinition/ValueSet-expand",
        ("CodeSystem", "validate-code"): "http://hl7.org/fhir/OperationDefinition/CodeSystem-validate-code",
        ("ValueSet", "validate-code"): "http://hl7.org/fhir/OperationDefinition/ValueSet-validate-code",
        ("ValueSet", "batch-validate-code"): "http://hl7.org/fhir/OperationDefinition/ValueSet-batch-validate-code",
        ("ConceptMap", "translate"): "http://hl7.org/fhir/OperationDefinition/ConceptMap-translate",
    }
    assert rest["operation"] == [
        {"name": "versions", "definition": "http://hl7.org/fhir/OperationDefinition/CapabilityStatement-versions"}]


def test_capability_statement_search_params_are_the_supported_ones(client):
    from fhir_plugin.web.params_search import SEARCH_PARAMS

    rest = ok_json(client.get("/r4/metadata"), "R4")["rest"][0]
    for resource in rest["resource"]:
        assert [p["name"] for p in resource["searchParam"]] == list(SEARCH_PARAMS)


def test_metadata_does_not_change_the_shipped_file(client):
    before = json.loads((ROOT / "conformance" / "CapabilityStatement-fhir-plugin.json").read_text(encoding="utf-8"))
    client.get("/r4/metadata")
    client.get("/r5/metadata")
    after = ok_json(client.get("/r5/metadata"), "R5")
    assert before["fhirVersion"] == "5.0.0"
    assert {k: v for k, v in after.items() if k not in ("version", "software", "implementation", "fhirVersion")} == {
        k: v for k, v in before.items() if k not in ("version", "software", "implementation", "fhirVersion")}


EXPECTED_SYSTEMS = [
    (CPT, [{"code": "2026", "isDefault": True}], "fragment"),
    ("http://fhir-plugin.org/fhir/CodeSystem/designation-use", [{"code": "1.0.0", "isDefault": True}], "complete"),
    (ICD, [{"code": "2026-04-01", "isDefault": True}], "complete"),
]


@pytest.mark.parametrize("base, version", ENDPOINTS)
def test_terminology_capabilities(client, service, base, version):
    body = ok_json(client.get(f"{base}/metadata?mode=terminology"), version)
    assert body["resourceType"] == "TerminologyCapabilities"
    assert body["version"] == body["software"]["version"] == __version__
    expected = [{"uri": uri, "version": versions, **({"content": content} if version == "R5" else {})}
                for uri, versions, content in EXPECTED_SYSTEMS]
    assert body["codeSystem"] == expected
    # exactly what is loaded
    assert {(cs["uri"], v["code"]) for cs in body["codeSystem"] for v in cs["version"]} == {
        (cs.url, cs.version) for cs in service.registry.code_systems()}


def test_terminology_capabilities_list_every_version(tmp_path):
    for version in ("1", "2"):
        (tmp_path / f"cs{version}.json").write_text(json.dumps({
            "resourceType": "CodeSystem", "id": f"cs{version}", "url": "http://example.org/cs", "version": version,
            "status": "active", "content": "complete", "concept": [{"code": "a"}]}), encoding="utf-8")
    (tmp_path / "unversioned.json").write_text(json.dumps({
        "resourceType": "CodeSystem", "id": "plain", "url": "http://example.org/plain", "status": "active",
        "content": "example"}), encoding="utf-8")
    client = create_app(service=load_content([tmp_path])).test_client()
    body = ok_json(client.get("/r5/metadata?mode=terminology"), "R5")
    assert body["codeSystem"] == [
        {"uri": "http://example.org/cs", "version": [{"code": "2", "isDefault": True},
                                                     {"code": "1", "isDefault": False}], "content": "complete"},
        {"uri": "http://example.org/plain", "content": "example"},
    ]
    validate(ok_json(client.get("/r4/metadata?mode=terminology"), "R4"), "R4")


@pytest.mark.parametrize("base, short", [("/r4", "4.0"), ("/r5", "5.0"), ("/fhir", "4.0")])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_versions(client, base, short, method):
    body = ok_json(client.open(f"{base}/$versions", method=method), "R4" if short == "4.0" else "R5")
    assert body == {"resourceType": "Parameters", "parameter": [
        {"name": "version", "valueCode": short}, {"name": "default", "valueCode": short}]}


def test_head_metadata_has_no_body(client):
    response = client.head("/r4/metadata")
    assert (response.status_code, response.mimetype, response.get_data()) == (200, FHIR_JSON, b"")


def test_the_root_names_the_endpoints(client):
    response = client.get("/")
    assert (response.status_code, response.mimetype) == (200, FHIR_JSON)
    assert body_of(response) == {"resourceType": "OperationOutcome", "issue": [{
        "severity": "information", "code": "informational", "details": {
            "text": "fhir_plugin, a FHIR terminology server; its FHIR bases are /r4 (R4), /r5 (R5) and /fhir (R4)"}}]}


# --- the CapabilityStatement and the routes, both ways --------------------------------------------


def routes_from_capability_statement(statement: dict) -> set[str]:
    routes = {"/metadata"}
    [rest] = statement["rest"]
    for resource in rest["resource"]:
        rtype = resource["type"]
        interactions = {i["code"] for i in resource.get("interaction", [])}
        if "read" in interactions:
            routes.add(f"/{rtype}/<id>")
        if "search-type" in interactions:
            routes.add(f"/{rtype}")
        for operation in resource.get("operation", []):
            routes.add(f"/{rtype}/${operation['name']}")
            routes.add(f"/{rtype}/<id>/${operation['name']}")
    for operation in rest.get("operation", []):
        routes.add(f"/${operation['name']}")
    return routes


def routes_from_url_map(app, prefix: str = "/r4") -> set[str]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(prefix + "/"):
            continue
        path = rule.rule.removeprefix(prefix)
        if path in ("/", "/<path:path>"):
            continue  # the catch-alls that answer 404 with an OperationOutcome
        path = path.replace("<resource_id>", "<id>")
        found = re.search(r"<any\(([^)]*)\):resource_type>", path)
        if found:
            for rtype in (t.strip() for t in found[1].split(",")):
                routes.add(path.replace(found[0], rtype))
        else:
            routes.add(path)
    return routes


@pytest.mark.parametrize("base, version", ENDPOINTS)
def test_capability_statement_matches_the_routes_both_ways(client, app, base, version):
    statement = ok_json(client.get(f"{base}/metadata"), version)
    declared = routes_from_capability_statement(statement)
    served = routes_from_url_map(app, base)
    assert declared - served == set(), "declared in the CapabilityStatement but not served"
    assert served - declared == set(), "served but not declared in the CapabilityStatement"
    assert declared == {
        "/metadata", "/$versions",
        "/CodeSystem", "/CodeSystem/<id>", "/CodeSystem/$lookup", "/CodeSystem/<id>/$lookup",
        "/CodeSystem/$subsumes", "/CodeSystem/<id>/$subsumes",
        "/ValueSet", "/ValueSet/<id>", "/ValueSet/$expand", "/ValueSet/<id>/$expand",
        "/CodeSystem/$validate-code", "/CodeSystem/<id>/$validate-code", "/ValueSet/$validate-code",
        "/ValueSet/<id>/$validate-code", "/ValueSet/$batch-validate-code", "/ValueSet/<id>/$batch-validate-code",
        "/ConceptMap", "/ConceptMap/<id>", "/ConceptMap/$translate", "/ConceptMap/<id>/$translate",
    }


def test_every_declared_route_answers(client):
    """Each route the CapabilityStatement declares answers 200 on /r4 for a sensible request."""
    statement = ok_json(client.get("/r4/metadata"), "R4")
    ids = {"CodeSystem": "cpt-97116-fragment", "ValueSet": "cpt-gait-training", "ConceptMap": "cpt-97116-to-icd-10-cm"}
    queries = {"$lookup": "?code=97116", "$translate": f"?code=97116&system={CPT}",
               "$subsumes": "?codeA=97116&codeB=97116", "$validate-code": f"?code=97116&system={CPT}",
               "$expand": "?url=http://fhir-plugin.org/fhir/ValueSet/cpt-gait-training"}
    for route in sorted(routes_from_capability_statement(statement)):
        rtype = route.split("/")[1]
        url = "/r4" + route.replace("<id>", ids.get(rtype, ""))
        url += queries.get(route.rsplit("/", 1)[-1], "")
        if url.startswith(("/r4/CodeSystem/$lookup", "/r4/CodeSystem/$subsumes")):
            url += f"&system={CPT}"
        if url.startswith("/r4/ValueSet/$validate-code"):
            url += f"&url={CPT_VS}"
        response = client.get(url)
        assert response.status_code == 200, (url, response.get_data(as_text=True)[:300])
        validate(body_of(response), "R4")


def test_operations_accept_get_and_post_and_other_routes_get_only():
    """views.ROUTES (the methods each route allows) agrees with the CapabilityStatement's shape:
    operations are invocable by GET and POST, read and search by GET."""
    allowed = {rule: set(methods) for rule, methods in ROUTES if methods is not None}
    assert [rule for rule, methods in ROUTES if methods is None] == ["/<path:path>"]  # the catch-all: any method
    for rule, methods in allowed.items():
        if "$" in rule or rule == "/":  # the base: a batch or transaction Bundle by POST
            assert methods == {"GET", "POST"}, rule
        else:
            assert methods == {"GET"}, rule
