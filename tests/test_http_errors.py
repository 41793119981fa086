"""Errors over HTTP: the status table of terminology/errors.py, row by row and endpoint family by
family, the exact OperationOutcome of every kind of bad request, and a loop of hostile inputs that
must never produce a 5xx."""

from __future__ import annotations

import io
import json
import re
import string
from urllib.parse import urlencode

import pytest
from helpers import (
    CM_URL,
    CPT,
    FHIR_JSON,
    ICD,
    assert_outcome,
    body_of,
    load_content,
    param,
    parameters,
    validate,
)

from fhir_plugin import TerminologyService, create_app, errors
from fhir_plugin.config import bundled_dir
from fhir_plugin.fhirversions import FhirVersion
from fhir_plugin.render.xml_reader import read_xml

# --- the table -------------------------------------------------------------------------------


def status_table() -> list[tuple[str, int, str, str]]:
    """(class, HTTP status, issue code, when) for each row of the module docstring's table."""
    rows = []
    for line in errors.__doc__.splitlines():
        found = re.match(r"^    ([A-Z][A-Za-z]+)\s+(\d{3})\s+([a-z-]+)\s+(.*)$", line)
        if found:
            rows.append((found[1], int(found[2]), found[3], found[4]))
    return rows


TABLE = status_table()
SERVER_ROWS = [row for row in TABLE if not row[3].startswith("(client only)")]


def test_the_table_is_parsed():
    assert [row[0] for row in SERVER_ROWS] == [
        "InvalidRequest", "InvalidContent", "Unauthorized", "Forbidden", "NotSupported", "NotFound",
        "MethodNotAllowed", "NotAcceptable", "RequestTooLarge", "UnsupportedMediaType", "LoadStoreUnavailable"]


@pytest.mark.parametrize("name, status, issue_code, when", TABLE, ids=[row[0] for row in TABLE])
def test_table_row_is_the_class(name, status, issue_code, when):
    cls = getattr(errors, name)
    assert issubclass(cls, errors.TerminologyError)
    assert (cls.status, cls.issue_code) == (status, issue_code)
    for message_id in cls.message_ids:
        assert message_id in errors.MESSAGES
        assert errors.error_class_for(message_id, 0) is cls
    some_id = sorted(cls.message_ids)[0]
    fields = {name for _, name, _, _ in string.Formatter().parse(errors.MESSAGES[some_id]) if name}
    error = cls(some_id, **dict.fromkeys(fields, "x"))
    outcome = errors.error_outcome(error)
    assert outcome["issue"][0]["code"] == issue_code
    assert outcome["issue"][0]["extension"][0]["valueString"] == some_id
    validate(outcome, "R4")
    validate(outcome, "R5")


def test_every_error_class_is_in_the_table_or_specialises_a_row():
    rows = {getattr(errors, row[0]) for row in TABLE}
    for cls in errors.ERROR_CLASSES:
        assert cls in rows or any(issubclass(cls, row) for row in rows), cls
        assert cls.status == next(row.status for row in rows if issubclass(cls, row))


def test_every_message_id_belongs_to_one_class():
    owners: dict[str, list[str]] = {}
    for cls in errors.ERROR_CLASSES:
        for message_id in cls.message_ids:
            owners.setdefault(message_id, []).append(cls.__name__)
    assert {k: v for k, v in owners.items() if len(v) > 1} == {}
    answers = {"TRANSLATE_NO_MAP", "TRANSLATE_NOT_FOUND", "TRANSLATE_PAIR_NOT_MAPPED"}  # result=false messages
    answers |= errors.ANSWER_IDS
    assert set(errors.MESSAGES) - set(owners) == answers


# --- apps ----------------------------------------------------------------------------------------

SUPPLEMENT = {
    "resourceType": "CodeSystem", "id": "cpt-supplement", "url": "http://example.org/fhir/CodeSystem/cpt-supplement",
    "version": "1", "status": "active", "content": "supplement", "supplements": f"{CPT}|2026",
    "concept": [{"code": "97116", "designation": [{"language": "de", "value": "Gangtraining"}]}],
}


@pytest.fixture(scope="module")
def supplement_service(tmp_path_factory) -> TerminologyService:
    folder = tmp_path_factory.mktemp("supplement")
    (folder / "supplement.json").write_text(json.dumps(SUPPLEMENT), encoding="utf-8")
    # the CPT part of the bundled content: ICD-10-CM plays no part here
    return load_content([bundled_dir("resources") / "CodeSystem-cpt-97116-fragment.json",
                         bundled_dir("resources") / "CodeSystem-designation-use.json", folder])


@pytest.fixture
def small_client(service):
    return create_app({"FHIR_PLUGIN_MAX_REQUEST_BYTES": 1000}, service=service).test_client()


@pytest.fixture
def supplement_client(supplement_service):
    return create_app(service=supplement_service).test_client()


@pytest.fixture
def admin_client(service, tmp_path):
    settings = {"FHIR_PLUGIN_ADMIN_TOKEN": "t0ken", "FHIR_PLUGIN_LOAD_DIR": str(tmp_path / "loaded")}
    return create_app(settings, service=service).test_client()


@pytest.fixture
def database_client(service):
    """Loads kept in a database that cannot be reached (nothing listens on port 1)."""
    settings = {"FHIR_PLUGIN_ADMIN_TOKEN": "t0ken", "FHIR_PLUGIN_LOAD_POLL": 60,
                "FHIR_PLUGIN_LOAD_DATABASE": "host=127.0.0.1 port=1 dbname=loads user=fhir connect_timeout=2"}
    app = create_app(settings, service=service)
    yield app.test_client()
    app.extensions["fhir_plugin"].runtime.store.close()


# --- each row, each endpoint family ----------------------------------------------------------

