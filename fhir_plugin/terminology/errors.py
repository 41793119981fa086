"""The one error hierarchy. Every failure a caller can cause is a TerminologyError subclass.

Answers are not errors: "code not in value set", "wrong display" and "no mapping" are results
(HTTP 200, result=false). Errors are malformed requests, unknown resources, unsupported features.

Status table (decided once; tests/test_http_errors.py pins it):

    class                 HTTP  issue code     when
    InvalidRequest        400   invalid        missing, malformed or contradictory parameters
      InvalidValueSet     400   invalid        a value set that cannot be evaluated (filter without value)
      CircularValueSet    400   processing     a value set that imports itself
      VersionCheckFailed  400   exception      check-system-version refuses the version in use
      TooCostly           400   too-costly     an expansion beyond FHIR_PLUGIN_MAX_EXPANSION, or more
                                               tx-resource parameters than FHIR_PLUGIN_MAX_TX_RESOURCES
    InvalidContent        422   invalid        content that cannot be loaded (startup, later uploads)
    Unauthorized          401   login          an admin endpoint without the right bearer token
    Forbidden             403   forbidden      an admin endpoint while FHIR_PLUGIN_ADMIN_TOKEN is unset
    NotSupported          400   not-supported  a parameter or feature this server does not offer
    NotFound              404   not-found      an unknown code system, version, code, map, value set,
                                               supplement, resource id or path
    MethodNotAllowed      405   not-supported  e.g. DELETE on an operation
    NotAcceptable         406   not-supported  the client accepts only a format we cannot produce (XML)
    RequestTooLarge       413   too-long       body beyond FHIR_PLUGIN_MAX_REQUEST_BYTES
    UnsupportedMediaType  415   not-supported  the body is in a format we cannot read (XML, text)
    ServerUnreachable     503   transient      (client only) the remote server did not answer

Message texts follow the HL7 message catalogue (Messages.properties of the Java core, also used by
tx.fhir.org) where an entry exists, so that clients and the HL7 test suite recognise them; the
message id travels in the operationoutcome-message-id extension and lets the client rebuild the
same class.
"""

from __future__ import annotations

from typing import ClassVar

