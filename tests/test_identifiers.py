"""Code systems named by an OID or another identifier (terminology/aliases.py, identifiers.py), in
the engine: every operation takes the alias for the canonical URL it names, answers with that URL
and warns (VALUESET_INCLUDE_WRONG_CS_OID); an alias of nothing loaded stays an unknown code system;
content in which one identifier names two code systems is refused at load.

Each answer to an alias is compared with the answer to the canonical URL (and the literal warning
added), so the tests hold the engine to giving the same answer, not merely an answer.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import CM_CANONICAL, CPT, CPT_VERSION, DISPLAY_97116, ICD, ICD_TITLES, ICD_VERSION, ICD_VS, with_resources

from fhir_plugin.content import load_paths, load_resource
from fhir_plugin.content.canonicals import CanonicalIndex
from fhir_plugin.errors import InvalidContent, UnknownCode, UnknownCodeSystem
from fhir_plugin.terminology.aliases import declared_aliases, naming_system_canonical
from fhir_plugin.terminology.entries import Coding
from fhir_plugin.terminology.identifiers import renamed_in
from fhir_plugin.terminology.models import (ExpandRequest, ExpansionParameter, Issue, LookupRequest, SubsumesRequest,
                                            TranslateMatch, TranslateRequest, TranslateResult, ValidateCodeRequest,
                                            ValidateCodeResult, VersionRules)
from fhir_plugin.terminology.registry import Registry

ICD_OID = "urn:oid:2.16.840.1.113883.6.90"
CPT_OID = "urn:oid:2.16.840.1.113883.6.12"
ICD_LEGACY = "http://terminology.hl7.org/CodeSystem/icd10CM"
UNKNOWN_OID = "urn:oid:1.2.3.4.5"
EX = "http://example.org/fhir"


def warned(given: str, canonical: str, expression: str | None) -> Issue:
    """The warning, written out: the HL7 message catalogue's wording of VALUESET_INCLUDE_WRONG_CS_OID."""
    return Issue("warning", "invalid", "invalid-data",
                 f"It is not valid to refer to a CodeSystem by an identifier like this '{given}' - use '{canonical}'",
                 "VALUESET_INCLUDE_WRONG_CS_OID", expression)


def naming_system(*unique_ids: dict, kind: str = "codesystem", **extra) -> dict:
    return {"resourceType": "NamingSystem", "id": "ns", "name": "ICD10CM", "status": "active", "kind": kind,
            "date": "2026-01-01", "uniqueId": list(unique_ids), **extra}


def uid(kind: str, value: str, preferred: bool | None = None) -> dict:
    return {"type": kind, "value": value, **({} if preferred is None else {"preferred": preferred})}


# The THO NamingSystem of ICD-10-CM, as the HL7 Terminology publishes it (OID and URI preferred,
# the former URI kept), with a v2 mnemonic of our own.
ICD_NAMING_SYSTEM = naming_system(uid("oid", "2.16.840.1.113883.6.90", True),
                                  uid("uri", ICD, True), uid("uri", ICD_LEGACY, False),
                                  uid("v2csmnemonic", "I10C"))


def code_system(url: str, *identifiers: str, version: str = "1", cid: str = "cs") -> dict:
    return {"resourceType": "CodeSystem", "id": cid, "url": url, "version": version, "status": "active",
            "content": "complete", "identifier": [{"system": "urn:ietf:rfc:3986", "value": v} for v in identifiers],
            "concept": [{"code": "a", "display": "Alpha"}]}


# --- what content declares --------------------------------------------------------------------


def test_the_bundled_code_systems_declare_their_oids(service):
    assert service.registry.aliases == {ICD_OID: ICD, CPT_OID: CPT}


