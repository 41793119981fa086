"""Hostile and malformed input on every endpoint, item by item from issue 5, each with its exact
status and OperationOutcome issue code: a 2xx or a 4xx OperationOutcome, never a 5xx.

What was already covered elsewhere (and is not repeated here):
- invalid JSON, a NUL byte, invalid UTF-8 as the whole body: test_http_errors BAD_REQUESTS on $lookup;
  HOSTILE_BODIES on every route (no 5xx only); test_fuzz (hypothesis, no 5xx only)
- wrong resource types as the body (Patient, a JSON array, no resourceType): BAD_REQUESTS, $lookup/$translate
- wrong parameter types ($lookup, $translate): BAD_REQUESTS "coding as a string" ... "conceptMap as a string"
- repeated parameters with equal values, query + body, contradictory coding/system, reverse + target,
  code + sourceCode: BAD_REQUESTS
- bodies beyond the limit (1000-byte limit, every operation family, chunked): test_status_table_over_http,
  test_chunked_body_beyond_the_limit_is_refused_not_cut_off
- deeply nested JSON (100k levels) on $lookup: test_deeply_nested_json_is_a_400; below the depth
  at which Python's parser gives up, on every walk of a request's JSON: test_attack_depth
- count=-1 on $expand (R5, query): test_expand

Added here: every operation route (not only $lookup/$translate) for invalid UTF-8 in bodies, wrong
resource types, deep nesting and the default size limit; invalid UTF-8 in query strings; unpaired
surrogate escapes in JSON; path tricks in ids; repeated parameters with different values and
contradictory ones on every operation; 100k repeated parameters within the size limit; count and
offset beyond the FHIR integer, negative, not digits; malformed batch `validation` entries.
"""

from __future__ import annotations

import json
import re

import pytest

from fhir_plugin import create_app
from helpers import CM_URL, CPT, CPT_VS, DISPLAY_97116, FHIR_JSON, ICD, ICD_VS, assert_outcome, body_of, ok_json, param, \
    parameters

FORM = "application/x-www-form-urlencoded"
IDS = {"CodeSystem": "cpt-97116-fragment", "ValueSet": "cpt-gait-training", "ConceptMap": "cpt-97116-to-icd-10-cm"}
# every operation route that reads parameters, with a known id for the instance-level ones
OPERATIONS = [
    "/CodeSystem/$lookup", "/CodeSystem/cpt-97116-fragment/$lookup", "/CodeSystem/$subsumes",
    "/CodeSystem/cpt-97116-fragment/$subsumes", "/CodeSystem/$validate-code",
    "/CodeSystem/cpt-97116-fragment/$validate-code", "/ValueSet/$validate-code", "/ValueSet/cpt-gait-training/$validate-code",
    "/ValueSet/$batch-validate-code", "/ValueSet/cpt-gait-training/$batch-validate-code", "/ValueSet/$expand",
    "/ValueSet/cpt-gait-training/$expand", "/ConceptMap/$translate", "/ConceptMap/cpt-97116-to-icd-10-cm/$translate",
]
SEARCHES = ["/CodeSystem", "/ValueSet", "/ConceptMap"]
VERSIONS = ["r4", "r5"]


def test_the_operation_list_is_every_operation_route(app):
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/r4/") and "$" in rule.rule and rule.rule != "/r4/$versions":
            rtype = rule.rule.split("/")[2]
            found.add(rule.rule.removeprefix("/r4").replace("<resource_id>", IDS[rtype]))
    assert found == set(OPERATIONS)


def post(client, url, body, content_type=FHIR_JSON, **kwargs):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(url, data=data, content_type=content_type, **kwargs)


# --- invalid UTF-8 -------------------------------------------------------------------------------

BAD_QUERY = "The Parameters resource is malformed: the query string is not valid UTF-8"
BAD_QUERIES = [b"code=%FF", b"system=" + CPT.encode() + b"&code=97116&x%FE=1", b"code=%ED%A0%80", b"code=%C0%AF",
               b"code=\xff", b"filter=caf%C3"]