MESSAGES: dict[str, str] = {
    # $lookup
    "LOOKUP_NO_CODE": "Must provide either coding parameter, or system and code parameters",
    "LOOKUP_CODE_NOT_FOUND": "Unable to find code '{0}' in {1} version {2}",
    "UNKNOWN_CODE_IN_FRAGMENT": (
        "Unknown Code '{0}' in the CodeSystem '{1}' version '{2}' - note that the code system is "
        "labeled as a fragment, so the code may be valid in some other fragment"
    ),
    "UNKNOWN_CODESYSTEM_LOOKUP": "A definition for CodeSystem '{0}' could not be found, so the code cannot be looked up",
    "UNKNOWN_CODESYSTEM_VERSION_LOOKUP": (
        "A definition for CodeSystem '{0}' version '{1}' could not be found, so the code cannot be "
        "looked up. Valid versions: {2}"
    ),
    "VALUESET_SUPPLEMENT_MISSING": "Required supplement not found: {0}",
    # $translate
    "TRANSLATE_NO_SOURCE": (
        "One (and only one) of code, coding, codeableConcept (R4) or sourceCode, sourceCoding, "
        "sourceCodeableConcept, targetCode, targetCoding, targetCodeableConcept (R5) must be provided"
    ),
    "TRANSLATE_REVERSE_WITH_TARGET": (
        "reverse=true cannot be combined with targetCode, targetCoding or targetCodeableConcept: "
        "name the target concept with those parameters instead of reverse"
    ),
    "TRANSLATE_NO_MAP": "No ConceptMap is available to translate from '{0}'{1}",
    "TRANSLATE_NOT_FOUND": "No translations found for '{0}' in '{1}'{2}",
    "TRANSLATE_PAIR_NOT_MAPPED": "'{0}' in '{1}' is not mapped to '{2}' in '{3}'",
    "TRANSLATE_CODING_INCOMPLETE": "Parameter '{0}' needs both a system and a code",
    "SUBSUMES_MISSING": "Code {0} is missing: give code{0} (with system) or coding{0}",
    "SUBSUMES_SYSTEMS_DIFFER": "$subsumes needs two codes of one code system, not '{0}' and '{1}'",
    "UNKNOWN_CONCEPTMAP": "Unable to find ConceptMap '{0}'",
    "UNKNOWN_CONCEPTMAP_VERSION": "Unable to find ConceptMap '{0}' version '{1}'. Valid versions: {2}",
    # parameters in general
    "PARAM_REQUIRES": "Parameter '{0}' requires parameter '{1}'",
    "PARAM_CONFLICT": "Parameters '{0}' and '{1}' disagree: '{2}' vs '{3}'",
    "PARAM_EXCLUSIVE": "Only one of {0} may be given",
    "PARAM_REPEATED": "Parameter '{0}' may be given at most once",
    "PARAM_BAD_VALUE": "Parameter '{0}' has an invalid {1} value: {2}",
    "PARAM_BAD_TYPE": "Parameter '{0}' must be given as {1}",
    "PARAM_UNKNOWN": "Unknown parameter '{0}' for {1}",
    "PARAM_NOT_SUPPORTED": "Parameter '{0}' is not supported by this server: {1}",
    "BODY_NOT_JSON": "The request body is not valid JSON: {0}",
    "BODY_NOT_PARAMETERS": "The request body must be a FHIR Parameters resource, not {0}",
    "BODY_BAD_PARAMETERS": "The Parameters resource is malformed: {0}",
    "BODY_TOO_LARGE": "The request body is larger than the {0} bytes this server accepts",
    # HTTP level
    "UNSUPPORTED_MEDIA_TYPE": "Content-Type '{0}' is not supported; send application/fhir+json, application/json or application/x-www-form-urlencoded",
    "NOT_ACCEPTABLE": "Cannot produce '{0}': this server produces application/fhir+json and application/json only (XML is not supported yet)",
    "BAD_FORMAT": "Unsupported _format '{0}': use json, application/json or application/fhir+json",
    "METHOD_NOT_ALLOWED": "Method {0} is not allowed on {1}",
    "NO_SUCH_PATH": "There is no FHIR endpoint at {0}",
    "NO_SUCH_OPERATION": "This server has no operation {0} on {1}",
    "RESOURCE_NOT_FOUND": "{0}/{1} not found",
    "SEARCH_PARAM_UNKNOWN": "Unknown search parameter '{0}' for {1} (Prefer: handling=strict)",
    # value sets (HL7 catalogue)
    "Unable_to_resolve_value_Set_": "A definition for the value Set '{0}' could not be found",
    "VS_EXP_IMPORT_UNK_PINNED": "Unable to find included value set '{0}' version '{1}'",
    "UNABLE_TO_HANDLE_SYSTEM_FILTER_WITH_NO_VALUE": "The system {0} filter with property = {1}, op = {2} has no value",
    "VALUESET_CIRCULAR_REFERENCE": "Found a circularity pointing to {0} processing ValueSet with pathway {1}",
    # $expand (HL7 catalogue)
    "UNKNOWN_CODESYSTEM_EXP": "A definition for CodeSystem '{0}' could not be found, so the value set cannot be expanded",
    "UNKNOWN_CODESYSTEM_VERSION_EXP": (
        "A definition for CodeSystem '{0}' version '{1}' could not be found, so the value set cannot be expanded. "
        "Valid versions: {2}"
    ),
    "VALUESET_VERSION_CHECK": (
        "The version '{1}' is not allowed for system '{0}': required to be '{2}' by a version-check parameter"
    ),
    "VALUESET_TOO_COSTLY": "The value set '{0}' expansion has too many codes to produce ({1})",
    "TX_RESOURCE_LIMIT": "The request has {0} tx-resource parameters; this server accepts at most {1} in one request",
    "EXPAND_NO_VALUESET": "Must provide a value set: url, valueSet, or the ValueSet of the path",
    # $validate-code (HL7 catalogue; issues in result=false answers, not errors, except where noted)
    "VALIDATE_NO_CODE": (
        "Unable to find code to validate (looked for coding | codeableConcept | code+system | code+inferSystem in "
        "parameters"
    ),
    "VALIDATE_NO_VALUESET": "Must provide a value set: url, valueSet, or the ValueSet of the path",
    "VALIDATE_NO_CODESYSTEM": "Must provide a code system: url (or system), the coding's system, or the CodeSystem of the path",
    "None_of_the_provided_codes_are_in_the_value_set_one": "The provided code '{2}' was not found in the value set '{1}'",
    "None_of_the_provided_codes_are_in_the_value_set_other": "None of the provided codes [{2}] are in the value set '{1}'",
    "TX_GENERAL_CC_ERROR_MESSAGE": "No valid coding was found for the value set '{0}'",
    "Unknown_Code_in_Version": "Unknown code '{0}' in the CodeSystem '{1}' version '{2}'",
    "UNKNOWN_CODESYSTEM": "A definition for CodeSystem '{0}' could not be found, so the code cannot be validated",
    # the same message as the reference servers word it when the value set does not use the system
    "UNKNOWN_CODESYSTEM_UNQUOTED": "A definition for CodeSystem {0} could not be found, so the code cannot be validated",
    "UNKNOWN_CODESYSTEM_VERSION": (
        "A definition for CodeSystem '{0}' version '{1}' could not be found, so the code cannot be validated. "
        "Valid versions: {2}"
    ),
    "UNKNOWN_CODESYSTEM_VERSION_NONE": (
        "A definition for CodeSystem '{0}' version '{1}' could not be found, so the code cannot be validated. "
        "No versions of this code system are known"
    ),
    "Display_Name_for__should_be_one_of__instead_of": (
        "Wrong Display Name '{4}' for {1}#{2}. Valid display is {3} (for the language(s) '{5}')"
    ),
    "Display_Name_WS_for__should_be_one_of__instead_of": (
        "Wrong whitespace in Display Name '{4}' for {1}#{2}. Valid display is {3} (for the language(s) '{5}')"
    ),
    "NO_VALID_DISPLAY_FOUND_NONE_FOR_LANG_OK": (
        "There are no valid display names found for the code {1}#{2} for language(s) '{3}'. The display is '{4}' "
        "which is a valid display for the default language"
    ),
    "NO_VALID_DISPLAY_FOUND_NONE_FOR_LANG_ERR": (
        "Wrong Display Name '{0}' for {1}#{2}. There are no valid display names found for language(s) '{3}'. "
        "Default display is '{4}'"
    ),
    "INVALID_DISPLAY_NAME": "Invalid displayLanguage: '{0}'",
    "INACTIVE_CONCEPT_FOUND": "The concept '{1}' has a status of {0} and its use should be reviewed",
    "DEPRECATED_CONCEPT_FOUND": "The concept '{1}' is deprecated and its use should be reviewed",
    "STATUS_CODE_WARNING_CODE": "The concept '{1}' is valid but is {0}",
    "INACTIVE_DISPLAY_FOUND_one": (
        "'{1}' is no longer considered a correct display for code '{2}' (status = {4}). The correct display is {3}"
    ),
    "INACTIVE_DISPLAY_FOUND_other": (
        "'{1}' is no longer considered a correct display for code '{2}' (status = {4}). The correct display is one "
        "of {3}"
    ),
    "CONCEPT_DEPRECATED_IN_VALUESET": (
        "The presence of the concept '{1}' in the system '{0}' in the value set {3} is marked with a status of {2} "
        "and its use should be reviewed"
    ),
    "CODE_CASE_DIFFERENCE": (
        "The code '{0}' differs from the correct code '{1}' by case. Although the code system '{2}' is case "
        "insensitive, implementers are strongly encouraged to use the correct case anyway"
    ),
    "ABSTRACT_CODE_NOT_ALLOWED": "Code '{0}#{1}' is abstract, and not allowed in this context",
    "UNABLE_TO_INFER_CODESYSTEM": "The System URI could not be determined for the code '{0}' in the ValueSet '{1}'",
    "Unable_to_resolve_system__value_set_has_multiple_matches": (
        "The System URI could not be determined for the code '{0}' in the ValueSet '{1}': value set expansion has "
        "multiple matches: {2}"
    ),
    "Terminology_TX_System_ValueSet2": "The Coding references a value set, not a code system ('{0}')",
    "Terminology_TX_System_Relative": "Coding.system must be an absolute reference, not a local reference",
    "Coding_has_no_system__cannot_validate": (
        "Coding has no system. A code with no system has no defined meaning, and it cannot be validated. A system "
        "should be provided"
    ),
    "CODESYSTEM_CS_NO_SUPPLEMENT": "CodeSystem {0} is a supplement, so can't be used as a value in Coding.system",
    "VALUESET_VALUE_MISMATCH": (
        "The code system '{0}' version '{1}' in the ValueSet include is different to the one in the value ('{2}')"
    ),
    "VALUESET_VALUE_MISMATCH_DEFAULT": (
        "The code system '{0}' version '{1}' for the versionless include in the ValueSet include is different to "
        "the one in the value ('{3}')"
    ),
    "VALUESET_VALUE_MISMATCH_CHANGED": (
        "The code system '{0}' version '{1}' resulting from the version '{2}' in the ValueSet include is different "
        "to the one in the value ('{3}')"
    ),
    "MSG_DRAFT": "Reference to draft {2} {0}",
    "MSG_DEPRECATED": "Reference to deprecated {2} {0}",
    "MSG_WITHDRAWN": "Reference to withdrawn {2} {0}",
    "MSG_EXPERIMENTAL": "Reference to experimental {2} {0}",
    # loading content, and the client
    "SERVER_UNREACHABLE": "Cannot reach the terminology server at {0}: {1}",
    "CONTENT_NOT_JSON": "{0}: not valid JSON: {1}",
    "CONTENT_INVALID": "{0}: {1} is not valid FHIR {2}: {3}",
    "CONTENT_NOT_FOUND": "{0}: no such file or directory",
    "CONTENT_NO_URL": "{0}: {1} has no url, so no request could ever name it",
    "CONTENT_UNSUPPORTED_TYPE": "{0}: cannot load a {1}; expected CodeSystem, ValueSet, ConceptMap or Bundle",
    "DUPLICATE_CANONICAL": "{0} '{1}' version '{2}' is loaded twice with different content",
    "DUPLICATE_ID": "{0}/{1} is loaded twice",
    # importing licensed CPT files (fhir_plugin.content.cpt)
    "CPT_FILE_INVALID": "{0}, line {1}: {2}",
    "CPT_FILE_EMPTY": "{0}: no CPT codes in this file",
    # loading files, Bundles and FHIR packages (fhir_plugin.content): {0} is always where
    "CONTENT_DUPLICATE_CANONICAL": "{0} '{1}' version '{2}' is loaded twice with different content: in {3} and in {4}",
    "CONTENT_DUPLICATE_ID": "{0}/{1} is loaded twice, as two different resources: in {2} and in {3}",
    "CONTENT_NOT_FHIR": "{0}: not a FHIR resource: {1}",
    "CONTENT_TOO_LARGE": "{0}: refused: it expands to more than {1} bytes (the limit set by {2})",
    "BUNDLE_TYPE_REFUSED": "{0}: cannot load a Bundle of type '{1}'; expected collection, batch or transaction",
    "BUNDLE_ENTRY_REFUSED": "{0}: cannot load this Bundle entry: {1}",
    "PACKAGE_INVALID": "{0}: not a usable FHIR package: {1}",
    "PACKAGE_MEMBER_REFUSED": "{0}: refused the archive member '{1}': {2}",
    # loading content into a running server (the admin endpoints, fhir_plugin.content.store)
    "ADMIN_DISABLED": (
        "Loading content into this server over HTTP is disabled: start it with FHIR_PLUGIN_ADMIN_TOKEN set to enable "
        "the admin endpoints"
    ),
    "ADMIN_UNAUTHORIZED": "This admin endpoint needs the header 'Authorization: Bearer <FHIR_PLUGIN_ADMIN_TOKEN>'",
    "LOADED_NAME_INVALID": (
        "'{0}' cannot name loaded content: use letters, digits, '.', '-' and '_' (at most 100), ending in .json, "
        ".json.gz or .tgz"
    ),
    "LOADED_NOT_FOUND": "No content named '{0}' was loaded into this server",
}


