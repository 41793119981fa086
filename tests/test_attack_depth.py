"""Attacks on depth and on the size of an expansion, against a real server (`fhir-plugin serve`,
two gunicorn workers, default settings) started by this module.

Depth: a 2 KB request can nest JSON 900 levels deep, and Python walks JSON recursively (the
language-key stripping, fhir.resources validation, copying and conversion between FHIR versions,
rendering); a flat CodeSystem of a few kilobytes can describe, with `parent` properties, a concept
hierarchy thousands of levels deep, which a nested expansion walks; tx-resource ValueSets can
import one another in a chain. Each is refused with a 400 OperationOutcome naming its limit
(FHIR_PLUGIN_MAX_JSON_DEPTH, 100; half of it for a nested expansion; 50 imports), and
RecursionError is never what stops it. What is within the limits is answered. No client error
writes a traceback to the log, and four clients repeating the deep request leave it nearly empty
while a fifth is answered.

Expansion size: `count` cannot take an answer past FHIR_PLUGIN_MAX_EXPANSION (10,000 codes by
default, lower with X-TOO-COSTLY-THRESHOLD): a larger count is lowered to it, however the
expansion is asked for.

The ErrorLog (how an unexpected 500 is logged) and the setting's bounds are tested in-process at
the end: no request of a correct server reaches them.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from urllib.parse import quote

import pytest
import requests
from helpers import CPT, DISPLAY_97116, ICD, ICD_VS, MESSAGE_ID_URL, validate
from live_server import LiveServer, running_server

from fhir_plugin import create_app, load_service
from fhir_plugin.config import load_settings
from fhir_plugin.content.errors import InvalidContent
from fhir_plugin.web.errors import ErrorLog

FHIR_JSON = "application/fhir+json"
VERSIONS = ["r4", "r5"]
LIMIT = 100  # FHIR_PLUGIN_MAX_JSON_DEPTH's default
TOO_DEEP = "The request body nests JSON arrays and objects deeper than the 100 levels this server accepts"
DEEP = "http://example.org/fhir/CodeSystem/deep"
R_EXT = "http://hl7.org/fhir/StructureDefinition/rendering-style"
DEPRECATED_EXT = "http://hl7.org/fhir/StructureDefinition/valueset-deprecated"
ALL_ICD = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [{"system": ICD}]}}
ICD_CODES = 98_466  # the complete ICD-10-CM (chapters, blocks and codes)


@pytest.fixture(scope="module")
def server(service, content_cache_dir, tmp_path_factory):
    """The server reads the compiled content the session's `service` wrote: XDG_CACHE_HOME is the one
    variable of the cache's place that running_server passes on. Otherwise, after any change to the
    package's source, the server would validate the complete ICD-10-CM itself before answering."""
    home = tmp_path_factory.mktemp("xdg-cache")
    (home / "fhir_plugin").symlink_to(content_cache_dir, target_is_directory=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(home))
        with running_server(workers=2) as live:
            patch.undo()
            yield live


# --- building requests ---------------------------------------------------------------------------


def depth(document: object) -> int:
    """How deep `document` nests arrays and objects ([] is 1), without recursion."""
    found, level = 0, [document] if isinstance(document, (dict, list)) else []
    while level:
        found += 1
        level = [v for node in level for v in (node.values() if isinstance(node, dict) else node)
                 if isinstance(v, (dict, list))]
    return found


def parameters(*items: dict) -> dict:
    return {"resourceType": "Parameters", "parameter": list(items)}


def code_system(concepts: list, url: str = DEEP) -> dict:
    return {"resourceType": "CodeSystem", "url": url, "status": "active", "content": "complete", "concept": concepts}


def nested_concepts(levels: int, leaf: dict | None = None) -> dict:
    """c0 > c1 > ... > c<levels>, nested with concept.concept (two levels of JSON each)."""
    node = {"code": f"c{levels}", "display": f"Concept {levels}", **(leaf or {})}
    for number in range(levels - 1, -1, -1):
        node = {"code": f"c{number}", "display": f"Concept {number}", "concept": [node]}
    return node