@pytest.mark.parametrize("resource, expected", [
    (code_system(f"{EX}/cs", "urn:oid:1.2.3", f"{EX}/cs", "urn:uuid:7c8b"), [("urn:oid:1.2.3", f"{EX}/cs"),
                                                                             ("urn:uuid:7c8b", f"{EX}/cs")]),
    # a business identifier (not a URI) names nothing; a supplement names no code system to use
    ({**code_system(f"{EX}/cs"), "identifier": [{"system": f"{EX}/ids", "value": "X-1"},
                                                 {"system": f"{EX}/ids", "value": "urn:oid:1.2.4"}]},
     [("urn:oid:1.2.4", f"{EX}/cs")]),
    ({**code_system(f"{EX}/sup", "urn:oid:1.2.5"), "content": "supplement", "supplements": ICD}, []),
    (ICD_NAMING_SYSTEM, [(ICD_OID, ICD), (ICD_LEGACY, ICD), ("I10C", ICD)]),
    (naming_system(uid("oid", "1.2.6"), uid("uuid", "5f1d"), uid("uri", f"{EX}/six"), uid("other", "SIX"),
                   uid("iri-stem", f"{EX}/stem/")),
     [("urn:oid:1.2.6", f"{EX}/six"), ("urn:uuid:5f1d", f"{EX}/six"), ("SIX", f"{EX}/six")]),
    # without a uri, the OID is the code system's name (urn:oid:...), as FHIR says
    (naming_system(uid("oid", "1.2.7"), uid("other", "SEVEN")), [("SEVEN", "urn:oid:1.2.7")]),
    (naming_system(uid("oid", "urn:oid:1.2.8"), uid("uri", f"{EX}/eight"), kind="identifier"), []),
    ({"resourceType": "ValueSet", "url": f"{EX}/vs", "identifier": [{"system": "urn:ietf:rfc:3986",
                                                                     "value": "urn:oid:1.2.9"}]}, []),
], ids=["code-system", "business-identifier", "supplement", "tho-icd", "every-type", "oid-only", "identifier-kind",
        "value-set"])
def test_the_identifiers_content_declares(resource, expected):
    assert declared_aliases(resource) == expected


def test_a_naming_system_with_several_uris_and_none_preferred_is_refused():
    resource = naming_system(uid("oid", "1.2.10"), uid("uri", f"{EX}/a"), uid("uri", f"{EX}/b"))
    assert naming_system_canonical({**resource, "uniqueId": [*resource["uniqueId"][:2], uid("uri", f"{EX}/b", True)]}) \
        == f"{EX}/b"
    with pytest.raises(InvalidContent) as caught:
        load_resource(resource, "ns.json")
    assert (caught.value.status, caught.value.message_id, caught.value.text) == (
        422, "CONTENT_NAMINGSYSTEM_AMBIGUOUS",
        f"ns.json: NamingSystem/ns names a code system by several uri identifiers ({EX}/a, {EX}/b) and marks none "
        "preferred, so its URL cannot be told")


@pytest.mark.parametrize("resource, problem", [
    (naming_system(uid("oid", "1.2.11"), kind="codes"), "kind: 'codes' is not one of codesystem, identifier, root"),
    (naming_system(uid("guid", "1.2.11")),
     "uniqueId.0.type: 'guid' is not one of iri-stem, oid, other, uri, uuid, v2csmnemonic"),
])
def test_a_naming_system_with_a_code_outside_its_binding_is_refused(resource, problem):
    with pytest.raises(InvalidContent) as caught:
        load_resource(resource, "ns.json")
    assert caught.value.text == f"ns.json: NamingSystem/ns is not valid FHIR R5: {problem}"


# --- $lookup ----------------------------------------------------------------------------------


@pytest.mark.parametrize("system, canonical, code", [(ICD_OID, ICD, "R26.2"), (CPT_OID, CPT, "97116")])
def test_lookup_by_oid_answers_as_the_canonical_url_with_a_warning(service, system, canonical, code):
    expected = service.lookup(LookupRequest(system=canonical, code=code))
    assert expected.issues == ()
    assert service.lookup(LookupRequest(system=system, code=code)) == replace(
        expected, issues=(warned(system, canonical, "system"),))
    assert service.lookup(LookupRequest(coding=Coding(system, code))) == replace(
        expected, issues=(warned(system, canonical, "coding.system"),))


def test_lookup_by_oid_reports_the_canonical_url(service):
    result = service.lookup(LookupRequest(system=ICD_OID, code="R26.2"))
    assert (result.system, result.version, result.display) == (ICD, ICD_VERSION, ICD_TITLES["R26.2"])


def test_an_unknown_code_by_oid_names_the_canonical_url(service):
    with pytest.raises(UnknownCode) as caught:
        service.lookup(LookupRequest(system=CPT_OID, code="97110"))
    assert caught.value.text == (f"Unknown Code '97110' in the CodeSystem '{CPT}' version '2026' - note that the code "
                                 "system is labeled as a fragment, so the code may be valid in some other fragment")


