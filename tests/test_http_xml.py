"""FHIR XML over real HTTP (`fhir-plugin serve`, as `make serve` runs it), R4 and R5: every kind of
answer asked for in XML and read back by an independent reader (tests/fhir_xml.py: lxml and the
FHIR rules, no schema) is exactly the JSON answer; fhir.resources reads the XML too; the elements
come in the order of the models; XML request bodies get the answers of the same bodies in JSON;
content negotiation by Accept and `_format`; XML and JSON answers never mixed in the answer cache.
The hostile XML is in test_attack_xml.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from fhir_xml import from_json, from_xml, parse
from helpers import CM_URL, CPT, CPT_VS, ICD, ICD_VS, MESSAGE_ID_URL, model_class
from live_server import running_server

from fhir_plugin.fhirversions import FhirVersion
from fhir_plugin.render.xml_schema import children

FHIR_JSON, FHIR_XML = "application/fhir+json", "application/fhir+xml"
XML_ANSWER = "application/fhir+xml; charset=utf-8"  # werkzeug names the charset of every XML type
XML_NS = "{http://hl7.org/fhir}"
VERSIONS = ["r4", "r5"]


@pytest.fixture(scope="module")
def server(service, content_cache_dir, tmp_path_factory):
    """A server that reads the compiled content the session's `service` wrote (as test_attack_depth)."""
    home = tmp_path_factory.mktemp("xdg-cache")
    (home / "fhir_plugin").symlink_to(content_cache_dir, target_is_directory=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(home))
        with running_server() as live:
            patch.undo()
            yield live


def parameters(*items: dict) -> dict:
    return {"resourceType": "Parameters", "parameter": list(items)}


def validation(code: str) -> dict:
    return {"name": "validation", "resource": parameters({"name": "coding", "valueCoding": {"system": ICD, "code": code}})}


BATCH = parameters({"name": "url", "valueUri": ICD_VS}, validation("R26.2"), validation("M62.81"), validation("A00"),
                   {"name": "validation", "resource": parameters()})
EXPAND_INLINE = parameters(
    {"name": "valueSet", "resource": {"resourceType": "ValueSet", "status": "active", "compose": {"include": [
        {"system": ICD, "filter": [{"property": "concept", "op": "is-a", "value": "M62.8"}]}]}}},
    {"name": "count", "valueInteger": 5})

# (name, method, path under the endpoint, JSON body or None, status): one of every kind of answer
ANSWERS = [
    ("lookup", "GET", f"CodeSystem/$lookup?system={CPT}&code=97116", None, 200),
    ("lookup ICD-10-CM", "GET", f"CodeSystem/$lookup?system={ICD}&code=M62.81&property=parent", None, 200),
    ("lookup instance", "GET", "CodeSystem/cpt-97116-fragment/$lookup?code=97116", None, 200),
    ("translate forward", "GET", f"ConceptMap/$translate?url={CM_URL}&sourceSystem={CPT}&sourceCode=97116", None, 200),
    ("translate reverse", "GET", f"ConceptMap/$translate?targetSystem={ICD}&targetCode=R26.2", None, 200),
    ("translate R4 names", "GET", f"ConceptMap/$translate?system={CPT}&code=97116&targetsystem={ICD}", None, 200),
    ("translate no match", "GET", f"ConceptMap/$translate?sourceSystem={CPT}&sourceCode=97110", None, 200),
    ("validate-code CodeSystem", "GET", f"CodeSystem/$validate-code?url={CPT}&code=97116", None, 200),
    ("validate-code CodeSystem wrong display", "GET",
     f"CodeSystem/$validate-code?url={CPT}&code=97116&display=Walking", None, 200),
    ("validate-code ValueSet", "GET", f"ValueSet/$validate-code?url={ICD_VS}&system={ICD}&code=R26.2", None, 200),
    ("validate-code ValueSet not in it", "GET", f"ValueSet/$validate-code?url={ICD_VS}&system={ICD}&code=A00", None,
     200),
    ("batch-validate-code", "POST", "ValueSet/$batch-validate-code", BATCH, 200),
    ("expand", "GET", f"ValueSet/$expand?url={ICD_VS}", None, 200),
    ("expand CPT with designations", "GET", f"ValueSet/$expand?url={CPT_VS}&includeDesignations=true", None, 200),
    ("expand inline, paged", "POST", "ValueSet/$expand", EXPAND_INLINE, 200),
    ("subsumes", "GET", f"CodeSystem/$subsumes?system={ICD}&codeA=M62&codeB=M62.81", None, 200),
    ("read CodeSystem", "GET", "CodeSystem/cpt-97116-fragment", None, 200),
    ("read CodeSystem designation-use", "GET", "CodeSystem/designation-use", None, 200),
    ("read ValueSet CPT", "GET", "ValueSet/cpt-gait-training", None, 200),
    ("read ValueSet ICD", "GET", "ValueSet/icd-10-cm-gait-training-diagnoses", None, 200),
    ("read ConceptMap", "GET", "ConceptMap/cpt-97116-to-icd-10-cm", None, 200),
    ("search CodeSystem", "GET", "CodeSystem", None, 200),
    ("search ValueSet by url", "GET", f"ValueSet?url={ICD_VS}", None, 200),
    ("search ConceptMap", "GET", "ConceptMap", None, 200),
    ("metadata", "GET", "metadata", None, 200),
    ("metadata terminology", "GET", "metadata?mode=terminology", None, 200),
    ("versions", "GET", "$versions", None, 200),
    # errors: every status the app answers
    ("400 no code", "GET", f"CodeSystem/$lookup?system={CPT}", None, 400),
    ("400 bad body", "POST", "CodeSystem/$lookup", {"resourceType": "Patient"}, 400),
    ("404 unknown code system", "GET", "CodeSystem/$lookup?system=http://example.org/cs&code=1", None, 404),
    ("404 unknown resource", "GET", "ValueSet/nope", None, 404),
    ("404 no such path", "GET", "Patient/1", None, 404),
    ("405", "DELETE", "CodeSystem/$lookup", None, 405),
    ("422 invalid inline ConceptMap", "POST", "ConceptMap/$translate", parameters(
        {"name": "sourceCode", "valueCode": "1"}, {"name": "sourceSystem", "valueUri": "http://loinc.org"},
        {"name": "conceptMap", "resource": {"resourceType": "ConceptMap", "status": "bogus"}}), 422),
]