def nested_extension(levels: int, url: str = R_EXT) -> dict:
    """A complex extension nesting `levels` extensions (two levels of JSON each), valid FHIR."""
    node = {"url": "leaf", "valueString": "s"}
    for _ in range(levels):
        node = {"url": "part", "extension": [node]}
    return {**node, "url": url}


def vs_with_extension(levels: int) -> dict:
    """All of ICD-10-CM, with a complex extension nesting `levels` deep."""
    return {"resourceType": "ValueSet", "status": "active", "extension": [nested_extension(levels)],
            "compose": {"include": [{"system": ICD}]}}


def validate_r26_2(value_set: dict) -> list[dict]:
    return [{"name": "valueSet", "resource": value_set}, {"name": "system", "valueUri": ICD},
            {"name": "code", "valueCode": "R26.2"}]


# Each shape reaches walks of a request's JSON with something nested `n` steps deep: (route, the
# body for n, a check of the 200 that answers it within the limit).
SHAPES = {
    # concept.concept in a tx-resource: language keys, validation, hashing, compiling; $lookup
    "tx-resource concept hierarchy, $lookup": (
        "CodeSystem/$lookup",
        lambda n: parameters({"name": "tx-resource", "resource": code_system([nested_concepts(n)])},
                             {"name": "system", "valueUri": DEEP}, {"name": "code", "valueCode": f"c{n}"}),
        lambda body, n: lookup_properties(body) == [("parent", f"c{n - 1}"), ("inactive", False)]),
    # the same hierarchy expanded nested: the contains tree, its rendering and the R4 conversion
    "tx-resource concept hierarchy, nested $expand": (
        "ValueSet/$expand",
        lambda n: parameters({"name": "tx-resource", "resource": code_system([nested_concepts(n)])},
                             {"name": "valueSet", "resource": {**ALL_ICD, "compose": {"include": [{"system": DEEP}]}}},
                             {"name": "includeDesignations", "valueBoolean": True},
                             {"name": "includeDefinition", "valueBoolean": True}),
        lambda body, n: body["expansion"]["total"] == n + 1 and depth(body["expansion"]["contains"]) == 2 * (n + 1)),
    # a complex extension on a concept, carried into the expansion (rendering-style)
    "tx-resource concept extension, $expand": (
        "ValueSet/$expand",
        lambda n: parameters({"name": "tx-resource", "resource": code_system(
                                  [{"code": "a", "display": "A", "extension": [nested_extension(n)]}])},
                             {"name": "valueSet", "resource": {**ALL_ICD, "compose": {"include": [{"system": DEEP}]}}}),
        lambda body, n: body["expansion"]["contains"][0]["extension"][0]["url"] == R_EXT),
    # an inline valueSet whose compose (echoed with includeDefinition) and concept extension nest
    "inline valueSet compose, $expand": (
        "ValueSet/$expand",
        lambda n: parameters({"name": "valueSet", "resource": {**ALL_ICD, "compose": {"include": [{
                                  "system": ICD, "concept": [{"code": "R26.2", "extension": [
                                      nested_extension(n, DEPRECATED_EXT)]}]}]}}},
                             {"name": "includeDefinition", "valueBoolean": True}),
        lambda body, n: [c["code"] for c in body["expansion"]["contains"]] == ["R26.2"]
        and body["compose"]["include"][0]["concept"][0]["extension"][0]["url"] == DEPRECATED_EXT),
    "inline valueSet, $validate-code": (
        "ValueSet/$validate-code",
        lambda n: parameters(*validate_r26_2(vs_with_extension(n))),
        lambda body, n: {"name": "result", "valueBoolean": True} in body["parameter"]),
    "inline conceptMap, $translate": (
        "ConceptMap/$translate",
        lambda n: parameters({"name": "conceptMap", "resource": {
                                  "resourceType": "ConceptMap", "status": "active", "extension": [nested_extension(n)],
                                  "group": [{"source": "http://example.org/a", "target": "http://example.org/b",
                                             "element": [{"code": "x", "target": [{"code": "y",
                                                                                   "relationship": "equivalent"}]}]}]}},
                             {"name": "sourceSystem", "valueUri": "http://example.org/a"},
                             {"name": "sourceCode", "valueCode": "x"}),
        lambda body, n: {"name": "result", "valueBoolean": True} in body["parameter"]),
    "batch validation, $batch-validate-code": (
        "ValueSet/$batch-validate-code",
        lambda n: parameters({"name": "validation", "resource": parameters(*validate_r26_2(vs_with_extension(n)))}),
        lambda body, n: {"name": "result", "valueBoolean": True}
        in body["parameter"][0]["resource"]["parameter"]),
    # an expansion's nested contains inside a tx-resource ValueSet (its compose is what counts)
    "tx-resource ValueSet expansion.contains, $validate-code": (
        "ValueSet/$validate-code",
        lambda n: parameters(
            {"name": "tx-resource", "resource": {
                "resourceType": "ValueSet", "url": "http://example.org/fhir/ValueSet/expanded", "status": "active",
                "compose": {"include": [{"system": ICD, "concept": [{"code": "R26.2"}]}]},
                "expansion": {"timestamp": "2026-01-01T00:00:00Z", "contains": [nested_contains(n)]}}},
            {"name": "url", "valueUri": "http://example.org/fhir/ValueSet/expanded"},
            {"name": "system", "valueUri": ICD}, {"name": "code", "valueCode": "R26.2"}),
        lambda body, n: {"name": "result", "valueBoolean": True} in body["parameter"]),
}


