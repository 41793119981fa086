"""What `make serve` serves by default: the bundled content with FHIR R5 core, FHIR R4 core's
terminology and HL7 Terminology (THO) 7.0.1 from the package cache (`make test` installs them
first; `default_service` in conftest).

Every ValueSet of that content is expanded (one code) and its first code validated, on R4 and R5,
through the app: no answer is a 5xx, and what cannot be expanded is refused for a reason a client
can act on (a code system or version this server does not have), counted here and in the README.
The checks of the issue run over real HTTP against a server started as `make serve` starts it.
"""

from __future__ import annotations

from collections import Counter
from urllib.parse import quote

import pytest
import requests
from live_server import running_server

from fhir_plugin import create_app
from fhir_plugin.config import DEFAULT_PACKAGES

GENDER_VS = "http://hl7.org/fhir/ValueSet/administrative-gender"
GENDER = "http://hl7.org/fhir/administrative-gender"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ACT_CODE_OID = "urn:oid:2.16.840.1.113883.5.4"  # THO's NamingSystem v3-ActCode

# What expanding every ValueSet of the default content gives (the same on R4 and R5): expanded in
# full, expanded but marked incomplete (a fragment such as our CPT), expanded to nothing, and the
# refusals by message id (404s: a code system that is not loaded, SNOMED CT, LOINC, UCUM...; a
# code system version that is not loaded, R5 core pinning THO versions older than 7.0.1; an
# imported value set that is not loaded, DICOM's).
WALK = {"expanded": 3102, "expanded-partial": 36, "empty": 13, "valid": 3125,
        "refused UNKNOWN_CODESYSTEM_VERSION_EXP": 428, "refused UNKNOWN_CODESYSTEM_EXP": 386,
        "refused Unable_to_resolve_value_Set_": 7, "refused VALUESET_CONTENT_NOT_PRESENT": 2}


def message_id(outcome: dict) -> str | None:
    return next((e["valueString"] for e in outcome["issue"][0].get("extension", [])
                 if e["url"].endswith("operationoutcome-message-id")), None)


def first_code(contains: list[dict]) -> dict | None:
    for entry in contains:
        if "code" in entry:
            return entry
        found = first_code(entry.get("contains", []))
        if found is not None:
            return found
    return None


@pytest.fixture(scope="module")
def client(default_service):
    return create_app(service=default_service).test_client()


@pytest.mark.parametrize("version", ["r4", "r5"])
def test_every_value_set_expands_or_says_why_not(client, default_service, version):
    seen: Counter[str] = Counter()
    failures: list[str] = []
    for entry in default_service.registry.entries("ValueSet"):
        query = f"url={quote(entry.url, safe='')}" + (f"&valueSetVersion={quote(entry.version, safe='')}"
                                                      if entry.version else "")
        answer = client.get(f"/{version}/ValueSet/$expand?{query}&count=5")
        body = answer.get_json()
        if answer.status_code != 200:
            # 400 only for a code system held without its codes (content = not-present)
            assert (answer.status_code, body["resourceType"]) == (
                400 if message_id(body) == "VALUESET_CONTENT_NOT_PRESENT" else 404, "OperationOutcome"), entry.url
            seen[f"refused {message_id(body)}"] += 1
            continue
        expansion = body["expansion"]
        unclosed = any(e["url"].endswith("valueset-unclosed") for e in expansion.get("extension", []))
        seen["expanded-partial" if unclosed else "expanded"] += 1
        code = first_code(expansion.get("contains", []))
        if code is None:
            seen["empty"] += 1
            continue
        check = client.get(f"/{version}/ValueSet/$validate-code?{query}&system={quote(code['system'], safe='')}"
                           f"&code={quote(code['code'], safe='')}")
        assert check.status_code == 200, (entry.url, code, check.status_code)
        result = next(p["valueBoolean"] for p in check.get_json()["parameter"] if p["name"] == "result")
        if result:
            seen["valid"] += 1
        else:
            failures.append(f"{entry.url} {code['system']}#{code['code']}")
    assert failures == []
    assert dict(seen) == WALK


