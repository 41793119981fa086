"""TerminologyClient against a real server on /r4 and /r5: the same typed results and the same
error classes as the in-process TerminologyService. HTTP edge cases use a stub transport adapter."""

from __future__ import annotations

import json
import socket
from decimal import Decimal

import pytest
import requests
from helpers import load_content
from live_server import free_port, live_server  # noqa: F401  (a fixture)

from fhir_plugin import TerminologyService
from fhir_plugin.client import (
    TerminologyClient,
    error_from_response,
    lookup_request_parameters,
    translate_request_parameters,
)
from fhir_plugin.errors import (
    InvalidRequest,
    NoSuchEndpoint,
    NotFound,
    ServerUnreachable,
    TerminologyError,
    UnknownCode,
    UnknownCodeSystem,
    UnknownConceptMap,
    error_class_for,
)
from fhir_plugin.terminology.entries import Coding, Designation, PropertyValue
from fhir_plugin.terminology.models import LookupRequest, TranslateRequest

CPT = "http://www.ama-assn.org/go/cpt"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
USE = "http://fhir-plugin.org/fhir/CodeSystem/designation-use"
MAP_URL = "http://fhir-plugin.org/fhir/ConceptMap/cpt-97116-to-icd-10-cm"
MAP = f"{MAP_URL}|1.0.0"
CPT_VS = "http://fhir-plugin.org/fhir/ValueSet/cpt-gait-training"
D_97116 = "Therapeutic procedure, 1 or more areas, each 15 minutes; gait training (includes stair climbing)"
D_R26_2 = "Difficulty in walking, not elsewhere classified"
SYNONYM = Coding(SNOMED, "900000000000013009", None, "Synonym")
C_97116 = Coding(CPT, "97116")
C_R26_2 = Coding(ICD, "R26.2")


@pytest.fixture(scope="module")
def service() -> TerminologyService:
    return load_content()


@pytest.fixture(scope="module", params=["r4", "r5"])
def client(request, live_server):  # noqa: F811
    with TerminologyClient(f"{live_server.url}/{request.param}") as remote:
        yield remote


@pytest.fixture(scope="module", params=["local", "r4", "r5"])
def backend(request, service, live_server):  # noqa: F811
    """The in-process service and the client on both endpoints: one interface, three ways."""
    if request.param == "local":
        yield service
        return
    with TerminologyClient(f"{live_server.url}/{request.param}") as remote:
        yield remote


# --- $lookup ------------------------------------------------------------------------------------


def test_lookup_cpt_97116_is_the_local_result(client, service):
    request = LookupRequest(system=CPT, code="97116")
    result = client.lookup(request)
    assert result == service.lookup(request)
    assert (result.name, result.system, result.version, result.code) == ("CPT", CPT, "2026", "97116")
    assert result.display == D_97116
    assert result.abstract is False
    assert result.designations == (
        Designation(D_97116, "en", Coding("http://terminology.hl7.org/CodeSystem/hl7TermMaintInfra",
                                          "preferredForLanguage", None, "Preferred For Language")),
        Designation("Gait Training", "en", SYNONYM),
        Designation("Walking Therapy", "en", SYNONYM),
        Designation("Mobility Training", "en", SYNONYM),
        Designation("Walking practice session", "en", Coding(USE, "or-schedule-name", None, "Operating-room schedule name")),
        Designation("Agreement to perform walking and stair practice", "en",
                    Coding(USE, "consent-form-name", None, "Surgical consent form name")),
    )
    properties = {p.code: p for p in result.properties}
    assert list(properties) == ["modifier", "modified", "kind", "work-rvu", "unit-minutes", "inactive"]
    assert properties["work-rvu"] == PropertyValue("work-rvu", Decimal("0.45"), "decimal")
    assert type(properties["work-rvu"].value) is Decimal  # a float 0.45 would not be exactly 0.45
    assert properties["unit-minutes"] == PropertyValue("unit-minutes", 15, "integer")
    assert type(properties["unit-minutes"].value) is int
    assert properties["kind"] == PropertyValue("kind", "code", "code")