# Catalogue ids that only ever appear in answers (issues of a result=false $validate-code), never
# as errors of their own: no error class owns them.
VALIDATE_ANSWER_IDS: frozenset[str] = frozenset({
    "None_of_the_provided_codes_are_in_the_value_set_one", "None_of_the_provided_codes_are_in_the_value_set_other",
    "TX_GENERAL_CC_ERROR_MESSAGE", "Unknown_Code_in_Version", "UNKNOWN_CODESYSTEM", "UNKNOWN_CODESYSTEM_UNQUOTED",
    "UNKNOWN_CODESYSTEM_VERSION", "UNKNOWN_CODESYSTEM_VERSION_NONE", "Display_Name_for__should_be_one_of__instead_of",
    "Display_Name_WS_for__should_be_one_of__instead_of", "NO_VALID_DISPLAY_FOUND_NONE_FOR_LANG_OK",
    "NO_VALID_DISPLAY_FOUND_NONE_FOR_LANG_ERR", "INACTIVE_CONCEPT_FOUND", "DEPRECATED_CONCEPT_FOUND",
    "STATUS_CODE_WARNING_CODE", "INACTIVE_DISPLAY_FOUND_one", "INACTIVE_DISPLAY_FOUND_other",
    "CONCEPT_DEPRECATED_IN_VALUESET", "CODE_CASE_DIFFERENCE", "ABSTRACT_CODE_NOT_ALLOWED", "UNABLE_TO_INFER_CODESYSTEM",
    "Unable_to_resolve_system__value_set_has_multiple_matches", "Terminology_TX_System_ValueSet2",
    "Terminology_TX_System_Relative", "Coding_has_no_system__cannot_validate", "CODESYSTEM_CS_NO_SUPPLEMENT",
    "VALUESET_VALUE_MISMATCH", "VALUESET_VALUE_MISMATCH_DEFAULT", "VALUESET_VALUE_MISMATCH_CHANGED", "MSG_DRAFT",
    "MSG_DEPRECATED", "MSG_WITHDRAWN", "MSG_EXPERIMENTAL",
})