def raw_query(query: bytes) -> dict:
    """The query string exactly as a WSGI server passes it on (bytes as latin-1), not re-encoded."""
    return {"QUERY_STRING": query.decode("latin-1")}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("query", BAD_QUERIES)
def test_invalid_utf8_in_the_query_string_is_a_400_on_every_operation_and_search(client, version, query):
    """werkzeug would pass '%FF' on as the text '%FF'; a form body with the same bytes was already a 400."""
    for route in OPERATIONS:
        for method in ("GET", "POST"):
            response = client.open(f"/{version}{route}", method=method, environ_overrides=raw_query(query),
                                   **({"data": json.dumps(parameters()), "content_type": FHIR_JSON} if method == "POST" else {}))
            assert_outcome(response, 400, "invalid", text=BAD_QUERY, message_id="BODY_BAD_PARAMETERS")
    for route in SEARCHES:
        assert_outcome(client.get(f"/{version}{route}", environ_overrides=raw_query(query)), 400, "invalid", text=BAD_QUERY,
                       message_id="BODY_BAD_PARAMETERS")


@pytest.mark.parametrize("query, display", [
    (f"system={CPT}&code=97116&note=100%", DISPLAY_97116),  # a '%' that is not an escape is text
    (f"system={ICD}&code=M62.81&note=caf%C3%A9", "Muscle weakness (generalized)"),  # valid UTF-8 escapes
])
def test_valid_query_strings_with_percent_signs_still_work(client, query, display):
    body = ok_json(client.get(f"/r4/CodeSystem/$lookup?{query}"), "R4")
    assert {"name": "display", "valueString": display} in body["parameter"]


def not_json(position: int, byte: int, reason: str) -> str:
    return (f"The request body is not valid JSON: 'utf-8' codec can't decode byte {byte:#x} in position {position}: "
            f"{reason}")


UTF8_BODIES = [
    # (body, content type, message id, text)
    (b'{"resourceType":"Parameters","parameter":[{"name":"code","valueCode":"\xff"}]}', FHIR_JSON, "BODY_NOT_JSON",
     not_json(70, 0xFF, "invalid start byte")),
    (b'{"resourceType":"Parameters","parameter":[{"name":"code","valueCode":"\xc0\xaf"}]}', FHIR_JSON, "BODY_NOT_JSON",
     not_json(70, 0xC0, "invalid start byte")),  # overlong '/'
    (b'{"resourceType":"Parameters","parameter":[{"name":"code","valueCode":"\xed\xa0\x80"}]}', FHIR_JSON,
     "BODY_NOT_JSON", not_json(70, 0xED, "invalid continuation byte")),  # an encoded surrogate
    (b'{"resourceType":"Parameters","parameter":[{"name":"code","valueCode":"\\ud800"}]}', FHIR_JSON, "BODY_NOT_JSON",
     "The request body is not valid JSON: a string holds an unpaired UTF-16 surrogate escape"),
    (b'{"resourceType":"Parameters","parameter":[{"name":"filter","valueString":"x\\udfffy"}]}', "application/json",
     "BODY_NOT_JSON", "The request body is not valid JSON: a string holds an unpaired UTF-16 surrogate escape"),
    (b"code=\xff", FORM, "BODY_BAD_PARAMETERS",
     "The Parameters resource is malformed: the form body is not valid UTF-8 form data"),
    (b"code=%ED%A0%80&system=x", FORM, "BODY_BAD_PARAMETERS",
     "The Parameters resource is malformed: the form body is not valid UTF-8 form data"),
]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("body, content_type, message_id, text", UTF8_BODIES,
                         ids=[f"{i}-{b[2]}" for i, b in enumerate(UTF8_BODIES)])
def test_invalid_unicode_in_the_body_is_a_400_on_every_operation(client, version, body, content_type, message_id, text):
    """An unpaired \\ud800 escape used to be a 500: the answer (which echoes the code) could not be encoded."""
    for route in OPERATIONS:
        response = post(client, f"/{version}{route}", body, content_type)
        assert_outcome(response, 400, "invalid", text=text, message_id=message_id)