def ask(server, version: str, method: str, path: str, body: dict | None, accept: str, **kwargs: Any):
    headers = {"Accept": accept, **kwargs.pop("headers", {})}
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body), FHIR_JSON
    return requests.request(method, f"{server.url}/{version}/{path}", data=data, headers=headers, timeout=60, **kwargs)


def steady(form: Any) -> Any:
    """The canonical form without what changes from one request to the next (an expansion's
    identifier and timestamp)."""
    if isinstance(form, dict):
        return {k: ("*" if k in ("identifier", "timestamp") and (isinstance(v, str) or isinstance(v, list) and len(v) == 1
                    and isinstance(v[0], dict) and set(v[0]) == {"@value"}) else steady(v)) for k, v in form.items()}
    if isinstance(form, list):
        return [steady(item) for item in form]
    return form


def check_order(element, type_name: str, version: FhirVersion) -> int:
    """Every element's children come in the order of its type's definition (the models'); returns
    how many elements were checked."""
    schema = children(version, type_name)
    places = []
    checked = 1
    for child in element:
        if child.tag == "{http://www.w3.org/1999/xhtml}div":
            checked += 1
            continue
        name = child.tag.split("}", 1)[1]
        assert name in schema, (type_name, name)
        places.append(schema[name].order)
        kind, child_type = schema[name].kind, schema[name].type
        if kind == "complex":
            checked += check_order(child, child_type, version)
        elif kind == "resource":
            inner = child[0]
            checked += 1 + check_order(inner, inner.tag.split("}", 1)[1], version)
        else:
            checked += 1
            for extension in child:
                checked += check_order(extension, "Extension", version)
    assert places == sorted(places), (type_name, [c.tag.split("}", 1)[1] for c in element])
    return checked


def fhir_elements(root) -> int:
    """How many elements the document has, outside the narratives."""
    return sum(1 for e in root.iter() if not any(a.tag == "{http://www.w3.org/1999/xhtml}div"
                                                  for a in e.iterancestors()))


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name, method, path, body, status", ANSWERS, ids=[a[0] for a in ANSWERS])
def test_every_answer_in_xml_is_the_json_answer(server, version, name, method, path, body, status):
    as_json = ask(server, version, method, path, body, FHIR_JSON)
    as_xml = ask(server, version, method, path, body, FHIR_XML)
    assert (as_json.status_code, as_xml.status_code) == (status, status), as_xml.text[:500]
    assert as_json.headers["Content-Type"] == FHIR_JSON
    assert as_xml.headers["Content-Type"] == XML_ANSWER
    document = as_json.json()
    assert as_xml.content.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n<" + document["resourceType"].encode()
                                     + b' xmlns="http://hl7.org/fhir">')
    assert steady(from_xml(as_xml.content)) == steady(from_json(document))
    fhir_version = FhirVersion(version.upper())
    root = parse(as_xml.content)
    assert check_order(root, document["resourceType"], fhir_version) == fhir_elements(root)
    # a third reader: fhir.resources reads the XML into what it reads the JSON into
    model = model_class(document["resourceType"], fhir_version)
    read = model.model_validate_xml(as_xml.content).model_dump(mode="json")
    assert steady(read) == steady(model.model_validate(document).model_dump(mode="json"))