def message(message_id: str, *args: object) -> str:
    """A catalogue message, for answers (result=false) as well as errors."""
    return MESSAGES[message_id].format(*args)


class TerminologyError(Exception):
    """Base class: carries the HTTP status, FHIR issue type and catalogue message id."""

    status: ClassVar[int] = 400
    issue_code: ClassVar[str] = "processing"
    tx_issue_type: ClassVar[str | None] = None
    message_ids: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, message_id: str, *args: object, expression: str | None = None, text: str | None = None):
        self.message_id = message_id
        self.args_ = args
        self.expression = expression
        self.text = text if text is not None else MESSAGES[message_id].format(*args)
        super().__init__(self.text)


class InvalidRequest(TerminologyError):
    status = 400
    issue_code = "invalid"
    message_ids = frozenset({
        "LOOKUP_NO_CODE", "TRANSLATE_NO_SOURCE", "TRANSLATE_REVERSE_WITH_TARGET", "PARAM_REQUIRES",
        "PARAM_CONFLICT", "PARAM_EXCLUSIVE", "TRANSLATE_CODING_INCOMPLETE",
        "SUBSUMES_MISSING", "SUBSUMES_SYSTEMS_DIFFER", "PARAM_REPEATED", "PARAM_BAD_VALUE", "PARAM_BAD_TYPE",
        "PARAM_UNKNOWN", "BODY_NOT_JSON", "EXPAND_NO_VALUESET", "BODY_NOT_PARAMETERS", "BODY_BAD_PARAMETERS", "BAD_FORMAT",
        "SEARCH_PARAM_UNKNOWN", "LOADED_NAME_INVALID",
    })


