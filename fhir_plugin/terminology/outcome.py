"""OperationOutcome, in one place: its URLs, the message catalogue, and the builders.

Every failure the server answers, every issue of a $validate-code answer, and every error the
client rebuilds from a server's answer passes through here. An error becomes an issue with its
message id (the operationoutcome-message-id extension), its tx-issue-type and its expression; a
client turns such an issue back into the same class, and reads the error's named fields back from
the text with the template of its message id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from .errors import ANSWER_MESSAGES, TerminologyError, error_classes, template
from .models import Issue

MESSAGE_ID_URL = "http://hl7.org/fhir/StructureDefinition/operationoutcome-message-id"
TX_ISSUE_TYPE_URL = "http://hl7.org/fhir/tools/CodeSystem/tx-issue-type"
# Not a catalogue id: a server answered an error without one, so `text` says what happened.
REMOTE_ERROR = "REMOTE_ERROR"

_HTTP_ISSUE_CODES = {401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported", 406: "not-supported",
                     413: "too-long", 414: "too-long", 415: "not-supported", 431: "too-long"}


def catalogue() -> dict[str, str]:
    """Message id -> template, for every error class defined so far and every answer message."""
    found: dict[str, str] = {}
    for cls in error_classes():
        for message_id in cls.message_ids:
            found[message_id] = template(cls, message_id)
    found.update(ANSWER_MESSAGES)
    return found


def error_class_for(message_id: str | None, status: int) -> type[TerminologyError]:
    """The class a message id belongs to; without one, the first row of the hierarchy (a direct
    subclass of TerminologyError) with that HTTP status; else TerminologyError itself."""
    for cls in error_classes():
        if message_id in cls.message_ids:
            return cls
    return next((cls for cls in TerminologyError.__subclasses__() if cls.status == status), TerminologyError)


def _message_id_extension(message_id: str) -> dict[str, Any]:
    return {"url": MESSAGE_ID_URL, "valueString": message_id}


def error_outcome(error: TerminologyError) -> dict[str, Any]:
    """The OperationOutcome for an error: severity, code, details (text + tx-issue-type), message id."""
    details: dict[str, Any] = {"text": error.text}
    if error.tx_issue_type:
        details["coding"] = [{"system": TX_ISSUE_TYPE_URL, "code": error.tx_issue_type}]
    issue: dict[str, Any] = {"extension": [_message_id_extension(error.message_id)], "severity": "error",
                             "code": error.issue_code, "details": details}
    if error.expression:
        issue["expression"] = [error.expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def brief_outcome(error: TerminologyError) -> dict[str, Any]:
    """An error as a batch answers a failed entry: severity, code and text only (the HL7 tests' shape)."""
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": error.issue_code, "details": {"text": error.text}}]}


def transaction_outcome(error: TerminologyError, entry: Mapping[str, Any]) -> dict[str, Any]:
    """A failed transaction's one OperationOutcome: the error naming the entry that failed, then the
    issues of that entry's own OperationOutcome."""
    outcome = error_outcome(error)
    outcome["issue"].extend(_dicts(entry.get("issue")))
    return outcome


def information_outcome(text: str) -> dict[str, Any]:
    """An OperationOutcome that informs (a 200): what is at a place that holds no resource."""
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": "information", "code": "informational", "details": {"text": text}}]}


def http_outcome(status: int, text: str) -> dict[str, Any]:
    """An OperationOutcome for an HTTP-level failure that is not a TerminologyError."""
    code = _HTTP_ISSUE_CODES.get(status, "invalid" if status < 500 else "exception")
    severity = "error" if status < 500 else "fatal"
    return {"resourceType": "OperationOutcome", "issue": [{"severity": severity, "code": code,
                                                           "details": {"text": text}}]}


def issues_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    """The `issues` OperationOutcome of a $validate-code answer."""
    rendered = []
    for item in issues:
        entry: dict[str, Any] = {}
        if item.message_id:
            entry["extension"] = [_message_id_extension(item.message_id)]
        entry["severity"] = item.severity
        entry["code"] = item.code
        entry["details"] = {"coding": [{"system": TX_ISSUE_TYPE_URL, "code": item.tx_type}], "text": item.text}
        if item.expression:
            entry["expression"] = [item.expression]
        rendered.append(entry)
    return {"resourceType": "OperationOutcome", "issue": rendered}


# --- reading OperationOutcomes back ---------------------------------------------------------------


def _dicts(value: object) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _message_id(issue: Mapping[str, Any]) -> str | None:
    for extension in _dicts(issue.get("extension")):
        if extension.get("url") == MESSAGE_ID_URL and isinstance(extension.get("valueString"), str):
            return str(extension["valueString"])
    return None


def _text(issue: Mapping[str, Any]) -> str | None:
    details = issue.get("details")
    text = details.get("text") if isinstance(details, dict) else None
    text = text or issue.get("diagnostics")
    return text if isinstance(text, str) else None


def outcome_issues(document: Mapping[str, Any]) -> tuple[Issue, ...]:
    """The issues of an OperationOutcome as typed Issues (the inverse of issues_outcome)."""
    found = []
    for item in _dicts(document.get("issue")):
        given = item.get("details")
        details = given if isinstance(given, dict) else {}
        tx_type = next((c.get("code") for c in _dicts(details.get("coding")) if c.get("system") == TX_ISSUE_TYPE_URL),
                       None)
        expressions = item.get("expression") if isinstance(item.get("expression"), list) else []
        found.append(Issue(str(item.get("severity")), str(item.get("code")), tx_type or "", _text(item) or "",
                           _message_id(item), expressions[0] if expressions else None))
    return tuple(found)


@lru_cache(maxsize=256)
def _pattern(text: str) -> re.Pattern[str] | None:
    """A template as a regular expression with a named group per field (a repeated field must repeat)."""
    parts, seen, last = [], set(), 0
    for found in re.finditer(r"\{(\w+)\}", text):
        parts.append(re.escape(text[last:found.start()]))
        name = found.group(1)
        if name.isdigit():
            return None
        parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>.*?)")
        seen.add(name)
        last = found.end()
    parts.append(re.escape(text[last:]))
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


def fields_from_text(cls: type[TerminologyError], message_id: str, text: str) -> dict[str, str]:
    """The named fields of an error of `cls` read back from its text (none if it does not fit)."""
    try:
        pattern = _pattern(template(cls, message_id))
    except KeyError:
        return {}
    found = pattern.match(text) if pattern else None
    return found.groupdict() if found else {}


def error_from_outcome(status: int, document: Mapping[str, Any]) -> TerminologyError:
    """The TerminologyError an OperationOutcome of an HTTP `status` answer stands for: the class of
    its message id (or, without one, of its status), its fields, text and expression; `.outcome`
    keeps the document, and `.status` is the status the server sent."""
    issues = _dicts(document.get("issue"))
    issue = next((i for i in issues if i.get("severity") in ("fatal", "error")), issues[0] if issues else {})
    message_id = _message_id(issue)
    text = _text(issue) or f"HTTP {status}"
    expressions = issue.get("expression") if isinstance(issue.get("expression"), list) else []
    expression = expressions[0] if expressions and isinstance(expressions[0], str) else None
    cls = error_class_for(message_id, status)
    fields = fields_from_text(cls, message_id, text) if message_id else {}
    return cls(message_id or REMOTE_ERROR, text=text, expression=expression, outcome=dict(document),
               status=status if status != cls.status else None, **fields)