def test_the_error_statuses_of_the_answers_are_all_there():
    assert {a[4] for a in ANSWERS} == {200, 400, 404, 405, 422}


def test_the_xml_of_a_lookup_is_fhir_xml(server):
    """The exact XML of one answer, as the README shows it."""
    answer = ask(server, "r4", "GET", f"CodeSystem/$lookup?system={CPT}&code=97116&property=designation", None,
                 FHIR_XML, params={"_pretty": "true"})
    text = answer.text
    assert answer.status_code == 200
    assert text.startswith("<?xml version='1.0' encoding='UTF-8'?>\n<Parameters xmlns=\"http://hl7.org/fhir\">\n"
                           "  <parameter>\n    <name value=\"name\"/>\n    <valueString value=\"CPT\"/>\n"
                           "  </parameter>\n"), text[:400]
    assert ("  <parameter>\n    <name value=\"designation\"/>\n    <part>\n      <name value=\"language\"/>\n"
            "      <valueCode value=\"en\"/>\n    </part>\n") in text
    assert "<valueString value=\"Gait Training\"/>" in text


# --- errors the app answers before any view, in the negotiated format ----------------------------

def test_a_413_is_xml(server):
    """A body one byte over FHIR_PLUGIN_MAX_REQUEST_BYTES passes nginx (which refuses only beyond
    it) and is refused by the app, in the format asked for."""
    body = b"<Parameters xmlns=\"http://hl7.org/fhir\"/>" + b" " * (1_048_577 - 41)
    answer = requests.post(f"{server.r4}/CodeSystem/$lookup", data=body, timeout=60,
                           headers={"Content-Type": FHIR_XML, "Accept": FHIR_XML})
    assert answer.status_code == 413
    assert_xml_outcome(answer, "too-long", "BODY_TOO_LARGE",
                       "The request body is larger than the 1048576 bytes this server accepts")


def assert_xml_outcome(answer, code: str, message_id: str, text: str, content_type: str = FHIR_XML,
                       expression: str | None = None) -> None:
    assert answer.headers["Content-Type"].split(";")[0] == content_type, answer.headers
    issue = {"severity": [{"@value": "error"}], "code": [{"@value": code}], "details": [{"text": [{"@value": text}]}],
             "extension": [{"@url": MESSAGE_ID_URL, "valueString": [{"@value": message_id}]}]}
    if expression:
        issue["expression"] = [{"@value": expression}]
    assert from_xml(answer.content) == {"OperationOutcome": [{"issue": [issue]}]}


def test_a_415_is_xml(server):
    answer = requests.post(f"{server.r5}/CodeSystem/$lookup", data="code=97116", timeout=30,
                           headers={"Content-Type": "text/plain", "Accept": FHIR_XML})
    assert answer.status_code == 415
    assert_xml_outcome(answer, "not-supported", "UNSUPPORTED_MEDIA_TYPE",
                       "Content-Type 'text/plain' is not supported; send application/fhir+json, application/json, "
                       "application/fhir+xml, application/xml, text/xml or application/x-www-form-urlencoded")


def test_a_406_is_json_there_being_nothing_better(server):
    answer = requests.get(f"{server.r4}/metadata", headers={"Accept": "text/turtle"}, timeout=30)
    assert answer.status_code == 406
    assert answer.headers["Content-Type"] == FHIR_JSON
    assert answer.json()["issue"][0]["details"]["text"] == (
        "Cannot produce 'text/turtle': this server produces FHIR JSON (application/fhir+json, application/json) and "
        "FHIR XML (application/fhir+xml, application/xml, text/xml)")


def test_a_bad_format_is_answered_as_accept_asks(server):
    answer = requests.get(f"{server.r4}/metadata", params={"_format": "yaml"}, headers={"Accept": "text/xml"},
                          timeout=30)
    assert answer.status_code == 400
    assert_xml_outcome(answer, "invalid", "BAD_FORMAT", "Unsupported _format 'yaml': use json, application/json, "
                       "application/fhir+json, xml, application/xml, text/xml or application/fhir+xml",
                       content_type="text/xml", expression="_format")