@pytest.mark.parametrize("system", [UNKNOWN_OID, "urn:oid:2.16.840.1.113883.6.90.1", "URN:OID:2.16.840.1.113883.6.90",
                                    "2.16.840.1.113883.6.90", "urn:oid:" + "9." * 5000 + "9", "urn:oid:\u00e9\n|#"])
def test_an_oid_no_content_declares_stays_an_unknown_code_system(service, system):
    with pytest.raises(UnknownCodeSystem) as caught:
        service.lookup(LookupRequest(system=system, code="R26.2"))
    assert (caught.value.system, caught.value.text) == (
        system, f"A definition for CodeSystem '{system}' could not be found, so the code cannot be looked up")


# --- $validate-code ---------------------------------------------------------------------------


def test_codesystem_validate_code_by_oid(service):
    request = ValidateCodeRequest(codings=(Coding(ICD_OID, "R26.2"),), code_system_url=ICD_OID)
    warning = warned(ICD_OID, ICD, "system")
    assert service.validate_code(request) == ValidateCodeResult(
        result=True, code="R26.2", system=ICD, version=ICD_VERSION, display=ICD_TITLES["R26.2"],
        message=warning.text, issues=(warning,))


def test_valueset_validate_code_of_a_coding_by_oid(service):
    request = ValidateCodeRequest(codings=(Coding(ICD_OID, "R26.2", display="Difficulty in walking"),),
                                  form="coding", url=ICD_VS)
    result = service.validate_code(request)
    canonical = service.validate_code(replace(request, codings=(Coding(ICD, "R26.2", display="Difficulty in walking"),)))
    warning = warned(ICD_OID, ICD, "Coding.system")
    assert canonical.result is False  # a wrong display: the warning joins the error in the message
    assert result == replace(canonical, issues=(*canonical.issues, warning),
                             message=f"{canonical.message}; {warning.text}")


def test_valueset_validate_code_of_a_codeable_concept_by_oids(service):
    cc = {"coding": [{"system": CPT_OID, "code": "97116"}, {"system": ICD_OID, "code": "M62.81"}]}
    request = ValidateCodeRequest(codings=(Coding(CPT_OID, "97116"), Coding(ICD_OID, "M62.81")),
                                  form="codeableConcept", codeable_concept=cc, url=ICD_VS)
    result = service.validate_code(request)
    canonical = service.validate_code(replace(request, codings=(Coding(CPT, "97116"), Coding(ICD, "M62.81"))))
    warnings = (warned(CPT_OID, CPT, "CodeableConcept.coding[0].system"),
                warned(ICD_OID, ICD, "CodeableConcept.coding[1].system"))
    assert (canonical.result, canonical.system, canonical.message) == (True, ICD, None)
    assert result == replace(canonical, issues=(*canonical.issues, *warnings),
                             message="; ".join(w.text for w in warnings))
    assert result.codeable_concept == cc  # echoed as given


def test_version_rules_by_oid(service):
    request = ValidateCodeRequest(codings=(Coding(ICD, "R26.2"),), url=ICD_VS,
                                  versions=VersionRules(force={ICD_OID: "2020"}))
    result = service.validate_code(request)
    canonical = service.validate_code(replace(request, versions=VersionRules(force={ICD: "2020"})))
    assert canonical.result is False and canonical.caused_by_unknown_system == (f"{ICD}|2020",)
    warning = warned(ICD_OID, ICD, "force-system-version")
    assert result == replace(canonical, issues=(*canonical.issues, warning),
                             message=f"{canonical.message}; {warning.text}")


def test_validate_code_of_an_unknown_oid_is_an_unknown_system(service):
    result = service.validate_code(ValidateCodeRequest(codings=(Coding(UNKNOWN_OID, "x"),), code_system_url=UNKNOWN_OID))
    text = f"A definition for CodeSystem '{UNKNOWN_OID}' could not be found, so the code cannot be validated"
    assert result == ValidateCodeResult(
        result=False, code="x", system=UNKNOWN_OID, message=text, unknown_systems=(UNKNOWN_OID,),
        issues=(Issue("error", "not-found", "not-found", text, "UNKNOWN_CODESYSTEM", "system"),))


