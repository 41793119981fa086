"""$validate-code: notes about the status of what the answer relied on.

The reference servers note (as information, outside `message`) a draft, experimental,
deprecated or withdrawn code system the code was checked in, and such a value set (the one
validated against, or one it imports). A concept the value set's own include marks as
deprecated (valueset-deprecated, or standards-status on the include.concept) is a warning.
"""

from __future__ import annotations

from typing import Any

from ..evaluation import Evaluation, Member, status_warnings
from ..models import Issue
from .issues import issue

_MESSAGE_IDS = {"warning-draft": "MSG_DRAFT", "warning-experimental": "MSG_EXPERIMENTAL",
                "warning-deprecated": "MSG_DEPRECATED", "warning-withdrawn": "MSG_WITHDRAWN"}

_VS_DEPRECATED = "http://hl7.org/fhir/StructureDefinition/valueset-deprecated"
_STANDARDS_STATUS = "http://hl7.org/fhir/StructureDefinition/structuredefinition-standards-status"


def _notes(warnings: list[tuple[str, str]], kind: str) -> list[Issue]:
    return [issue("information", "business-rule", "status-check", _MESSAGE_IDS[name], canonical, "", kind,
                  in_message=False)
            for name, canonical in warnings if name in _MESSAGE_IDS]


def code_system_notes(resource: dict[str, Any]) -> list[Issue]:
    """Status notes for the code system a coding was checked in."""
    return _notes(status_warnings(resource), "CodeSystem")


def value_set_notes(value_set: dict[str, Any], evaluation: Evaluation | None) -> list[Issue]:
    """Status notes for the value set itself and the value sets it imports."""
    warnings = list(status_warnings(value_set))
    if evaluation is not None:
        imported = set(evaluation.used_value_sets)
        warnings.extend(w for w in evaluation.warnings if w[1] in imported and w not in warnings)
    return _notes(warnings, "ValueSet")


def deprecated_in_value_set(member: Member, vs_label: str, path: str) -> Issue | None:
    """The include.concept that put the code in the value set marks it deprecated."""
    status = None
    for extension in (member.entry or {}).get("extension", []):
        if extension.get("url") == _VS_DEPRECATED and extension.get("valueCode", extension.get("valueBoolean")) in (
                True, "true"):
            status = "deprecated"
        elif extension.get("url") == _STANDARDS_STATUS and extension.get("valueCode") in ("deprecated", "withdrawn"):
            status = extension["valueCode"]
    if status is None:
        return None
    return issue("warning", "business-rule", "code-comment", "CONCEPT_DEPRECATED_IN_VALUESET", member.system,
                 member.code, status, vs_label, expression=path, in_message=False)
