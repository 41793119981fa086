"""CodeSystem/$lookup over HTTP: every request shape, on /r4, /r5 and /fhir, with exact responses."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from fhir_plugin.extension import cache_stats
from helpers import (
    CPT,
    DEFINITION_97116,
    DESIGNATIONS_97116,
    DISPLAY_97116,
    ICD,
    ICD_TITLES,
    ICD_VERSION,
    assert_outcome,
    ok_json,
    param,
    parameters,
)

ENDPOINTS = [("/r4", "R4"), ("/r5", "R5"), ("/fhir", "R4")]
HEAD = [
    param("name", valueString="CPT"),
    param("version", valueString="2026"),
    param("display", valueString=DISPLAY_97116),
    param("code", valueCode="97116"),
    param("system", valueUri=CPT),
]


def prop(code: str, value_key: str, value, description: str | None = None) -> dict:
    parts = [param("code", valueCode=code), {"name": "value", value_key: value}]
    if description:
        parts.append(param("description", valueString=description))
    return {"name": "property", "part": parts}


def designation(value: str, use: dict) -> dict:
    return {"name": "designation", "part": [
        param("language", valueCode="en"), param("use", valueCoding=use), param("value", valueString=value)]}


# The display comes back first as the preferred term in the code system's language, as tx.fhir.org does.
PREFERRED = {"system": "http://terminology.hl7.org/CodeSystem/hl7TermMaintInfra", "code": "preferredForLanguage",
             "display": "Preferred For Language"}
LOOKUP_DESIGNATIONS_97116 = [(DISPLAY_97116, PREFERRED), *DESIGNATIONS_97116]

CPT_97116 = parameters(
    *HEAD,
    param("definition", valueString=DEFINITION_97116),
    param("abstract", valueBoolean=False),
    *(designation(value, use) for value, use in LOOKUP_DESIGNATIONS_97116),
    prop("modifier", "valueBoolean", False),
    prop("modified", "valueBoolean", False),
    prop("kind", "valueCode", "code"),
    prop("work-rvu", "valueDecimal", 0.45),
    prop("unit-minutes", "valueInteger", 15),
    prop("inactive", "valueBoolean", False),
)
CPT_97116_WORK_RVU = parameters(*HEAD, param("abstract", valueBoolean=False), prop("work-rvu", "valueDecimal", 0.45))
ICD_M62_8 = parameters(
    param("name", valueString="ICD10CM"),
    param("version", valueString=ICD_VERSION),
    param("display", valueString="Other specified disorders of muscle"),
    param("code", valueCode="M62.8"),
    param("system", valueUri=ICD),
    param("abstract", valueBoolean=True),
    designation("Other specified disorders of muscle", PREFERRED),
    prop("parent", "valueCode", "M62", "Other disorders of muscle"),
    prop("child", "valueCode", "M62.81", ICD_TITLES["M62.81"]),
    prop("child", "valueCode", "M62.82", "Rhabdomyolysis"),
    prop("child", "valueCode", "M62.83", "Muscle spasm"),
    prop("child", "valueCode", "M62.84", "Sarcopenia"),
    prop("child", "valueCode", "M62.85", "Dysfunction of the multifidus muscles, lumbar region"),
    prop("child", "valueCode", "M62.89", "Other specified disorders of muscle"),
    prop("notSelectable", "valueBoolean", True),
    prop("excludes2", "valueString", "nontraumatic hematoma of muscle (M79.81)"),
    prop("inactive", "valueBoolean", False),
)
ICD_R26_2 = parameters(
    param("name", valueString="ICD10CM"),
    param("version", valueString=ICD_VERSION),
    param("display", valueString=ICD_TITLES["R26.2"]),
    param("code", valueCode="R26.2"),
    param("system", valueUri=ICD),
    param("abstract", valueBoolean=False),
    designation(ICD_TITLES["R26.2"], PREFERRED),
    prop("parent", "valueCode", "R26", "Abnormalities of gait and mobility"),
    prop("notSelectable", "valueBoolean", False),
    prop("excludes1", "valueString", "falling (R29.6)"),
    prop("excludes1", "valueString", "unsteadiness on feet (R26.81)"),
    prop("inactive", "valueBoolean", False),
)
FORM = "application/x-www-form-urlencoded"


def lookup_url(base: str, **query) -> str:
    return f"{base}/CodeSystem/$lookup?{urlencode(query)}"


# --- every request shape for CPT 97116 ---------------------------------------------------------

SHAPES = {
    "GET system+code": lambda c, base: c.get(lookup_url(base, system=CPT, code="97116")),
    "GET system+code+version": lambda c, base: c.get(lookup_url(base, system=CPT, code="97116", version="2026")),
    "GET coding=system|code": lambda c, base: c.get(lookup_url(base, coding=f"{CPT}|97116")),
    "GET %24lookup": lambda c, base: c.get(f"{base}/CodeSystem/%24lookup?system={CPT}&code=97116"),
    "GET property=*": lambda c, base: c.get(lookup_url(base, system=CPT, code="97116", property="*")),
    "GET date": lambda c, base: c.get(lookup_url(base, system=CPT, code="97116", date="2026-06-01")),
    "GET displayLanguage": lambda c, base: c.get(lookup_url(base, system=CPT, code="97116", displayLanguage="en")),
    "POST Parameters system+code": lambda c, base: c.post(
        f"{base}/CodeSystem/$lookup",
        json=parameters(param("system", valueUri=CPT), param("code", valueCode="97116")),
        content_type="application/fhir+json"),
    "POST Parameters coding": lambda c, base: c.post(
        f"{base}/CodeSystem/$lookup",
        json=parameters(param("coding", valueCoding={"system": CPT, "code": "97116", "version": "2026"})),
        content_type="application/fhir+json; charset=utf-8"),
    "POST Parameters as application/json": lambda c, base: c.post(
        f"{base}/CodeSystem/$lookup", json=parameters(param("system", valueUri=CPT), param("code", valueCode="97116"))),
    "POST Parameters query+body": lambda c, base: c.post(
        f"{base}/CodeSystem/$lookup?system={CPT}", json=parameters(param("code", valueCode="97116"))),
    "POST form": lambda c, base: c.post(
        f"{base}/CodeSystem/$lookup", data=urlencode({"system": CPT, "code": "97116"}), content_type=FORM),
    "POST empty body, query": lambda c, base: c.post(lookup_url(base, system=CPT, code="97116")),
    "GET instance": lambda c, base: c.get(f"{base}/CodeSystem/cpt-97116-fragment/$lookup?code=97116"),
    "GET instance with its own system": lambda c, base: c.get(
        f"{base}/CodeSystem/cpt-97116-fragment/$lookup?code=97116&system={CPT}&version=2026"),
    "POST instance Parameters": lambda c, base: c.post(
        f"{base}/CodeSystem/cpt-97116-fragment/$lookup", json=parameters(param("code", valueCode="97116"))),
    "POST instance form": lambda c, base: c.post(
        f"{base}/CodeSystem/cpt-97116-fragment/$lookup", data="code=97116", content_type=FORM),
}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("base, version", ENDPOINTS)
def test_lookup_cpt_97116_every_shape(client, base, version, shape):
    body = ok_json(SHAPES[shape](client, base), version)
    assert body == CPT_97116


@pytest.mark.parametrize("base, version", ENDPOINTS)
def test_lookup_property_filter(client, base, version):
    body = ok_json(client.get(lookup_url(base, system=CPT, code="97116", property="work-rvu")), version)
    assert body == CPT_97116_WORK_RVU


@pytest.mark.parametrize("base, version", ENDPOINTS)
def test_lookup_repeated_property(client, base, version):
    url = f"{base}/CodeSystem/$lookup?system={CPT}&code=97116&property=unit-minutes&property=designation"
    body = ok_json(client.get(url), version)
    assert body == parameters(*HEAD, param("abstract", valueBoolean=False),
                              *(designation(value, use) for value, use in LOOKUP_DESIGNATIONS_97116),
                              prop("unit-minutes", "valueInteger", 15))


def test_lookup_repeated_property_in_a_parameters_body(client):
    body = ok_json(client.post("/r5/CodeSystem/$lookup", json=parameters(
        param("coding", valueCoding={"system": CPT, "code": "97116"}),
        param("property", valueCode="work-rvu"), param("property", valueCode="kind"))), "R5")
    assert body == parameters(*HEAD, param("abstract", valueBoolean=False),
                              prop("kind", "valueCode", "code"), prop("work-rvu", "valueDecimal", 0.45))


@pytest.mark.parametrize("base, version", ENDPOINTS)
def test_lookup_icd_category(client, base, version):
    body = ok_json(client.get(lookup_url(base, system=ICD, code="M62.8")), version)
    assert body == ICD_M62_8


@pytest.mark.parametrize("base, version", ENDPOINTS)
def test_lookup_icd_billable_code_on_the_instance(client, base, version):
    body = ok_json(client.get(f"{base}/CodeSystem/icd-10-cm/$lookup?code=R26.2"), version)
    assert body == ICD_R26_2


def test_lookup_decimal_is_serialised_exactly(client):
    raw = client.get(lookup_url("/r5", system=CPT, code="97116", property="work-rvu")).get_data(as_text=True)
    assert '{"name":"value","valueDecimal":0.45}' in raw


def test_lookup_accepts_a_byte_order_mark_in_the_body(client):
    data = b"\xef\xbb\xbf" + b'{"resourceType":"Parameters","parameter":[{"name":"system","valueUri":"' + \
        CPT.encode() + b'"},{"name":"code","valueCode":"97116"}]}'
    body = ok_json(client.post("/r4/CodeSystem/$lookup", data=data, content_type="application/fhir+json"), "R4")
    assert body == CPT_97116


def test_lookup_ignores_unknown_parameters(client):
    body = ok_json(client.get(lookup_url("/r4", system=CPT, code="97116", uuid="abc", _pretty="false")), "R4")
    assert body == CPT_97116
    body = ok_json(client.post("/r4/CodeSystem/$lookup", json=parameters(
        param("system", valueUri=CPT), param("code", valueCode="97116"),
        param("x-something-else", resource={"resourceType": "CodeSystem"}))), "R4")
    assert body == CPT_97116


TX_CS = {"resourceType": "CodeSystem", "id": "tx", "url": "http://example.org/tx", "version": "1", "name": "Tx",
         "status": "active", "content": "complete", "concept": [{"code": "a", "display": "Alpha"}]}


@pytest.mark.parametrize("base", ["/r4", "/r5"])
def test_lookup_in_a_code_system_sent_as_tx_resource(app, base):
    client = app.test_client()
    compiled_before = cache_stats(app)["tx-resources"].misses
    body = parameters(param("system", valueUri=TX_CS["url"]), param("code", valueCode="a"),
                      param("tx-resource", resource=TX_CS))
    for _ in range(3):
        answer = ok_json(client.post(f"{base}/CodeSystem/$lookup", json=body), base[1:].upper())
        assert answer["parameter"][:4] == [param("name", valueString="Tx"), param("version", valueString="1"),
                                           param("display", valueString="Alpha"), param("code", valueCode="a")]
    assert cache_stats(app)["tx-resources"].misses - compiled_before == 1  # compiled once, then taken from the cache
    # the overlay is per request: without the tx-resource the code system is unknown
    assert_outcome(client.get(lookup_url(base, system=TX_CS["url"], code="a")), 404, "not-found",
                   message_id="UNKNOWN_CODESYSTEM_LOOKUP")


def test_an_invalid_tx_resource_is_refused(client):
    broken = {**TX_CS, "concept": "not a list"}
    assert_outcome(client.post("/r5/CodeSystem/$lookup", json=parameters(
        param("system", valueUri=CPT), param("code", valueCode="97116"),
        param("tx-resource", resource=broken))), 422, "invalid",
        text="tx-resource[0]: CodeSystem/tx is not valid FHIR R5: concept: Input should be a valid list",
        message_id="CONTENT_INVALID")


def test_a_tx_resource_missing_only_required_elements_is_used(client):
    """Lenient, as the reference server is: the request may not even need the gap (status here)."""
    without_status = {k: v for k, v in TX_CS.items() if k != "status"}
    body = ok_json(client.post("/r5/CodeSystem/$lookup", json=parameters(
        param("system", valueUri=TX_CS["url"]), param("code", valueCode="a"),
        param("tx-resource", resource=without_status))), "R5")
    assert param("display", valueString="Alpha") in body["parameter"]