def oid_value_set(**include) -> dict:
    return {"resourceType": "ValueSet", "url": f"{EX}/ValueSet/by-oid", "version": "1", "status": "active",
            "compose": {"include": [{"system": ICD_OID, **include}]}}


def test_a_value_set_that_includes_a_code_system_by_oid_validates_either_name(service):
    value_set = oid_value_set(concept=[{"code": "R26.2"}])
    include = warned(ICD_OID, ICD, "ValueSet.compose.include[0].system")
    by_url = service.validate_code(ValidateCodeRequest(codings=(Coding(ICD, "R26.2"),), value_set=value_set))
    assert by_url == ValidateCodeResult(result=True, code="R26.2", system=ICD, version=ICD_VERSION,
                                        display=ICD_TITLES["R26.2"], message=include.text, issues=(include,))
    by_oid = service.validate_code(ValidateCodeRequest(codings=(Coding(ICD_OID, "R26.2"),), value_set=value_set))
    coding = warned(ICD_OID, ICD, "system")
    assert coding.text == include.text  # the same words twice are said once in `message`
    assert by_oid == replace(by_url, issues=(coding, include), message=coding.text)
    missing = service.validate_code(ValidateCodeRequest(codings=(Coding(ICD, "M62.81"),), value_set=value_set))
    assert (missing.result, [i.message_id for i in missing.issues]) == (
        False, ["None_of_the_provided_codes_are_in_the_value_set_one", "VALUESET_INCLUDE_WRONG_CS_OID"])


# --- $translate -------------------------------------------------------------------------------


def icd_coding(code: str) -> Coding:
    return Coding(ICD, code, ICD_VERSION, ICD_TITLES[code])


FORWARD = tuple(TranslateMatch("related-to", icd_coding(code), CM_CANONICAL) for code in ("M62.81", "R26.2", "G81.90"))


@pytest.mark.parametrize("request_, expression", [
    (TranslateRequest(source=(Coding(CPT_OID, "97116"),)), "sourceCoding.system"),
    (TranslateRequest(source=(Coding(CPT_OID, "97116"),), source_form="code"), "sourceSystem"),
    (TranslateRequest(source=(Coding(CPT_OID, "97116"),), source_form="code", dialect="R4"), "system"),
    (TranslateRequest(source=(Coding(CPT_OID, "97116"),), dialect="R4"), "coding.system"),
    (TranslateRequest(source=(Coding(EX, "1"), Coding(CPT_OID, "97116"))), "sourceCodeableConcept.coding[1].system"),
], ids=["coding", "code", "r4-code", "r4-coding", "codeable-concept"])
def test_translate_a_source_given_by_oid(service, request_, expression):
    warning = warned(CPT_OID, CPT, expression)
    assert service.translate(request_) == TranslateResult(result=True, matches=FORWARD, message=warning.text,
                                                          mode="forward", dialect=request_.dialect, issues=(warning,))


def test_translate_to_a_target_system_given_by_oid(service):
    warning = warned(ICD_OID, ICD, "targetSystem")
    assert service.translate(TranslateRequest(source=(Coding(CPT, "97116"),), target_system=ICD_OID)) == \
        TranslateResult(result=True, matches=FORWARD, message=warning.text, mode="forward", issues=(warning,))


def test_translate_by_a_target_given_by_oid(service):
    result = service.translate(TranslateRequest(target=(Coding(ICD_OID, "R26.2"),), source_system=CPT_OID))
    warnings = (warned(ICD_OID, ICD, "targetCoding.system"), warned(CPT_OID, CPT, "sourceSystem"))
    cpt = Coding(CPT, "97116", CPT_VERSION, DISPLAY_97116)
    assert result == TranslateResult(
        result=True, mode="target", matches=(TranslateMatch("related-to", icd_coding("R26.2"), CM_CANONICAL, cpt),),
        message="; ".join(w.text for w in warnings), issues=warnings)


def test_translate_a_pair_given_by_oids_that_is_not_mapped(service):
    result = service.translate(TranslateRequest(source=(Coding(CPT_OID, "97116"),), target=(Coding(ICD_OID, "J45.909"),)))
    warnings = (warned(CPT_OID, CPT, "sourceCoding.system"), warned(ICD_OID, ICD, "targetCoding.system"))
    assert result == TranslateResult(
        result=False, mode="pair", issues=warnings,
        message="; ".join([f"'97116' in '{CPT}' is not mapped to 'J45.909' in '{ICD}'", *(w.text for w in warnings)]))


