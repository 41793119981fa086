"""TerminologyBackend, one interface three ways: every method of the Protocol runs the same requests
against the in-process TerminologyService and against TerminologyClient on /r4 and /r5 of a live
server. Each answer equals the service's (`==`; an expansion's identifier and timestamp are
replaced first, being new each time) and the exact values the shipped content gives; each error
has the same class, status, message id, text and fields.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime
from decimal import Decimal

import pytest
from helpers import (CM_CANONICAL, CM_URL, CPT, CPT_VERSION, CPT_VS, DISPLAY_97116, ICD, ICD_TITLES, ICD_VERSION,
                     ICD_VS, SNOMED, USE_SYSTEM)
from live_server import live_server  # noqa: F401  (a fixture)

from fhir_plugin import TerminologyService
from fhir_plugin.client import TerminologyClient
from fhir_plugin.errors import (InvalidRequest, NotFound, TerminologyError, TooCostly, UnknownCode,
                                UnknownCodeSystem, UnknownValueSet)
from fhir_plugin.terminology.backend import TerminologyBackend
from fhir_plugin.terminology.entries import Coding, Designation, PropertyValue, ResourceEntry
from fhir_plugin.terminology.models import (CodeSystemVersions, ExpandRequest, ExpandResult, ExpansionEntry,
                                            ExpansionParameter, Issue, LookupRequest, SubsumesRequest, SubsumesResult,
                                            TerminologyMetadata, TranslateMatch, TranslateRequest, ValidateCodeRequest,
                                            ValidateCodeResult)


@pytest.fixture(scope="module", params=["local", "r4", "r5"])
def backend(request, service, live_server):  # noqa: F811
    if request.param == "local":
        yield service
        return
    with TerminologyClient(f"{live_server.url}/{request.param}") as remote:
        yield remote


def comparable(result: ExpandResult) -> ExpandResult:
    """The expansion without what is new each time: its identifier (a UUID) and timestamp (now)."""
    assert re.fullmatch(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", result.identifier)
    assert datetime.fromisoformat(result.timestamp).tzinfo is not None
    return dataclasses.replace(result, identifier="(new each time)", timestamp="(now)")


def test_both_implement_the_protocol(backend):
    assert isinstance(backend, TerminologyBackend)
    assert isinstance(backend, TerminologyService | TerminologyClient)


# --- $lookup and $translate ----------------------------------------------------------------------


def test_lookup(backend, service):
    request = LookupRequest(system=CPT, code="97116", properties=("work-rvu", "unit-minutes"))
    result = backend.lookup(request)
    assert result == service.lookup(request)
    assert (result.name, result.system, result.version, result.code, result.display) == (
        "CPT", CPT, CPT_VERSION, "97116", DISPLAY_97116)
    assert result.properties == (PropertyValue("work-rvu", Decimal("0.45"), "decimal"),
                                 PropertyValue("unit-minutes", 15, "integer"))


def test_translate(backend, service):
    request = TranslateRequest(source=(Coding(CPT, "97116"),), target_system=ICD)
    result = backend.translate(request)
    assert result == service.translate(request)
    assert (result.result, result.message, result.mode, result.dialect) == (True, None, "forward", None)
    assert result.matches == tuple(
        TranslateMatch("related-to", Coding(ICD, code, ICD_VERSION, ICD_TITLES[code]), CM_CANONICAL)
        for code in ("M62.81", "R26.2", "G81.90"))


def test_translate_r4_reverse_keeps_the_dialect(backend, service):
    request = TranslateRequest(source=(Coding(ICD, "R26.2"),), reverse=True, dialect="R4")
    result = backend.translate(request)
    assert result == service.translate(request)
    assert (result.result, result.message, result.mode, result.dialect) == (True, None, "reverse", "R4")
    assert result.matches == (TranslateMatch("related-to", Coding(CPT, "97116", CPT_VERSION, DISPLAY_97116),
                                             CM_CANONICAL),)


# --- $validate-code --------------------------------------------------------------------------------

ICD_VS_LABEL = f"{ICD_VS}|1.0.0"
NONE_VS = "http://example.org/ValueSet/none"
NONE_CS = "http://example.org/CodeSystem/none"
CPT_DISPLAYS = " or ".join(f"'{d}' (en)" for d in (DISPLAY_97116, "Gait Training", "Walking Therapy",
                                                   "Mobility Training", "Walking practice session",
                                                   "Agreement to perform walking and stair practice"))
WRONG_WALKING = (f"Wrong Display Name 'Walking problems' for {ICD}#R26.2. Valid display is "
                 f"'{ICD_TITLES['R26.2']}' (en) (for the language(s) '--')")
WRONG_GAIT = (f"Wrong Display Name 'Gait training' for {CPT}#97116. Valid display is one of 6 choices: "
              f"{CPT_DISPLAYS} (for the language(s) '--')")
UNKNOWN_R26_99 = f"Unknown code 'R26.99' in the CodeSystem '{ICD}' version '{ICD_VERSION}'"
J45_NOT_IN_VS = f"The provided code '{ICD}#J45.909' was not found in the value set '{ICD_VS_LABEL}'"
R26_99_NOT_IN_VS = f"The provided code '{ICD}#R26.99' was not found in the value set '{ICD_VS_LABEL}'"
IN_FRAGMENT = (f"Unknown Code '97110' in the CodeSystem '{CPT}' version '{CPT_VERSION}' - note that the code "
               "system is labeled as a fragment, so the code may be valid in some other fragment")
CC = {"coding": [{"system": ICD, "code": "J45.909"}, {"system": ICD, "code": "M62.81"}]}


def _icd(code: str, display: str | None = None) -> Coding:
    return Coding(ICD, code, display=display)


def _valid(code: str, system: str, version: str, display: str | None, **more) -> ValidateCodeResult:
    return ValidateCodeResult(True, code, system, version, display, **more)


VALIDATIONS = {
    "value-set-code": (
        ValidateCodeRequest(codings=(_icd("R26.2"),), url=ICD_VS),
        _valid("R26.2", ICD, ICD_VERSION, ICD_TITLES["R26.2"])),
    "value-set-coding-not-a-member": (
        ValidateCodeRequest(codings=(_icd("J45.909"),), form="coding", url=ICD_VS),
        ValidateCodeResult(False, "J45.909", ICD, ICD_VERSION, "Unspecified asthma, uncomplicated", J45_NOT_IN_VS, (
            Issue("error", "code-invalid", "not-in-vs", J45_NOT_IN_VS,
                  "None_of_the_provided_codes_are_in_the_value_set_one", "Coding.code"),))),
    "value-set-codeable-concept": (
        ValidateCodeRequest(codings=(_icd("J45.909"), _icd("M62.81")), form="codeableConcept", codeable_concept=CC,
                            url=ICD_VS),
        _valid("M62.81", ICD, ICD_VERSION, ICD_TITLES["M62.81"], codeable_concept=CC, issues=(
            Issue("information", "code-invalid", "this-code-not-in-vs", J45_NOT_IN_VS,
                  "None_of_the_provided_codes_are_in_the_value_set_one", "CodeableConcept.coding[0].code"),))),
    "value-set-wrong-display": (
        ValidateCodeRequest(codings=(_icd("R26.2", "Walking problems"),), url=ICD_VS),
        ValidateCodeResult(False, "R26.2", ICD, ICD_VERSION, ICD_TITLES["R26.2"], WRONG_WALKING, (
            Issue("error", "invalid", "invalid-display", WRONG_WALKING,
                  "Display_Name_for__should_be_one_of__instead_of", "display"),))),
    "value-set-unknown-code": (
        ValidateCodeRequest(codings=(_icd("R26.99"),), url=ICD_VS),
        ValidateCodeResult(False, "R26.99", ICD, ICD_VERSION, None, f"{UNKNOWN_R26_99}; {R26_99_NOT_IN_VS}", (
            Issue("error", "code-invalid", "invalid-code", UNKNOWN_R26_99, "Unknown_Code_in_Version", "code"),
            Issue("error", "code-invalid", "not-in-vs", R26_99_NOT_IN_VS,
                  "None_of_the_provided_codes_are_in_the_value_set_one", "code")))),
    "code-system-code": (
        ValidateCodeRequest(codings=(Coding(CPT, "97116", display=DISPLAY_97116),), code_system_url=CPT),
        _valid("97116", CPT, CPT_VERSION, DISPLAY_97116)),
    "code-system-coding-synonym": (
        ValidateCodeRequest(codings=(Coding(CPT, "97116", CPT_VERSION, "Walking Therapy"),), form="coding",
                            code_system_url=CPT),
        _valid("97116", CPT, CPT_VERSION, DISPLAY_97116)),
    "code-system-wrong-display": (
        ValidateCodeRequest(codings=(Coding(CPT, "97116", display="Gait training"),), code_system_url=CPT),
        ValidateCodeResult(False, "97116", CPT, CPT_VERSION, DISPLAY_97116, WRONG_GAIT, (
            Issue("error", "invalid", "invalid-display", WRONG_GAIT,
                  "Display_Name_for__should_be_one_of__instead_of", "display"),))),
    "code-system-unknown-code": (
        ValidateCodeRequest(codings=(_icd("R26.99"),), code_system_url=ICD),
        ValidateCodeResult(False, "R26.99", ICD, ICD_VERSION, None, UNKNOWN_R26_99, (
            Issue("error", "code-invalid", "invalid-code", UNKNOWN_R26_99, "Unknown_Code_in_Version", "code"),))),
    "code-system-fragment-unknown-code-is-a-warning": (
        ValidateCodeRequest(codings=(Coding(CPT, "97110"),), code_system_url=CPT),
        _valid("97110", CPT, CPT_VERSION, None, issues=(
            Issue("warning", "code-invalid", "invalid-code", IN_FRAGMENT, "UNKNOWN_CODE_IN_FRAGMENT", "code"),))),
}


@pytest.mark.parametrize("case", list(VALIDATIONS))
def test_validate_code(backend, service, case):
    request, expected = VALIDATIONS[case]
    result = backend.validate_code(request)
    assert result == service.validate_code(request)
    assert result == expected


def test_validate_code_accept_language_is_the_display_language(backend, service):
    request = ValidateCodeRequest(codings=(_icd("R26.2", "Gehstörung"),), url=ICD_VS, accept_language="de")
    result = backend.validate_code(request)
    assert result == service.validate_code(request)
    assert (result.result, result.message) == (False, (
        f"Wrong Display Name 'Gehstörung' for {ICD}#R26.2. There are no valid display names found for "
        f"language(s) 'de'. Default display is '{ICD_TITLES['R26.2']}'"))
    assert result.issues[0].message_id == "NO_VALID_DISPLAY_FOUND_NONE_FOR_LANG_ERR"


# --- $subsumes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("request_", "expected"), [
    (SubsumesRequest(code_a="M62", code_b="M62.81", system=ICD), SubsumesResult("subsumes", ICD, ICD_VERSION)),
    (SubsumesRequest(code_a="M62.81", code_b="M62", system=ICD), SubsumesResult("subsumed-by", ICD, ICD_VERSION)),
    (SubsumesRequest(coding_a=_icd("R26.2"), coding_b=_icd("M62.81")), SubsumesResult("not-subsumed", ICD, ICD_VERSION)),
    (SubsumesRequest(code_a="R26.2", code_b="R26.2", system=ICD, version=ICD_VERSION),
     SubsumesResult("equivalent", ICD, ICD_VERSION)),
    (SubsumesRequest(code_a="97116", code_b="97116", system=CPT), SubsumesResult("equivalent", CPT, CPT_VERSION)),
], ids=["subsumes", "subsumed-by", "not-subsumed-codings", "equivalent-with-version", "equivalent-cpt"])
def test_subsumes(backend, service, request_, expected):
    result = backend.subsumes(request_)
    assert result == service.subsumes(request_)
    assert result == expected


# --- $expand --------------------------------------------------------------------------------------

ICD_VS_ELEMENTS = {
    "resourceType": "ValueSet", "id": "icd-10-cm-gait-training-diagnoses", "url": ICD_VS, "version": "1.0.0",
    "name": "Icd10cmGaitTrainingDiagnoses", "title": "ICD-10-CM diagnoses associated with CPT 97116 (gait training)",
    "status": "active", "experimental": False, "date": "2026-11-28", "publisher": "fhir_plugin project"}
USED_ICD = ExpansionParameter("used-codesystem", "Uri", f"{ICD}|{ICD_VERSION}")
USED_CPT = f"{CPT}|{CPT_VERSION}"
WEAKNESS = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [
    {"system": ICD, "filter": [{"property": "concept", "op": "is-a", "value": "M62.8"}]}]}}


def _entry(code: str) -> ExpansionEntry:
    return ExpansionEntry(ICD, code, display=ICD_TITLES[code])


def _use(system: str, code: str, display: str) -> Coding:
    return Coding(system, code, display=display)


SYNONYM = _use(SNOMED, "900000000000013009", "Synonym")
EXPANSIONS = {
    "url": (
        ExpandRequest(url=ICD_VS),
        ExpandResult(ICD_VS_ELEMENTS, "", "", 3, parameters=(USED_ICD,),
                     contains=(_entry("M62.81"), _entry("R26.2"), _entry("G81.90")))),
    "inline-with-filter-and-count": (
        ExpandRequest(value_set=WEAKNESS, filter="weak", count=10),
        ExpandResult({"resourceType": "ValueSet", "status": "active"}, "", "", 1, offset=0, parameters=(
            ExpansionParameter("filter", "String", "weak"), ExpansionParameter("count", "Integer", 10), USED_ICD),
            contains=(_entry("M62.81"),))),
    "paged": (
        ExpandRequest(url=ICD_VS, offset=1, count=1),
        ExpandResult(ICD_VS_ELEMENTS, "", "", 3, offset=1, parameters=(
            ExpansionParameter("count", "Integer", 1), ExpansionParameter("offset", "Integer", 1), USED_ICD),
            contains=(_entry("R26.2"),))),
    "designations": (
        ExpandRequest(url=CPT_VS, include_designations=True),
        ExpandResult({
            "resourceType": "ValueSet", "id": "cpt-gait-training", "url": CPT_VS, "version": "1.0.0",
            "name": "CptGaitTrainingProcedures", "title": "CPT gait-training procedures", "status": "active",
            "experimental": False, "date": "2026-11-28", "publisher": "fhir_plugin project"}, "", "", 1, parameters=(
                ExpansionParameter("includeDesignations", "Boolean", True),
                ExpansionParameter("used-codesystem", "Uri", USED_CPT),
                ExpansionParameter("used-fragment", "Uri", USED_CPT)),
            contains=(ExpansionEntry(CPT, "97116", display=DISPLAY_97116, designations=(
                Designation("Gait Training", "en", SYNONYM),
                Designation("Walking Therapy", "en", SYNONYM),
                Designation("Mobility Training", "en", SYNONYM),
                Designation("Walking practice session", "en",
                            _use(USE_SYSTEM, "or-schedule-name", "Operating-room schedule name")),
                Designation("Agreement to perform walking and stair practice", "en",
                            _use(USE_SYSTEM, "consent-form-name", "Surgical consent form name")))),),
            fragment_of=CPT)),
}


@pytest.mark.parametrize("case", list(EXPANSIONS))
def test_expand(backend, service, case):
    request, expected = EXPANSIONS[case]
    result = comparable(backend.expand(request))
    assert result == comparable(service.expand(request))
    assert result == dataclasses.replace(expected, identifier=result.identifier, timestamp=result.timestamp)


# --- $batch-validate-code ---------------------------------------------------------------------------


def test_batch_validate(backend, service):
    unreadable = InvalidRequest("PARAM_BAD_TYPE", parameter="validation", expected="a Parameters resource")
    requests = [VALIDATIONS["value-set-code"][0], VALIDATIONS["value-set-wrong-display"][0],
                ValidateCodeRequest(codings=(_icd("R26.2"),), url=NONE_VS),
                unreadable, VALIDATIONS["code-system-wrong-display"][0]]
    results = backend.batch_validate(requests)
    local = service.batch_validate(requests)
    assert len(results) == len(local) == 5
    assert results[:2] == local[:2] == [VALIDATIONS["value-set-code"][1], VALIDATIONS["value-set-wrong-display"][1]]
    error = results[2]
    assert isinstance(error, UnknownValueSet) and type(error) is type(local[2])
    assert (error.status, error.message_id, error.text, error.fields) == (
        404, "Unable_to_resolve_value_Set_", f"A definition for the value Set '{NONE_VS}' could not be found",
        {"value_set": NONE_VS})
    assert (error.status, error.message_id, error.text, error.fields) == (
        local[2].status, local[2].message_id, local[2].text, local[2].fields)
    assert results[3] is unreadable  # an error already: answered by itself, in its place
    assert results[4] == local[4] == VALIDATIONS["code-system-wrong-display"][1]


# --- code systems named by an OID --------------------------------------------------------------------

ICD_OID, CPT_OID = "urn:oid:2.16.840.1.113883.6.90", "urn:oid:2.16.840.1.113883.6.12"


def _named_by(given: str, canonical: str, expression: str | None) -> Issue:
    return Issue("warning", "invalid", "invalid-data",
                 f"It is not valid to refer to a CodeSystem by an identifier like this '{given}' - use '{canonical}'",
                 "VALUESET_INCLUDE_WRONG_CS_OID", expression)


@pytest.mark.parametrize("request_, expected", [
    (LookupRequest(system=ICD_OID, code="R26.2", properties=("parent",)), (ICD, (_named_by(ICD_OID, ICD, "system"),))),
    (LookupRequest(coding=Coding(CPT_OID, "97116"), properties=("kind",)),
     (CPT, (_named_by(CPT_OID, CPT, "coding.system"),))),
], ids=["lookup-icd", "lookup-cpt"])
def test_lookup_by_oid(backend, service, request_, expected):
    result = backend.lookup(request_)
    assert result == service.lookup(request_)
    assert (result.system, result.issues) == expected


def test_translate_subsumes_validate_and_expand_by_oid(backend, service):
    translated = backend.translate(TranslateRequest(source=(Coding(CPT_OID, "97116"),), target_system=ICD_OID))
    assert translated == service.translate(TranslateRequest(source=(Coding(CPT_OID, "97116"),), target_system=ICD_OID))
    assert translated.issues == (_named_by(CPT_OID, CPT, "sourceCoding.system"), _named_by(ICD_OID, ICD, "targetSystem"))
    assert [m.concept.system for m in translated.matches] == [ICD, ICD, ICD]
    subsumed = backend.subsumes(SubsumesRequest(code_a="M62", code_b="M62.81", system=ICD_OID))
    assert subsumed == service.subsumes(SubsumesRequest(code_a="M62", code_b="M62.81", system=ICD_OID)) == \
        SubsumesResult("subsumes", ICD, ICD_VERSION, (_named_by(ICD_OID, ICD, "system"),))
    request = ValidateCodeRequest(codings=(Coding(ICD_OID, "R26.2"),), form="coding", url=ICD_VS)
    validated = backend.validate_code(request)
    assert validated == service.validate_code(request)
    assert (validated.result, validated.system, validated.issues) == (
        True, ICD, (_named_by(ICD_OID, ICD, "Coding.system"),))
    expand = ExpandRequest(value_set={"resourceType": "ValueSet", "status": "active", "compose": {"include": [
        {"system": ICD_OID, "concept": [{"code": "R26.2"}]}]}})
    expanded = comparable(backend.expand(expand))
    assert expanded == comparable(service.expand(expand))
    assert expanded.parameters == (USED_ICD, ExpansionParameter("warning-identifier", "String",
                                                                _named_by(ICD_OID, ICD, None).text))


# --- read, search, metadata ---------------------------------------------------------------------------

MAP_ENTRY = ResourceEntry("ConceptMap", CM_URL, "1.0.0", "cpt-97116-to-icd-10-cm", "Cpt97116ToIcd10cm",
                          "CPT 97116 (gait training) to associated ICD-10-CM diagnoses", "active", {})
ICD_VS_ENTRY = ResourceEntry("ValueSet", ICD_VS, "1.0.0", "icd-10-cm-gait-training-diagnoses",
                             "Icd10cmGaitTrainingDiagnoses", ICD_VS_ELEMENTS["title"], "active", {})
CPT_ENTRY = ResourceEntry("CodeSystem", CPT, CPT_VERSION, "cpt-97116-fragment", "CPT",
                          "Current Procedural Terminology (CPT®), fragment: 97116 only", "active", {})


def test_read_gives_the_r5_resource(backend, service):
    entry = backend.read("ConceptMap", "cpt-97116-to-icd-10-cm")
    assert entry == MAP_ENTRY
    assert entry.resource == service.read("ConceptMap", "cpt-97116-to-icd-10-cm").resource
    assert entry.resource["sourceScopeUri"] == CPT_VS  # R5 names, from the R4 endpoint too
    assert [t["relationship"] for t in entry.resource["group"][0]["element"][0]["target"]] == ["related-to"] * 3


@pytest.mark.parametrize(("resource_type", "criteria", "expected"), [
    ("ValueSet", {"url": ICD_VS}, [ICD_VS_ENTRY]),
    ("ConceptMap", {"url": CM_CANONICAL}, [MAP_ENTRY]),
    ("CodeSystem", {"name": "cp"}, [CPT_ENTRY]),
    ("ValueSet", {"name": "nothing-like-this"}, []),
], ids=["url", "url-and-version", "name", "none"])
def test_search(backend, service, resource_type, criteria, expected):
    found = backend.search(resource_type, criteria)
    assert found == service.search(resource_type, criteria) == expected
    assert [e.resource for e in found] == [e.resource for e in service.search(resource_type, criteria)]


def test_metadata(backend, service):
    assert backend.metadata() == service.metadata() == TerminologyMetadata((
        CodeSystemVersions(CPT, (CPT_VERSION,)), CodeSystemVersions(USE_SYSTEM, ("1.0.0",)),
        CodeSystemVersions(ICD, (ICD_VERSION,))))


# --- errors: the same class, status, message id, text, fields and expression -----------------------

ERRORS = {
    "expand-unknown-value-set": (
        lambda b: b.expand(ExpandRequest(url=NONE_VS)), UnknownValueSet, 404, "Unable_to_resolve_value_Set_",
        f"A definition for the value Set '{NONE_VS}' could not be found", {"value_set": NONE_VS}, None),
    "validate-unknown-value-set": (
        lambda b: b.validate_code(ValidateCodeRequest(codings=(_icd("R26.2"),), url=NONE_VS)), UnknownValueSet, 404,
        "Unable_to_resolve_value_Set_", f"A definition for the value Set '{NONE_VS}' could not be found",
        {"value_set": NONE_VS}, None),
    "subsumes-unknown-code-system": (
        lambda b: b.subsumes(SubsumesRequest(code_a="1", code_b="2", system=NONE_CS)), UnknownCodeSystem, 404,
        "UNKNOWN_CODESYSTEM_LOOKUP",
        f"A definition for CodeSystem '{NONE_CS}' could not be found, so the code cannot be looked up",
        {"system": NONE_CS}, "system"),
    "subsumes-unknown-code": (
        lambda b: b.subsumes(SubsumesRequest(code_a="M62", code_b="M62.99", system=ICD)), UnknownCode, 404,
        "LOOKUP_CODE_NOT_FOUND", f"Unable to find code 'M62.99' in {ICD} version {ICD_VERSION}",
        {"code": "M62.99", "system": ICD, "version": ICD_VERSION}, "codeB"),
    "expand-too-costly": (
        lambda b: b.expand(ExpandRequest(url=ICD_VS, max_expansion=2)), TooCostly, 400,
        "VALUESET_TOO_COSTLY", f"The value set '{ICD_VS_LABEL}' expansion has too many codes to produce (>2)",
        {"value_set": ICD_VS_LABEL, "size": ">2"}, None),
    "read-unknown-id": (
        lambda b: b.read("CodeSystem", "no-such-id"), NotFound, 404, "RESOURCE_NOT_FOUND",
        "CodeSystem/no-such-id not found", {"resource_type": "CodeSystem", "id": "no-such-id"}, None),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors(backend, service, case):
    call, cls, status, message_id, text, fields, expression = ERRORS[case]
    with pytest.raises(TerminologyError) as caught:
        call(backend)
    with pytest.raises(TerminologyError) as raised_here:
        call(service)
    error, local = caught.value, raised_here.value
    assert (type(error), error.status, error.message_id, error.text, error.fields, error.expression) == (
        cls, status, message_id, text, fields, expression)
    assert (type(local), local.status, local.message_id, local.text, local.fields, local.expression) == (
        cls, status, message_id, text, fields, expression)
    if isinstance(backend, TerminologyClient):
        assert error.outcome is not None and error.outcome["issue"][0]["details"]["text"] == text
