"""The client's side of the wire, without a server: each request encoder is the inverse of the
server's parser (encode, parse with fhir_plugin.web, get the same request back), the headers and
paths TerminologyClient chooses, and the decoders for answers a live server does not give in
tests/test_backend.py (batch errors without a message id, R4 versus R5 ConceptMaps)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import requests

from fhir_plugin.client import (TerminologyClient, batch_request_parameters, expand_request_parameters,
                                subsumes_request_parameters, validate_request_parameters)
from fhir_plugin.errors import (InvalidRequest, InvalidValidateRequest, NotFound, NotSupported, TerminologyError,
                                UnknownCodeSystem, UnknownValueSet)
from fhir_plugin.render.parameters import batch_error, batch_validate_result
from fhir_plugin.terminology.entries import Coding
from fhir_plugin.terminology.models import (ExpandRequest, SubsumesRequest, ValidateCodeRequest, ValidateCodeResult,
                                            VersionRules)
from fhir_plugin.terminology.outcome import brief_outcome
from fhir_plugin.web.params import parameter_list, subsumes_request
from fhir_plugin.web.params_expand import expand_request, too_costly_threshold
from fhir_plugin.web.params_validate import codesystem_validate_request, valueset_validate_request

CPT = "http://www.ama-assn.org/go/cpt"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
ICD_VS = "http://fhir-plugin.org/fhir/ValueSet/icd-10-cm-gait-training-diagnoses"
INLINE_VS = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [{"system": ICD}]}}
SUPPLEMENT = "http://example.org/CodeSystem/supplement|1"
# every field a request may carry beside the value set and the concept, each not its default
COMMON = {"display_language": "en-US", "abstract": False, "active_only": True, "infer_system": True,
          "lenient_display": True, "membership_only": True, "default_value_set_version": (f"{ICD_VS}|1.0.0",),
          "versions": VersionRules(default={ICD: "2026-04-01"}, check={CPT: "2026"}, force={ICD: "2026-04-01"}),
          "use_supplements": (SUPPLEMENT,), "date": "2026-12-01", "accept_language": "de, en;q=0.5"}


# --- each encoder is the inverse of the server's parser ---------------------------------------------

VALUE_SET_REQUESTS = {
    "code": ValidateCodeRequest(codings=(Coding(ICD, "R26.2", "2026-04-01", "Walking problems"),), url=ICD_VS,
                                value_set_version="1.0.0", **COMMON),
    "coding": ValidateCodeRequest(codings=(Coding(ICD, "R26.2", "2026-04-01", "x"),), form="coding",
                                  value_set=INLINE_VS, **COMMON),
    "codeableConcept": ValidateCodeRequest(
        codings=(Coding(ICD, "J45.909"), Coding(ICD, "R26.2", display="y")), form="codeableConcept",
        codeable_concept={"coding": [{"system": ICD, "code": "J45.909"}, {"system": ICD, "code": "R26.2",
                                                                        "display": "y"}], "text": "t"},
        url=ICD_VS, **COMMON),
}


@pytest.mark.parametrize("form", list(VALUE_SET_REQUESTS))
def test_value_set_validation_survives_the_wire(form):
    request = VALUE_SET_REQUESTS[form]
    body = validate_request_parameters(request)
    assert valueset_validate_request(parameter_list(body), None, request.accept_language) == request


@pytest.mark.parametrize("request_", [
    ValidateCodeRequest(codings=(Coding(CPT, "97116", "2026", "Gait Training"),), code_system_url=CPT, **COMMON),
    ValidateCodeRequest(codings=(Coding(CPT, "97116", "2026"),), form="coding", code_system_url=CPT),
], ids=["code", "coding"])
def test_code_system_validation_survives_the_wire(request_):
    body = validate_request_parameters(request_)
    assert body["parameter"][0] == {"name": "url", "valueUri": CPT}
    assert codesystem_validate_request(parameter_list(body), None, request_.accept_language) == request_


def test_a_codeable_concept_is_built_from_the_codings_when_not_given():
    body = validate_request_parameters(ValidateCodeRequest(
        codings=(Coding(ICD, "R26.2"), Coding(CPT, "97116")), form="codeableConcept", url=ICD_VS))
    assert body == {"resourceType": "Parameters", "parameter": [
        {"name": "url", "valueUri": ICD_VS},
        {"name": "codeableConcept", "valueCodeableConcept": {"coding": [
            {"system": ICD, "code": "R26.2"}, {"system": CPT, "code": "97116"}]}}]}


def test_expand_survives_the_wire():
    request = ExpandRequest(
        url=ICD_VS, value_set_version="1.0.0", filter="walk", date="2026-12-01", offset=0, count=5,
        include_designations=True, designations=("en",), include_definition=False, active_only=True,
        exclude_nested=False, exclude_not_for_ui=True, exclude_post_coordinated=True, display_language="en",
        accept_language="de", exclude_systems=(CPT,), system_versions=(f"{ICD}|2026-04-01",),
        check_system_versions=(f"{CPT}|2026",), force_system_versions=(f"{ICD}|2026-04-01",),
        properties=("parent", "inactive"), use_supplements=(SUPPLEMENT,),
        default_value_set_versions=(f"{ICD_VS}|1.0.0",), max_expansion=50)
    body = expand_request_parameters(request)
    assert {"name": "offset", "valueInteger": 0} in body["parameter"]  # 0 is given, not absent
    assert expand_request(parameter_list(body), None, request.accept_language,
                          too_costly_threshold(10_000, str(request.max_expansion))) == request
    inline = ExpandRequest(value_set=INLINE_VS)
    assert expand_request(parameter_list(expand_request_parameters(inline))) == inline


@pytest.mark.parametrize("request_", [
    SubsumesRequest(code_a="M62", code_b="M62.81", system=ICD, version="2026-04-01"),
    SubsumesRequest(coding_a=Coding(ICD, "M62"), coding_b=Coding(ICD, "M62.81", "2026-04-01")),
], ids=["codes", "codings"])
def test_subsumes_survives_the_wire(request_):
    assert subsumes_request(parameter_list(subsumes_request_parameters(request_))) == request_


def test_a_batch_is_one_validation_parameters_each():
    first, second = VALUE_SET_REQUESTS["code"], VALUE_SET_REQUESTS["coding"]
    assert batch_request_parameters([first, second]) == {"resourceType": "Parameters", "parameter": [
        {"name": "validation", "resource": validate_request_parameters(first)},
        {"name": "validation", "resource": validate_request_parameters(second)}]}


# --- what the client sends where ------------------------------------------------------------------------

VALID = {"resourceType": "Parameters", "parameter": [{"name": "result", "valueBoolean": True}]}
Answer = Callable[[requests.PreparedRequest], tuple[int, dict]]


class RoutingAdapter(requests.adapters.BaseAdapter):
    """Answers each request with `answer(request)` and remembers what was sent."""

    def __init__(self, answer: Answer):
        super().__init__()
        self.answer = answer
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request, **kwargs):
        self.sent.append(request)
        status, body = self.answer(request)
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(body).encode()
        response.headers["Content-Type"] = "application/fhir+json"
        response.url = request.url
        response.request = request
        return response

    def close(self):
        pass


@pytest.fixture
def wire():
    """(client, adapter, set_answer): a client on http://stub/r4 whose answers the test chooses."""
    holder: dict[str, Answer] = {"answer": lambda request: (200, VALID)}
    adapter = RoutingAdapter(lambda request: holder["answer"](request))
    session = requests.Session()
    session.mount("http://stub/", adapter)
    with session, TerminologyClient("http://stub/r4", session=session) as client:
        yield client, adapter, lambda answer: holder.__setitem__("answer", answer)