class InvalidValueSet(InvalidRequest):
    """A ValueSet whose definition cannot be evaluated (broken filter, circular import)."""

    tx_issue_type = "vs-invalid"
    message_ids = frozenset({"UNABLE_TO_HANDLE_SYSTEM_FILTER_WITH_NO_VALUE"})


class CircularValueSet(InvalidValueSet):
    issue_code = "processing"
    message_ids = frozenset({"VALUESET_CIRCULAR_REFERENCE"})


class VersionCheckFailed(InvalidRequest):
    """A code system version that a check-system-version parameter does not allow."""

    status = 400
    issue_code = "exception"
    tx_issue_type = "version-error"
    message_ids = frozenset({"VALUESET_VERSION_CHECK"})


class TooCostly(InvalidRequest):
    """An expansion larger than FHIR_PLUGIN_MAX_EXPANSION (or the client's X-TOO-COSTLY-THRESHOLD);
    `count` (paging) gets it answered. Also a request with more tx-resource parameters than
    FHIR_PLUGIN_MAX_TX_RESOURCES: each one is validated and compiled."""

    issue_code = "too-costly"
    message_ids = frozenset({"VALUESET_TOO_COSTLY", "TX_RESOURCE_LIMIT"})


class InvalidValidateRequest(InvalidRequest):
    """$validate-code without anything to validate, or without a value set / code system."""

    message_ids = frozenset({"VALIDATE_NO_CODE", "VALIDATE_NO_VALUESET", "VALIDATE_NO_CODESYSTEM"})