def test_admin_outcomes_are_negotiated(server):
    answer = requests.get(f"{server.url}/admin/content", headers={"Accept": FHIR_XML}, timeout=30)
    assert answer.status_code == 403
    root = parse(answer.content)
    assert root.tag == XML_NS + "OperationOutcome"
    assert root.find(f"{XML_NS}issue/{XML_NS}extension/{XML_NS}valueString").get("value") == "ADMIN_DISABLED"


# --- content negotiation -------------------------------------------------------------------------

NEGOTIATION = [
    ({"_format": "xml"}, {}, XML_ANSWER),
    ({"_format": "application/fhir+xml"}, {}, XML_ANSWER),
    ({"_format": "application/xml"}, {}, "application/xml; charset=utf-8"),
    ({"_format": "text/xml"}, {}, "text/xml; charset=utf-8"),
    ({"_format": "xml"}, {"Accept": FHIR_JSON}, XML_ANSWER),  # _format wins
    ({"_format": "json"}, {"Accept": FHIR_XML}, FHIR_JSON),
    ({}, {"Accept": "application/xml"}, "application/xml; charset=utf-8"),
    ({}, {"Accept": "text/xml"}, "text/xml; charset=utf-8"),
    ({}, {"Accept": "application/fhir+xml; fhirVersion=4.0"}, XML_ANSWER),
    ({}, {"Accept": "application/fhir+json;q=0.5, application/fhir+xml"}, XML_ANSWER),
    ({}, {"Accept": "application/fhir+xml;q=0.5, application/fhir+json"}, FHIR_JSON),
    ({}, {"Accept": "application/fhir+xml, application/fhir+json"}, XML_ANSWER),  # equal weights: the first
    ({}, {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},  # a browser
     "application/xml; charset=utf-8"),
    ({}, {"Accept": "*/*"}, FHIR_JSON),
    ({}, {}, FHIR_JSON),
]


@pytest.mark.parametrize("query, headers, content_type", NEGOTIATION)
def test_negotiation(server, query, headers, content_type):
    answer = requests.get(f"{server.r4}/CodeSystem/$lookup", params={"system": CPT, "code": "97116", **query},
                          headers=headers, timeout=30)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == content_type
    if "xml" in content_type:
        assert parse(answer.content).tag == XML_NS + "Parameters"
    else:
        assert answer.json()["resourceType"] == "Parameters"


def test_xml_and_json_answers_are_never_mixed_in_the_answer_cache(server):
    """The same cached operation asked for in turn as JSON and XML, by Accept and by _format: each
    answer is in its own format, and the same bytes as the first time it was asked for."""
    url = f"{server.r5}/CodeSystem/$lookup?system={ICD}&code=R26.2"
    asks = [({}, {}), ({}, {"Accept": FHIR_XML}), ({"_format": "xml"}, {}), ({}, {"Accept": "text/xml"}),
            ({"_format": "json"}, {"Accept": FHIR_XML})]
    first: dict[int, bytes] = {}
    for _ in range(3):
        for index, (query, headers) in enumerate(asks):
            answer = requests.get(url, params=query, headers=headers, timeout=30)
            assert answer.status_code == 200
            expected = [FHIR_JSON, XML_ANSWER, XML_ANSWER, "text/xml; charset=utf-8", FHIR_JSON][index]
            assert answer.headers["Content-Type"] == expected
            assert first.setdefault(index, answer.content) == answer.content
    assert first[1] == first[2] == first[3]
    assert from_xml(first[1]) == from_json(json.loads(first[0]))


# --- XML requests ----------------------------------------------------------------------------------

TX_CS = {"resourceType": "CodeSystem", "url": "http://example.org/cs", "version": "1", "status": "active",
         "content": "complete", "caseSensitive": True,
         "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Two <b>codes</b></p></div>"},
         "property": [{"code": "weight", "type": "decimal"}],
         "concept": [{"code": "a", "display": "Alpha", "property": [{"code": "weight", "valueDecimal": 1.5}],
                      "designation": [{"language": "de", "value": "Alfa"}]},
                     {"code": "b", "display": "Beta", "_display": {"extension": [
                         {"url": "http://hl7.org/fhir/StructureDefinition/translation", "extension": [
                             {"url": "lang", "valueCode": "fr"}, {"url": "content", "valueString": "Bêta"}]}]}}]}
TX_VS = {"resourceType": "ValueSet", "url": "http://example.org/vs", "status": "active",
         "compose": {"include": [{"system": "http://example.org/cs"}]}}