def _path(request: requests.PreparedRequest) -> str:
    return (request.url or "").removeprefix("http://stub/r4/")


def test_validate_code_goes_to_the_code_system_or_the_value_set(wire):
    client, adapter, _ = wire
    client.validate_code(ValidateCodeRequest(codings=(Coding(CPT, "97116"),), code_system_url=CPT))
    client.validate_code(ValidateCodeRequest(codings=(Coding(ICD, "R26.2"),), url=ICD_VS, accept_language="de"))
    assert [(r.method, _path(r), r.headers.get("Accept-Language")) for r in adapter.sent] == [
        ("POST", "CodeSystem/$validate-code", None), ("POST", "ValueSet/$validate-code", "de")]


def test_expand_sends_the_language_and_a_lower_threshold_in_headers(wire):
    client, adapter, answer = wire
    answer(lambda request: (200, {"resourceType": "ValueSet", "expansion": {
        "identifier": "urn:uuid:1", "timestamp": "2026-12-01T00:00:00+00:00", "total": 0}}))
    client.expand(ExpandRequest(url=ICD_VS))
    client.expand(ExpandRequest(url=ICD_VS, accept_language="fr", max_expansion=20))
    assert [(_path(r), r.headers.get("Accept-Language"), r.headers.get("X-TOO-COSTLY-THRESHOLD"))
            for r in adapter.sent] == [("ValueSet/$expand", None, None), ("ValueSet/$expand", "fr", "20")]