LOOKUP = f"/r4/CodeSystem/$lookup?system={CPT}&code=97116"
VS_URL = "http://fhir-plugin.org/fhir/ValueSet/cpt-gait-training"
LOOKUP_INSTANCE = "/r4/CodeSystem/cpt-97116-fragment/$lookup?code=97116"
TRANSLATE = f"/r4/ConceptMap/$translate?code=97116&system={CPT}"
TRANSLATE_INSTANCE = f"/r5/ConceptMap/cpt-97116-to-icd-10-cm/$translate?sourceCode=97116&sourceSystem={CPT}"
SEARCH = "/r4/CodeSystem"
READ = "/r5/ConceptMap/cpt-97116-to-icd-10-cm"
METADATA = "/r4/metadata"
FAMILY_URLS = {"lookup": LOOKUP, "lookup-instance": LOOKUP_INSTANCE, "translate": TRANSLATE,
               "translate-instance": TRANSLATE_INSTANCE, "search": SEARCH, "read": READ, "metadata": METADATA,
               "versions": "/r5/$versions"}
OPERATIONS = ("lookup", "lookup-instance", "translate", "translate-instance")
NO_CODE = "Must provide either coding parameter, or system and code parameters"
NO_SOURCE = ("One (and only one) of code, coding, codeableConcept (R4) or sourceCode, sourceCoding, "
             "sourceCodeableConcept, targetCode, targetCoding, targetCodeableConcept (R5) must be provided")
NOT_ACCEPTABLE = ("Cannot produce '{0}': this server produces FHIR JSON (application/fhir+json, application/json) and "
                  "FHIR XML (application/fhir+xml, application/xml, text/xml)")
BAD_FORMAT = ("Unsupported _format '{0}': use json, application/json, application/fhir+json, xml, application/xml, "
              "text/xml or application/fhir+xml")
TOO_LARGE = "The request body is larger than the 1000 bytes this server accepts"
BIG = json.dumps(parameters(param("system", valueUri=CPT), param("code", valueCode="97116"),
                            param("padding", valueString="x" * 2000)))


def unsupported_type(content_type: str) -> str:
    return (f"Content-Type '{content_type}' is not supported; send application/fhir+json, application/json, "
            "application/fhir+xml, application/xml, text/xml or application/x-www-form-urlencoded")


def case(row, family, method, url, text, message_id, client="client", **kwargs):
    return pytest.param(row, method, url, kwargs, text, message_id, client, id=f"{row}-{family}-{method}")


