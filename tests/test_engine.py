"""The engine without HTTP: TerminologyService.lookup / .translate, the registry and the content loader."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from helpers import (
    CM_CANONICAL,
    CM_URL,
    CPT,
    CPT_VERSION,
    CPT_VS,
    DEFINITION_97116,
    DESIGNATIONS_97116,
    DISPLAY_97116,
    ICD,
    ICD_TITLES,
    ICD_VERSION,
    ICD_VS,
    LOINC,
    MAPPED_CODES,
    SNOMED,
    load_content,
)

from fhir_plugin import TerminologyService
from fhir_plugin.content import load_paths, load_resource, read_paths
from fhir_plugin.fhirversions import FhirVersion
from fhir_plugin.errors import (
    InvalidContent,
    InvalidRequest,
    NotFound,
    TerminologyError,
    UnknownCode,
    UnknownCodeSystem,
    UnknownConceptMap,
    UnknownSupplement,
)
from fhir_plugin.terminology.entries import Coding, Designation, PropertyValue
from fhir_plugin.terminology.models import (Issue, LookupRequest, LookupResult, TranslateMatch, TranslateRequest,
                                            TranslateResult)
from fhir_plugin.terminology.registry import version_key

EX = "http://example.org/fhir"


def use_coding(raw: dict) -> Coding:
    return Coding(raw["system"], raw["code"], None, raw["display"])


PREFERRED = Coding("http://terminology.hl7.org/CodeSystem/hl7TermMaintInfra", "preferredForLanguage", None,
                   "Preferred For Language")
# $lookup leads with the display as the preferred term in the code system's language (en)
CPT_DESIGNATIONS = (Designation(DISPLAY_97116, "en", PREFERRED),
                    *(Designation(value, "en", use_coding(use)) for value, use in DESIGNATIONS_97116))
CPT_PROPERTIES = (
    PropertyValue("modifier", False, "boolean"),
    PropertyValue("modified", False, "boolean"),
    PropertyValue("kind", "code", "code"),
    PropertyValue("work-rvu", Decimal("0.45"), "decimal"),
    PropertyValue("unit-minutes", 15, "integer"),
    PropertyValue("inactive", False, "boolean"),
)
CPT_97116 = LookupResult(
    name="CPT", system=CPT, version=CPT_VERSION, code="97116", display=DISPLAY_97116,
    definition=DEFINITION_97116, abstract=False, designations=CPT_DESIGNATIONS, properties=CPT_PROPERTIES,
)
ICD_M62_8 = LookupResult(
    name="ICD10CM", system=ICD, version=ICD_VERSION, code="M62.8", display="Other specified disorders of muscle",
    definition=None, abstract=True, designations=(Designation("Other specified disorders of muscle", "en", PREFERRED),),
    properties=(
        PropertyValue("parent", "M62", "code", "Other disorders of muscle"),
        PropertyValue("child", "M62.81", "code", "Muscle weakness (generalized)"),
        PropertyValue("child", "M62.82", "code", "Rhabdomyolysis"),
        PropertyValue("child", "M62.83", "code", "Muscle spasm"),
        PropertyValue("child", "M62.84", "code", "Sarcopenia"),
        PropertyValue("child", "M62.85", "code", "Dysfunction of the multifidus muscles, lumbar region"),
        PropertyValue("child", "M62.89", "code", "Other specified disorders of muscle"),
        PropertyValue("notSelectable", True, "boolean"),
        PropertyValue("excludes2", "nontraumatic hematoma of muscle (M79.81)", "string"),
        PropertyValue("inactive", False, "boolean"),
    ),
)


def raises(error_class: type[TerminologyError], message_id: str, text: str, call, *args):
    """`call(*args)` raises exactly `error_class` with this message id and text; returns the error."""
    with pytest.raises(TerminologyError) as info:
        call(*args)
    error = info.value
    assert type(error) is error_class
    assert (error.message_id, error.text) == (message_id, text)
    assert str(error) == text
    return error


def write_json(path: Path, document) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def code_system(url: str = f"{EX}/CodeSystem/test", version: str | None = "1", **extra) -> dict:
    resource = {"resourceType": "CodeSystem", "id": extra.pop("id", "test"), "url": url, "status": "active",
                "content": "complete", "concept": [{"code": "A", "display": "Alpha"}]}
    if version:
        resource["version"] = version
    resource.update(extra)
    return resource


# --- $lookup -----------------------------------------------------------------------------------


def test_lookup_cpt_97116_returns_everything(service):
    assert service.lookup(LookupRequest(system=CPT, code="97116")) == CPT_97116


def test_lookup_by_coding_and_by_version(service):
    assert service.lookup(LookupRequest(coding=Coding(CPT, "97116"))) == CPT_97116
    assert service.lookup(LookupRequest(system=CPT, code="97116", version="2026")) == CPT_97116
    assert service.lookup(LookupRequest(coding=Coding(CPT, "97116", "2026"), system=CPT, code="97116")) == CPT_97116


def test_lookup_icd_category_is_abstract_with_parent_and_child(service):
    assert service.lookup(LookupRequest(system=ICD, code="M62.8")) == ICD_M62_8


@pytest.mark.parametrize("code, abstract, parents, children", [
    ("M62", True, [("M60-M63", "Disorders of muscles (M60-M63)")], [
        ("M62.0", "Separation of muscle (nontraumatic)"), ("M62.1", "Other rupture of muscle (nontraumatic)"),
        ("M62.2", "Nontraumatic ischemic infarction of muscle"), ("M62.3", "Immobility syndrome (paraplegic)"),
        ("M62.4", "Contracture of muscle"), ("M62.5", "Muscle wasting and atrophy, not elsewhere classified"),
        ("M62.8", "Other specified disorders of muscle"), ("M62.9", "Disorder of muscle, unspecified")]),
    ("M62.81", False, [("M62.8", "Other specified disorders of muscle")], []),
    ("R26", True, [("R25-R29", "Symptoms and signs involving the nervous and musculoskeletal systems (R25-R29)")], [
        ("R26.0", "Ataxic gait"), ("R26.1", "Paralytic gait"), ("R26.2", ICD_TITLES["R26.2"]),
        ("R26.8", "Other abnormalities of gait and mobility"), ("R26.9", "Unspecified abnormalities of gait and mobility")]),
    ("R26.2", False, [("R26", "Abnormalities of gait and mobility")], []),
    ("G81", True, [("G80-G83", "Cerebral palsy and other paralytic syndromes (G80-G83)")], [
        ("G81.0", "Flaccid hemiplegia"), ("G81.1", "Spastic hemiplegia"), ("G81.9", "Hemiplegia, unspecified")]),
    ("G81.9", True, [("G81", "Hemiplegia and hemiparesis")], [
        ("G81.90", ICD_TITLES["G81.90"]), ("G81.91", "Hemiplegia, unspecified affecting right dominant side"),
        ("G81.92", "Hemiplegia, unspecified affecting left dominant side"),
        ("G81.93", "Hemiplegia, unspecified affecting right nondominant side"),
        ("G81.94", "Hemiplegia, unspecified affecting left nondominant side")]),
    ("G81.90", False, [("G81.9", "Hemiplegia, unspecified")], []),
])
def test_lookup_icd_hierarchy(service, code, abstract, parents, children):
    result = service.lookup(LookupRequest(system=ICD, code=code))
    assert result.abstract is abstract
    assert [(p.value, p.description) for p in result.properties if p.code == "parent"] == parents
    assert [(p.value, p.description) for p in result.properties if p.code == "child"] == children


def test_lookup_property_filter_returns_only_that_property(service):
    result = service.lookup(LookupRequest(system=CPT, code="97116", properties=("work-rvu",)))
    assert result == LookupResult(
        name="CPT", system=CPT, version=CPT_VERSION, code="97116", display=DISPLAY_97116, definition=None,
        abstract=False, designations=(), properties=(PropertyValue("work-rvu", Decimal("0.45"), "decimal"),),
    )


def test_lookup_property_star_returns_everything(service):
    assert service.lookup(LookupRequest(system=CPT, code="97116", properties=("*",))) == CPT_97116


@pytest.mark.parametrize("wanted, definition, designations, properties", [
    (("definition",), DEFINITION_97116, (), ()),
    (("designation",), None, CPT_DESIGNATIONS, ()),
    (("unit-minutes", "kind"), None, (), (PropertyValue("kind", "code", "code"),
                                         PropertyValue("unit-minutes", 15, "integer"))),
    (("inactive",), None, (), (PropertyValue("inactive", False, "boolean"),)),
    (("no-such-property",), None, (), ()),
])
def test_lookup_property_selection(service, wanted, definition, designations, properties):
    result = service.lookup(LookupRequest(system=CPT, code="97116", properties=wanted))
    assert (result.definition, result.designations, result.properties) == (definition, designations, properties)
    assert (result.name, result.display, result.abstract) == ("CPT", DISPLAY_97116, False)


def test_lookup_parent_filter_on_icd(service):
    result = service.lookup(LookupRequest(system=ICD, code="M62.8", properties=("parent",)))
    assert result.properties == (PropertyValue("parent", "M62", "code", "Other disorders of muscle"),)
    assert result.abstract is True


@pytest.mark.parametrize("language", ["en", "en-US", "fr", "*", "fr, en;q=0.5"])
def test_lookup_display_language_falls_back_to_the_display(service, language):
    result = service.lookup(LookupRequest(system=CPT, code="97116", display_language=language))
    assert result.display == DISPLAY_97116


@pytest.fixture(scope="module")
def german(tmp_path_factory) -> TerminologyService:
    """A code system in English with German designations, and a case-insensitive one."""
    folder = tmp_path_factory.mktemp("german")
    write_json(folder / "cs.json", code_system(
        language="en",
        concept=[{"code": "A", "display": "Alpha", "designation": [
            {"language": "de", "value": "Alfa (de)"}, {"language": "de-CH", "value": "Alfa (de-CH)"}]}]))
    write_json(folder / "ci.json", code_system(
        url=f"{EX}/CodeSystem/ci", id="ci", caseSensitive=False, concept=[{"code": "AbC", "display": "Mixed"}]))
    return load_content([folder])


@pytest.mark.parametrize("language, display", [
    ("de", "Alfa (de)"),
    ("de-CH", "Alfa (de-CH)"),
    ("de-AT", "Alfa (de)"),
    ("fr, de", "Alfa (de)"),
    ("de;q=0.4, en;q=0.8", "Alpha"),
    ("en;q=0.3, de-CH;q=0.9", "Alfa (de-CH)"),
    ("de;q=bad", "Alfa (de)"),
    ("en", "Alpha"),
    ("en-GB", "Alpha"),
    ("fr", "Alpha"),
    (None, "Alpha"),
])
def test_lookup_display_language_picks_a_designation(german, language, display):
    result = german.lookup(LookupRequest(system=f"{EX}/CodeSystem/test", code="A", display_language=language))
    assert result.display == display


def test_lookup_case_insensitive_code_system(german):
    result = german.lookup(LookupRequest(system=f"{EX}/CodeSystem/ci", code="aBc"))
    assert (result.code, result.display) == ("AbC", "Mixed")
    raises(UnknownCode, "LOOKUP_CODE_NOT_FOUND",
           f"Unable to find code 'a' in {EX}/CodeSystem/test version 1",
           german.lookup, LookupRequest(system=f"{EX}/CodeSystem/test", code="a"))


def test_lookup_selects_the_latest_version_unless_told(tmp_path):
    for version in ("1.9.0", "1.10.0", "1.2"):
        write_json(tmp_path / f"{version}.json", code_system(
            version=version, id=f"v{version.replace('.', '-')}",
            concept=[{"code": "A", "display": f"Alpha {version}"}]))
    service = load_content([tmp_path])
    url = f"{EX}/CodeSystem/test"
    assert service.lookup(LookupRequest(system=url, code="A")).version == "1.10.0"
    assert service.lookup(LookupRequest(system=url, code="A", version="1.9.0")).display == "Alpha 1.9.0"
    raises(UnknownCodeSystem, "UNKNOWN_CODESYSTEM_VERSION_LOOKUP",
           f"A definition for CodeSystem '{url}' version '2' could not be found, so the code cannot be looked "
           "up. Valid versions: 1.10.0, 1.9.0, 1.2",
           service.lookup, LookupRequest(system=url, code="A", version="2"))


def test_version_key_orders_versions_numerically():
    versions = ["1.9.0", "2026", "1.10.0", None, "2025", "2026-04-01", "1.2"]
    assert sorted(versions, key=version_key, reverse=True) == [
        "2026-04-01", "2026", "2025", "1.10.0", "1.9.0", "1.2", None]


# --- $lookup errors ----------------------------------------------------------------------------

NO_CODE = "Must provide either coding parameter, or system and code parameters"


@pytest.mark.parametrize("request_, expression", [
    (LookupRequest(), "code"),
    (LookupRequest(system=CPT), "code"),
    (LookupRequest(code="97116"), "system"),
    (LookupRequest(coding=Coding(CPT)), "code"),
    (LookupRequest(coding=Coding(None, "97116")), "system"),
])
def test_lookup_without_system_and_code(service, request_, expression):
    error = raises(InvalidRequest, "LOOKUP_NO_CODE", NO_CODE, service.lookup, request_)
    assert (error.status, error.issue_code, error.expression) == (400, "invalid", expression)


def test_lookup_unknown_code_in_a_fragment(service):
    error = raises(UnknownCode, "UNKNOWN_CODE_IN_FRAGMENT",
                   "Unknown Code '99999' in the CodeSystem 'http://www.ama-assn.org/go/cpt' version '2026' - note "
                   "that the code system is labeled as a fragment, so the code may be valid in some other fragment",
                   service.lookup, LookupRequest(system=CPT, code="99999"))
    assert (error.status, error.issue_code, error.tx_issue_type, error.expression) == (
        404, "not-found", "invalid-code", "code")
    assert isinstance(error, NotFound)


def test_lookup_codes_are_case_sensitive_in_cpt_and_icd(service):
    raises(UnknownCode, "LOOKUP_CODE_NOT_FOUND", f"Unable to find code 'm62.81' in {ICD} version {ICD_VERSION}",
           service.lookup, LookupRequest(system=ICD, code="m62.81"))


def test_lookup_unknown_code_in_a_complete_code_system(service):
    url = "http://fhir-plugin.org/fhir/CodeSystem/designation-use"
    raises(UnknownCode, "LOOKUP_CODE_NOT_FOUND", f"Unable to find code 'nope' in {url} version 1.0.0",
           service.lookup, LookupRequest(system=url, code="nope"))


def test_lookup_unknown_code_system(service):
    error = raises(UnknownCodeSystem, "UNKNOWN_CODESYSTEM_LOOKUP",
                   "A definition for CodeSystem 'http://example.org/unknown' could not be found, so the code "
                   "cannot be looked up",
                   service.lookup, LookupRequest(system="http://example.org/unknown", code="97116"))
    assert (error.status, error.issue_code, error.expression) == (404, "not-found", "system")


def test_lookup_unknown_code_system_version(service):
    error = raises(UnknownCodeSystem, "UNKNOWN_CODESYSTEM_VERSION_LOOKUP",
                   f"A definition for CodeSystem '{CPT}' version '2025' could not be found, so the code cannot "
                   "be looked up. Valid versions: 2026",
                   service.lookup, LookupRequest(system=CPT, code="97116", version="2025"))
    assert error.expression == "version"


@pytest.mark.parametrize("request_, name, mine, theirs", [
    (LookupRequest(system=ICD, coding=Coding(CPT, "97116")), "system", ICD, CPT),
    (LookupRequest(code="97117", coding=Coding(CPT, "97116")), "code", "97117", "97116"),
    (LookupRequest(version="2025", coding=Coding(CPT, "97116", "2026")), "version", "2025", "2026"),
])
def test_lookup_coding_contradicting_system_code_or_version(service, request_, name, mine, theirs):
    error = raises(InvalidRequest, "PARAM_CONFLICT",
                   f"Parameters '{name}' and 'coding' disagree: '{mine}' vs '{theirs}'", service.lookup, request_)
    assert error.expression == name


def test_lookup_missing_supplement(service):
    error = raises(UnknownSupplement, "VALUESET_SUPPLEMENT_MISSING", "Required supplement not found: http://x.org/s",
                   service.lookup, LookupRequest(system=CPT, code="97116", use_supplements=("http://x.org/s",)))
    assert (error.status, error.expression) == (404, None)  # no expression, as tx.fhir.org reports it


def test_lookup_a_code_system_that_is_not_a_supplement_is_a_missing_supplement(service):
    raises(UnknownSupplement, "VALUESET_SUPPLEMENT_MISSING", f"Required supplement not found: {ICD}",
           service.lookup, LookupRequest(system=CPT, code="97116", use_supplements=(ICD,)))


def test_lookup_applies_a_known_supplement(tmp_path):
    write_json(tmp_path / "supplement.json", code_system(
        url=f"{EX}/CodeSystem/supplement", id="supplement", content="supplement", supplements=f"{CPT}|2026",
        concept=[{"code": "97116", "designation": [{"language": "de", "value": "Gangtraining"}]}]))
    resources = Path(__file__).resolve().parent.parent / "resources"  # the CPT part: ICD-10-CM plays no part here
    service = load_content([resources / "CodeSystem-cpt-97116-fragment.json",
                            resources / "CodeSystem-designation-use.json", tmp_path])
    for supplement in (f"{EX}/CodeSystem/supplement", f"{EX}/CodeSystem/supplement|1"):
        result = service.lookup(LookupRequest(system=CPT, code="97116", use_supplements=(supplement,)))
        assert result.designations[-1] == Designation("Gangtraining", "de", None, f"{EX}/CodeSystem/supplement|1")
        assert result.used_supplements == (f"{EX}/CodeSystem/supplement|1",)
    plain = service.lookup(LookupRequest(system=CPT, code="97116"))
    assert [d.value for d in plain.designations] == [d.value for d in result.designations[:-1]]


# --- $translate --------------------------------------------------------------------------------


def icd_coding(code: str) -> Coding:
    return Coding(ICD, code, ICD_VERSION, ICD_TITLES[code])


CPT_CODING = Coding(CPT, "97116", CPT_VERSION, DISPLAY_97116)
FORWARD = tuple(TranslateMatch("related-to", icd_coding(code), CM_CANONICAL) for code in MAPPED_CODES)


def translate(service, **kwargs) -> TranslateResult:
    return service.translate(TranslateRequest(**kwargs))


def test_translate_forward(service):
    assert translate(service, source=(Coding(CPT, "97116"),)) == TranslateResult(
        result=True, matches=FORWARD, message=None, mode="forward")


@pytest.mark.parametrize("kwargs", [
    {"target_system": ICD},
    {"url": CM_URL},
    {"url": CM_URL, "concept_map_version": "1.0.0"},
    {"source_scope": CPT_VS},
    {"source_scope": f"{CPT_VS}|1.0.0"},
    {"target_scope": ICD_VS},
    {"source_scope": CPT_VS, "target_scope": ICD_VS, "target_system": ICD, "url": CM_URL},
])
def test_translate_forward_narrowed_to_the_map_still_finds_everything(service, kwargs):
    result = translate(service, source=(Coding(CPT, "97116"),), **kwargs)
    assert result == TranslateResult(result=True, matches=FORWARD, mode="forward")


def test_translate_forward_with_the_source_version(service):
    assert translate(service, source=(Coding(CPT, "97116", "2026"),)).matches == FORWARD
    assert translate(service, source=(Coding(CPT, "97116", "2025"),)) == TranslateResult(
        result=False, message=f"No ConceptMap is available to translate from '{CPT}'", mode="forward")


def test_translate_codeable_concept_uses_every_coding(service):
    result = translate(service, source=(Coding(LOINC, "1-1"), Coding(CPT, "97116")))
    assert (result.result, result.matches) == (True, FORWARD)


EXPECTED_ISSUES = {
    f"No translations found for '99999' in '{CPT}'": ["UNKNOWN_CODE_IN_FRAGMENT"],
    f"No translations found for '99999' in '{CPT}' (to '{ICD}')": ["UNKNOWN_CODE_IN_FRAGMENT"],
    f"No ConceptMap is available to translate from '{LOINC}'": ["UNKNOWN_CODESYSTEM"],
    f"'97116' in '{CPT}' is not mapped to 'R26.2' in '{SNOMED}'": ["UNKNOWN_CODESYSTEM"],
    f"No ConceptMap is available to translate from '{SNOMED}'": ["UNKNOWN_CODESYSTEM"],
}


@pytest.mark.parametrize("kwargs, message", [
    ({"source": (Coding(CPT, "99999"),)}, f"No translations found for '99999' in '{CPT}'"),
    ({"source": (Coding(CPT, "99999"),), "target_system": ICD},
     f"No translations found for '99999' in '{CPT}' (to '{ICD}')"),
    ({"source": (Coding(LOINC, "1-1"),)}, f"No ConceptMap is available to translate from '{LOINC}'"),
    ({"source": (Coding(CPT, "97116"),), "target_system": SNOMED},
     f"No ConceptMap is available to translate from '{CPT}' to '{SNOMED}'"),
    ({"source": (Coding(CPT, "97116"),), "source_scope": f"{EX}/ValueSet/other"},
     f"No ConceptMap is available to translate from '{CPT}'"),
    ({"source": (Coding(CPT, "97116"),), "target_scope": f"{EX}/ValueSet/other"},
     f"No ConceptMap is available to translate from '{CPT}'"),
    ({"source": (Coding(CPT, "97116"),), "target": (Coding(ICD, "J45.909"),)},
     f"'97116' in '{CPT}' is not mapped to 'J45.909' in '{ICD}'"),
    ({"source": (Coding(CPT, "97116"),), "target": (Coding(None, "J45.909"),)},
     f"'97116' in '{CPT}' is not mapped to 'J45.909' in 'any code system'"),
    ({"source": (Coding(CPT, "97116"),), "target": (Coding(SNOMED, "R26.2"),)},
     f"'97116' in '{CPT}' is not mapped to 'R26.2' in '{SNOMED}'"),
    ({"target": (Coding(ICD, "J45.909"),)}, f"No translations found for 'J45.909' in '{ICD}'"),
    ({"target": (Coding(None, "J45.909"),)}, "No translations found for 'J45.909' in 'any code system'"),
    ({"target": (Coding(SNOMED, "1"),)}, f"No ConceptMap is available to translate from '{SNOMED}'"),
    ({"target": (Coding(ICD, "R26.2"),), "source_system": LOINC},
     f"No ConceptMap is available to translate from '{ICD}' to '{LOINC}'"),
    # in target mode targetSystem is the given concept's own system, not where the answer goes
    ({"target": (Coding(ICD, "J45.909"),), "target_system": ICD}, f"No translations found for 'J45.909' in '{ICD}'"),
    ({"target": (Coding(ICD, "J45.909"),), "target_system": ICD, "source_system": CPT},
     f"No translations found for 'J45.909' in '{ICD}' (to '{CPT}')"),
    ({"source": (Coding(ICD, "J45.909"),), "reverse": True}, f"No translations found for 'J45.909' in '{ICD}'"),
    ({"source": (Coding(ICD, "R26.2"),), "reverse": True, "target_system": LOINC},
     f"No ConceptMap is available to translate from '{ICD}' to '{LOINC}'"),
    ({"source": (Coding(CPT, "97116"),), "reverse": True},
     f"No ConceptMap is available to translate from '{CPT}'"),
])
def test_translate_without_a_match_is_an_answer_with_a_message(service, kwargs, message):
    result = translate(service, **kwargs)
    # a code or code system that does not exist adds its issue's text (tests/test_http_translate_checks.py)
    assert (result.result, result.matches, result.message) == (
        False, (), "; ".join([message, *(issue.text for issue in result.issues)]))
    assert [i.message_id for i in result.issues] == EXPECTED_ISSUES.get(message, [])


def test_translate_pair_that_is_mapped(service):
    result = translate(service, source=(Coding(CPT, "97116"),), target=(Coding(ICD, "R26.2"),))
    assert result == TranslateResult(
        result=True, matches=(TranslateMatch("related-to", icd_coding("R26.2"), CM_CANONICAL),), mode="pair")


def test_translate_pair_with_a_target_code_only(service):
    result = translate(service, source=(Coding(CPT, "97116"),), target=(Coding(None, "G81.90"),))
    assert (result.result, result.matches, result.mode) == (
        True, (TranslateMatch("related-to", icd_coding("G81.90"), CM_CANONICAL),), "pair")


def test_translate_pair_that_is_not_mapped(service):
    result = translate(service, source=(Coding(CPT, "97116"),), target=(Coding(ICD, "J45.909"),))
    assert result == TranslateResult(
        result=False, message=f"'97116' in '{CPT}' is not mapped to 'J45.909' in '{ICD}'", mode="pair")


@pytest.mark.parametrize("kwargs", [
    {},
    {"target_system": ICD},
    {"source_system": CPT},
    {"url": CM_URL},
    {"source_scope": CPT_VS, "target_scope": ICD_VS},
])
def test_translate_by_target_code_r5_reverse(service, kwargs):
    result = translate(service, target=(Coding(ICD, "R26.2"),), **kwargs)
    assert result == TranslateResult(result=True, mode="target", matches=(
        TranslateMatch("related-to", icd_coding("R26.2"), CM_CANONICAL, CPT_CODING),))


def test_translate_by_target_code_without_its_system(service):
    result = translate(service, target=(Coding(None, "M62.81"),))
    assert result.matches == (TranslateMatch("related-to", icd_coding("M62.81"), CM_CANONICAL, CPT_CODING),)


@pytest.mark.parametrize("kwargs", [{}, {"target_system": CPT}, {"url": CM_URL}])
def test_translate_r4_reverse(service, kwargs):
    result = translate(service, source=(Coding(ICD, "G81.90"),), reverse=True, **kwargs)
    assert result == TranslateResult(result=True, mode="reverse", matches=(
        TranslateMatch("related-to", CPT_CODING, CM_CANONICAL),))


def test_translate_modes():
    assert TranslateRequest(source=(Coding(CPT, "1"),)).mode == "forward"
    assert TranslateRequest(target=(Coding(ICD, "1"),)).mode == "target"
    assert TranslateRequest(source=(Coding(CPT, "1"),), target=(Coding(ICD, "1"),)).mode == "pair"
    assert TranslateRequest(source=(Coding(ICD, "1"),), reverse=True).mode == "reverse"


# --- inline ConceptMap -------------------------------------------------------------------------

INLINE = {
    "resourceType": "ConceptMap", "url": f"{EX}/ConceptMap/inline", "version": "3", "status": "draft",
    "group": [{
        "source": LOINC, "target": ICD,
        "element": [
            {"code": "A", "target": [{"code": "R26.2", "relationship": "equivalent"}]},
            {"code": "B", "target": [{"code": "M62.81", "relationship": "not-related-to", "comment": "no"}]},
            {"code": "C", "noMap": True},
            {"code": "A", "target": [{"code": "G81.90", "display": "Given display",
                                      "relationship": "source-is-narrower-than-target"}]},
        ],
    }],
}
INLINE_CANONICAL = f"{EX}/ConceptMap/inline|3"


def test_translate_with_an_inline_concept_map(service):
    load_resource(INLINE)  # valid R5
    result = translate(service, source=(Coding(LOINC, "A"),), concept_map=INLINE)
    assert result == TranslateResult(result=True, mode="forward", matches=(
        # the display is the map's own: none when the map gives none (not looked up in ICD-10-CM)
        TranslateMatch("equivalent", Coding(ICD, "R26.2", None, None), INLINE_CANONICAL),
        TranslateMatch("source-is-narrower-than-target", Coding(ICD, "G81.90", None, "Given display"),
                       INLINE_CANONICAL),
    ))


def test_translate_inline_map_replaces_the_loaded_maps(service):
    result = translate(service, source=(Coding(CPT, "97116"),), concept_map=INLINE)
    assert (result.result, result.message) == (False, f"No ConceptMap is available to translate from '{CPT}'")


UNKNOWN_LOINC = f"A definition for CodeSystem '{LOINC}' could not be found, so the code cannot be validated"
UNKNOWN_LOINC_ISSUE = Issue("error", "not-found", "not-found", UNKNOWN_LOINC, "UNKNOWN_CODESYSTEM", "sourceCoding.system")


def test_translate_not_related_to_is_not_a_translation(service):
    result = translate(service, source=(Coding(LOINC, "B"),), concept_map=INLINE)
    assert result == TranslateResult(result=False, mode="forward", message=f"No translations found for 'B' in '{LOINC}'; "
                                     f"{UNKNOWN_LOINC}", issues=(UNKNOWN_LOINC_ISSUE,), matches=(TranslateMatch("not-related-to", Coding(ICD, "M62.81", None, None),
                                                             INLINE_CANONICAL),))


def test_translate_no_map_element_has_no_match(service):
    result = translate(service, source=(Coding(LOINC, "C"),), concept_map=INLINE)
    assert result == TranslateResult(result=False, mode="forward", issues=(UNKNOWN_LOINC_ISSUE,),
                                     message=f"No translations found for 'C' in '{LOINC}'; {UNKNOWN_LOINC}")


def test_translate_reverse_over_an_inline_map_finds_every_source(service):
    cm = json.loads(json.dumps(INLINE))
    cm["group"][0]["element"][1]["target"][0]["relationship"] = "related-to"
    cm["group"][0]["element"][1]["target"].append({"code": "R26.2", "relationship": "related-to"})
    result = translate(service, target=(Coding(ICD, "R26.2"),), concept_map=cm)
    assert [(m.source.code, m.relationship) for m in result.matches] == [("A", "equivalent"), ("B", "related-to")]


# --- $translate errors -------------------------------------------------------------------------

NO_SOURCE = ("One (and only one) of code, coding, codeableConcept (R4) or sourceCode, sourceCoding, "
             "sourceCodeableConcept, targetCode, targetCoding, targetCodeableConcept (R5) must be provided")


@pytest.mark.parametrize("kwargs", [{}, {"target_system": ICD}, {"url": CM_URL}, {"reverse": True}])
def test_translate_without_a_concept(service, kwargs):
    error = raises(InvalidRequest, "TRANSLATE_NO_SOURCE", NO_SOURCE, service.translate, TranslateRequest(**kwargs))
    assert error.status == 400


def test_translate_reverse_with_a_target_concept(service):
    error = raises(InvalidRequest, "TRANSLATE_REVERSE_WITH_TARGET",
                   "reverse=true cannot be combined with targetCode, targetCoding or targetCodeableConcept: name the "
                   "target concept with those parameters instead of reverse",
                   service.translate, TranslateRequest(source=(Coding(ICD, "R26.2"),), target=(Coding(ICD, "R26.2"),),
                                                       reverse=True))
    assert error.expression == "reverse"


@pytest.mark.parametrize("kwargs, name", [
    ({"source": (Coding(None, "97116"),)}, "sourceCode"),
    ({"source": (Coding(CPT, None),)}, "sourceCode"),
    ({"source": (Coding(CPT, "97116"), Coding(CPT))}, "sourceCode"),
    ({"target": (Coding(ICD),)}, "targetCode"),
])
def test_translate_incomplete_coding(service, kwargs, name):
    raises(InvalidRequest, "TRANSLATE_CODING_INCOMPLETE", f"Parameter '{name}' needs both a system and a code",
           service.translate, TranslateRequest(**kwargs))


def test_translate_unknown_concept_map(service):
    error = raises(UnknownConceptMap, "UNKNOWN_CONCEPTMAP", f"Unable to find ConceptMap '{EX}/ConceptMap/nope'",
                   service.translate, TranslateRequest(source=(Coding(CPT, "97116"),), url=f"{EX}/ConceptMap/nope"))
    assert (error.status, error.issue_code, error.expression) == (404, "not-found", "url")


def test_translate_unknown_concept_map_version(service):
    error = raises(UnknownConceptMap, "UNKNOWN_CONCEPTMAP_VERSION",
                   f"Unable to find ConceptMap '{CM_URL}' version '2.0'. Valid versions: 1.0.0",
                   service.translate, TranslateRequest(source=(Coding(CPT, "97116"),), url=CM_URL,
                                                       concept_map_version="2.0"))
    assert error.expression == "conceptMapVersion"


# --- the service's other entry points ----------------------------------------------------------


def test_service_read_and_search(service):
    assert service.read("ValueSet", "cpt-gait-training").url == CPT_VS
    assert service.code_system_by_id("cpt-97116-fragment").canonical == f"{CPT}|2026"
    assert service.concept_map_by_id("cpt-97116-to-icd-10-cm").canonical == CM_CANONICAL
    raises(NotFound, "RESOURCE_NOT_FOUND", "CodeSystem/nope not found", service.read, "CodeSystem", "nope")
    raises(NotFound, "RESOURCE_NOT_FOUND", "ConceptMap/nope not found", service.concept_map_by_id, "nope")
    assert [e.id for e in service.search("CodeSystem", {"name": "icd"})] == ["icd-10-cm"]
    assert [e.id for e in service.search("ValueSet", {"url": f"{CPT_VS}|1.0.0"})] == ["cpt-gait-training"]
    assert service.search("ValueSet", {"url": f"{CPT_VS}|2.0.0"}) == []


def test_bundled_content_is_what_load_service_loads_by_default(service):
    explicit = load_content([Path(__file__).resolve().parent.parent / "resources"])
    assert [(cs.url, cs.version) for cs in explicit.registry.code_systems()] == [
        (cs.url, cs.version) for cs in service.registry.code_systems()] == [
        (CPT, "2026"), ("http://fhir-plugin.org/fhir/CodeSystem/designation-use", "1.0.0"), (ICD, ICD_VERSION)]
    assert [cm.canonical for cm in service.registry.concept_maps()] == [CM_CANONICAL]


# --- the content loader ------------------------------------------------------------------------

R4_MAP = {
    "resourceType": "ConceptMap", "id": "r4-map", "url": f"{EX}/ConceptMap/r4-map", "version": "1",
    "status": "active", "sourceUri": f"{EX}/ValueSet/src", "targetUri": f"{EX}/ValueSet/tgt",
    "group": [{
        "source": f"{EX}/CodeSystem/test", "sourceVersion": "1", "target": ICD, "targetVersion": ICD_VERSION,
        "element": [{"code": "A", "target": [
            {"code": "R26.2", "equivalence": "wider"},
            {"code": "M62.81", "equivalence": "inexact", "comment": "loosely"},
        ]}],
        "unmapped": {"mode": "provided"},
    }],
}


def test_loader_converts_an_r4_concept_map_to_r5(tmp_path):
    write_json(tmp_path / "map.json", R4_MAP)
    write_json(tmp_path / "cs.json", code_system())
    registry = load_paths([tmp_path])
    [cm] = registry.concept_maps()
    assert cm.resource == {
        "resourceType": "ConceptMap", "id": "r4-map", "url": f"{EX}/ConceptMap/r4-map", "version": "1",
        "status": "active", "sourceScopeUri": f"{EX}/ValueSet/src", "targetScopeUri": f"{EX}/ValueSet/tgt",
        "group": [{
            "source": f"{EX}/CodeSystem/test|1", "target": f"{ICD}|{ICD_VERSION}",
            "element": [{"code": "A", "target": [
                {"code": "R26.2", "relationship": "source-is-narrower-than-target"},
                {"code": "M62.81", "relationship": "related-to", "comment": "loosely"},
            ]}],
            "unmapped": {"mode": "use-source-code"},
        }],
    }
    service = TerminologyService(registry)
    result = service.translate(TranslateRequest(source=(Coding(f"{EX}/CodeSystem/test", "A"),),
                                                source_scope=f"{EX}/ValueSet/src"))
    assert [(m.concept.code, m.relationship, m.origin_map) for m in result.matches] == [
        ("R26.2", "source-is-narrower-than-target", f"{EX}/ConceptMap/r4-map|1"),
        ("M62.81", "related-to", f"{EX}/ConceptMap/r4-map|1"),
    ]
    assert R4_MAP["group"][0]["element"][0]["target"][0]["equivalence"] == "wider"  # input left alone


def test_loader_refuses_an_invalid_resource_naming_file_resource_and_element(tmp_path):
    path = write_json(tmp_path / "bad.json", code_system(id="bad", concept=[{"display": "no code"}]))
    error = raises(InvalidContent, "CONTENT_INVALID",
                   f"{path}: CodeSystem/bad is not valid FHIR R5: concept.0.code: Value for the field 'code' is required.",
                   load_paths, [tmp_path])
    assert (error.status, error.issue_code) == (422, "invalid")


def test_loader_refuses_an_invalid_r4_concept_map(tmp_path):
    broken = json.loads(json.dumps(R4_MAP))
    del broken["group"][0]["element"][0]["target"][0]["equivalence"]
    path = write_json(tmp_path / "map.json", broken)
    raises(InvalidContent, "CONTENT_INVALID",
           f"{path}: ConceptMap/r4-map is not valid FHIR R4: group.0.element.0.target.0.equivalence: Value for the "
           "field 'equivalence' is required.",
           load_paths, [path])


@pytest.mark.parametrize("resource, version, problem", [
    (code_system(id="s", status="published"), "R5",
     "status: 'published' is not one of active, draft, retired, unknown"),
    (code_system(id="s", content="partial"), "R5",
     "content: 'partial' is not one of complete, example, fragment, not-present, supplement"),
    (code_system(id="s", hierarchyMeaning="is-part-of"), "R5",
     "hierarchyMeaning: 'is-part-of' is not one of classified-with, grouped-by, is-a, part-of"),
    (code_system(id="s", property=[{"code": "p", "type": "float"}]), "R5",
     "property.0.type: 'float' is not one of Coding, boolean, code, dateTime, decimal, integer, string"),
    ({**INLINE, "id": "s"}, None, None),
])
def test_loader_checks_required_bindings_that_fhir_resources_does_not(resource, version, problem):
    if problem is None:  # R4's spelling inside an R5 map: fhir.resources accepts it, we do not
        resource = json.loads(json.dumps(resource))
        resource["group"][0]["element"][0]["target"][0]["relationship"] = "relatedto"
        version, problem = "R5", ("group.0.element.0.target.0.relationship: 'relatedto' is not one of equivalent, "
                                  "not-related-to, related-to, source-is-broader-than-target, "
                                  "source-is-narrower-than-target")
    raises(InvalidContent, "CONTENT_INVALID",
           f"(inline): {resource['resourceType']}/s is not valid FHIR {version}: {problem}",
           load_resource, resource)


def test_loader_checks_r4_equivalence_codes():
    broken = json.loads(json.dumps(R4_MAP))
    broken["group"][0]["element"][0]["target"][0]["equivalence"] = "same"
    raises(InvalidContent, "CONTENT_INVALID",
           "(inline): ConceptMap/r4-map is not valid FHIR R4: group.0.element.0.target.0.equivalence: 'same' is not "
           "one of disjoint, equal, equivalent, inexact, narrower, relatedto, specializes, subsumes, unmatched, wider",
           load_resource, broken)


def test_loader_refuses_a_malformed_structure_without_crashing():
    raises(InvalidContent, "CONTENT_INVALID", "(inline): ConceptMap/x is not valid FHIR R5: group: Input should be a valid list",
           load_resource, {"resourceType": "ConceptMap", "id": "x", "status": "active", "group": "not a list"})
    for group in ([1], [{"element": "x"}], [{"element": [{"target": 7}]}], [{"unmapped": "x"}]):
        with pytest.raises(InvalidContent):
            load_resource({"resourceType": "ConceptMap", "status": "active", "group": group})


def test_loader_refuses_a_file_that_is_not_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"resourceType": "CodeSystem",', encoding="utf-8")
    raises(InvalidContent, "CONTENT_NOT_JSON",
           f"{path}: not valid JSON: Expecting property name enclosed in double quotes: line 1 column 31 (char 30)",
           read_paths, [tmp_path])


def test_loader_refuses_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes('{"resourceType": "CodeSystem", "title": "caf\u00e9"}'.encode("latin-1"))
    raises(InvalidContent, "CONTENT_NOT_JSON",
           f"{path}: not valid JSON: 'utf-8' codec can't decode byte 0xe9 in position 44: invalid continuation byte",
           read_paths, [path])


def test_loader_refuses_a_duplicate_canonical_with_different_content(tmp_path):
    write_json(tmp_path / "a.json", code_system(id="a"))
    write_json(tmp_path / "b.json", code_system(id="b", title="different"))
    error = raises(InvalidContent, "CONTENT_DUPLICATE_CANONICAL",
                   f"CodeSystem '{EX}/CodeSystem/test' version '1' is loaded twice with different content: "
                   f"in {tmp_path / 'a.json'} and in {tmp_path / 'b.json'}",
                   load_paths, [tmp_path])
    assert error.status == 422


def test_loader_accepts_the_same_resource_twice(tmp_path):
    path = write_json(tmp_path / "a.json", code_system())
    registry = load_paths([path, path])
    assert [cs.canonical for cs in registry.code_systems()] == [f"{EX}/CodeSystem/test|1"]


def test_loader_refuses_a_duplicate_id(tmp_path):
    write_json(tmp_path / "a.json", code_system(url=f"{EX}/CodeSystem/a", id="same"))
    write_json(tmp_path / "b.json", code_system(url=f"{EX}/CodeSystem/b", id="same"))
    raises(InvalidContent, "CONTENT_DUPLICATE_ID", f"CodeSystem/same is loaded twice, as two different resources: "
           f"in {tmp_path / 'a.json'} and in {tmp_path / 'b.json'}", load_paths, [tmp_path])


def test_loader_reads_a_bundle(tmp_path):
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": f"{EX}/CodeSystem/test", "resource": code_system()},
        {"resource": R4_MAP},
        {"resource": {"resourceType": "ValueSet", "id": "vs", "url": f"{EX}/ValueSet/src", "status": "active"}},
    ]}
    write_json(tmp_path / "bundle.json", bundle)
    service = load_content([tmp_path])
    assert service.lookup(LookupRequest(system=f"{EX}/CodeSystem/test", code="A")).display == "Alpha"
    assert [cm.url for cm in service.registry.concept_maps()] == [f"{EX}/ConceptMap/r4-map"]
    assert service.read("ValueSet", "vs").url == f"{EX}/ValueSet/src"
    result = service.translate(TranslateRequest(source=(Coding(f"{EX}/CodeSystem/test", "A"),)))
    # no ICD-10-CM loaded here, so no display to fill in
    assert result.matches[0].concept == Coding(ICD, "R26.2", ICD_VERSION, None)


def test_loader_names_the_bundle_entry_that_is_invalid(tmp_path):
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": code_system()}, {"resource": code_system(id="bad", url=f"{EX}/x", concept=[{}])}]}
    path = write_json(tmp_path / "bundle.json", bundle)
    raises(InvalidContent, "CONTENT_INVALID",
           f"{path} entry[1]: CodeSystem/bad is not valid FHIR R5: concept.0.code: Value for the field 'code' is required.",
           load_paths, [path])


def test_loader_refuses_other_resource_types(tmp_path):
    path = write_json(tmp_path / "patient.json", {"resourceType": "Patient", "id": "p"})
    raises(InvalidContent, "CONTENT_UNSUPPORTED_TYPE",
           f"{path}: cannot load a Patient; expected CodeSystem, ValueSet, ConceptMap, NamingSystem or "
           "Bundle", load_paths, [path])
    path = write_json(tmp_path / "list.json", [1, 2])
    raises(InvalidContent, "CONTENT_UNSUPPORTED_TYPE",
           f"{path}: cannot load a JSON value without resourceType; expected CodeSystem, ValueSet, ConceptMap, "
           "NamingSystem or Bundle", read_paths, [path])


def test_loader_refuses_a_missing_path(tmp_path):
    raises(InvalidContent, "CONTENT_NOT_FOUND", f"{tmp_path / 'nope'}: no such file or directory",
           load_paths, [tmp_path / "nope"])


def test_loader_reads_json_files_in_subdirectories_and_skips_others(tmp_path):
    write_json(tmp_path / "deep" / "er" / "cs.json", code_system())
    (tmp_path / "README.md").write_text("not content", encoding="utf-8")
    assert [r["id"] for r in read_paths([tmp_path])] == ["test"]


def test_loader_failure_loads_nothing(tmp_path):
    write_json(tmp_path / "a.json", code_system())
    (tmp_path / "b.json").write_text("{", encoding="utf-8")
    with pytest.raises(InvalidContent):
        load_content([tmp_path])


def test_loader_refuses_a_code_system_without_url(tmp_path):
    resource = code_system()
    del resource["url"]
    write_json(tmp_path / "cs.json", resource)
    with pytest.raises(InvalidContent) as caught:
        load_paths([tmp_path])
    assert caught.value.message_id == "CONTENT_NO_URL"
    assert caught.value.text == f"{tmp_path / 'cs.json'}: CodeSystem/{resource['id']} has no url, so no request could ever name it"


def test_loader_reads_gzipped_json(tmp_path):
    import gzip

    (tmp_path / "cs.json.gz").write_bytes(gzip.compress(json.dumps(code_system()).encode()))
    (tmp_path / "bad.json.gz").write_bytes(b"not gzip")
    with pytest.raises(InvalidContent) as caught:
        load_paths([tmp_path])
    assert caught.value.text.startswith(f"{tmp_path / 'bad.json.gz'}: not valid JSON: not a valid gzip file")
    (tmp_path / "bad.json.gz").unlink()
    registry = load_paths([tmp_path])
    assert registry.code_system(f"{EX}/CodeSystem/test").concepts["A"].display == "Alpha"


def test_inline_resources_are_validated_once_per_distinct_content():
    from fhir_plugin.runtime.overlay import RequestResources

    load_inline = RequestResources().inline
    first = load_inline(json.loads(json.dumps(INLINE)), "parameter 'conceptMap'", FhirVersion.R5)
    again = load_inline(json.loads(json.dumps(INLINE)), "parameter 'conceptMap'", FhirVersion.R5)  # an equal copy
    assert again is first
    broken = {**INLINE, "group": "not a list"}
    for _ in range(2):  # refusals are not cached: each one is reported again
        with pytest.raises(InvalidContent):
            load_inline(broken, "parameter 'conceptMap'", FhirVersion.R5)