def test_a_concept_map_whose_groups_name_code_systems_by_oid(service):
    concept_map = {"resourceType": "ConceptMap", "status": "active", "group": [
        {"source": CPT_OID, "target": ICD_OID, "element": [
            {"code": "97116", "target": [{"code": "R26.2", "relationship": "related-to"}]}]}]}
    warnings = (warned(CPT_OID, CPT, "ConceptMap.group[0].source"), warned(ICD_OID, ICD, "ConceptMap.group[0].target"))
    match = TranslateMatch("related-to", Coding(ICD, "R26.2"), None)
    for request in (TranslateRequest(source=(Coding(CPT, "97116"),), concept_map=concept_map, target_system=ICD),
                    TranslateRequest(source=(Coding(CPT_OID, "97116"),), concept_map=concept_map)):
        result = service.translate(request)
        issues = (warned(CPT_OID, CPT, "sourceCoding.system"), *warnings) if request.source[0].system == CPT_OID \
            else warnings
        assert result == TranslateResult(result=True, matches=(match,), mode="forward", issues=issues,
                                          message="; ".join(i.text for i in issues))


# --- $subsumes --------------------------------------------------------------------------------


def test_subsumes_by_oid(service):
    result = service.subsumes(SubsumesRequest(code_a="M62", code_b="M62.81", system=ICD_OID))
    assert (result.outcome, result.system, result.version, result.issues) == (
        "subsumes", ICD, ICD_VERSION, (warned(ICD_OID, ICD, "system"),))


def test_subsumes_of_one_coding_by_oid_and_one_by_url(service):
    result = service.subsumes(SubsumesRequest(coding_a=Coding(ICD, "M62.81"), coding_b=Coding(ICD_OID, "M62")))
    assert (result.outcome, result.system, result.issues) == (
        "subsumed-by", ICD, (warned(ICD_OID, ICD, "codingB.system"),))


def test_renamed_in_reads_the_warning_back():
    assert renamed_in([warned(ICD_OID, ICD, "system"), Issue("error", "x", "y", "It is not valid", None)]) == {ICD_OID: ICD}


# --- $expand ----------------------------------------------------------------------------------


def test_expand_a_value_set_that_includes_a_code_system_by_oid(service):
    by_url = service.expand(ExpandRequest(value_set={**oid_value_set(concept=[{"code": "R26.2"}]),
                                                     "compose": {"include": [{"system": ICD, "concept": [{"code": "R26.2"}]}]}}))
    by_oid = service.expand(ExpandRequest(value_set=oid_value_set(concept=[{"code": "R26.2"}])))
    warning = ExpansionParameter("warning-identifier", "String", warned(ICD_OID, ICD, None).text)
    assert [(e.system, e.code, e.display) for e in by_oid.contains] == [(ICD, "R26.2", ICD_TITLES["R26.2"])]
    assert by_oid.parameters == (ExpansionParameter("used-codesystem", "Uri", f"{ICD}|{ICD_VERSION}"), warning)
    assert replace(by_oid, identifier="", timestamp="", parameters=()) == replace(
        by_url, identifier="", timestamp="", parameters=())


def test_expand_with_parameters_that_name_a_code_system_by_oid(service):
    value_set = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [
        {"system": ICD, "concept": [{"code": "R26.2"}]}, {"system": CPT, "concept": [{"code": "97116"}]}]}}
    result = service.expand(ExpandRequest(value_set=value_set, exclude_systems=(CPT_OID,),
                                          system_versions=(f"{ICD_OID}|{ICD_VERSION}",)))
    assert [(e.system, e.code) for e in result.contains] == [(ICD, "R26.2")]
    assert result.parameters == (
        ExpansionParameter("exclude-system", "Uri", CPT),
        ExpansionParameter("system-version", "Uri", f"{ICD}|{ICD_VERSION}"),
        ExpansionParameter("used-codesystem", "Uri", f"{ICD}|{ICD_VERSION}"),
        ExpansionParameter("used-codesystem", "Uri", f"{CPT}|{CPT_VERSION}"),
        ExpansionParameter("used-fragment", "Uri", f"{CPT}|{CPT_VERSION}"),
        ExpansionParameter("warning-identifier", "String", warned(CPT_OID, CPT, None).text),
        ExpansionParameter("warning-identifier", "String", warned(ICD_OID, ICD, None).text))