ROW_CASES = [
    # InvalidRequest
    case("InvalidRequest", "lookup", "GET", f"/r4/CodeSystem/$lookup?system={CPT}", NO_CODE, "LOOKUP_NO_CODE"),
    case("InvalidRequest", "lookup-instance", "GET", "/r5/CodeSystem/cpt-97116-fragment/$lookup", NO_CODE,
         "LOOKUP_NO_CODE"),
    case("InvalidRequest", "translate", "GET", "/r4/ConceptMap/$translate", NO_SOURCE, "TRANSLATE_NO_SOURCE"),
    case("InvalidRequest", "translate-instance", "POST", "/r5/ConceptMap/cpt-97116-to-icd-10-cm/$translate",
         NO_SOURCE, "TRANSLATE_NO_SOURCE", json=parameters()),
    case("InvalidRequest", "search", "GET", "/r4/CodeSystem?_summary=true&_summary=text",
         "Parameter '_summary' may be given at most once", "PARAM_REPEATED"),
    case("InvalidRequest", "search", "GET", "/r4/CodeSystem?_count=-1",
         "Parameter '_count' must be a whole number, 0 or more, not '-1'", "PAGE_BAD_VALUE"),
    case("InvalidRequest", "read", "GET", f"{READ}?_summary=count",
         "_summary=count asks for the number of matches of a search; a read has none", "SUMMARY_COUNT_ON_READ"),
    case("InvalidRequest", "read", "GET", f"{READ}?_format=yaml",
         BAD_FORMAT.format("yaml"), "BAD_FORMAT"),
    case("InvalidRequest", "metadata", "GET", f"{METADATA}?_format=bogus",
         BAD_FORMAT.format("bogus"), "BAD_FORMAT"),
    # InvalidContent
    case("InvalidContent", "translate", "POST", "/r4/ConceptMap/$translate",
         "parameter 'conceptMap': ConceptMap/x is not valid FHIR R4: group.0.element.0.target.0.equivalence: Value "
         "for the field 'equivalence' is required.", "CONTENT_INVALID",
         json=parameters(param("code", valueCode="1"), param("system", valueUri="http://loinc.org"), param(
             "conceptMap", resource={"resourceType": "ConceptMap", "id": "x", "status": "draft",
                                     "sourceUri": "http://example.org/vs",
                                     "group": [{"element": [{"code": "1", "target": [{"code": "2"}]}]}]}))),
    case("InvalidContent", "admin", "POST", "/admin/content?name=x.json",
         "x.json: not valid JSON: Expecting value: line 1 column 1 (char 0)", "CONTENT_NOT_JSON",
         client="admin_client", data="nonsense", headers={"Authorization": "Bearer t0ken"}),
    *(case("LoadStoreUnavailable", "admin", method, path,
           "The database of content loaded at run time (host=127.0.0.1 port=1 dbname=loads user=fhir) cannot be "
           "reached: nothing was loaded or unloaded, and this server keeps serving what it has; try again once the "
           "database is back (the server log says why it cannot be reached)", "LOAD_DATABASE_UNREACHABLE",
           client="database_client", data='{"resourceType": "Bundle", "type": "collection"}',
           headers={"Authorization": "Bearer t0ken"})
      for method, path in (("POST", "/admin/content?name=x.json"), ("DELETE", "/admin/content/x.json"))),
    # Unauthorized, Forbidden: the admin endpoints, with a token set and (the default) without
    *(case("Unauthorized", "admin", method, "/admin/content",
           "This admin endpoint needs the header 'Authorization: Bearer <FHIR_PLUGIN_ADMIN_TOKEN>'",
           "ADMIN_UNAUTHORIZED", client="admin_client", headers=headers)
      for method, headers in (("GET", {}), ("POST", {"Authorization": "Bearer wrong"}))),
    *(case("Forbidden", "admin", method, path,
           "Loading content into this server over HTTP is disabled: start it with FHIR_PLUGIN_ADMIN_TOKEN set to "
           "enable the admin endpoints", "ADMIN_DISABLED", headers={"Authorization": "Bearer t0ken"})
      for method, path in (("GET", "/admin/content"), ("POST", "/admin/content"), ("DELETE", "/admin/content/x.json"))),
    # NotSupported
    # (useSupplement on $lookup is applied now; expansion in a context is what remains unsupported)
    case("NotSupported", "expand", "GET", f"/r4/ValueSet/$expand?url={VS_URL}&context=Patient.gender",
         "Parameter 'context' is not supported by this server: expansion in a context is not supported",
         "PARAM_NOT_SUPPORTED"),
    case("NotSupported", "expand", "POST", "/r5/ValueSet/$expand",
         "Parameter 'contextDirection' is not supported by this server: expansion in a context is not supported",
         "PARAM_NOT_SUPPORTED",
         json=parameters(param("url", valueUri=VS_URL), param("contextDirection", valueCode="incoming"))),
    # NotFound
    case("NotFound", "lookup", "GET", "/r4/CodeSystem/$lookup?system=http://example.org/cs&code=1",
         "A definition for CodeSystem 'http://example.org/cs' could not be found, so the code cannot be looked up",
         "UNKNOWN_CODESYSTEM_LOOKUP"),
    case("NotFound", "lookup-instance", "GET", "/r4/CodeSystem/nope/$lookup?code=1", "CodeSystem/nope not found",
         "RESOURCE_NOT_FOUND"),
    case("NotFound", "translate", "GET", f"{TRANSLATE}&url=http://example.org/cm",
         "Unable to find ConceptMap 'http://example.org/cm'", "UNKNOWN_CONCEPTMAP"),
    case("NotFound", "translate-instance", "GET", "/r5/ConceptMap/nope/$translate?sourceCode=1&sourceSystem=x",
         "ConceptMap/nope not found", "RESOURCE_NOT_FOUND"),
    case("NotFound", "read", "GET", "/r4/ValueSet/nope", "ValueSet/nope not found", "RESOURCE_NOT_FOUND"),
    case("NotFound", "path", "GET", "/r4/Patient/1", "There is no FHIR endpoint at /r4/Patient/1", "NO_SUCH_PATH"),
    case("NotFound", "path", "GET", "/r5/", "/r5 is the base of a FHIR R5 endpoint, not something to read: its "
         "CapabilityStatement is GET /r5/metadata, and a batch or transaction Bundle is POSTed here", "BASE_NOT_READABLE"),
    # MethodNotAllowed, NotAcceptable: every family
    *(case("MethodNotAllowed", family, "DELETE", url, f"Method DELETE is not allowed on {url.split('?')[0]}",
           "METHOD_NOT_ALLOWED") for family, url in FAMILY_URLS.items()),
    case("MethodNotAllowed", "read", "PUT", READ, f"Method PUT is not allowed on {READ}", "METHOD_NOT_ALLOWED",
         json={"resourceType": "ConceptMap"}),
    case("MethodNotAllowed", "search", "POST", SEARCH, f"Method POST is not allowed on {SEARCH}", "METHOD_NOT_ALLOWED"),
    case("MethodNotAllowed", "metadata", "PATCH", METADATA, f"Method PATCH is not allowed on {METADATA}",
         "METHOD_NOT_ALLOWED"),
    *(case("NotAcceptable", family, "GET", url, NOT_ACCEPTABLE.format("text/turtle"), "NOT_ACCEPTABLE",
           headers={"Accept": "text/turtle"}) for family, url in FAMILY_URLS.items()),
    *(case("NotAcceptable", family, "GET", f"{url}{'&' if '?' in url else '?'}_format=ttl",
           NOT_ACCEPTABLE.format("ttl"), "NOT_ACCEPTABLE") for family, url in FAMILY_URLS.items()),
    case("NotAcceptable", "lookup", "POST", "/r4/CodeSystem/$lookup", NOT_ACCEPTABLE.format("text/html"),
         "NOT_ACCEPTABLE", headers={"Accept": "text/html"},
         json=parameters(param("system", valueUri=CPT), param("code", valueCode="97116"))),
    # RequestTooLarge, UnsupportedMediaType: the operations (the only routes that read a body)
    *(case("RequestTooLarge", family, "POST", FAMILY_URLS[family].split("?")[0], TOO_LARGE, "BODY_TOO_LARGE",
           client="small_client", data=BIG, content_type=FHIR_JSON) for family in OPERATIONS),
    case("RequestTooLarge", "lookup", "POST", "/r4/CodeSystem/$lookup", TOO_LARGE, "BODY_TOO_LARGE",
         client="small_client", data="code=" + "9" * 2000, content_type="application/x-www-form-urlencoded"),
    *(case("UnsupportedMediaType", family, "POST", FAMILY_URLS[family].split("?")[0],
           unsupported_type("application/yaml"), "UNSUPPORTED_MEDIA_TYPE",
           data="resourceType: Parameters", content_type="application/yaml")
      for family in OPERATIONS),
    case("UnsupportedMediaType", "lookup", "POST", "/r4/CodeSystem/$lookup", unsupported_type("text/plain"),
         "UNSUPPORTED_MEDIA_TYPE", data="code=97116", content_type="text/plain"),
]