def test_a_surrogate_pair_escape_is_text(client):
    body = parameters(param("system", valueUri=ICD), param("code", valueCode="\U0001F600"))
    raw = json.dumps(body)  # ensure_ascii: the emoji is sent as the escape pair \ud83d\ude00
    assert "\\ud83d\\ude00" in raw
    assert_outcome(post(client, "/r4/CodeSystem/$lookup", raw), 404, "not-found", message_id="LOOKUP_CODE_NOT_FOUND",
                   text=f"Unable to find code '\U0001F600' in {ICD} version 2026-04-01")


# --- wrong resource types ------------------------------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("body, found", [
    ({"resourceType": "Patient", "id": "p"}, "Patient"),
    ({"resourceType": "Bundle", "type": "collection", "entry": []}, "Bundle"),
    ({"resourceType": "CodeSystem", "url": CPT, "status": "active", "content": "complete"}, "CodeSystem"),
    ({"resourceType": "parameters", "parameter": []}, "parameters"),
    (b'"Parameters"', "str"), (7, "int"), (None, "NoneType"), ([{"resourceType": "Parameters"}], "list"),
])
def test_a_body_that_is_not_parameters_is_a_400_on_every_operation(client, version, body, found):
    for route in OPERATIONS:
        response = post(client, f"/{version}{route}", body)
        assert_outcome(response, 400, "invalid", message_id="BODY_NOT_PARAMETERS",
                       text=f"The request body must be a FHIR Parameters resource, not {found}")


PATIENT = {"resourceType": "Patient", "id": "p"}
LOOKUP_CPT = [param("system", valueUri=CPT), param("code", valueCode="97116")]


@pytest.mark.parametrize("url, body, status, issue_code, message_id, text", [
    ("/r4/CodeSystem/$lookup", parameters(*LOOKUP_CPT, param("tx-resource", resource=PATIENT)), 422, "invalid",
     "CONTENT_UNSUPPORTED_TYPE", "tx-resource[0]: cannot load a Patient; expected CodeSystem, ValueSet, ConceptMap, "
     "NamingSystem or Bundle"),
    ("/r4/CodeSystem/$lookup", parameters(*LOOKUP_CPT, param("tx-resource", valueString="x")), 400, "invalid",
     "PARAM_BAD_TYPE", "Parameter 'tx-resource' must be given as a resource"),
    ("/r4/ValueSet/$expand", parameters(param("valueSet", resource=PATIENT)), 400, "invalid", "PARAM_BAD_TYPE",
     "Parameter 'valueSet' must be given as a ValueSet"),
    ("/r5/ValueSet/$expand", parameters(param("url", valueUri=CPT_VS), param("valueSet", valueString="x")), 400,
     "invalid", "PARAM_BAD_TYPE", "Parameter 'valueSet' must be given as a resource"),
    ("/r4/CodeSystem/$subsumes", parameters(param("system", valueUri=ICD), param("codeA", valueCoding={"code": "M62.81"}),
                                            param("codeB", valueCode="M62.8")), 400, "invalid", "PARAM_BAD_TYPE",
     "Parameter 'codeA' must be given as a code"),
    ("/r4/CodeSystem/$validate-code", parameters(param("url", valueUri=CPT), param("code", valueCode="97116"),
                                                 param("display", valueBoolean=True)), 400, "invalid", "PARAM_BAD_VALUE",
     "Parameter 'display' has an invalid string value: True"),
    ("/r4/ValueSet/$expand", parameters(param("url", valueUri=CPT_VS), param("activeOnly", valueString="maybe")), 400,
     "invalid", "PARAM_BAD_VALUE", "Parameter 'activeOnly' has an invalid boolean value: 'maybe'"),
    (f"/r4/ValueSet/$expand?url={CPT_VS}&activeOnly=maybe", None, 400, "invalid", "PARAM_BAD_VALUE",
     "Parameter 'activeOnly' has an invalid boolean value: 'maybe'"),
], ids=["tx-resource Patient", "tx-resource string", "valueSet Patient", "valueSet string", "codeA Coding",
        "display boolean", "activeOnly body", "activeOnly query"])