def test_an_imported_value_set_that_names_a_code_system_by_oid(service):
    imported = oid_value_set(filter=[{"property": "concept", "op": "is-a", "value": "R26"}])
    importer = {"resourceType": "ValueSet", "status": "active",
                "compose": {"include": [{"valueSet": [f"{EX}/ValueSet/by-oid|1"]}]}}
    overlay = with_resources(service, [imported])
    result = overlay.expand(ExpandRequest(value_set=importer))
    assert [e.code for e in result.contains] == ["R26", "R26.0", "R26.1", "R26.2", "R26.8", "R26.81", "R26.89", "R26.9"]
    assert ExpansionParameter("warning-identifier", "String", warned(ICD_OID, ICD, None).text) in result.parameters
    validated = overlay.validate_code(ValidateCodeRequest(codings=(Coding(ICD, "R26.2"),), value_set=importer))
    assert (validated.result, validated.issues) == (True, (warned(ICD_OID, ICD, "ValueSet.compose.include[0].system"),))


def test_expand_of_an_unknown_oid_is_an_unknown_code_system(service):
    with pytest.raises(UnknownCodeSystem) as caught:
        service.expand(ExpandRequest(value_set={"resourceType": "ValueSet", "status": "active",
                                                "compose": {"include": [{"system": UNKNOWN_OID}]}}))
    assert caught.value.text == (f"A definition for CodeSystem '{UNKNOWN_OID}' could not be found, so the value set "
                                 "cannot be expanded")


# --- NamingSystems and tx-resources ----------------------------------------------------------


def test_a_naming_system_in_a_tx_resource_names_icd_10_cm_by_its_other_identifiers(service):
    overlay = with_resources(service, [ICD_NAMING_SYSTEM])
    assert overlay.registry.aliases == {ICD_OID: ICD, CPT_OID: CPT, ICD_LEGACY: ICD, "I10C": ICD}
    expected = service.lookup(LookupRequest(system=ICD, code="R26.2"))
    for alias in (ICD_LEGACY, "I10C"):
        assert overlay.lookup(LookupRequest(system=alias, code="R26.2")) == replace(
            expected, issues=(warned(alias, ICD, "system"),))
    assert service.registry.aliases == {ICD_OID: ICD, CPT_OID: CPT}  # the overlay was for one request


def test_a_tx_resource_code_system_under_an_oid_url_wins_over_the_alias(service):
    overlay = with_resources(service, [code_system(ICD_OID)])
    assert ICD_OID not in overlay.registry.aliases
    result = overlay.lookup(LookupRequest(system=ICD_OID, code="a"))
    assert (result.system, result.display, result.issues) == (ICD_OID, "Alpha", ())


def test_a_tx_resource_alias_hides_the_one_below_it(service):
    overlay = with_resources(service, [code_system(f"{EX}/mine", ICD_OID)])
    assert overlay.registry.aliases[ICD_OID] == f"{EX}/mine"
    result = overlay.lookup(LookupRequest(system=ICD_OID, code="a"))
    assert (result.system, result.issues) == (f"{EX}/mine", (warned(ICD_OID, f"{EX}/mine", "system"),))


def test_an_identifier_two_tx_resources_give_different_code_systems_names_neither(service):
    """The HL7 regex-bad tests send two code systems that copy one OID: the request is answered,
    and the OID names no code system (not even the bundled one it hides)."""
    overlay = with_resources(service, [code_system(f"{EX}/one", "urn:oid:1.2.12", cid="one"),
                                       code_system(f"{EX}/two", "urn:oid:1.2.12", ICD_OID, cid="two")])
    assert overlay.registry.aliases == {CPT_OID: CPT, ICD_OID: f"{EX}/two"}
    with pytest.raises(UnknownCodeSystem):
        overlay.lookup(LookupRequest(system="urn:oid:1.2.12", code="a"))