@pytest.mark.parametrize("row, method, url, kwargs, text, message_id, client_name", ROW_CASES)
def test_status_table_over_http(request, row, method, url, kwargs, text, message_id, client_name):
    _, status, issue_code, _ = next(r for r in TABLE if r[0] == row)
    client = request.getfixturevalue(client_name)
    response = client.open(url, method=method, **kwargs)
    assert_outcome(response, status, issue_code, text=text, message_id=message_id)
    assert issubclass(errors.error_class_for(message_id, status), getattr(errors, row))
    validate(body_of(response), "R4")


def test_every_server_row_has_http_cases():
    covered = {c.values[0] for c in ROW_CASES}
    assert covered == {row[0] for row in SERVER_ROWS}


# --- the request errors, one by one ----------------------------------------------------------


def post_json(client, url: str, body, content_type: str = FHIR_JSON):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(url, data=data, content_type=content_type)


BAD_REQUESTS = [
    # missing
    pytest.param("GET", f"/r4/CodeSystem/$lookup?code=97116", None, 400, "invalid", "LOOKUP_NO_CODE", NO_CODE,
                 id="lookup code without system"),
    pytest.param("POST", "/r5/CodeSystem/$lookup", parameters(param("coding", valueCoding={"system": CPT})), 400,
                 "invalid", "LOOKUP_NO_CODE", NO_CODE, id="lookup coding without code"),
    pytest.param("GET", f"/r4/ConceptMap/$translate?system={CPT}", None, 400, "invalid", "TRANSLATE_NO_SOURCE",
                 NO_SOURCE, id="translate system only"),
    pytest.param("GET", "/r4/ConceptMap/$translate?code=97116", None, 400, "invalid", "PARAM_REQUIRES",
                 "Parameter 'code' requires parameter 'system'", id="translate code without system"),
    # contradictory
    pytest.param("POST", "/r4/CodeSystem/$lookup",
                 parameters(param("system", valueUri=ICD), param("coding", valueCoding={"system": CPT, "code": "97116"})),
                 400, "invalid", "PARAM_CONFLICT", f"Parameters 'system' and 'coding' disagree: '{ICD}' vs '{CPT}'",
                 id="lookup coding vs system"),
    pytest.param("GET", f"/r4/ConceptMap/$translate?code=R26.2&system={ICD}&reverse=true&targetCode=R26.2", None, 400,
                 "invalid", "TRANSLATE_REVERSE_WITH_TARGET",
                 "reverse=true cannot be combined with targetCode, targetCoding or targetCodeableConcept: name the "
                 "target concept with those parameters instead of reverse", id="translate reverse with target"),
    pytest.param("GET", f"/r4/ConceptMap/$translate?code=97116&sourceCode=97116&system={CPT}", None, 400, "invalid",
                 "PARAM_EXCLUSIVE", "Only one of 'code' and 'sourceCode' may be given", id="translate R4 and R5 name"),
    # repeated
    pytest.param("GET", f"/r4/CodeSystem/$lookup?system={CPT}&code=97116&code=97116", None, 400, "invalid",
                 "PARAM_REPEATED", "Parameter 'code' may be given at most once", id="lookup code twice in the query"),
    pytest.param("POST", "/r4/ConceptMap/$translate",
                 parameters(param("code", valueCode="97116"), param("system", valueUri=CPT),
                            param("system", valueUri=CPT)),
                 400, "invalid", "PARAM_REPEATED", "Parameter 'system' may be given at most once",
                 id="translate system twice in the body"),
    pytest.param("POST", f"/r4/CodeSystem/$lookup?code=97116",
                 parameters(param("system", valueUri=CPT), param("code", valueCode="97116")), 400, "invalid",
                 "PARAM_REPEATED", "Parameter 'code' may be given at most once", id="lookup code in query and body"),
    # wrong types
    pytest.param("POST", "/r4/CodeSystem/$lookup", parameters(param("coding", valueString=f"{CPT}|97116")), 400,
                 "invalid", "PARAM_BAD_TYPE", "Parameter 'coding' must be given as a Coding", id="coding as a string"),
    pytest.param("POST", "/r4/CodeSystem/$lookup", parameters(param("coding", valueCoding={"system": CPT, "code": 97116})),
                 400, "invalid", "PARAM_BAD_TYPE",
                 "Parameter 'coding' must be given as a Coding (system, code, version, display strings)",
                 id="coding with a number"),
    pytest.param("GET", "/r4/CodeSystem/$lookup?coding=97116", None, 400, "invalid", "PARAM_BAD_TYPE",
                 "Parameter 'coding' must be given as a Coding", id="coding in the query without system"),
    pytest.param("POST", "/r4/ConceptMap/$translate",
                 parameters(param("codeableConcept", valueCodeableConcept={"text": "gait training"})), 400, "invalid",
                 "PARAM_BAD_TYPE", "Parameter 'codeableConcept' must be given as a CodeableConcept with at least one "
                 "coding", id="codeableConcept without coding"),
    pytest.param("POST", "/r5/ConceptMap/$translate",
                 parameters(param("sourceCodeableConcept", valueCoding={"system": CPT, "code": "97116"})), 400,
                 "invalid", "PARAM_BAD_TYPE", "Parameter 'sourceCodeableConcept' must be given as a CodeableConcept "
                 "with at least one coding", id="sourceCodeableConcept as a Coding"),
    pytest.param("GET", f"/r4/ConceptMap/$translate?code=R26.2&system={ICD}&reverse=yes", None, 400, "invalid",
                 "PARAM_BAD_VALUE", "Parameter 'reverse' has an invalid boolean value: 'yes'", id="reverse=yes"),
    pytest.param("POST", "/r4/ConceptMap/$translate",
                 parameters(param("code", valueCode="R26.2"), param("system", valueUri=ICD),
                            param("reverse", valueBoolean="yes")),
                 400, "invalid", "PARAM_BAD_VALUE", "Parameter 'reverse' has an invalid boolean value: 'yes'",
                 id="valueBoolean yes"),
    pytest.param("POST", "/r4/CodeSystem/$lookup", parameters(param("code", valueCoding={"code": "97116"})), 400,
                 "invalid", "PARAM_BAD_TYPE", "Parameter 'code' must be given as a code", id="code as a Coding"),
    pytest.param("POST", "/r4/CodeSystem/$lookup", parameters(param("system", valueUri=CPT), param("code", valueCode=97116)),
                 400, "invalid", "PARAM_BAD_VALUE", "Parameter 'code' has an invalid code value: 97116",
                 id="code as a number"),
    pytest.param("GET", f"/r4/CodeSystem/$lookup?system={CPT}&code=97116&date=last-year", None, 400, "invalid",
                 "PARAM_BAD_VALUE", "Parameter 'date' has an invalid dateTime value: 'last-year'", id="date"),
    pytest.param("GET", "/r4/CodeSystem/$lookup?system=not%20a%20uri&code=97116", None, 400, "invalid",
                 "PARAM_BAD_VALUE", "Parameter 'system' has an invalid uri value: 'not a uri'", id="uri with spaces"),
    pytest.param("POST", "/r4/ConceptMap/$translate",
                 parameters(param("code", valueCode="1"), param("system", valueUri=CPT), param("conceptMap", valueString="x")),
                 400, "invalid", "PARAM_BAD_TYPE", "Parameter 'conceptMap' must be given as a resource",
                 id="conceptMap as a string"),
    # malformed bodies
    pytest.param("POST", "/r4/CodeSystem/$lookup", b"{", 400, "invalid", "BODY_NOT_JSON",
                 "The request body is not valid JSON: Expecting property name enclosed in double quotes: line 1 "
                 "column 2 (char 1)", id="malformed JSON"),
    pytest.param("POST", "/r4/CodeSystem/$lookup", {"resourceType": "Patient", "id": "p"}, 400, "invalid",
                 "BODY_NOT_PARAMETERS", "The request body must be a FHIR Parameters resource, not Patient",
                 id="a Patient"),
    pytest.param("POST", "/r4/ConceptMap/$translate", [parameters()], 400, "invalid", "BODY_NOT_PARAMETERS",
                 "The request body must be a FHIR Parameters resource, not list", id="a JSON array"),
    pytest.param("POST", "/r4/ConceptMap/$translate", {"parameter": []}, 400, "invalid", "BODY_NOT_PARAMETERS",
                 "The request body must be a FHIR Parameters resource, not a JSON object without resourceType",
                 id="no resourceType"),
    pytest.param("POST", "/r4/CodeSystem/$lookup", {"resourceType": "Parameters", "parameter": {"name": "code"}}, 400,
                 "invalid", "BODY_BAD_PARAMETERS", "The Parameters resource is malformed: 'parameter' must be an array",
                 id="parameter is not a list"),
    pytest.param("POST", "/r4/CodeSystem/$lookup", parameters({"valueCode": "97116"}), 400, "invalid",
                 "BODY_BAD_PARAMETERS", "The Parameters resource is malformed: parameter[0] has no name",
                 id="entry without name"),
    pytest.param("POST", "/r4/CodeSystem/$lookup", parameters(param("system", valueUri=CPT), "code"), 400, "invalid",
                 "BODY_BAD_PARAMETERS", "The Parameters resource is malformed: parameter[1] has no name",
                 id="entry that is a string"),
    pytest.param("POST", "/r4/CodeSystem/$lookup", parameters(param("code", valueCode="97116", valueString="97116")),
                 400, "invalid", "BODY_BAD_PARAMETERS", "The Parameters resource is malformed: parameter[0] ('code') "
                 "must have exactly one value[x], resource or part", id="two value[x]"),
    pytest.param("POST", "/r4/CodeSystem/$lookup", parameters(param("code")), 400, "invalid", "BODY_BAD_PARAMETERS",
                 "The Parameters resource is malformed: parameter[0] ('code') must have exactly one value[x], resource "
                 "or part", id="no value[x]"),
    pytest.param("POST", "/r4/CodeSystem/$lookup", b"\xff\xfe{}", 400, "invalid", "BODY_NOT_JSON",
                 "The request body is not valid JSON: 'utf-8' codec can't decode byte 0xff in position 0: invalid "
                 "start byte", id="invalid UTF-8"),
    pytest.param("POST", "/r4/CodeSystem/$lookup", b"\x00", 400, "invalid", "BODY_NOT_JSON",
                 "The request body is not valid JSON: Expecting value: line 1 column 1 (char 0)", id="NUL byte"),
    # unknown things
    pytest.param("GET", "/r4/CodeSystem/$lookup?system=http://example.org/cs&code=1", None, 404, "not-found",
                 "UNKNOWN_CODESYSTEM_LOOKUP", "A definition for CodeSystem 'http://example.org/cs' could not be found, "
                 "so the code cannot be looked up", id="unknown system"),
    pytest.param("GET", f"/r5/CodeSystem/$lookup?system={ICD}&code=M62.99", None, 404, "not-found",
                 "LOOKUP_CODE_NOT_FOUND", f"Unable to find code 'M62.99' in {ICD} version 2026-04-01",
                 id="unknown code"),
    pytest.param("GET", f"/r4/CodeSystem/$lookup?system={ICD}&code=R26.2&version=2025", None, 404, "not-found",
                 "UNKNOWN_CODESYSTEM_VERSION_LOOKUP", f"A definition for CodeSystem '{ICD}' version '2025' could not "
                 "be found, so the code cannot be looked up. Valid versions: 2026-04-01", id="unknown version"),
    pytest.param("GET", f"/r4/ConceptMap/$translate?url={CM_URL}&conceptMapVersion=2&code=97116&system={CPT}", None,
                 404, "not-found", "UNKNOWN_CONCEPTMAP_VERSION",
                 f"Unable to find ConceptMap '{CM_URL}' version '2'. Valid versions: 1.0.0", id="unknown map version"),
    pytest.param("GET", "/r4/CodeSystem/nope", None, 404, "not-found", "RESOURCE_NOT_FOUND", "CodeSystem/nope not found",
                 id="unknown resource id"),
    pytest.param("GET", "/r4/nothing/here", None, 404, "not-found", "NO_SUCH_PATH",
                 "There is no FHIR endpoint at /r4/nothing/here", id="unknown path"),
    pytest.param("GET", "/r4/CodeSystem/cpt-97116-fragment/$expand", None, 404, "not-found", "NO_SUCH_PATH",
                 "There is no FHIR endpoint at /r4/CodeSystem/cpt-97116-fragment/$expand", id="unknown operation"),
    pytest.param("GET", "/r4/codesystem", None, 404, "not-found", "NO_SUCH_PATH_CASE",
                 "There is no FHIR endpoint at /r4/codesystem; paths are case-sensitive: did you mean /r4/CodeSystem?",
                 id="type names are case-sensitive"),
    # method, formats
    pytest.param("DELETE", "/r4/CodeSystem/$lookup", None, 405, "not-supported", "METHOD_NOT_ALLOWED",
                 "Method DELETE is not allowed on /r4/CodeSystem/$lookup", id="DELETE"),
    pytest.param("POST", "/r4/CodeSystem/$lookup", (b"<Parameters/>", "application/fhir+xml"), 400, "invalid",
                 "BODY_NOT_FHIR_XML", "The request body is not FHIR XML: <Parameters> is not a FHIR resource: FHIR XML "
                 "is in the namespace http://hl7.org/fhir", id="XML body outside the FHIR namespace"),
    pytest.param("POST", "/r4/CodeSystem/$lookup", (b"<Parameters xmlns=\"http://hl7.org/fhir\">",
                                                    "application/xml"), 400, "invalid", "BODY_NOT_XML",
                 "The request body is not well-formed XML: Premature end of data in tag Parameters line 1, line 1, "
                 "column 41", id="malformed XML body"),
    pytest.param("POST", "/r4/CodeSystem/$lookup", (b"<Coding xmlns=\"http://hl7.org/fhir\"/>", "text/xml"), 400,
                 "invalid", "BODY_NOT_FHIR_XML", "The request body is not FHIR XML: <Coding> is not a FHIR resource type",
                 id="XML body not a resource"),
    pytest.param("POST", "/r4/CodeSystem/$lookup", (b"<Bundle xmlns=\"http://hl7.org/fhir\"/>", "text/xml"), 400,
                 "invalid", "BODY_NOT_PARAMETERS", "The request body must be a FHIR Parameters resource, not Bundle",
                 id="XML body not a Parameters"),
    pytest.param("POST", "/r4/CodeSystem/$lookup", (b"code=97116", "multipart/form-data; boundary=x"), 415,
                 "not-supported", "UNSUPPORTED_MEDIA_TYPE", unsupported_type("multipart/form-data; boundary=x"),
                 id="multipart body"),
    pytest.param("POST", "/r4/CodeSystem/$lookup", (b"code=%FF", "application/x-www-form-urlencoded"), 400, "invalid",
                 "BODY_BAD_PARAMETERS", "The Parameters resource is malformed: the form body is not valid UTF-8 form "
                 "data", id="form with invalid UTF-8"),
    pytest.param("GET", f"/r4/CodeSystem/$lookup?system={CPT}&code=97116&_format=text/html", None, 406,
                 "not-supported", "NOT_ACCEPTABLE", NOT_ACCEPTABLE.format("text/html"), id="_format html"),
]