def test_wrong_types_of_parameters(client, url, body, status, issue_code, message_id, text):
    response = client.get(url) if body is None else post(client, url, body)
    assert_outcome(response, status, issue_code, text=text, message_id=message_id)


BAD_VALIDATION = "Parameter 'validation' must be given as a Parameters resource"


@pytest.mark.parametrize("validation, message_id, text", [
    (param("validation", resource=PATIENT | {"parameter": [param("code", valueCode="97116")]}), "PARAM_BAD_TYPE",
     BAD_VALIDATION),
    (param("validation", valueString="x"), "PARAM_BAD_TYPE", BAD_VALIDATION),
    (param("validation", resource={"resourceType": "Parameters", "parameter": 5}), "BODY_BAD_PARAMETERS",
     "The Parameters resource is malformed: 'parameter' must be an array"),
    (param("validation", resource=parameters({"valueCode": "97116"})), "BODY_BAD_PARAMETERS",
     "The Parameters resource is malformed: parameter[0] has no name"),
    (param("validation", resource=parameters({"name": 5, "valueCode": "97116"})), "BODY_BAD_PARAMETERS",
     "The Parameters resource is malformed: parameter[0] has no name"),
    (param("validation", resource=parameters(param("code", valueCode="97116", valueString="97116"))),
     "BODY_BAD_PARAMETERS",
     "The Parameters resource is malformed: parameter[0] ('code') must have exactly one value[x], resource or part"),
], ids=["a Patient", "a string", "parameter not a list", "entry without name", "name a number", "two values"])
def test_a_malformed_batch_validation_is_answered_in_place(client, validation, message_id, text):
    """The entries without a name and a 'parameter' that is not a list used to be 500s."""
    good = param("validation", resource=parameters(param("code", valueCode="97116"), param("system", valueUri=CPT)))
    response = post(client, "/r4/ValueSet/$batch-validate-code",
                    parameters(param("url", valueUri=CPT_VS), validation, good))
    answers = [p["resource"] for p in ok_json(response, "R4")["parameter"]]
    assert [a["resourceType"] for a in answers] == ["OperationOutcome", "Parameters"]
    issue = answers[0]["issue"][0]
    assert (issue["severity"], issue["code"], issue["details"]["text"]) == ("error", "invalid", text)
    assert {"name": "result", "valueBoolean": True} in answers[1]["parameter"]


# --- repeated and contradictory parameters ---------------------------------------------------------

def repeated(name: str) -> str:
    return f"Parameter '{name}' may be given at most once"