def lookup_properties(body: dict) -> list[tuple[str, str | bool]]:
    """(code, value) of each `property` of a $lookup answer."""
    found = []
    for prop in (p for p in body["parameter"] if p["name"] == "property"):
        parts = {part["name"]: part for part in prop["part"]}
        value = parts["value"]
        found.append((parts["code"]["valueCode"], value.get("valueCode", value.get("valueBoolean"))))
    return found


def nested_contains(levels: int) -> dict:
    node = {"system": ICD, "code": "R26.2"}
    for _ in range(levels):
        node = {"system": ICD, "code": "R26", "abstract": True, "contains": [node]}
    return node


def at_depth(build, target: int) -> tuple[dict, int]:
    """build(n) for the largest n whose body nests at most `target` levels, and n."""
    n = 1
    while depth(build(n + 1)) <= target:
        n += 1
    return build(n), n


def post(server: LiveServer, version: str, route: str, body: dict | str | bytes,
         **headers: str) -> requests.Response:
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return requests.post(f"{server.url}/{version}/{route}", data=data, timeout=60,
                         headers={"Content-Type": FHIR_JSON, **headers})


def outcome(response: requests.Response, status: int, issue_code: str, message_id: str, text: str) -> None:
    assert response.status_code == status, response.text[:500]
    assert response.headers["Content-Type"].startswith(FHIR_JSON)
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    issue = body["issue"][0]
    assert (issue["severity"], issue["code"], issue["details"]["text"]) == ("error", issue_code, text)
    assert issue["extension"] == [{"url": MESSAGE_ID_URL, "valueString": message_id}]


def answer(response: requests.Response, version: str, valid: bool = True) -> dict:
    """A 200's body, validated as FHIR of `version` (not `valid`: the 10,000 codes of a page take
    seconds to validate, and the smaller answers of the same code validate)."""
    assert response.status_code == 200, response.text[:800]
    body = response.json()
    if valid:
        validate(body, version)
    return body


def message_id(response: requests.Response) -> str | None:
    try:
        return str(response.json()["issue"][0]["extension"][0]["valueString"])
    except (ValueError, KeyError, IndexError):
        return None


# --- the request of the report -------------------------------------------------------------------