@pytest.mark.parametrize("method, url, body, status, issue_code, message_id, text", BAD_REQUESTS)
def test_bad_request(client, method, url, body, status, issue_code, message_id, text):
    if body is None:
        response = client.open(url, method=method)
    elif isinstance(body, tuple):
        response = client.open(url, method=method, data=body[0], content_type=body[1])
    else:
        response = post_json(client, url, body)
    assert_outcome(response, status, issue_code, text=text, message_id=message_id)


def test_request_body_too_large(small_client):
    response = small_client.post("/r4/CodeSystem/$lookup", data=BIG, content_type=FHIR_JSON)
    assert_outcome(response, 413, "too-long", text=TOO_LARGE, message_id="BODY_TOO_LARGE")


CHUNKED = {"headers": {"Transfer-Encoding": "chunked"}, "environ_overrides": {"wsgi.input_terminated": True}}


@pytest.mark.parametrize("content_type, filler", [(FHIR_JSON, b" "), ("application/x-www-form-urlencoded", b"&")])
def test_chunked_body_beyond_the_limit_is_refused_not_cut_off(small_client, content_type, filler):
    """Without Content-Length (chunked, as gunicorn passes it on) the body must still be refused
    beyond the limit. It used to be cut off silently at the limit and parsed: a form body then
    lost its last parameters."""
    if content_type == FHIR_JSON:
        body = json.dumps(parameters(param("system", valueUri=CPT), param("code", valueCode="97116"))).encode()
    else:
        body = urlencode({"system": CPT, "code": "97116"}).encode()
    body = body + filler * (999 - len(body)) + b"&property=work-rvu" if filler == b"&" else body + filler * 2000
    response = small_client.post("/r4/CodeSystem/$lookup", input_stream=io.BytesIO(body), content_type=content_type,
                                 **CHUNKED)
    assert_outcome(response, 413, "too-long", text=TOO_LARGE, message_id="BODY_TOO_LARGE")


