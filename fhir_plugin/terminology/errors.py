"""The engine's errors: the base of the one error hierarchy, and what the operations raise.

Answers are not errors: "code not in value set", "wrong display" and "no mapping" are results
(HTTP 200, result=false). Errors are malformed requests, unknown resources, unsupported features.
The whole hierarchy, with the errors of the layers above (loading content, the wire, the admin
endpoints, the client) and its status table, is listed in `fhir_plugin.errors`.

Each class owns its messages: catalogue id -> template. Templates of errors use named fields
(`{system}`), which an error carries (`error.fields`) and a client reads back from the text. The
wording follows the HL7 message catalogue (Messages.properties of the Java core, also used by
tx.fhir.org) where an entry exists, so that clients and the HL7 test suite recognise it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class TerminologyError(Exception):
    """Base class: an HTTP status, a FHIR issue type, a catalogue message id and named fields.

    `status` is the class's unless given: a client that rebuilds an error a server described
    without a known message id keeps the status that server sent. `outcome` is that server's
    OperationOutcome (None for errors raised here)."""

    status: int = 400
    issue_code: ClassVar[str] = "processing"
    # The same request against the same content raises it again: its answer may be kept like a 200.
    deterministic: ClassVar[bool] = True
    tx_issue_type: ClassVar[str | None] = None
    messages: ClassVar[Mapping[str, str]] = {}
    message_ids: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.message_ids = frozenset(cls.__dict__.get("messages", {}))
        if "messages" not in cls.__dict__:
            cls.messages = {}

    def __init__(self, message_id: str, /, *, expression: str | None = None, text: str | None = None,
                 status: int | None = None, outcome: dict[str, Any] | None = None, **fields: Any):
        self.message_id = message_id
        self.fields: dict[str, Any] = fields
        self.expression = expression
        self.outcome = outcome
        if status is not None:
            self.status = status
        self.text = text if text is not None else template(type(self), message_id).format(**fields)
        super().__init__(self.text)


def template(cls: type[TerminologyError], message_id: str) -> str:
    """The template of `message_id`, from `cls` or the class above it that owns it."""
    for owner in cls.__mro__:
        messages = owner.__dict__.get("messages")
        if messages and message_id in messages:
            return str(messages[message_id])
    raise KeyError(f"{cls.__name__} has no message {message_id!r}")


class InvalidRequest(TerminologyError):
    status = 400
    issue_code = "invalid"
    messages = {
        "LOOKUP_NO_CODE": "Must provide either coding parameter, or system and code parameters",
        "TRANSLATE_NO_SOURCE": (
            "One (and only one) of code, coding, codeableConcept (R4) or sourceCode, sourceCoding, "
            "sourceCodeableConcept, targetCode, targetCoding, targetCodeableConcept (R5) must be provided"),
        "TRANSLATE_REVERSE_WITH_TARGET": (
            "reverse=true cannot be combined with targetCode, targetCoding or targetCodeableConcept: "
            "name the target concept with those parameters instead of reverse"),
        "TRANSLATE_CODING_INCOMPLETE": "Parameter '{parameter}' needs both a system and a code",
        "SUBSUMES_MISSING": "Code {which} is missing: give code{which} (with system) or coding{which}",
        "SUBSUMES_SYSTEMS_DIFFER": "$subsumes needs two codes of one code system, not '{system_a}' and '{system_b}'",
        "PARAM_REQUIRES": "Parameter '{parameter}' requires parameter '{required}'",
        "PARAM_CONFLICT": "Parameters '{parameter}' and '{other}' disagree: '{value}' vs '{other_value}'",
        "PARAM_EXCLUSIVE": "Only one of {parameters} may be given",
        "PARAM_REPEATED": "Parameter '{parameter}' may be given at most once",
        "PARAM_BAD_VALUE": "Parameter '{parameter}' has an invalid {type} value: {value}",
        "PARAM_BAD_TYPE": "Parameter '{parameter}' must be given as {expected}",
        "SEARCH_PARAM_UNKNOWN": "Unknown search parameter '{parameter}' for {resource_type} (Prefer: handling=strict)",
        "SEARCH_MODIFIER_UNSUPPORTED": ("Search parameter '{parameter}' of {resource_type} has no modifier ':{modifier}' "
                                        "here (Prefer: handling=strict)"),
        "EXPAND_NO_VALUESET": "Must provide a value set: url, valueSet, or the ValueSet of the path",
        "PAIRS_FILE_INVALID": "Line {line} of the pairs file: {problem}",
    }


class InvalidValueSet(InvalidRequest):
    """A ValueSet whose definition cannot be evaluated (broken filter, circular import)."""

    tx_issue_type = "vs-invalid"
    messages = {
        "UNABLE_TO_HANDLE_SYSTEM_FILTER_WITH_NO_VALUE":
            "The system {system} filter with property = {property}, op = {op} has no value",
    }


class CircularValueSet(InvalidValueSet):
    issue_code = "processing"
    messages = {
        "VALUESET_CIRCULAR_REFERENCE":
            "Found a circularity pointing to {value_set} processing ValueSet with pathway {pathway}",
    }


class VersionCheckFailed(InvalidRequest):
    """A code system version that a check-system-version parameter does not allow."""

    status = 400
    issue_code = "exception"
    tx_issue_type = "version-error"
    messages = {
        "VALUESET_VERSION_CHECK": (
            "The version '{version}' is not allowed for system '{system}': required to be '{required}' by a "
            "version-check parameter"),
    }


class TooCostly(InvalidRequest):
    """An expansion larger than FHIR_PLUGIN_MAX_EXPANSION (or the client's X-TOO-COSTLY-THRESHOLD);
    `count` (paging) gets it answered. Also a request with more tx-resource parameters than
    FHIR_PLUGIN_MAX_TX_RESOURCES: each one is validated and compiled. Also an $expand text filter
    beyond FHIR_PLUGIN_MAX_FILTER_WORDS words or FHIR_PLUGIN_MAX_FILTER_WORD_LENGTH characters in a
    word, and a regex filter too long or too complex to match (terminology/patterns.py): each
    costs time in proportion to its size on every member examined. Also structures deeper than
    this server walks: a nested expansion deeper than its `max_nesting`, a chain of value set
    imports longer than MAX_IMPORT_DEPTH, a body nested deeper than FHIR_PLUGIN_MAX_JSON_DEPTH."""

    issue_code = "too-costly"
    messages = {
        "VALUESET_TOO_COSTLY": "The value set '{value_set}' expansion has too many codes to produce ({size})",
        "EXPANSION_TOO_DEEP": "The value set '{value_set}' expansion nests concepts more than {limit} levels deep, "
                              "deeper than this server answers; ask for a flat list with excludeNested=true",
        "VALUESET_IMPORTS_TOO_DEEP": "The value set '{value_set}' imports value sets that import others more than "
                                     "{limit} levels deep, deeper than this server follows",
        "TX_RESOURCE_LIMIT": "The request has {count} tx-resource parameters; this server accepts at most {limit} in "
                             "one request",
        "FILTER_TOO_MANY_WORDS": "The filter has {count} words; this server accepts at most {limit}",
        "FILTER_WORD_TOO_LONG": "The filter has a word of {length} characters; this server accepts at most {limit}",
        "REGEX_TOO_LONG": "The regex filter has {length} characters; this server accepts at most {limit}",
        "REGEX_TOO_COMPLEX": "The regex filter '{pattern}' is too complex to match: {size} RE2 instructions; this "
                             "server accepts at most {limit}",
    }


class OverBudget(TooCostly):
    """Work that would take longer than the request's time budget (FHIR_PLUGIN_TIME_BUDGET_MS),
    stopped by `terminology.budget`. It depends on the machine's load as well as the request, so
    its answer is never kept for the next identical request."""

    deterministic = False
    messages = {
        "REQUEST_OVER_BUDGET": "The request was stopped after its time budget of {milliseconds} ms; this server "
                               "answers a request in at most that time (ask for less: a filter, a count, fewer codes)",
    }


class InvalidValidateRequest(InvalidRequest):
    """$validate-code without anything to validate, or without a value set / code system."""

    messages = {
        "VALIDATE_NO_CODE": (
            "Unable to find code to validate (looked for coding | codeableConcept | code+system | code+inferSystem "
            "in parameters"),
        "VALIDATE_NO_VALUESET": "Must provide a value set: url, valueSet, or the ValueSet of the path",
        "VALIDATE_NO_CODESYSTEM": (
            "Must provide a code system: url (or system), the coding's system, or the CodeSystem of the path"),
    }


class InvalidDisplayLanguage(InvalidRequest):
    """A displayLanguage that is not a language list (the HL7 tests expect 4xx + processing)."""

    issue_code = "processing"
    tx_issue_type = "invalid-display"
    messages = {"INVALID_DISPLAY_NAME": "Invalid displayLanguage: '{language}'"}


class NotSupported(TerminologyError):
    status = 400
    issue_code = "not-supported"
    messages = {
        "PARAM_NOT_SUPPORTED": "Parameter '{parameter}' is not supported by this server: {reason}",
        "REGEX_NOT_SUPPORTED": "The regex filter '{pattern}' cannot be matched by this server (RE2 syntax, without "
                               "backreferences or lookaround): {reason}",
        # the TX IG: a server SHALL NOT expand a value set with a code system it holds without codes
        "VALUESET_CONTENT_NOT_PRESENT": (
            "The CodeSystem '{system}' version '{version}' is held by this server without its codes (content = "
            "not-present), so the value set '{value_set}' cannot be expanded"),
    }


class NotFound(TerminologyError):
    status = 404
    issue_code = "not-found"
    tx_issue_type = "not-found"
    messages = {"RESOURCE_NOT_FOUND": "{resource_type}/{id} not found"}


class UnknownCodeSystem(NotFound):
    messages = {
        "UNKNOWN_CODESYSTEM_LOOKUP":
            "A definition for CodeSystem '{system}' could not be found, so the code cannot be looked up",
        "UNKNOWN_CODESYSTEM_VERSION_LOOKUP": (
            "A definition for CodeSystem '{system}' version '{version}' could not be found, so the code cannot be "
            "looked up. Valid versions: {known}"),
        "UNKNOWN_CODESYSTEM_EXP":
            "A definition for CodeSystem '{system}' could not be found, so the value set cannot be expanded",
        "UNKNOWN_CODESYSTEM_VERSION_EXP": (
            "A definition for CodeSystem '{system}' version '{version}' could not be found, so the value set cannot "
            "be expanded. Valid versions: {known}"),
    }

    @property
    def system(self) -> str | None:
        """The url of the code system that is not known (in the version asked for, if any)."""
        value = self.fields.get("system")
        return str(value) if value is not None else None

    @property
    def version(self) -> str | None:
        value = self.fields.get("version")
        return str(value) if value is not None else None


class UnknownCode(NotFound):
    tx_issue_type = "invalid-code"
    messages = {
        "LOOKUP_CODE_NOT_FOUND": "Unable to find code '{code}' in {system} version {version}",
        "LOOKUP_CODE_NOT_PRESENT": (
            "Unable to find code '{code}' in {system} version {version}: this server holds the code system without "
            "its codes (content = not-present)"),
        "UNKNOWN_CODE_IN_FRAGMENT": (
            "Unknown Code '{code}' in the CodeSystem '{system}' version '{version}' - note that the code system is "
            "labeled as a fragment, so the code may be valid in some other fragment"),
    }


class UnknownConceptMap(NotFound):
    messages = {
        "UNKNOWN_CONCEPTMAP": "Unable to find ConceptMap '{url}'",
        "UNKNOWN_CONCEPTMAP_VERSION": "Unable to find ConceptMap '{url}' version '{version}'. Valid versions: {known}",
    }


class UnknownValueSet(NotFound):
    messages = {
        "Unable_to_resolve_value_Set_": "A definition for the value Set '{value_set}' could not be found",
        "VS_EXP_IMPORT_UNK_PINNED": "Unable to find included value set '{value_set}' version '{version}'",
    }


class UnknownSupplement(NotFound):
    messages = {"VALUESET_SUPPLEMENT_MISSING": "Required supplement not found: {supplement}"}


# Messages of answers, not errors: the issues and `message` of a result=false $validate-code or
# $translate. Their templates keep the catalogue's numbered arguments ({0}, {1}, ...).
ANSWER_MESSAGES: Mapping[str, str] = {
    "TRANSLATE_NO_MAP": "No ConceptMap is available to translate from '{0}'{1}",
    "TRANSLATE_NOT_FOUND": "No translations found for '{0}' in '{1}'{2}",
    "TRANSLATE_PAIR_NOT_MAPPED": "'{0}' in '{1}' is not mapped to '{2}' in '{3}'",
    # ours (the HL7 catalogue has no "did you mean"): a code given without the dot its code system
    # writes, as ICD-10-CM codes travel on claims (M6281 for M62.81)
    "TRANSLATE_CODE_WITHOUT_DOT": (
        "Did you mean '{2}' ('{3}')? The CodeSystem '{1}' writes its codes with a dot and has no code '{0}'"),
    "None_of_the_provided_codes_are_in_the_value_set_one": "The provided code '{2}' was not found in the value set '{1}'",
    "None_of_the_provided_codes_are_in_the_value_set_other": "None of the provided codes [{2}] are in the value set '{1}'",
    "TX_GENERAL_CC_ERROR_MESSAGE": "No valid coding was found for the value set '{0}'",
    "Unknown_Code_in_Version": "Unknown code '{0}' in the CodeSystem '{1}' version '{2}'",
    "UNKNOWN_CODESYSTEM": "A definition for CodeSystem '{0}' could not be found, so the code cannot be validated",
    # ours: a code system this server holds without its codes (content = not-present), as FHIR core
    # and THO publish some; the TX IG: a server SHALL NOT validate codes against one
    "CODESYSTEM_CONTENT_NOT_PRESENT": (
        "The CodeSystem '{0}' version '{1}' is held by this server without its codes (content = not-present), so "
        "the code cannot be validated"),
    # the same message as the reference servers word it when the value set does not use the system
    "UNKNOWN_CODESYSTEM_UNQUOTED": "A definition for CodeSystem {0} could not be found, so the code cannot be validated",
    "UNKNOWN_CODESYSTEM_VERSION": (
        "A definition for CodeSystem '{0}' version '{1}' could not be found, so the code cannot be validated. "
        "Valid versions: {2}"),
    "UNKNOWN_CODESYSTEM_VERSION_NONE": (
        "A definition for CodeSystem '{0}' version '{1}' could not be found, so the code cannot be validated. "
        "No versions of this code system are known"),
    "Display_Name_for__should_be_one_of__instead_of": (
        "Wrong Display Name '{4}' for {1}#{2}. Valid display is {3} (for the language(s) '{5}')"),
    "Display_Name_WS_for__should_be_one_of__instead_of": (
        "Wrong whitespace in Display Name '{4}' for {1}#{2}. Valid display is {3} (for the language(s) '{5}')"),
    "NO_VALID_DISPLAY_FOUND_NONE_FOR_LANG_OK": (
        "There are no valid display names found for the code {1}#{2} for language(s) '{3}'. The display is '{4}' "
        "which is a valid display for the default language"),
    "NO_VALID_DISPLAY_FOUND_NONE_FOR_LANG_ERR": (
        "Wrong Display Name '{0}' for {1}#{2}. There are no valid display names found for language(s) '{3}'. "
        "Default display is '{4}'"),
    "INACTIVE_CONCEPT_FOUND": "The concept '{1}' has a status of {0} and its use should be reviewed",
    "DEPRECATED_CONCEPT_FOUND": "The concept '{1}' is deprecated and its use should be reviewed",
    "STATUS_CODE_WARNING_CODE": "The concept '{1}' is valid but is {0}",
    "INACTIVE_DISPLAY_FOUND_one": (
        "'{1}' is no longer considered a correct display for code '{2}' (status = {4}). The correct display is {3}"),
    "INACTIVE_DISPLAY_FOUND_other": (
        "'{1}' is no longer considered a correct display for code '{2}' (status = {4}). The correct display is one "
        "of {3}"),
    "CONCEPT_DEPRECATED_IN_VALUESET": (
        "The presence of the concept '{1}' in the system '{0}' in the value set {3} is marked with a status of {2} "
        "and its use should be reviewed"),
    "CODE_CASE_DIFFERENCE": (
        "The code '{0}' differs from the correct code '{1}' by case. Although the code system '{2}' is case "
        "insensitive, implementers are strongly encouraged to use the correct case anyway"),
    "ABSTRACT_CODE_NOT_ALLOWED": "Code '{0}#{1}' is abstract, and not allowed in this context",
    "UNABLE_TO_INFER_CODESYSTEM": "The System URI could not be determined for the code '{0}' in the ValueSet '{1}'",
    "Unable_to_resolve_system__value_set_has_multiple_matches": (
        "The System URI could not be determined for the code '{0}' in the ValueSet '{1}': value set expansion has "
        "multiple matches: {2}"),
    "Terminology_TX_System_ValueSet2": "The Coding references a value set, not a code system ('{0}')",
    # a code system named by an alias (an OID, ...): answered as its canonical URL, with this warning
    "VALUESET_INCLUDE_WRONG_CS_OID": "It is not valid to refer to a CodeSystem by an identifier like this '{0}' - use '{1}'",
    "Terminology_TX_System_Relative": "Coding.system must be an absolute reference, not a local reference",
    "Coding_has_no_system__cannot_validate": (
        "Coding has no system. A code with no system has no defined meaning, and it cannot be validated. A system "
        "should be provided"),
    "CODESYSTEM_CS_NO_SUPPLEMENT": "CodeSystem {0} is a supplement, so can't be used as a value in Coding.system",
    "VALUESET_VALUE_MISMATCH": (
        "The code system '{0}' version '{1}' in the ValueSet include is different to the one in the value ('{2}')"),
    "VALUESET_VALUE_MISMATCH_DEFAULT": (
        "The code system '{0}' version '{1}' for the versionless include in the ValueSet include is different to "
        "the one in the value ('{3}')"),
    "VALUESET_VALUE_MISMATCH_CHANGED": (
        "The code system '{0}' version '{1}' resulting from the version '{2}' in the ValueSet include is different "
        "to the one in the value ('{3}')"),
    "MSG_DRAFT": "Reference to draft {2} {0}",
    "MSG_DEPRECATED": "Reference to deprecated {2} {0}",
    "MSG_WITHDRAWN": "Reference to withdrawn {2} {0}",
    "MSG_EXPERIMENTAL": "Reference to experimental {2} {0}",
}


def answer_message(message_id: str, /, *args: object, **fields: object) -> str:
    """The text of an answer's message: numbered arguments for the answer messages, named fields
    for an error's message that an answer reports as an issue (an unknown code in a fragment)."""
    found = ANSWER_MESSAGES.get(message_id)
    if found is None:
        found = next(cls.messages[message_id] for cls in error_classes() if message_id in cls.messages)
    return found.format(*args, **fields)


def error_classes() -> list[type[TerminologyError]]:
    """Every subclass of TerminologyError defined so far (in any layer), depth first."""
    found: list[type[TerminologyError]] = []
    pending = list(reversed(TerminologyError.__subclasses__()))
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(reversed(cls.__subclasses__()))
    return found