@pytest.mark.parametrize("method, url, body, message_id, text", [
    ("GET", f"/r4/CodeSystem/$lookup?system={CPT}&code=97116&code=97110", None, "PARAM_REPEATED", repeated("code")),
    ("GET", "/r5/CodeSystem/cpt-97116-fragment/$lookup?code=97116&code=X", None, "PARAM_REPEATED", repeated("code")),
    ("POST", "/r4/CodeSystem/$lookup", parameters(*LOOKUP_CPT, param("code", valueCode="97110")), "PARAM_REPEATED",
     repeated("code")),
    ("POST", "/r4/CodeSystem/$lookup?code=97110", parameters(*LOOKUP_CPT), "PARAM_REPEATED", repeated("code")),
    ("POST", "/r4/CodeSystem/$lookup", parameters(*LOOKUP_CPT, param("version", valueString="2026"),
                                                  param("version", valueString="2025")), "PARAM_REPEATED",
     repeated("version")),
    ("GET", f"/r4/CodeSystem/$validate-code?url={CPT}&code=97116&code=97110", None, "PARAM_REPEATED", repeated("code")),
    ("GET", f"/r4/ValueSet/$validate-code?url={CPT_VS}&system={CPT}&code=97116&code=97110", None, "PARAM_REPEATED",
     repeated("code")),
    ("GET", f"/r4/ValueSet/$validate-code?url={CPT_VS}&url={ICD_VS}&system={CPT}&code=97116", None, "PARAM_REPEATED",
     repeated("url")),
    ("GET", f"/r4/ValueSet/$expand?url={CPT_VS}&url={ICD_VS}", None, "PARAM_REPEATED", repeated("url")),
    ("GET", f"/r4/ValueSet/$expand?url={ICD_VS}&count=1&count=2", None, "PARAM_REPEATED", repeated("count")),
    ("GET", f"/r4/CodeSystem/$subsumes?system={ICD}&codeA=M62.81&codeA=R26.2&codeB=M62.8", None, "PARAM_REPEATED",
     repeated("codeA")),
    ("GET", f"/r4/ConceptMap/$translate?system={CPT}&code=97116&code=97110", None, "PARAM_REPEATED", repeated("code")),
    ("GET", f"/r5/ConceptMap/$translate?sourceSystem={CPT}&sourceCode=97116&sourceCode=97110", None, "PARAM_REPEATED",
     repeated("sourceCode")),
    ("GET", f"/r4/ConceptMap/$translate?system={CPT}&code=97116&url={CM_URL}&url=http://example.org/cm", None,
     "PARAM_REPEATED", repeated("url")),
    # contradictory
    ("POST", "/r4/CodeSystem/$validate-code",
     parameters(param("url", valueUri=CPT), param("code", valueCode="97116"),
                param("coding", valueCoding={"system": ICD, "code": "R26.2"})),
     "PARAM_EXCLUSIVE", "Only one of 'code', 'coding' and 'codeableConcept' may be given"),
    ("POST", "/r4/ValueSet/$validate-code",
     parameters(param("url", valueUri=CPT_VS), param("system", valueUri=CPT), param("code", valueCode="97116"),
                param("coding", valueCoding={"system": CPT, "code": "97110"})),
     "PARAM_EXCLUSIVE", "Only one of 'code', 'coding' and 'codeableConcept' may be given"),
    ("GET", f"/r4/CodeSystem/cpt-97116-fragment/$lookup?system={ICD}&code=97116", None, "PARAM_CONFLICT",
     f"Parameters 'system' and 'CodeSystem/cpt-97116-fragment' disagree: '{ICD}' vs '{CPT}'"),
    ("GET", f"/r4/ValueSet/cpt-gait-training/$expand?url={ICD_VS}", None, "PARAM_CONFLICT",
     f"Parameters 'url' and 'the ValueSet of the path' disagree: '{ICD_VS}' vs '{CPT_VS}'"),
], ids=lambda v: None)
def test_repeated_and_contradictory_parameters(client, method, url, body, message_id, text):
    response = client.get(url) if body is None else post(client, url, body)
    assert_outcome(response, 400, "invalid", text=text, message_id=message_id)


def test_a_repeated_url_in_a_batch_is_answered_in_place(client):
    body = parameters(param("url", valueUri=CPT_VS), param("url", valueUri=ICD_VS), param(
        "validation", resource=parameters(param("code", valueCode="97116"), param("system", valueUri=CPT))))
    answers = ok_json(post(client, "/r4/ValueSet/$batch-validate-code", body), "R4")["parameter"]
    assert len(answers) == 1
    issue = answers[0]["resource"]["issue"][0]
    assert (issue["code"], issue["details"]["text"]) == ("invalid", repeated("url"))


# --- count and offset ----------------------------------------------------------------------------