def test_chunked_body_under_the_limit_is_read(small_client):
    body = json.dumps(parameters(param("system", valueUri=CPT), param("code", valueCode="97116"))).encode()
    response = small_client.post("/r4/CodeSystem/$lookup", input_stream=io.BytesIO(body), content_type=FHIR_JSON,
                                 **CHUNKED)
    assert response.status_code == 200
    assert body_of(response)["parameter"][0] == param("name", valueString="CPT")


def test_request_body_just_under_the_limit_is_read(small_client):
    body = json.dumps(parameters(param("system", valueUri=CPT), param("code", valueCode="97116")))
    body += " " * (1000 - len(body))
    assert small_client.post("/r4/CodeSystem/$lookup", data=body, content_type=FHIR_JSON).status_code == 200


TOO_DEEP = "The request body nests JSON arrays and objects deeper than the 100 levels this server accepts"


@pytest.mark.parametrize("nesting", [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000])
def test_deeply_nested_json_is_a_400(client, nesting):
    response = client.post("/r4/CodeSystem/$lookup", data=nesting, content_type=FHIR_JSON)
    assert_outcome(response, 400, "too-costly", text=TOO_DEEP, message_id="BODY_TOO_DEEP")


def test_deeply_nested_json_inside_a_parameter_value(client):
    value = b"[" * 100_000 + b"]" * 100_000
    data = b'{"resourceType":"Parameters","parameter":[{"name":"code","valueCode":' + value + b"}]}"
    response = client.post("/r4/CodeSystem/$lookup", data=data, content_type=FHIR_JSON)
    assert_outcome(response, 400, "too-costly", text=TOO_DEEP, message_id="BODY_TOO_DEEP")