# --- the checks, over HTTP, on a server started as `make serve` starts it ---------------


@pytest.fixture(scope="module")
def server(default_service, content_cache_dir):
    # the content cache the session's default_service wrote: a warm start
    with running_server(settings={"FHIR_PLUGIN_PACKAGES": DEFAULT_PACKAGES,
                                  "FHIR_PLUGIN_CACHE_DIR": str(content_cache_dir)}) as live:
        yield live


def parameters(answer: requests.Response) -> dict:
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return {p["name"]: next(v for k, v in p.items() if k.startswith("value") or k in ("resource", "part"))
            for p in body["parameter"]}


@pytest.mark.parametrize("endpoint, release, other", [("r4", "4.0.1", "5.0.0"), ("r5", "5.0.0", "4.0.1")])
def test_administrative_gender(server, endpoint, release, other):
    """Each endpoint answers with its own FHIR release of core content; the other is there when asked for."""
    found = parameters(requests.get(f"{server.url}/{endpoint}/ValueSet/$validate-code", timeout=30, params={
        "url": GENDER_VS, "system": GENDER, "code": "male"}))
    assert found == {"result": True, "code": "male", "system": GENDER, "version": release, "display": "Male"}
    found = parameters(requests.get(f"{server.url}/{endpoint}/ValueSet/$validate-code", timeout=30, params={
        "url": GENDER_VS, "valueSetVersion": other, "system": GENDER, "systemVersion": other, "code": "male"}))
    assert (found["result"], found["version"]) == (True, other)
    expanded = requests.get(f"{server.url}/{endpoint}/ValueSet/$expand", params={"url": GENDER_VS}, timeout=30).json()
    assert [c["code"] for c in expanded["expansion"]["contains"]] == ["male", "female", "other", "unknown"]


@pytest.mark.parametrize("endpoint, release, other", [("r4", "4.0.1", "5.0.0"), ("r5", "5.0.0", "4.0.1"),
                                                     ("fhir", "4.0.1", "5.0.0")])
def test_a_read_of_an_id_both_releases_give(server, endpoint, release, other):
    """A read by id gives the endpoint's release of FHIR core (/fhir: R4, the default), in JSON and
    XML; `_id` gives what a read gives; a search by url lists both, the endpoint's first."""
    base = f"{server.url}/{endpoint}/CodeSystem"
    read = requests.get(f"{base}/administrative-gender", timeout=30)
    assert read.status_code == 200 and (read.json()["id"], read.json()["version"]) == ("administrative-gender", release)
    xml = requests.get(f"{base}/administrative-gender", headers={"Accept": "application/fhir+xml"}, timeout=30)
    assert xml.status_code == 200 and f'<version value="{release}"/>' in xml.text
    assert requests.get(f"{base}/administrative-gender", timeout=30).json() == read.json()  # kept: the same again
    by_id = requests.get(base, params={"_id": "administrative-gender"}, timeout=30).json()
    assert [e["resource"]["version"] for e in by_id["entry"]] == [release]
    by_url = requests.get(base, params={"url": GENDER, "_elements": "version"}, timeout=30).json()
    assert [e["resource"]["version"] for e in by_url["entry"]] == [release, other]
    one = requests.get(f"{base}/icd-10-cm", params={"_elements": "version"}, timeout=30).json()
    assert one["version"] == "2026-04-01"


@pytest.mark.parametrize("endpoint", ["r4", "r5"])
@pytest.mark.parametrize("system", [ACT_CODE, ACT_CODE_OID])
def test_lookup_of_a_tho_code(server, endpoint, system):
    found = parameters(requests.get(f"{server.url}/{endpoint}/CodeSystem/$lookup", timeout=30, params={
        "system": system, "code": "AMB", "property": ["display", "parent"]}))
    assert (found["name"], found["version"], found["display"], found["code"], found["system"]) == (
        "ActCode", "9.0.0", "ambulatory", "AMB", ACT_CODE)
    if system == ACT_CODE_OID:  # answered, with a warning naming the canonical URL
        assert found["issues"]["issue"][0]["details"]["text"] == (
            f"It is not valid to refer to a CodeSystem by an identifier like this '{ACT_CODE_OID}' - use '{ACT_CODE}'")
    else:
        assert "issues" not in found