def bad_integer(name: str, shown: str) -> str:
    return f"Parameter '{name}' has an invalid integer value: {shown}"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("query, name, shown", [
    ("count=99999999999999999999", "count", "'99999999999999999999'"),
    ("count=2147483648", "count", "'2147483648'"),  # one beyond the FHIR integer
    ("count=" + "9" * 5000, "count", repr("9" * 5000)),  # beyond int()'s digit limit
    ("offset=99999999999999999999&count=1", "offset", "'99999999999999999999'"),
    ("count=-1", "count", "'-1'"), ("offset=-5", "offset", "'-5'"), ("count=abc", "count", "'abc'"),
    ("count=1.5", "count", "'1.5'"), ("count=", "count", "''"), ("count=%2B5", "count", "'+5'"), ("count=+5", "count", "' 5'"),
    ("count=%C2%B2", "count", "'²'"),  # '²'.isdigit() is true; this was a 500
    ("count=%D9%A3", "count", "'٣'"),  # an Arabic-Indic 3: not an ASCII digit
    ("count=0x10", "count", "'0x10'"), ("count=1_000", "count", "'1_000'"),
])
def test_bad_count_and_offset_in_the_query(client, version, query, name, shown):
    for route in ("/ValueSet/$expand", "/ValueSet/icd-10-cm-gait-training-diagnoses/$expand"):
        url = f"/{version}{route}?{'' if 'icd' in route else f'url={ICD_VS}&'}{query}"
        assert_outcome(client.get(url), 400, "invalid", text=bad_integer(name, shown), message_id="PARAM_BAD_VALUE")


@pytest.mark.parametrize("value, shown", [
    ({"valueInteger": 99999999999999999999}, "99999999999999999999"), ({"valueInteger": 2147483648}, "2147483648"),
    ({"valueInteger": -1}, "-1"), ({"valueString": "5"}, "'5'"), ({"valueDecimal": 5.0}, "5.0"),
    ({"valueBoolean": True}, "True"), ({"valueUnsignedInt": -3}, "-3"),
])
def test_bad_count_in_a_body(client, value, shown):
    response = post(client, "/r4/ValueSet/$expand", parameters(param("url", valueUri=ICD_VS), {"name": "count", **value}))
    assert_outcome(response, 400, "invalid", text=bad_integer("count", shown), message_id="PARAM_BAD_VALUE")


def test_a_count_with_more_digits_than_json_reads_is_not_json(client):
    raw = '{"resourceType":"Parameters","parameter":[{"name":"count","valueInteger":' + "9" * 5000 + "}]}"
    issue = assert_outcome(post(client, "/r4/ValueSet/$expand", raw), 400, "invalid", message_id="BODY_NOT_JSON")
    assert issue["details"]["text"].startswith("The request body is not valid JSON: Exceeds the limit (4300 digits)")


@pytest.mark.parametrize("version", VERSIONS)
def test_the_largest_fhir_integer_count_is_lowered_to_the_expansion_limit(client, version):
    """count=2147483647 is valid (2147483648 would not be) and pages everything of a small value set,
    but no page is larger than FHIR_PLUGIN_MAX_EXPANSION: the count applied, and echoed, is 10000."""
    body = ok_json(client.get(f"/{version}/ValueSet/$expand?url={ICD_VS}&count=2147483647&offset=1"), version)
    expansion = body["expansion"]
    assert (expansion["total"], expansion["offset"], len(expansion["contains"])) == (3, 1, 2)
    assert {"name": "count", "valueInteger": 10000} in expansion["parameter"]
    assert [p for p in expansion["parameter"] if p["name"] == "count"] == [{"name": "count", "valueInteger": 10000}]


# --- huge and deeply nested bodies -----------------------------------------------------------------

TOO_LARGE = "The request body is larger than the 1048576 bytes this server accepts"


@pytest.mark.parametrize("content_type", [FHIR_JSON, FORM])
def test_a_body_one_byte_beyond_the_default_limit_is_413_on_every_operation(client, content_type):
    body = b" " * 1_048_577 if content_type == FHIR_JSON else b"&" * 1_048_577
    for route in OPERATIONS:
        response = post(client, f"/r4{route}", body, content_type)
        assert_outcome(response, 413, "too-long", text=TOO_LARGE, message_id="BODY_TOO_LARGE")