def test_errors_follow_the_accepted_json_media_type(client):
    response = client.get("/r4/CodeSystem/nope", headers={"Accept": "application/json"})
    assert_outcome(response, 404, "not-found", message_id="RESOURCE_NOT_FOUND", content_type="application/json")


def test_error_outcome_is_pretty_when_asked(client):
    response = client.get("/r4/CodeSystem/nope?_pretty=true")
    assert response.get_data(as_text=True) == json.dumps(body_of(response), indent=2)


def test_unknown_path_outside_the_fhir_endpoints(client):
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.mimetype == FHIR_JSON
    outcome = body_of(response)
    assert outcome["issue"][0]["code"] == "not-found"
    validate(outcome, "R4")


def test_unexpected_exception_is_a_500_outcome_without_details(client, service, monkeypatch, caplog):
    def boom(request):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(service, "lookup", boom)
    response = client.get(f"/r4/CodeSystem/$lookup?system={CPT}&code=97116")
    assert response.status_code == 500
    assert body_of(response) == {"resourceType": "OperationOutcome", "issue": [{
        "severity": "fatal", "code": "exception",
        "details": {"text": "Internal server error; the details are in the server log"}}]}
    assert "secret internal detail" not in response.get_data(as_text=True)
    assert "secret internal detail" in caplog.text  # ... but it is in the log


# --- hostile inputs to every route: never a 5xx ------------------------------------------------

HOSTILE_QUERIES = [
    "", "?_format=%00", "?_format=", "?_pretty=true&_format=application/json", "?code=%ff&system=%fe",
    f"?code=97116&system={CPT}&property=*", f"?sourceCode=97116&sourceSystem={CPT}&targetCode=R26.2",
    "?targetCoding=%7C", "?coding=%7C", "?url=%20", "?mode=terminology", "?reverse=true&code=R26.2&system=x",
    "?code=" + "x" * 3000, "?name=&url=&_id=&version=&title=&status=", "?date=2024-02-30", "?" + "&".join(
        f"p{i}=v" for i in range(300)), "?code=a+b&system=http://x y",
]
HOSTILE_BODIES = [
    b"", b"null", b'"x"', b"1", b"[]", b"{}", b"{", b"\xff\xfe", b"NaN", b"Infinity",
    b'{"resourceType":"Parameters","parameter":[null]}',
    b'{"resourceType":"Parameters","parameter":[{"name":null,"valueCode":"x"}]}',
    b'{"resourceType":"Parameters","parameter":[{"name":"code","valueCode":{"a":1}}]}',
    b'{"resourceType":"Parameters","parameter":[{"name":"code","valueCode":NaN}]}',
    b'{"resourceType":"Parameters","parameter":[{"name":"system","valueUri":1e999}]}',
    b'{"resourceType":"Parameters","parameter":[{"name":"coding","valueCoding":{"system":"x","code":"1","version":[1]}}]}',
    b'{"resourceType":"Parameters","parameter":[{"name":"sourceCoding","valueCoding":null}]}',
    b'{"resourceType":"Parameters","parameter":[{"name":"targetCodeableConcept","valueCodeableConcept":{"coding":[{}]}}]}',
    b'{"resourceType":"Parameters","parameter":[{"name":"property","part":[{"name":"x"}]}]}',
    b'{"resourceType":"Parameters","parameter":[{"name":"conceptMap","resource":{"resourceType":"ConceptMap",'
    b'"group":"x"}},{"name":"code","valueCode":"1"},{"name":"system","valueUri":"x"}]}',
    b'{"resourceType":"Parameters","parameter":[{"name":"conceptMap","resource":{"resourceType":"ConceptMap",'
    b'"group":[{"element":[{"target":7}]}]}},{"name":"targetCode","valueCode":"1"}]}',
    b'{"resourceType":"Parameters","parameter":[{"name":"conceptMap","resource":{"resourceType":"ConceptMap",'
    b'"status":"draft","group":[{"unmapped":"x","element":[]}]}},{"name":"code","valueCode":"1"},'
    b'{"name":"system","valueUri":"x"}]}',
    b'{"resourceType":"Parameters","parameter":[{"name":"conceptMap","resource":[]},{"name":"code","valueCode":"1"}]}',
    b'{"resourceType":"Parameters","parameter":[{"name":"useSupplement","valueCanonical":"' + CPT.encode() + b'|2026"}]}',
    b"[" * 50_000 + b"]" * 50_000,
    b'<!DOCTYPE p [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><Parameters '
    b'xmlns="http://hl7.org/fhir"><parameter><name value="&b;"/></parameter></Parameters>',
    b'<Parameters xmlns="http://hl7.org/fhir">' + b"<parameter><part>" * 5_000,
    b'<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="code"/><valueCode value="1"/><valueCode '
    b'value="2"/></parameter><parameter><name value="system"/><resource><CodeSystem/></resource></parameter>'
    b'</Parameters>',
    "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"code\",\"valueCode\":\"\u00e9\u0000\ud7ff\"}]}".encode(),
]
HOSTILE_CONTENT_TYPES = [FHIR_JSON, "application/x-www-form-urlencoded", "application/fhir+json; charset=latin-1", ";;;",
                         "text/plain", "application/fhir+xml"]