R4_MAP = {"resourceType": "ConceptMap", "status": "active", "sourceUri": "http://example.org/vs",
          "group": [{"source": "http://example.org/cs", "target": ICD, "element": [
              {"code": "a", "target": [{"code": "R26.2", "equivalence": "wider"}]}]}]}

REQUESTS = [
    ("lookup", "CodeSystem/$lookup", parameters({"name": "system", "valueUri": CPT}, {"name": "code", "valueCode": "97116"},
                                                {"name": "property", "valueCode": "designation"})),
    ("lookup in a tx-resource", "CodeSystem/$lookup", parameters(
        {"name": "system", "valueUri": "http://example.org/cs"}, {"name": "code", "valueCode": "a"},
        {"name": "property", "valueCode": "weight"}, {"name": "tx-resource", "resource": TX_CS})),
    ("validate-code with tx-resources", "ValueSet/$validate-code", parameters(
        {"name": "url", "valueUri": "http://example.org/vs"},
        {"name": "coding", "valueCoding": {"system": "http://example.org/cs", "code": "b", "display": "Beta"}},
        {"name": "tx-resource", "resource": TX_CS}, {"name": "tx-resource", "resource": TX_VS})),
    ("validate-code, a wrong display", "CodeSystem/$validate-code", parameters(
        {"name": "url", "valueUri": CPT}, {"name": "code", "valueCode": "97116"},
        {"name": "display", "valueString": "Gait"})),
    ("translate with an inline R4 ConceptMap", "ConceptMap/$translate", parameters(
        {"name": "sourceCode", "valueCode": "a"}, {"name": "sourceSystem", "valueUri": "http://example.org/cs"},
        {"name": "conceptMap", "resource": R4_MAP})),
    ("expand an inline ValueSet", "ValueSet/$expand", EXPAND_INLINE),
    ("expand with tx-resources", "ValueSet/$expand", parameters(
        {"name": "url", "valueUri": "http://example.org/vs"}, {"name": "tx-resource", "resource": TX_CS},
        {"name": "tx-resource", "resource": TX_VS}, {"name": "includeDesignations", "valueBoolean": True})),
    ("batch-validate-code", "ValueSet/$batch-validate-code", BATCH),
    ("subsumes", "CodeSystem/$subsumes", parameters({"name": "system", "valueUri": ICD},
                                                    {"name": "codeA", "valueCode": "M62"},
                                                    {"name": "codeB", "valueCode": "M62.81"})),
    ("a bad parameter", "CodeSystem/$lookup", parameters({"name": "system", "valueUri": CPT},
                                                         {"name": "code", "valueBoolean": True})),
]


def as_xml(version: str, document: dict) -> bytes:
    """The request in XML (our writer; the independent reader checks that it holds the request)."""
    from fhir_plugin.render.xml_writer import dumps_xml

    xml = dumps_xml(document, FhirVersion(version.upper()))
    assert from_xml(xml) == from_json(document)
    check_order(parse(xml), document["resourceType"], FhirVersion(version.upper()))
    return xml


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name, path, body", REQUESTS, ids=[r[0] for r in REQUESTS])
def test_an_xml_request_gets_the_answer_of_the_json_request(server, version, name, path, body):
    xml = as_xml("r4" if "R4 ConceptMap" in name else version, body)  # an R4 ConceptMap is R4 XML, on /r5 too
    for accept in (FHIR_JSON, FHIR_XML):
        by_json = ask(server, version, "POST", path, body, accept)
        by_xml = requests.post(f"{server.url}/{version}/{path}", data=xml, timeout=60,
                               headers={"Content-Type": FHIR_XML, "Accept": accept})
        assert by_xml.status_code == by_json.status_code, by_xml.text[:600]
        assert by_xml.headers["Content-Type"] == (XML_ANSWER if accept == FHIR_XML else accept)
        if accept == FHIR_JSON:
            assert steady(by_xml.json()) == steady(by_json.json())
        else:
            assert steady(from_xml(by_xml.content)) == steady(from_xml(by_json.content))


@pytest.mark.parametrize("content_type", ["application/xml", "text/xml", "application/fhir+xml; charset=utf-8"])
def test_every_xml_media_type_is_read(server, content_type):
    body = (b'<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="system"/><valueUri value="'
            + CPT.encode() + b'"/></parameter><parameter><name value="code"/><valueCode value="97116"/></parameter>'
            b'</Parameters>')
    answer = requests.post(f"{server.r4}/CodeSystem/$lookup", data=body, headers={"Content-Type": content_type},
                           timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["parameter"][0] == {"name": "name", "valueString": "CPT"}