@pytest.mark.parametrize("nesting", [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
                                     b'{"resourceType":"Parameters","parameter":[{"name":"valueSet","resource":'
                                     + b'{"a":' * 60_000 + b"1" + b"}" * 60_000 + b"}]}"])
def test_deeply_nested_json_is_a_400_on_every_operation(client, nesting):
    text = "The request body nests JSON arrays and objects deeper than the 100 levels this server accepts"
    for route in OPERATIONS:
        assert_outcome(post(client, f"/r5{route}", nesting), 400, "too-costly", text=text, message_id="BODY_TOO_DEEP")


def test_100k_repeats_of_a_single_parameter_in_a_form_body_within_the_limit(client):
    body = ("code=97116&" * 90_000 + f"system={CPT}").encode()
    assert len(body) < 1_048_576
    assert_outcome(post(client, "/r4/CodeSystem/$lookup", body, FORM), 400, "invalid", text=repeated("code"),
                   message_id="PARAM_REPEATED")


def test_100k_unknown_parameters_in_a_form_body_are_ignored(client):
    body = ("p=1&" * 100_000 + f"system={CPT}&code=97116").encode()
    assert len(body) < 1_048_576
    parameters_ = ok_json(post(client, "/r4/CodeSystem/$lookup", body, FORM), "R4")["parameter"]
    assert {"name": "display", "valueString": DISPLAY_97116} in parameters_


def test_100k_repeats_of_a_repeating_parameter_within_a_raised_limit(service):
    """100,000 `property` entries (3.6 MB of Parameters) under an 8 MiB limit: answered, once each."""
    client = create_app({"FHIR_PLUGIN_MAX_REQUEST_BYTES": 8 * 1024 * 1024}, service=service).test_client()
    body = json.dumps(parameters(*LOOKUP_CPT, *[param("property", valueCode="unit-minutes")] * 100_000))
    assert 3_000_000 < len(body) < 8 * 1024 * 1024
    answer = ok_json(post(client, "/r4/CodeSystem/$lookup", body), "R4")["parameter"]
    assert {"name": "display", "valueString": DISPLAY_97116} in answer
    assert [p for p in answer if p["name"] == "property"] == [
        {"name": "property", "part": [{"name": "code", "valueCode": "unit-minutes"}, {"name": "value", "valueInteger": 15}]}]


def test_100k_repeated_parameters_in_the_query_string(client):
    query = "&".join(["code=97116"] * 100_000)
    assert_outcome(client.get(f"/r4/CodeSystem/$lookup?system={CPT}&{query}"), 400, "invalid", text=repeated("code"),
                   message_id="PARAM_REPEATED")


# --- path tricks in ids ----------------------------------------------------------------------------

def id_routes(app) -> list[str]:
    """Every /r4 rule with a resource id, per resource type, with the id left as {id}."""
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/r4/") or "<resource_id>" not in rule.rule:
            continue
        path = rule.rule.removeprefix("/r4").replace("<resource_id>", "{id}")
        found = re.search(r"<any\(([^)]*)\):resource_type>", path)
        if found:
            for rtype in (t.strip() for t in found[1].split(",")):
                routes.append(path.replace(found[0], rtype))
        else:
            routes.append(path)
    return sorted(routes)


def test_every_id_route_is_tried(app):
    assert id_routes(app) == sorted([
        "/CodeSystem/{id}", "/ValueSet/{id}", "/ConceptMap/{id}", "/CodeSystem/{id}/$lookup",
        "/CodeSystem/{id}/$subsumes", "/CodeSystem/{id}/$validate-code", "/ValueSet/{id}/$validate-code",
        "/ValueSet/{id}/$batch-validate-code", "/ValueSet/{id}/$expand", "/ConceptMap/{id}/$translate"])


