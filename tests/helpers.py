"""Shared test helpers: the shipped content's exact values, response checks and FHIR validation.

Import from test modules with `from helpers import ...` (tests/ is on sys.path under pytest's
default import mode). The constants are written out from ../shared/docs/content-97116.md on
purpose, not read from resources/, so that the tests check the content as well as the code.
"""

from __future__ import annotations

import json
from typing import Any

from fhir_plugin import load_service
from fhir_plugin.config import cache_dir, load_settings
from fhir_plugin.fhirversions import FhirVersion
from fhir_plugin.terminology.service import TerminologyService

FHIR_JSON = "application/fhir+json"
MESSAGE_ID_URL = "http://hl7.org/fhir/StructureDefinition/operationoutcome-message-id"
TX_ISSUE_TYPE = "http://hl7.org/fhir/tools/CodeSystem/tx-issue-type"

CPT = "http://www.ama-assn.org/go/cpt"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
BASE = "http://fhir-plugin.org/fhir"
USE_SYSTEM = f"{BASE}/CodeSystem/designation-use"
CM_URL = f"{BASE}/ConceptMap/cpt-97116-to-icd-10-cm"
CM_CANONICAL = f"{CM_URL}|1.0.0"
CPT_VS = f"{BASE}/ValueSet/cpt-gait-training"
ICD_VS = f"{BASE}/ValueSet/icd-10-cm-gait-training-diagnoses"
CPT_VERSION = "2026"
ICD_VERSION = "2026-04-01"

ARTICLE = '"What is CPT Code 97116?: A Step Towards Better Moving"'
AMA_COPYRIGHT = (
    "CPT © Copyright 2026 American Medical Association. All rights reserved. AMA and CPT are registered "
    "trademarks of the American Medical Association."
)
DISPLAY_97116 = "Therapeutic procedure, 1 or more areas, each 15 minutes; gait training (includes stair climbing)"
DEFINITION_97116 = (
    "A therapy session focused on teaching someone to walk or move better, including practising steps on "
    "stairs. Working with a therapist to improve walking ability: better balance and stair climbing. Each "
    "unit is 15 minutes. It does not cover other therapy or rehabilitation exercises unrelated to walking "
    "or moving."
)
SYNONYM_USE = {"system": SNOMED, "code": "900000000000013009", "display": "Synonym"}
OR_SCHEDULE_USE = {"system": USE_SYSTEM, "code": "or-schedule-name", "display": "Operating-room schedule name"}
CONSENT_USE = {"system": USE_SYSTEM, "code": "consent-form-name", "display": "Surgical consent form name"}
# (value, use) of the five designations of 97116, in order; all are language "en"
DESIGNATIONS_97116 = [
    ("Gait Training", SYNONYM_USE),
    ("Walking Therapy", SYNONYM_USE),
    ("Mobility Training", SYNONYM_USE),
    ("Walking practice session", OR_SCHEDULE_USE),
    ("Agreement to perform walking and stair practice", CONSENT_USE),
]
ICD_TITLES = {
    "M62.81": "Muscle weakness (generalized)",
    "R26.2": "Difficulty in walking, not elsewhere classified",
    "G81.90": "Hemiplegia, unspecified affecting unspecified side",
}
MAPPED_CODES = ("M62.81", "R26.2", "G81.90")


# --- responses ---------------------------------------------------------------------------------


def body_of(response) -> Any:
    """The JSON body, whatever the JSON media type (fhir+json included)."""
    return json.loads(response.get_data())


def assert_outcome(response, status: int, issue_code: str, text: str | None = None,
                   message_id: str | None = None, content_type: str = FHIR_JSON) -> dict:
    """`response` is an error: `status`, FHIR JSON, an OperationOutcome whose first issue is an error
    with `issue_code`, and (when given) exactly `text` and the message-id extension `message_id`.
    Returns the issue for further checks."""
    raw = response.get_data(as_text=True)
    assert response.status_code == status, (response.status_code, raw[:500])
    assert response.mimetype == content_type, response.content_type
    outcome = body_of(response)
    assert outcome["resourceType"] == "OperationOutcome", raw[:500]
    issue = outcome["issue"][0]
    assert issue["severity"] == "error"
    assert issue["code"] == issue_code, issue
    if text is not None:
        assert issue["details"]["text"] == text
    if message_id is not None:
        assert issue["extension"] == [{"url": MESSAGE_ID_URL, "valueString": message_id}]
    return issue


def fhir_version(version: FhirVersion | str) -> FhirVersion:
    """FhirVersion from an enum, "R4"/"r5", or an endpoint name ("fhir" is the default, R4)."""
    if isinstance(version, FhirVersion):
        return version
    name = version.strip("/").upper()
    return FhirVersion.R4 if name == "FHIR" else FhirVersion(name)


def model_class(resource_type: str, version: FhirVersion | str):
    if fhir_version(version) is FhirVersion.R4:
        from fhir.resources.R4B import get_fhir_model_class
    else:
        from fhir.resources import get_fhir_model_class
    return get_fhir_model_class(resource_type)


def validate(resource: dict, version: FhirVersion | str):
    """Validate a response dict with the fhir.resources models of `version` (R4 = R4B models)."""
    return model_class(resource["resourceType"], version).model_validate(resource)


def ok_json(response, version: FhirVersion | str, content_type: str = FHIR_JSON) -> dict:
    """A 200 FHIR JSON response that validates for `version`; returns its body."""
    raw = response.get_data(as_text=True)
    assert response.status_code == 200, (response.status_code, raw[:800])
    assert response.mimetype == content_type, response.content_type
    body = body_of(response)
    validate(body, version)
    return body


def parameters(*params: dict) -> dict:
    return {"resourceType": "Parameters", "parameter": list(params)}


def param(name: str, **value: Any) -> dict:
    """param("code", valueCode="97116")"""
    return {"name": name, **value}


def load_content(paths: list[Any] | None = None) -> TerminologyService:
    """load_service through the session's compiled-content cache (conftest sets FHIR_PLUGIN_CACHE_DIR),
    so that loading the bundled content again costs a read, not a validation."""
    return load_service(paths, cache=cache_dir(load_settings(), server=False))


def with_resources(service: TerminologyService, resources: list[dict[str, Any]],
                   version: FhirVersion = FhirVersion.R5) -> TerminologyService:
    """`service` with `resources` on top, as a request's tx-resource parameters put them."""
    from fhir_plugin.runtime.overlay import RequestResources

    return RequestResources().service(service, resources, version)