def test_batch_sends_value_set_requests_together_and_code_system_ones_alone(wire):
    client, adapter, answer = wire
    answer(lambda request: (200, {"resourceType": "Parameters", "parameter": [
        {"name": "validation", "resource": VALID}, {"name": "validation", "resource": VALID}]})
        if _path(request) == "ValueSet/$batch-validate-code" else (404, {
            "resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found", "details": {
                "text": f"A definition for CodeSystem '{CPT}' could not be found, so the code cannot be looked up"},
                "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/operationoutcome-message-id",
                               "valueString": "UNKNOWN_CODESYSTEM_LOOKUP"}]}]}))
    given = InvalidRequest("PARAM_BAD_TYPE", parameter="validation", expected="a Parameters resource")
    value_set = ValidateCodeRequest(codings=(Coding(ICD, "R26.2"),), url=ICD_VS, accept_language="de")
    results = client.batch_validate([value_set, given, ValidateCodeRequest(codings=(Coding(CPT, "1"),),
                                                                           code_system_url=CPT), value_set])
    assert results[0] == results[3] == ValidateCodeResult(True)
    assert results[1] is given
    assert (type(results[2]), results[2].fields) == (UnknownCodeSystem, {"system": CPT})
    assert [(_path(r), r.headers.get("Accept-Language")) for r in adapter.sent] == [
        ("ValueSet/$batch-validate-code", "de"), ("CodeSystem/$validate-code", None)]
    assert [p["name"] for p in json.loads(adapter.sent[0].body)["parameter"]] == ["validation", "validation"]


def test_batch_refuses_requests_that_disagree_on_accept_language(wire):
    client, adapter, _ = wire
    with pytest.raises(ValueError, match=r"one Accept-Language header, not \['de', 'fr'\]"):
        client.batch_validate([ValidateCodeRequest(codings=(Coding(ICD, "R26.2"),), url=ICD_VS, accept_language=a)
                               for a in ("de", "fr")])
    assert adapter.sent == []


def test_batch_with_only_errors_asks_nothing(wire):
    client, adapter, _ = wire
    given = InvalidRequest("LOOKUP_NO_CODE")
    assert client.batch_validate([given]) == [given]
    assert adapter.sent == []


def test_a_conceptmap_is_converted_only_from_an_r4_endpoint(wire):
    client, adapter, answer = wire
    r5_map = {"resourceType": "ConceptMap", "id": "m", "url": "http://example.org/m", "status": "active",
              "group": [{"element": [{"code": "a", "target": [{"code": "b", "relationship": "equivalent"}]}]}]}
    r4_map = {**r5_map, "group": [{"element": [{"code": "a", "target": [{"code": "b", "equivalence": "equal"}]}]}]}
    for release, served in (("5.0.0", r5_map), ("4.0.1", r4_map)):
        answer(lambda request, release=release, served=served: (200, {"resourceType": "CapabilityStatement",
                                                                      "fhirVersion": release})
               if _path(request) == "metadata" else (200, served))
        endpoint = TerminologyClient(client.base_url, session=client.session)  # each asks for its release once
        for _ in range(2):
            target = endpoint.read("ConceptMap", "m").resource["group"][0]["element"][0]["target"][0]
            assert target == {"code": "b", "relationship": "equivalent"}
    assert [_path(r) for r in adapter.sent] == ["ConceptMap/m", "metadata", "ConceptMap/m"] * 2


def test_metadata_lists_the_default_version_first(wire):
    client, _, answer = wire
    answer(lambda request: (200, {"resourceType": "TerminologyCapabilities", "codeSystem": [
        {"uri": ICD, "version": [{"code": "2025"}, {"code": "2026", "isDefault": True}]}, {"uri": CPT}]}))
    found = client.metadata().code_systems
    assert [(s.url, s.versions) for s in found] == [(ICD, ("2026", "2025")), (CPT, ())]


# --- batch entries: errors answered without a message id --------------------------------------------------


@pytest.mark.parametrize(("error", "cls"), [
    (UnknownValueSet("Unable_to_resolve_value_Set_", value_set="http://example.org/vs"), UnknownValueSet),
    (InvalidValidateRequest("VALIDATE_NO_VALUESET"), InvalidValidateRequest),  # worded as EXPAND_NO_VALUESET too
    (InvalidRequest("PARAM_BAD_TYPE", parameter="validation", expected="a Parameters resource"), InvalidRequest),
    (NotSupported("PARAM_NOT_SUPPORTED", parameter="context", reason="no"), NotSupported),
    (NotFound("RESOURCE_NOT_FOUND", resource_type="ValueSet", id="x"), NotFound),
])
def test_a_batch_error_is_the_error_raised(error, cls):
    outcome = brief_outcome(error)
    rebuilt = batch_error(outcome)
    assert (type(rebuilt), rebuilt.status, rebuilt.message_id, rebuilt.text, rebuilt.fields) == (
        cls, error.status, error.message_id, error.text, error.fields)
    assert rebuilt.outcome == outcome  # as the server sent it, without the message id put back
    assert "status" not in vars(rebuilt)  # the class's status, not one set on the instance


def test_a_batch_error_of_unknown_wording_keeps_its_issue_code():
    outcome = {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "not-found", "details": {"text": "Something else went missing"}}]}
    results = batch_validate_result({"resourceType": "Parameters", "parameter": [
        {"name": "validation", "resource": VALID}, {"name": "validation", "resource": outcome}]})
    assert results[0] == ValidateCodeResult(True)
    error = results[1]
    assert isinstance(error, TerminologyError)
    assert (type(error), error.status, error.message_id, error.text) == (
        NotFound, 404, "REMOTE_ERROR", "Something else went missing")