class InvalidDisplayLanguage(InvalidRequest):
    """A displayLanguage that is not a language list (the HL7 tests expect 4xx + processing)."""

    issue_code = "processing"
    tx_issue_type = "invalid-display"
    message_ids = frozenset({"INVALID_DISPLAY_NAME"})


class NotSupported(TerminologyError):
    status = 400
    issue_code = "not-supported"
    message_ids = frozenset({"PARAM_NOT_SUPPORTED"})


class NotFound(TerminologyError):
    status = 404
    issue_code = "not-found"
    tx_issue_type = "not-found"
    message_ids = frozenset({"NO_SUCH_PATH", "NO_SUCH_OPERATION", "RESOURCE_NOT_FOUND", "LOADED_NOT_FOUND"})


class UnknownCodeSystem(NotFound):
    message_ids = frozenset({"UNKNOWN_CODESYSTEM_LOOKUP", "UNKNOWN_CODESYSTEM_VERSION_LOOKUP",
                             "UNKNOWN_CODESYSTEM_EXP", "UNKNOWN_CODESYSTEM_VERSION_EXP"})


class UnknownCode(NotFound):
    tx_issue_type = "invalid-code"
    message_ids = frozenset({"LOOKUP_CODE_NOT_FOUND", "UNKNOWN_CODE_IN_FRAGMENT"})


class UnknownConceptMap(NotFound):
    message_ids = frozenset({"UNKNOWN_CONCEPTMAP", "UNKNOWN_CONCEPTMAP_VERSION"})


class UnknownValueSet(NotFound):
    message_ids = frozenset({"Unable_to_resolve_value_Set_", "VS_EXP_IMPORT_UNK_PINNED"})


class UnknownSupplement(NotFound):
    message_ids = frozenset({"VALUESET_SUPPLEMENT_MISSING"})


class MethodNotAllowed(TerminologyError):
    status = 405
    issue_code = "not-supported"
    message_ids = frozenset({"METHOD_NOT_ALLOWED"})


class NotAcceptable(TerminologyError):
    status = 406
    issue_code = "not-supported"
    message_ids = frozenset({"NOT_ACCEPTABLE"})


class RequestTooLarge(TerminologyError):
    status = 413
    issue_code = "too-long"
    message_ids = frozenset({"BODY_TOO_LARGE"})