# The $lookup of the report: 2,147 bytes whose tx-resource holds a JSON array nested 900 deep. It
# used to reach the recursion limit in the language-key stripping: a 500 and 189 KB of traceback.
REPORTED = ('{"resourceType":"Parameters","parameter":[{"name":"system","valueUri":"' + CPT + '"},'
            '{"name":"code","valueCode":"97116"},{"name":"tx-resource","resource":{"resourceType":"CodeSystem",'
            '"url":"http://example.org/fhir/CodeSystem/x","title":"Nine hundred levels deep as reported",'
            '"status":"active","content":"complete","concept":' + "[" * 900 + "]" * 900 + "}}]}")


@pytest.mark.parametrize("version", VERSIONS)
def test_the_900_deep_lookup_of_the_report_is_a_400_naming_the_limit(server, version):
    assert len(REPORTED) == 2_147
    outcome(post(server, version, "CodeSystem/$lookup", REPORTED), 400, "too-costly", "BODY_TOO_DEEP", TOO_DEEP)


@pytest.mark.parametrize("nesting", [100_000, 1_000, 950, LIMIT + 1])
def test_any_depth_beyond_the_limit_is_the_same_400(server, nesting):
    """Beyond about a thousand levels Python's own parser gives up (RecursionError): the same answer."""
    body = '{"resourceType":"Parameters","parameter":[{"name":"code","valueCode":' + "[" * (nesting - 3) \
        + "]" * (nesting - 3) + "}]}"
    outcome(post(server, "r5", "CodeSystem/$lookup", body), 400, "too-costly", "BODY_TOO_DEEP", TOO_DEEP)


# --- every walk: just beyond the limit refused, at the limit answered -------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_every_walk_is_refused_just_beyond_the_limit(server, shape):
    route, build, _ = SHAPES[shape]
    at_limit, n = at_depth(build, LIMIT)
    beyond = build(n + 1)
    assert depth(at_limit) <= LIMIT < depth(beyond) <= LIMIT + 2
    for version in VERSIONS:
        outcome(post(server, version, route, beyond), 400, "too-costly", "BODY_TOO_DEEP", TOO_DEEP)


@pytest.mark.parametrize("shape", SHAPES)
def test_every_walk_answers_at_the_limit(server, shape):
    """The same shapes nested as deep as the limit allows are validated, compiled, evaluated,
    converted and rendered: answered on both versions, never a 500."""
    route, build, check = SHAPES[shape]
    body, n = at_depth(build, LIMIT)
    assert depth(body) in (LIMIT - 1, LIMIT)
    for version in VERSIONS:
        assert check(answer(post(server, version, route, body), version), n), (shape, version)