def test_two_versions_of_one_code_system_may_both_declare_its_oid(service):
    registry = Registry([code_system(f"{EX}/v", "urn:oid:1.2.13", version="1"),
                         code_system(f"{EX}/v", "urn:oid:1.2.13", version="2", cid="cs2")])
    assert registry.aliases == {"urn:oid:1.2.13": f"{EX}/v"}


# --- refused at load --------------------------------------------------------------------------


def write(directory: Path, name: str, resource: dict) -> Path:
    path = directory / name
    path.write_text(json.dumps(resource))
    return path


@pytest.mark.parametrize("second, identifier, canonical, other", [
    (code_system(f"{EX}/two", "urn:oid:1.2.14", cid="two"), "urn:oid:1.2.14", f"{EX}/two", f"{EX}/one"),
    (naming_system(uid("oid", "1.2.14"), uid("uri", f"{EX}/two")), "urn:oid:1.2.14", f"{EX}/two", f"{EX}/one"),
    # an identifier that is the URL of another code system
    (code_system(f"{EX}/two", f"{EX}/one", cid="two"), f"{EX}/one", f"{EX}/two", f"{EX}/one"),
], ids=["code-systems", "naming-system", "url-as-identifier"])
def test_one_identifier_for_two_code_systems_is_refused_at_load(tmp_path, second, identifier, canonical, other):
    first = write(tmp_path, "a.json", code_system(f"{EX}/one", "urn:oid:1.2.14", cid="one"))
    later = write(tmp_path, "b.json", second)
    with pytest.raises(InvalidContent) as caught:
        load_paths([first, later])
    assert (caught.value.status, caught.value.message_id, caught.value.text) == (
        422, "CONTENT_DUPLICATE_IDENTIFIER",
        f"The identifier '{identifier}' names two code systems: '{canonical}' in {later} and '{other}' in {first}")


def test_a_code_system_under_the_url_another_declares_as_identifier_is_refused(tmp_path):
    first = write(tmp_path, "a.json", code_system(f"{EX}/one", f"{EX}/legacy", cid="one"))
    later = write(tmp_path, "b.json", code_system(f"{EX}/legacy", cid="two"))
    with pytest.raises(InvalidContent) as caught:
        load_paths([first, later])
    assert caught.value.text == (f"The identifier '{EX}/legacy' names two code systems: '{EX}/legacy' in {later} and "
                                 f"'{EX}/one' in {first}")


def test_declarations_that_agree_load(tmp_path):
    paths = [write(tmp_path, "a.json", code_system(f"{EX}/one", "urn:oid:1.2.15", version="1")),
             write(tmp_path, "b.json", code_system(f"{EX}/one", "urn:oid:1.2.15", version="2", cid="cs2")),
             write(tmp_path, "c.json", naming_system(uid("oid", "1.2.15"), uid("uri", f"{EX}/one"), uid("other", "ONE")))]
    assert load_paths(paths).aliases == {"urn:oid:1.2.15": f"{EX}/one", "ONE": f"{EX}/one"}


def test_the_index_forgets_an_identifier_once_no_resource_declares_it(service):
    index = CanonicalIndex.of_registry(service.registry, "start-up")
    mine = code_system(f"{EX}/mine", "urn:oid:1.2.16")
    with pytest.raises(InvalidContent):
        index.check(code_system(f"{EX}/yours", ICD_OID), "yours.json")
    index.add(mine, "mine.json")
    with pytest.raises(InvalidContent):
        index.check(code_system(f"{EX}/yours", "urn:oid:1.2.16", cid="yours"), "yours.json")
    copied = index.copy()
    assert index.remove(mine, "mine.json") is mine
    index.check(code_system(f"{EX}/yours", "urn:oid:1.2.16", cid="yours"), "yours.json")
    with pytest.raises(InvalidContent):  # the copy still holds it
        copied.check(code_system(f"{EX}/yours", "urn:oid:1.2.16", cid="yours"), "yours.json")


def test_naming_systems_load_from_bundles(tmp_path):
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": code_system(f"{EX}/one")}, {"resource": naming_system(uid("oid", "1.2.17"), uid("uri", f"{EX}/one"))}]}
    registry = load_paths([write(tmp_path, "bundle.json", bundle)])
    assert registry.aliases == {"urn:oid:1.2.17": f"{EX}/one"}
    assert [e.id for e in registry.entries("NamingSystem")] == ["ns"]