def test_lookup_icd_m62_81_with_its_parent(client, service):
    request = LookupRequest(system=ICD, code="M62.81")
    result = client.lookup(request)
    assert result == service.lookup(request)
    assert (result.display, result.version, result.definition) == ("Muscle weakness (generalized)", "2026-04-01", None)
    assert result.properties[0] == PropertyValue("parent", "M62.8", "code", "Other specified disorders of muscle")


def test_lookup_by_coding_with_a_property_filter(client, service):
    request = LookupRequest(coding=Coding(ICD, "M62.81"), properties=("parent",))
    result = client.lookup(request)
    assert result == service.lookup(request)
    assert result.properties == (PropertyValue("parent", "M62.8", "code", "Other specified disorders of muscle"),)
    assert result.designations == ()


# --- $translate ---------------------------------------------------------------------------------


def test_translate_forward_gives_the_three_diagnoses(client, service):
    request = TranslateRequest(source=(C_97116,))
    result = client.translate(request)
    assert result == service.translate(request)
    assert (result.result, result.message, result.mode) == (True, None, "forward")
    assert [m.concept.code for m in result.matches] == ["M62.81", "R26.2", "G81.90"]
    assert {(m.relationship, m.concept.system, m.concept.version, m.origin_map, m.source) for m in result.matches} == {
        ("related-to", ICD, "2026-04-01", MAP, None)}


def test_translate_r5_reverse_by_target_code(client, service):
    request = TranslateRequest(target=(C_R26_2,))
    result = client.translate(request)
    assert result == service.translate(request)
    assert (result.result, result.mode, len(result.matches)) == (True, "target", 1)
    match = result.matches[0]
    assert match.concept == Coding(ICD, "R26.2", "2026-04-01", D_R26_2)
    assert match.source == Coding(CPT, "97116", "2026", D_97116)
    assert (match.relationship, match.origin_map) == ("related-to", MAP)


def test_translate_r4_reverse_flag(client, service):
    request = TranslateRequest(source=(C_R26_2,), reverse=True)
    result = client.translate(request)
    assert result == service.translate(request)
    assert (result.result, result.mode, len(result.matches)) == (True, "reverse", 1)
    assert result.matches[0].concept == Coding(CPT, "97116", "2026", D_97116)
    assert result.matches[0].source is None
    assert result.matches[0].origin_map == MAP


def test_translate_pair_that_is_mapped(client, service):
    request = TranslateRequest(source=(C_97116,), target=(C_R26_2,), target_system=ICD)
    result = client.translate(request)
    assert result == service.translate(request)
    assert (result.result, result.mode, [m.concept.code for m in result.matches]) == (True, "pair", ["R26.2"])


def test_translate_pair_that_is_not_mapped(client, service):
    request = TranslateRequest(source=(C_97116,), target=(Coding(ICD, "J45.909"),), target_system=ICD)
    result = client.translate(request)
    assert result == service.translate(request)
    assert (result.result, result.matches) == (False, ())
    assert result.message == f"'97116' in '{CPT}' is not mapped to 'J45.909' in '{ICD}'"


@pytest.mark.parametrize(("scope", "found"), [(CPT_VS, True), ("http://example.org/ValueSet/other", False)])
def test_translate_source_scope_selects_maps(client, service, scope, found):
    request = TranslateRequest(source=(C_97116,), source_scope=scope, url=MAP_URL, concept_map_version="1.0.0")
    result = client.translate(request)
    assert result == service.translate(request)
    assert result.result is found


# --- errors: the same class, status, id and text locally and remotely ----------------------------