def test_a_form_body_is_flat_whatever_it_holds(server):
    """A form body's values are strings: brackets in them are text, never parsed as JSON."""
    data = f"system={quote(CPT)}&code=" + quote("[" * 5_000)
    response = requests.post(f"{server.r4}/CodeSystem/$lookup", data=data, timeout=30,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    outcome(response, 404, "not-found", "UNKNOWN_CODE_IN_FRAGMENT",
            f"Unknown Code '{'[' * 5_000}' in the CodeSystem '{CPT}' version '2026' - note that the code system is "
            "labeled as a fragment, so the code may be valid in some other fragment")


# --- hierarchies and imports that JSON depth does not bound ------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_a_concept_hierarchy_forty_levels_deep_is_served(server, version):
    """A CodeSystem nesting its concepts 40 levels deep, within every limit: $lookup, $subsumes and
    a nested $expand with contains 41 levels deep."""
    resource = {"name": "tx-resource", "resource": code_system([nested_concepts(40)])}
    lookup = answer(post(server, version, "CodeSystem/$lookup", parameters(
        resource, {"name": "system", "valueUri": DEEP}, {"name": "code", "valueCode": "c40"})), version)
    assert {"name": "display", "valueString": "Concept 40"} in lookup["parameter"]
    subsumes = answer(post(server, version, "CodeSystem/$subsumes", parameters(
        resource, {"name": "system", "valueUri": DEEP}, {"name": "codeA", "valueCode": "c0"},
        {"name": "codeB", "valueCode": "c40"})), version)
    assert subsumes["parameter"] == [{"name": "outcome", "valueCode": "subsumes"}]
    expansion = answer(post(server, version, "ValueSet/$expand", parameters(
        resource, {"name": "valueSet", "resource": {**ALL_ICD, "compose": {"include": [{"system": DEEP}]}}})),
        version)["expansion"]
    entry, levels = expansion["contains"][0], 1
    while "contains" in entry:
        entry, levels = entry["contains"][0], levels + 1
    assert (expansion["total"], levels, entry["code"]) == (41, 41, "c40")


def parent_chain(length: int) -> dict:
    """A flat CodeSystem (JSON 6 levels deep) whose `parent` properties chain `length` concepts."""
    concepts = [{"code": "c0"}] + [{"code": f"c{i}", "property": [{"code": "parent", "valueCode": f"c{i - 1}"}]}
                                   for i in range(1, length)]
    return {"name": "tx-resource", "resource": code_system(concepts, "http://example.org/fhir/CodeSystem/chain")}


CHAIN_VS = {"name": "valueSet", "resource": {**ALL_ICD, "compose": {"include": [
    {"system": "http://example.org/fhir/CodeSystem/chain"}]}}}


@pytest.mark.parametrize("version", VERSIONS)
def test_a_hierarchy_of_parent_properties_3000_deep(server, version):
    """Nested, the expansion would be 3,000 levels deep (6,000 of JSON): refused, naming the limit
    and the way out; flat, it is answered, and $subsumes and $lookup walk the chain without recursion."""
    chain = parent_chain(3_000)
    outcome(post(server, version, "ValueSet/$expand", parameters(chain, CHAIN_VS)), 400, "too-costly",
            "EXPANSION_TOO_DEEP", "The value set '(inline)' expansion nests concepts more than 50 levels deep, deeper "
            "than this server answers; ask for a flat list with excludeNested=true")
    flat = answer(post(server, version, "ValueSet/$expand", parameters(
        chain, CHAIN_VS, {"name": "excludeNested", "valueBoolean": True})), version)["expansion"]
    assert (flat["total"], len(flat["contains"]), flat["contains"][-1]["code"]) == (3_000, 3_000, "c2999")
    assert all("contains" not in entry for entry in flat["contains"])
    subsumes = answer(post(server, version, "CodeSystem/$subsumes", parameters(
        chain, {"name": "system", "valueUri": "http://example.org/fhir/CodeSystem/chain"},
        {"name": "codeA", "valueCode": "c0"}, {"name": "codeB", "valueCode": "c2999"})), version)
    assert subsumes["parameter"] == [{"name": "outcome", "valueCode": "subsumes"}]


@pytest.mark.parametrize("version", VERSIONS)
def test_a_hierarchy_as_deep_as_the_limit_expands_nested(server, version):
    expansion = answer(post(server, version, "ValueSet/$expand", parameters(parent_chain(50), CHAIN_VS)),
                       version)["expansion"]
    assert depth(expansion["contains"]) == 100


def import_chain(length: int) -> list[dict]:
    """tx-resource ValueSets v0 imports v1 imports ... v<length> (which holds R26.2)."""
    sets = [{"resourceType": "ValueSet", "url": f"http://example.org/fhir/ValueSet/v{i}", "status": "active",
             "compose": {"include": [{"valueSet": [f"http://example.org/fhir/ValueSet/v{i + 1}"]}]}}
            for i in range(length)]
    sets.append({"resourceType": "ValueSet", "url": f"http://example.org/fhir/ValueSet/v{length}", "status": "active",
                 "compose": {"include": [{"system": ICD, "concept": [{"code": "R26.2"}]}]}})
    return [{"name": "tx-resource", "resource": value_set} for value_set in sets]


@pytest.mark.parametrize("version", VERSIONS)
def test_a_chain_of_value_set_imports_is_bounded(server, version):
    url = {"name": "url", "valueUri": "http://example.org/fhir/ValueSet/v0"}
    outcome(post(server, version, "ValueSet/$expand", parameters(*import_chain(60), url)), 400, "too-costly",
            "VALUESET_IMPORTS_TOO_DEEP", "The value set 'http://example.org/fhir/ValueSet/v0' imports value sets that "
            "import others more than 50 levels deep, deeper than this server follows")
    within = answer(post(server, version, "ValueSet/$expand", parameters(*import_chain(49), url)), version)
    assert [c["code"] for c in within["expansion"]["contains"]] == ["R26.2"]


# --- the log -------------------------------------------------------------------------------------------


def test_four_clients_repeating_the_deep_request_leave_the_log_small(server):
    """Four clients send the 900-deep $lookup (each body a little different, so that no answer comes
    from the answer cache) for 3 seconds; a fifth asks a normal $lookup meanwhile. Every deep request
    gets the 400, the fifth its answer, and the server log grows by less than 20 KB."""
    before = len(server.output().encode())
    stop = time.monotonic() + 3.0
    statuses: list[list[tuple[int, str | None]]] = [[] for _ in range(4)]
    normal: list[tuple[int, str | None]] = []

    def attack(number: int) -> None:
        with requests.Session() as session:
            sent = 0
            while time.monotonic() < stop:
                body = REPORTED.replace("/CodeSystem/x", f"/CodeSystem/x{number}-{sent}")
                response = session.post(f"{server.r4}/CodeSystem/$lookup", data=body, timeout=30,
                                        headers={"Content-Type": FHIR_JSON})
                statuses[number].append((response.status_code, message_id(response)))
                sent += 1

    def lookup() -> None:
        while time.monotonic() < stop:
            response = requests.get(f"{server.r4}/CodeSystem/$lookup?system={CPT}&code=97116", timeout=30)
            display = next((p["valueString"] for p in response.json().get("parameter", [])
                            if p["name"] == "display"), None)
            normal.append((response.status_code, display))
            time.sleep(0.2)

    threads = [threading.Thread(target=attack, args=(n,)) for n in range(4)] + [threading.Thread(target=lookup)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    grown = len(server.output().encode()) - before
    sent = sum(len(s) for s in statuses)
    assert all(s and set(s) == {(400, "BODY_TOO_DEEP")} for s in statuses), [set(s) for s in statuses]
    assert normal and set(normal) == {(200, DISPLAY_97116)}
    assert sent > 40, sent
    assert grown < 20_000, (sent, grown)


# --- count and the expansion limit ---------------------------------------------------------------


def expansion_of(response: requests.Response, version: str) -> dict:
    expansion: dict = answer(response, version, valid=False)["expansion"]
    return expansion


def counts(expansion: dict) -> tuple[int, int | None, int, list]:
    echoed = [p["valueInteger"] for p in expansion["parameter"] if p["name"] == "count"]
    return expansion["total"], expansion.get("offset"), len(expansion["contains"]), echoed


@pytest.mark.parametrize("version", VERSIONS)
def test_count_beyond_the_limit_is_lowered_to_it(server, version):
    """count=100000 over the complete ICD-10-CM: 10,000 codes, the count echoed as applied, and
    total and offset to page on with. It used to list all 98,466 codes (14.9 MB)."""
    body = parameters({"name": "valueSet", "resource": ALL_ICD}, {"name": "count", "valueInteger": 100_000})
    response = post(server, version, "ValueSet/$expand", body)
    assert counts(expansion_of(response, version)) == (ICD_CODES, 0, 10_000, [10_000])
    assert len(response.content) < 3_000_000


def test_count_beyond_the_limit_with_everything_included(server):
    """designations, definitions and every property: still one page of 10,000 (it was 70.8 MB)."""
    body = parameters({"name": "valueSet", "resource": ALL_ICD}, {"name": "count", "valueInteger": 2_147_483_647},
                      {"name": "includeDesignations", "valueBoolean": True},
                      {"name": "includeDefinition", "valueBoolean": True}, {"name": "property", "valueString": "*"})
    expansion = expansion_of(post(server, "r4", "ValueSet/$expand", body), "r4")
    assert counts(expansion) == (ICD_CODES, 0, 10_000, [10_000])


@pytest.mark.parametrize("version", VERSIONS)
def test_count_beyond_the_limit_pages_on_with_offset(server, version):
    body = parameters({"name": "valueSet", "resource": ALL_ICD}, {"name": "count", "valueInteger": 100_000},
                      {"name": "offset", "valueInteger": 95_000})
    expansion = expansion_of(post(server, version, "ValueSet/$expand", body), version)
    assert counts(expansion) == (ICD_CODES, 95_000, 3_466, [10_000])


@pytest.mark.parametrize("version", VERSIONS)
def test_the_client_threshold_lowers_the_page_too(server, version):
    """X-TOO-COSTLY-THRESHOLD lowers the limit, for a url on a tx-resource, GET, or an instance."""
    tx = {"name": "tx-resource", "resource": {**ALL_ICD, "url": "http://example.org/fhir/ValueSet/all-icd"}}
    body = parameters(tx, {"name": "url", "valueUri": "http://example.org/fhir/ValueSet/all-icd"},
                      {"name": "count", "valueInteger": 5_000})
    expansion = expansion_of(post(server, version, "ValueSet/$expand", body, **{"X-TOO-COSTLY-THRESHOLD": "100"}),
                             version)
    assert counts(expansion) == (ICD_CODES, 0, 100, [100])
    for url in (f"{server.url}/{version}/ValueSet/$expand?url={ICD_VS}&count=100000",
                f"{server.url}/{version}/ValueSet/icd-10-cm-gait-training-diagnoses/$expand?count=100000"):
        got = requests.get(url, headers={"X-TOO-COSTLY-THRESHOLD": "2"}, timeout=30)
        assert counts(expansion_of(got, version)) == (3, 0, 2, [2])


@pytest.mark.parametrize("version", VERSIONS)
def test_without_count_a_large_expansion_is_still_refused(server, version):
    outcome(post(server, version, "ValueSet/$expand", parameters({"name": "valueSet", "resource": ALL_ICD})), 400,
            "too-costly", "VALUESET_TOO_COSTLY",
            "The value set '(inline)' expansion has too many codes to produce (>10000)")


def test_no_request_of_this_module_wrote_a_traceback(server):
    """After every refusal above, thousands of them, and the log holds no stack trace."""
    log = server.output()
    assert "Traceback" not in log and "RecursionError" not in log and "unexpected error" not in log, log[-3000:]


# --- in-process: the error log, the setting, content files ---------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _down(level: int) -> None:
    _across(level + 1)


def _across(level: int) -> None:
    # two functions in turn, as in the report's walk: the traceback module cannot fold the frames
    _down(level + 1)


def test_an_unexpected_error_writes_its_traceback_once_then_short_lines(service, monkeypatch, caplog):
    """A failure every request reaches (here a real RecursionError in $lookup) writes one bounded
    traceback, then at most one line in 10 s counting the rest, then its traceback again after 10 minutes."""
    app = create_app(service=service)
    clock = Clock()
    app.extensions["fhir_plugin.error_log"] = ErrorLog(clock=clock)
    monkeypatch.setattr(service, "lookup", lambda request: _down(0))
    client = app.test_client()
    url = f"/r4/CodeSystem/$lookup?system={CPT}&code=97116"

    def fail(times: int) -> list[logging.LogRecord]:
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="fhir_plugin.web.errors"):
            for _ in range(times):
                assert client.get(url, headers={"X-Request-ID": "deep-1"}).status_code == 500
        return [r for r in caplog.records if r.name == "fhir_plugin.web.errors"]

    first = fail(100)
    assert len(first) == 1
    text = first[0].getMessage()
    assert text.startswith("unexpected error on GET /r4/CodeSystem/$lookup (request deep-1): RecursionError: maximum "
                           "recursion depth "
                           "exceeded (at ")
    assert "Traceback (most recent call last)" in text and "characters left out" in text
    assert len(text) < 17_000
    clock.now += 5
    assert fail(50) == []
    clock.now += 6
    summary = fail(1)
    assert len(summary) == 1 and "\n" not in summary[0].getMessage()
    assert summary[0].getMessage().endswith("; 149 more there since the last report; its traceback is written at "
                                            "most every 600 s")
    clock.now += 600
    again = fail(1)
    assert len(again) == 1 and "Traceback (most recent call last)" in again[0].getMessage()


def test_a_logged_path_cannot_forge_log_lines(service, monkeypatch, caplog):
    app = create_app(service=service)
    monkeypatch.setattr(service, "read", lambda *args: 1 / 0)
    with caplog.at_level(logging.ERROR, logger="fhir_plugin.web.errors"):
        assert app.test_client().get("/r4/CodeSystem/a%0Aforged%20line",
                                     headers={"X-Request-ID": "forge-1"}).status_code == 500
    message = caplog.records[-1].getMessage()
    assert message.split("\n", 1)[0] == ("unexpected error on GET /r4/CodeSystem/a\\nforged line (request forge-1): "
                                         "ZeroDivisionError: "
                                         f"division by zero (at {__file__}:{_line_of('1 / 0')})")


def _line_of(text: str) -> int:
    with open(__file__, encoding="utf-8") as source:
        return next(number for number, line in enumerate(source, 1) if text in line and "_line_of" not in line)


@pytest.mark.parametrize("value", ["0", "151", "-5"])
def test_the_depth_setting_is_bounded(value):
    """Far beyond 150, the recursion limit, not the setting, would stop a deep request."""
    with pytest.raises(ValueError, match=f"FHIR_PLUGIN_MAX_JSON_DEPTH must be between 1 and 150, not {value}"):
        load_settings(environ={"FHIR_PLUGIN_MAX_JSON_DEPTH": value})


def test_the_highest_depth_setting_is_safe(service):
    """At FHIR_PLUGIN_MAX_JSON_DEPTH=150, the heaviest walks (fhir.resources validation, a nested
    R4 expansion carrying a deep extension) of a body 150 deep still finish."""
    app = create_app({"FHIR_PLUGIN_MAX_JSON_DEPTH": 150}, service=service)
    client = app.test_client()
    for shape in ("tx-resource concept extension, $expand", "tx-resource concept hierarchy, nested $expand",
                  "inline valueSet, $validate-code"):
        route, build, check = SHAPES[shape]
        body, n = at_depth(build, 150)
        response = client.post(f"/r4/{route}", data=json.dumps(body), content_type=FHIR_JSON)
        assert response.status_code == 200, (shape, response.get_data(as_text=True)[:300])
        assert check(response.get_json(force=True), n)


def test_a_content_file_nested_too_deep_is_refused(tmp_path):
    resource = code_system([nested_concepts(60)])
    path = tmp_path / "deep.json"
    path.write_text(json.dumps(resource), encoding="utf-8")
    with pytest.raises(InvalidContent) as caught:
        load_service([path])
    assert (caught.value.status, caught.value.message_id, caught.value.text) == (
        422, "CONTENT_TOO_DEEP", f"{path}: refused: its JSON nests arrays and objects more than 100 levels deep (the "
        "limit set by FHIR_PLUGIN_MAX_JSON_DEPTH)")


def test_an_uploaded_file_nested_too_deep_is_refused(service, tmp_path):
    app = create_app({"FHIR_PLUGIN_ADMIN_TOKEN": "t0ken", "FHIR_PLUGIN_LOAD_DIR": str(tmp_path / "loaded")},
                     service=service)
    response = app.test_client().post("/admin/content?name=deep.json", data=REPORTED.encode(),
                                      headers={"Authorization": "Bearer t0ken"})
    assert response.status_code == 422
    issue = response.get_json(force=True)["issue"][0]
    assert issue["extension"][0]["valueString"] == "CONTENT_TOO_DEEP"
    assert issue["details"]["text"].endswith("deep.json: refused: its JSON nests arrays and objects more than 100 "
                                             "levels deep (the limit set by FHIR_PLUGIN_MAX_JSON_DEPTH)")