HOSTILE_ACCEPTS = [None, "application/fhir+xml", "*/*;q=0", ",,,", "application/json;q=0.5, application/fhir+json"]


def every_route(app) -> list[str]:
    """Every rule under /r4, as a concrete path (known ids, each resource type)."""
    ids = {"CodeSystem": "cpt-97116-fragment", "ValueSet": "cpt-gait-training", "ConceptMap": "cpt-97116-to-icd-10-cm"}
    paths = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/r4/"):
            continue
        path = rule.rule.removeprefix("/r4")
        if "<path:path>" in path:
            paths += ["/a/b/c", "/Patient/1"]
        elif "<any(" in path:
            for rtype, rid in ids.items():
                paths.append(re.sub(r"<any\([^)]*\):resource_type>", rtype, path).replace("<resource_id>", rid))
                paths.append(re.sub(r"<any\([^)]*\):resource_type>", rtype, path).replace("<resource_id>", "nope"))
        else:
            rtype = path.split("/")[1]
            paths.append(path.replace("<resource_id>", ids.get(rtype, "nope")))
            if "<resource_id>" in path:
                paths.append(path.replace("<resource_id>", "nope"))
    return sorted(set(paths))


def check_response(response, version: str, method: str) -> None:
    assert response.status_code < 500, (response.status_code, response.get_data(as_text=True)[:300])
    assert not 300 <= response.status_code < 400  # no path redirects (web/routing.py)
    if method in ("HEAD", "OPTIONS"):
        return
    body = read_xml(response.get_data(), FhirVersion(version.upper()), 100) if "xml" in response.mimetype \
        else body_of(response)
    if body["resourceType"] == "OperationOutcome":
        assert body["issue"][0]["severity"] == "error"
    else:
        assert response.status_code == 200
    validate(body, version)


def test_every_route_is_in_the_hostile_loop(app):
    routes = every_route(app)
    assert "/CodeSystem/$lookup" in routes and "/ConceptMap/cpt-97116-to-icd-10-cm/$translate" in routes
    operations = [r for r in app.url_map.iter_rules() if r.rule.startswith("/r4/") and "$" in r.rule]
    # each operation rule gives one path (type level) or two (instance level: a known id and "nope")
    assert len([r for r in routes if "$" in r]) == sum(2 if "<resource_id>" in r.rule else 1 for r in operations)


@pytest.mark.parametrize("version", ["r4", "r5"])
def test_hostile_queries_on_every_route(app, version):
    client = app.test_client()
    for route in every_route(app):
        for query in HOSTILE_QUERIES:
            for method in ("GET", "POST", "HEAD", "OPTIONS", "DELETE"):
                response = client.open(f"/{version}{route}{query}", method=method)
                check_response(response, version, method)


@pytest.mark.parametrize("version", ["r4", "r5"])
def test_hostile_bodies_on_every_route(service, version):
    client = create_app({"FHIR_PLUGIN_MAX_REQUEST_BYTES": 200_000}, service=service).test_client()
    app = client.application
    for route in every_route(app):
        for body in HOSTILE_BODIES:
            for content_type in HOSTILE_CONTENT_TYPES:
                response = client.post(f"/{version}{route}", data=body, content_type=content_type)
                check_response(response, version, "POST")


@pytest.mark.parametrize("accept", HOSTILE_ACCEPTS)
def test_hostile_accept_headers_on_every_route(app, accept):
    client = app.test_client()
    headers = {"Accept": accept} if accept else {}
    for route in every_route(app):
        for version in ("r4", "r5"):
            response = client.get(f"/{version}{route}?code=97116&system={CPT}", headers=headers)
            assert response.status_code < 500
            check_response(response, version, "GET")


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
@pytest.mark.parametrize("path, operation, rtype", [
    ("/r5/ValueSet/$compare", "$compare", "ValueSet"),
    ("/r4/CodeSystem/$find-matches", "$find-matches", "CodeSystem"),
])
def test_an_operation_we_do_not_have_is_404_whatever_the_method(client, method, path, operation, rtype):
    assert_outcome(client.open(path, method=method), 404, "not-found", message_id="NO_SUCH_OPERATION",
                   text=f"This server has no operation {operation} on {rtype}")


@pytest.mark.parametrize("base, version", [("/r4", "R4"), ("/r5", "R5")])
def test_lookup_applies_a_loaded_supplement(supplement_client, base, version):
    """The supplement that the fixtures above load adds a German designation to CPT 97116."""
    url = (f"{base}/CodeSystem/$lookup?system={CPT}&code=97116&useSupplement={SUPPLEMENT['url']}"
           "&property=designation&displayLanguage=de")
    response = supplement_client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)
    parameters = response.get_json()["parameter"]
    assert {"name": "display", "valueString": "Gangtraining"} in parameters
    assert {"name": "designation", "part": [
        {"name": "language", "valueCode": "de"},
        {"name": "source", "valueCanonical": f"{SUPPLEMENT['url']}|1"},
        {"name": "value", "valueString": "Gangtraining"}]} in parameters
    assert {"name": "used-supplement", "valueCanonical": f"{SUPPLEMENT['url']}|1"} in parameters