ERROR_CASES = {
    "unknown-code": (
        LookupRequest(system=CPT, code="99999"), UnknownCode, 404, "UNKNOWN_CODE_IN_FRAGMENT", "code",
        "Unknown Code '99999' in the CodeSystem 'http://www.ama-assn.org/go/cpt' version '2026' - note that the "
        "code system is labeled as a fragment, so the code may be valid in some other fragment"),
    "unknown-system": (
        LookupRequest(system="http://example.org/no-such-system", code="1"), UnknownCodeSystem, 404,
        "UNKNOWN_CODESYSTEM_LOOKUP", "system",
        "A definition for CodeSystem 'http://example.org/no-such-system' could not be found, so the code cannot "
        "be looked up"),
    "missing-code": (
        LookupRequest(system=CPT), InvalidRequest, 400, "LOOKUP_NO_CODE", "code",
        "Must provide either coding parameter, or system and code parameters"),
    "unknown-map": (
        TranslateRequest(source=(C_97116,), url="http://example.org/ConceptMap/none"), UnknownConceptMap, 404,
        "UNKNOWN_CONCEPTMAP", "url", "Unable to find ConceptMap 'http://example.org/ConceptMap/none'"),
    "reverse-with-target": (
        TranslateRequest(source=(C_R26_2,), target=(C_97116,), reverse=True), InvalidRequest, 400,
        "TRANSLATE_REVERSE_WITH_TARGET", "reverse",
        "reverse=true cannot be combined with targetCode, targetCoding or targetCodeableConcept: name the target "
        "concept with those parameters instead of reverse"),
    "incomplete-coding": (
        TranslateRequest(source=(Coding(None, "97116"),)), InvalidRequest, 400, "TRANSLATE_CODING_INCOMPLETE",
        "sourceCode", "Parameter 'sourceCode' needs both a system and a code"),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_errors_are_the_same_class_locally_and_remotely(backend, case):
    request, cls, status, message_id, expression, text = ERROR_CASES[case]
    call = backend.lookup if isinstance(request, LookupRequest) else backend.translate
    with pytest.raises(TerminologyError) as caught:
        call(request)
    error = caught.value
    assert type(error) is cls
    assert (error.status, error.message_id, error.expression, error.text) == (status, message_id, expression, text)
    if isinstance(backend, TerminologyClient):
        issue = error.outcome["issue"][0]
        assert (issue["severity"], issue["details"]["text"]) == ("error", text)


def test_wrong_base_url_is_not_found_and_the_error_names_the_bases(live_server):  # noqa: F811
    with TerminologyClient(live_server.url) as remote, pytest.raises(NotFound) as caught:
        remote.lookup(LookupRequest(system=CPT, code="97116"))
    assert (type(caught.value), caught.value.status, caught.value.message_id) == (
        NoSuchEndpoint, 404, "NO_SUCH_PATH_BASES")
    assert caught.value.text == ("There is no FHIR endpoint at /CodeSystem/$lookup; the FHIR bases here are /r4 (R4), "
                                 "/r5 (R5) and /fhir (R4)")
    assert caught.value.fields == {"path": "/CodeSystem/$lookup", "bases": "/r4 (R4), /r5 (R5) and /fhir (R4)"}


# --- read and metadata ----------------------------------------------------------------------------


def test_read_renders_the_endpoint_version(live_server):  # noqa: F811
    with TerminologyClient(live_server.r4) as r4, TerminologyClient(live_server.r5) as r5:
        as_r4 = r4.resource("ConceptMap", "cpt-97116-to-icd-10-cm")
        as_r5 = r5.resource("ConceptMap", "cpt-97116-to-icd-10-cm")
        assert (as_r4["url"], as_r4["sourceUri"], "sourceScopeUri" in as_r4) == (MAP_URL, CPT_VS, False)
        assert (as_r5["url"], as_r5["sourceScopeUri"], "sourceUri" in as_r5) == (MAP_URL, CPT_VS, False)
        assert (r4.capabilities()["fhirVersion"], r5.capabilities()["fhirVersion"]) == ("4.0.1", "5.0.0")
        assert r4.capabilities(mode="terminology")["resourceType"] == "TerminologyCapabilities"
        with pytest.raises(NotFound) as caught:
            r4.resource("CodeSystem", "no-such-id")
        assert (caught.value.message_id, caught.value.text) == ("RESOURCE_NOT_FOUND", "CodeSystem/no-such-id not found")


# --- unreachable servers ----------------------------------------------------------------------------


def test_closed_port_raises_server_unreachable():
    port = free_port()
    with TerminologyClient(f"http://127.0.0.1:{port}/r4", timeout=5) as remote, \
            pytest.raises(ServerUnreachable) as caught:
        remote.lookup(LookupRequest(system=CPT, code="97116"))
    error = caught.value
    assert (error.status, error.issue_code, error.message_id) == (503, "transient", "SERVER_UNREACHABLE")
    assert error.text == (f"Cannot reach the terminology server at http://127.0.0.1:{port}/r4: "
                          "Failed to establish a new connection: [Errno 111] Connection refused")
    assert error_class_for("SERVER_UNREACHABLE", 503) is ServerUnreachable


def test_a_server_that_never_answers_times_out_as_unreachable():
    # Listening but never accepting: the connection succeeds (kernel backlog) and no answer comes.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        base = f"http://127.0.0.1:{silent.getsockname()[1]}/r5"
        with TerminologyClient(base, timeout=0.2) as remote, pytest.raises(ServerUnreachable) as caught:
            remote.translate(TranslateRequest(source=(C_97116,)))
    assert caught.value.text == f"Cannot reach the terminology server at {base}: Read timed out. (read timeout=0.2)"


# --- the wire: request bodies, and answers that are not what a FHIR server sends --------------------


class StubAdapter(requests.adapters.BaseAdapter):
    """Answers every request with one canned response and remembers what was sent."""

    def __init__(self, status: int, body: bytes, content_type: str = "application/fhir+json"):
        super().__init__()
        self.status, self.body, self.content_type = status, body, content_type
        self.sent: list[requests.PreparedRequest] = []
        self.closed = False

    def send(self, request, **kwargs):
        self.sent.append(request)
        response = requests.Response()
        response.status_code = self.status
        response._content = self.body
        response.headers["Content-Type"] = self.content_type
        response.url = request.url
        response.request = request
        return response

    def close(self):
        self.closed = True


def stub_client(adapter: StubAdapter) -> tuple[TerminologyClient, requests.Session]:
    session = requests.Session()
    session.mount("http://stub/", adapter)
    return TerminologyClient("http://stub/r4/", session=session), session


def test_lookup_posts_fhir_json_parameters_and_leaves_a_given_session_open():
    answer = {"resourceType": "Parameters", "parameter": [
        {"name": "name", "valueString": "CPT"}, {"name": "code", "valueCode": "97116"},
        {"name": "system", "valueUri": CPT}, {"name": "abstract", "valueBoolean": False}]}
    adapter = StubAdapter(200, json.dumps(answer).encode())
    client, session = stub_client(adapter)
    with session, client:
        result = client.lookup(LookupRequest(system=CPT, code="97116", properties=("work-rvu", "parent")))
    assert (result.name, result.code, result.system, result.display) == ("CPT", "97116", CPT, None)
    sent = adapter.sent[0]
    assert (sent.method, sent.url) == ("POST", "http://stub/r4/CodeSystem/$lookup")
    assert (sent.headers["Content-Type"], sent.headers["Accept"]) == ("application/fhir+json", "application/fhir+json")
    assert json.loads(sent.body) == {"resourceType": "Parameters", "parameter": [
        {"name": "system", "valueUri": CPT}, {"name": "code", "valueCode": "97116"},
        {"name": "property", "valueCode": "work-rvu"}, {"name": "property", "valueCode": "parent"}]}
    assert adapter.closed  # by `with session`, not by the client, which does not own it


def test_translate_bodies_use_r5_names_and_r4_names_with_reverse():
    assert translate_request_parameters(TranslateRequest(
        source=(Coding(CPT, "97116", "2026"),), target=(C_R26_2,), target_system=ICD, source_scope=CPT_VS,
        url=MAP_URL, concept_map_version="1.0.0")) == {"resourceType": "Parameters", "parameter": [
            {"name": "sourceCoding", "valueCoding": {"system": CPT, "version": "2026", "code": "97116"}},
            {"name": "targetCoding", "valueCoding": {"system": ICD, "code": "R26.2"}},
            {"name": "targetSystem", "valueUri": ICD},
            {"name": "sourceScope", "valueUri": CPT_VS},
            {"name": "url", "valueUri": MAP_URL},
            {"name": "conceptMapVersion", "valueString": "1.0.0"}]}
    assert translate_request_parameters(TranslateRequest(
        source=(C_R26_2, Coding(ICD, "M62.81")), target_system=CPT, reverse=True)) == {
        "resourceType": "Parameters", "parameter": [
            {"name": "codeableConcept", "valueCodeableConcept": {"coding": [
                {"system": ICD, "code": "R26.2"}, {"system": ICD, "code": "M62.81"}]}},
            {"name": "targetsystem", "valueUri": CPT},
            {"name": "reverse", "valueBoolean": True}]}
    assert translate_request_parameters(TranslateRequest(target=(C_R26_2,), source_system=CPT))["parameter"] == [
        {"name": "targetCoding", "valueCoding": {"system": ICD, "code": "R26.2"}},
        {"name": "sourceSystem", "valueUri": CPT}]


def test_lookup_body_skips_empty_values():
    assert lookup_request_parameters(LookupRequest(system=CPT, code="", display_language="en")) == {
        "resourceType": "Parameters", "parameter": [
            {"name": "system", "valueUri": CPT}, {"name": "displayLanguage", "valueCode": "en"}]}


@pytest.mark.parametrize(("status", "body", "content_type", "expected_status", "text"), [
    (502, b"<html><body>Bad Gateway</body></html>", "text/html", 502,
     "The server answered HTTP 502 without an OperationOutcome: <html><body>Bad Gateway</body></html>"),
    (200, b"<html>a login page</html>", "text/html", 502,
     "The server answered HTTP 200 with a body that is not FHIR JSON: <html>a login page</html>"),
    (200, b'{"resourceType": "Bundle"}', "application/fhir+json", 502,
     "The server at http://stub/r4 answered with a Bundle, not a Parameters resource"),
])
def test_answers_without_an_outcome_are_plain_errors_with_the_status(status, body, content_type,
                                                                     expected_status, text):
    client, session = stub_client(StubAdapter(status, body, content_type))
    with session, client, pytest.raises(TerminologyError) as caught:
        client.lookup(LookupRequest(system=CPT, code="97116"))
    error = caught.value
    assert (type(error), error.status, error.message_id, error.text, error.outcome) == (
        TerminologyError, expected_status, "REMOTE_ERROR", text, None)


def test_outcome_without_message_id_keeps_the_http_status():
    outcome = {"resourceType": "OperationOutcome", "issue": [
        {"severity": "fatal", "code": "exception", "details": {"text": "Internal server error"}}]}
    error = error_from_response(500, outcome, json.dumps(outcome))
    assert (type(error), error.status, error.text, error.expression, error.outcome) == (
        TerminologyError, 500, "Internal server error", None, outcome)
    assert TerminologyError.status == 400  # the override is on the instance, not the class
    error = error_from_response(400, {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "invalid", "diagnostics": "bad", "expression": ["coding"]}]}, "")
    assert (type(error), error.status, error.text, error.expression) == (InvalidRequest, 400, "bad", "coding")