class UnsupportedMediaType(TerminologyError):
    status = 415
    issue_code = "not-supported"
    message_ids = frozenset({"UNSUPPORTED_MEDIA_TYPE"})


class InvalidContent(TerminologyError):
    """Content that cannot be loaded: not JSON, not valid FHIR, or conflicting with what is loaded."""

    status = 422
    issue_code = "invalid"
    message_ids = frozenset({"CONTENT_NOT_JSON", "CONTENT_INVALID", "CONTENT_NOT_FOUND", "DUPLICATE_CANONICAL",
                             "DUPLICATE_ID", "CONTENT_UNSUPPORTED_TYPE", "CONTENT_NO_URL",
                             "CPT_FILE_INVALID", "CPT_FILE_EMPTY",
                             "CONTENT_DUPLICATE_CANONICAL", "CONTENT_DUPLICATE_ID", "CONTENT_NOT_FHIR",
                             "CONTENT_TOO_LARGE", "BUNDLE_TYPE_REFUSED", "BUNDLE_ENTRY_REFUSED", "PACKAGE_INVALID",
                             "PACKAGE_MEMBER_REFUSED"})


class Unauthorized(TerminologyError):
    """An admin endpoint called without the server's bearer token (or with another one)."""

    status = 401
    issue_code = "login"
    message_ids = frozenset({"ADMIN_UNAUTHORIZED"})


class Forbidden(TerminologyError):
    """An admin endpoint of a server that has none enabled: no state-changing endpoint is open by default."""

    status = 403
    issue_code = "forbidden"
    message_ids = frozenset({"ADMIN_DISABLED"})


class ServerUnreachable(TerminologyError):
    """The client could not get an answer from a remote server (refused, DNS, TLS, timeout).

    Raised only by fhir_plugin.client, never by the engine or the server. 503 + transient, because
    the same request may well succeed later."""

    status = 503
    issue_code = "transient"
    message_ids = frozenset({"SERVER_UNREACHABLE"})


def _subclasses(cls: type[TerminologyError]) -> list[type[TerminologyError]]:
    found = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_subclasses(sub))
    return found


ERROR_CLASSES: tuple[type[TerminologyError], ...] = tuple(_subclasses(TerminologyError))


def error_class_for(message_id: str | None, status: int) -> type[TerminologyError]:
    """The class a message id belongs to (for rebuilding errors from an OperationOutcome)."""
    for cls in ERROR_CLASSES:
        if message_id in cls.message_ids:
            return cls
    for cls in (InvalidRequest, NotFound, MethodNotAllowed, NotAcceptable, RequestTooLarge, UnsupportedMediaType,
                InvalidContent, Unauthorized, Forbidden, ServerUnreachable):
        if cls.status == status:
            return cls
    return TerminologyError


def to_outcome(error: TerminologyError) -> dict:
    """The OperationOutcome for an error: severity, code, details (text + tx-issue-type), message id."""
    details: dict = {"text": error.text}
    if error.tx_issue_type:
        details["coding"] = [
            {"system": "http://hl7.org/fhir/tools/CodeSystem/tx-issue-type", "code": error.tx_issue_type}
        ]
    issue: dict = {
        "extension": [
            {"url": "http://hl7.org/fhir/StructureDefinition/operationoutcome-message-id", "valueString": error.message_id}
        ],
        "severity": "error",
        "code": error.issue_code,
        "details": details,
    }
    if error.expression:
        issue["expression"] = [error.expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


_HTTP_ISSUE_CODES = {401: "login", 403: "forbidden", 404: "not-found", 414: "too-long", 431: "too-long", 405: "not-supported", 406: "not-supported", 413: "too-long",
                     415: "not-supported"}


def http_outcome(status: int, text: str) -> dict:
    """An OperationOutcome for an HTTP-level failure that is not a TerminologyError."""
    code = _HTTP_ISSUE_CODES.get(status, "invalid" if status < 500 else "exception")
    severity = "error" if status < 500 else "fatal"
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": code, "details": {"text": text}}]}