@pytest.mark.parametrize("endpoint", ["r4", "r5"])
def test_expansions_of_tho_and_core_value_sets(server, endpoint):
    def codes(url: str, **more: str) -> list[str]:
        answer = requests.get(f"{server.url}/{endpoint}/ValueSet/$expand", params={"url": url, **more}, timeout=30)
        assert answer.status_code == 200, answer.text
        return flat(answer.json()["expansion"]["contains"])

    def flat(contains: list[dict]) -> list[str]:
        return [code for c in contains for code in [c["code"], *flat(c.get("contains", []))]]

    assert codes("http://hl7.org/fhir/ValueSet/publication-status") == ["draft", "active", "retired", "unknown"]
    assert codes("http://hl7.org/fhir/ValueSet/observation-status") == [  # `corrected` nests under `amended`
        "registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"]
    # defined by an is-a filter over v3-ActCode, whose hierarchy is its `subsumedBy` property
    encounter = codes("http://terminology.hl7.org/ValueSet/v3-ActEncounterCode")
    assert {"AMB", "EMER", "IMP", "HH", "VR"} <= set(encounter) and "_ActEncounterCode" not in encounter
    # THO's v2 value sets pin version 2.0.0 of their tables, which THO 7.0.1 carries as 5.0.0: refused as
    # the reference server refuses a pinned version it lacks (the HL7 tests' version/vs-expand-v-wb), and
    # answered when the client forces the version it has
    v2_0203 = "http://terminology.hl7.org/ValueSet/v2-0203"
    refused = requests.get(f"{server.url}/{endpoint}/ValueSet/$expand", params={"url": v2_0203}, timeout=30)
    assert (refused.status_code, refused.json()["issue"][0]["details"]["text"]) == (404, (
        "A definition for CodeSystem 'http://terminology.hl7.org/CodeSystem/v2-0203' version '2.0.0' could not be "
        "found, so the value set cannot be expanded. Valid versions: 5.0.0"))
    forced = codes(v2_0203, **{"force-system-version": "http://terminology.hl7.org/CodeSystem/v2-0203|5.0.0"})
    assert forced[:3] == ["AC", "ACSN", "AIN"] and len(forced) == 147  # every code of v2-0203 5.0.0


@pytest.mark.parametrize("endpoint", ["r4", "r5"])
def test_a_value_set_of_snomed_is_answered_as_the_reference_server_does(server, endpoint):
    """SNOMED CT is not loaded: $expand is refused with the unknown-system message (a 404), and
    $validate-code answers result false with the unknown-system issue; never a 5xx."""
    url = "http://hl7.org/fhir/ValueSet/administration-method-codes"
    expanded = requests.get(f"{server.url}/{endpoint}/ValueSet/$expand", params={"url": url}, timeout=30)
    assert expanded.status_code == 404
    assert expanded.json()["issue"][0]["details"]["text"] == (
        "A definition for CodeSystem 'http://snomed.info/sct' could not be found, so the value set cannot be expanded")
    found = parameters(requests.get(f"{server.url}/{endpoint}/ValueSet/$validate-code", timeout=30, params={
        "url": url, "system": "http://snomed.info/sct", "code": "738991002"}))
    assert found["result"] is False
    assert found["message"] == ("A definition for CodeSystem 'http://snomed.info/sct' could not be found, so the code "
                                "cannot be validated")