# (id as sent in the URL, id as the server reads it); each is an unknown resource
NOT_FOUND_IDS = [
    ("%00", "\x00"), ("cpt-97116-fragment%00", "cpt-97116-fragment\x00"), ("%2e%2e", ".."), ("..", ".."), (".", "."),
    ("x" * 5000, "x" * 5000), ("%C3%A9t%C3%A9", "été"), ("%F0%9F%98%80", "\U0001F600"), ("%E2%80%AE", "\u202e"),
    ("%FF", "\ufffd"), ("%ED%A0%80", "\ufffd" * 3), ("CPT-97116-FRAGMENT", "CPT-97116-FRAGMENT"),
    ("%25252e", "%252e"), ("a%20b", "a b"), ("a%0D%0ASet-Cookie:%20x", "a\r\nSet-Cookie: x"),
]
# ids that contain a slash once decoded: no route has that many segments
NO_PATH_IDS = [("..%2F..%2Fetc%2Fpasswd", "../../etc/passwd"), ("a%2Fb", "a/b"), ("%2F", "/"), ("..%5C..%5Cwin", None)]


@pytest.mark.parametrize("version", VERSIONS)
def test_path_tricks_in_ids_are_not_found(client, version):
    for route in id_routes(client.application):
        rtype = route.split("/")[1]
        query = {"$lookup": "?code=97116", "$subsumes": "?codeA=1&codeB=2", "$validate-code": "?code=97116",
                 "$translate": "?code=1&system=x"}.get(route.rsplit("/", 1)[-1], "")
        for sent, read in NOT_FOUND_IDS:
            response = client.get(f"/{version}{route.format(id=sent)}{query}")
            assert_outcome(response, 404, "not-found", text=f"{rtype}/{read} not found", message_id="RESOURCE_NOT_FOUND")
            assert "Set-Cookie" not in response.headers
        for sent, read in NO_PATH_IDS:
            response = client.get(f"/{version}{route.format(id=sent)}{query}")
            if read is None:  # a backslash is no separator: one segment, an unknown id
                assert_outcome(response, 404, "not-found", text=f"{rtype}/..\\..\\win not found",
                               message_id="RESOURCE_NOT_FOUND")
            else:
                path = f"/{version}{route.format(id=read)}"
                assert_outcome(response, 404, "not-found", text=f"There is no FHIR endpoint at {path}",
                               message_id="NO_SUCH_PATH")


def test_dot_segments_are_not_resolved(client):
    """/r4/CodeSystem/../ValueSet is not /r4/ValueSet: the path is matched as sent."""
    assert_outcome(client.get("/r4/CodeSystem/../ValueSet"), 404, "not-found", message_id="NO_SUCH_PATH",
                   text="There is no FHIR endpoint at /r4/CodeSystem/../ValueSet")
    assert_outcome(client.get("/r4/CodeSystem/%2e%2e/ValueSet/cpt-gait-training"), 404, "not-found",
                   message_id="NO_SUCH_PATH", text="There is no FHIR endpoint at /r4/CodeSystem/../ValueSet/cpt-gait-training")


def test_a_known_id_still_reads(client):
    body = ok_json(client.get("/r4/CodeSystem/cpt-97116-fragment"), "R4")
    assert (body["resourceType"], body["id"], body["url"]) == ("CodeSystem", "cpt-97116-fragment", CPT)
    assert body_of(client.get("/r5/ValueSet/cpt-gait-training"))["url"] == CPT_VS


@pytest.mark.parametrize("query", [b"x=\xff", b"_format=%FF", b"mode=%C0%AF", b"_pretty=true&x=\xfe"])
@pytest.mark.parametrize("path", ["/r4/metadata", "/r5/$versions", "/r4/CodeSystem/cpt-97116-fragment", "/r4/Patient/1",
                                  "/r5/ValueSet", "/fhir/ConceptMap/$translate"])
def test_invalid_utf8_in_the_query_string_of_any_route(client, path, query):
    """Raw bytes that are not UTF-8 made request.args itself fail: a 500 on every route, even in the
    error handler."""
    assert_outcome(client.get(path, environ_overrides=raw_query(query)), 400, "invalid", text=BAD_QUERY,
                   message_id="BODY_BAD_PARAMETERS")