@pytest.mark.parametrize("base, release", [("/r4", "4.0.1"), ("/r5", "5.0.0"), ("/fhir", "4.0.1")])
def test_translate_without_url_uses_each_map_once_in_the_endpoints_release(client, base, release):
    """FHIR core's maps from address-use are in R4's package and in R5's, with the same urls: each
    answers once, in the endpoint's release; maps only R5 has answer on R4 too."""
    response = client.get(f"{base}/ConceptMap/$translate", query_string={
        "sourceSystem": "http://hl7.org/fhir/address-use", "sourceCode": "home"})
    assert response.status_code == 200
    body = response.get_json()
    both = [f"http://hl7.org/fhir/ConceptMap/{name}|{release}" for name in ("101", "cm-address-use-v2",
                                                                             "cm-address-use-v3")]
    only_r5 = [f"http://hl7.org/fhir/ConceptMap/{name}|5.0.0" for name in ("example-metadata-2", "example-metadata")]
    found = [part["valueCanonical"] for p in body["parameter"] if p["name"] == "match"
             for part in p["part"] if part["name"] == "originMap"]
    assert found == (only_r5 + both if release == "4.0.1" else both + only_r5)


# --- a code system held without its codes (FHIR core's color-rgb: content = not-present) ------

COLOR_RGB = "http://hl7.org/fhir/color-rgb"


def test_a_code_system_without_its_codes_is_not_expanded(client):
    """The TX IG: a server SHALL NOT expand with a content = not-present code system; it expanded to
    nothing, which reads as "no codes"."""
    inline = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [
        {"system": "http://hl7.org/fhir/administrative-gender"}, {"system": COLOR_RGB}]}}
    answer = client.post("/r5/ValueSet/$expand", json={"resourceType": "Parameters", "parameter": [
        {"name": "valueSet", "resource": inline}]})
    assert answer.status_code == 400
    assert answer.get_json()["issue"] == [{
        "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/operationoutcome-message-id",
                       "valueString": "VALUESET_CONTENT_NOT_PRESENT"}],
        "severity": "error", "code": "not-supported",
        "details": {"text": f"The CodeSystem '{COLOR_RGB}' version '5.0.0' is held by this server without its codes "
                            "(content = not-present), so the value set '(inline)' cannot be expanded"}}]


def test_a_code_of_a_code_system_without_its_codes_cannot_be_validated(client):
    answer = client.get("/r5/CodeSystem/$validate-code", query_string={"url": COLOR_RGB, "code": "red"})
    text = (f"The CodeSystem '{COLOR_RGB}' version '5.0.0' is held by this server without its codes (content = "
            "not-present), so the code cannot be validated")
    assert answer.status_code == 200
    assert answer.get_json()["parameter"] == [
        {"name": "result", "valueBoolean": False}, {"name": "code", "valueCode": "red"},
        {"name": "system", "valueUri": COLOR_RGB}, {"name": "version", "valueString": "5.0.0"},
        {"name": "message", "valueString": text},
        {"name": "issues", "resource": {"resourceType": "OperationOutcome", "issue": [{
            "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/operationoutcome-message-id",
                           "valueString": "CODESYSTEM_CONTENT_NOT_PRESENT"}],
            "severity": "error", "code": "not-found",
            "details": {"coding": [{"system": "http://hl7.org/fhir/tools/CodeSystem/tx-issue-type",
                                    "code": "not-found"}], "text": text},
            "expression": ["system"]}]}},
        {"name": "x-caused-by-unknown-system", "valueCanonical": f"{COLOR_RGB}|5.0.0"}]


@pytest.mark.parametrize("path, query", [
    ("$lookup", {"system": COLOR_RGB, "code": "red"}),
    ("$subsumes", {"system": COLOR_RGB, "codeA": "red", "codeB": "blue"})])
def test_a_lookup_in_a_code_system_without_its_codes_says_why_nothing_is_found(client, path, query):
    answer = client.get(f"/r5/CodeSystem/{path}", query_string=query)
    assert answer.status_code == 404
    assert answer.get_json()["issue"][0]["details"]["text"] == (
        f"Unable to find code 'red' in {COLOR_RGB} version 5.0.0: this server holds the code system without its "
        "codes (content = not-present)")
