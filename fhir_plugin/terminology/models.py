"""Typed values of the engine's operations: their requests and results.

Frozen dataclasses, snake_case, no FHIR JSON: the web layer and the client translate between
these and Parameters (fhir_plugin.render). Internal semantics are R5 (relationship codes,
canonical `url|version`). Every request type has an example in its docstring. The compiled
content they are answered from, and the values they share with it (Coding, Designation,
PropertyValue), are entries.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .entries import Coding, Designation, PropertyValue, unpickle_quickly


@dataclass(frozen=True, slots=True)
class Criterion:
    """One search parameter (terminology.search): its name, the values any of which may match,
    and a modifier (`exact` or `contains`, for the string parameters).

        Criterion("title", ("gait", "walking"), "contains")   # title:contains=gait,walking
    """

    name: str
    values: tuple[str, ...]
    modifier: str | None = None


# --- $lookup ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LookupRequest:
    """CodeSystem/$lookup input. Give `system` + `code`, or `coding`.

        LookupRequest(system="http://www.ama-assn.org/go/cpt", code="97116", properties=("work-rvu",))
    """

    system: str | None = None
    code: str | None = None
    version: str | None = None
    coding: Coding | None = None
    date: str | None = None
    display_language: str | None = None
    properties: tuple[str, ...] = ()
    use_supplements: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LookupResult:
    name: str
    system: str
    version: str | None
    code: str
    display: str | None
    definition: str | None
    abstract: bool
    designations: tuple[Designation, ...] = ()
    properties: tuple[PropertyValue, ...] = ()
    used_supplements: tuple[str, ...] = ()  # url|version of the supplements applied (useSupplement)
    issues: tuple[Issue, ...] = ()  # warnings: a code system named by an alias (identifiers.py)


# --- $translate ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TranslateRequest:
    """ConceptMap/$translate input, with R4 and R5 names already reconciled.

    `source` holds the concept(s) to translate (from code/coding/codeableConcept or their R5
    `source*` forms). `target` holds a target-side concept (R5 targetCode/targetCoding/
    targetCodeableConcept). With only `target`, the translation runs in reverse; with both, the
    request asks whether that one pairing is mapped. `reverse=True` is R4's flag: then `source`
    names a target-side concept and the answer is the source-side concepts. `dialect` is the FHIR
    release whose parameter names the request was given in, when only one release has them
    ("R4" for `code`/`coding`/`reverse`/...): an R4 answer then carries R4's `match.source`.

        TranslateRequest(source=(Coding("http://www.ama-assn.org/go/cpt", "97116"),),
                         target=(Coding("http://hl7.org/fhir/sid/icd-10-cm", "R26.2"),))
    """

    source: tuple[Coding, ...] = ()
    target: tuple[Coding, ...] = ()
    target_system: str | None = None
    source_system: str | None = None
    source_scope: str | None = None
    target_scope: str | None = None
    url: str | None = None
    concept_map_version: str | None = None
    concept_map: dict[str, Any] | None = None
    reverse: bool = False
    dialect: str | None = None
    # how `source` and `target` were given: "code" (+ system), "coding" or "codeableConcept"; None
    # (a library caller): a Coding when there is one concept, else a CodeableConcept
    source_form: str | None = None
    target_form: str | None = None

    @property
    def mode(self) -> str:
        """forward, reverse (R4 flag), target (R5 reverse by target*), or pair."""
        if self.reverse:
            return "reverse"
        if self.source and self.target:
            return "pair"
        return "target" if self.target else "forward"


@dataclass(frozen=True, slots=True)
class TranslateMatch:
    relationship: str
    concept: Coding
    origin_map: str | None
    source: Coding | None = None  # the source-side concept, in R5 reverse (target) mode only


@dataclass(frozen=True, slots=True)
class TranslateResult:
    result: bool
    matches: tuple[TranslateMatch, ...] = ()
    message: str | None = None
    mode: str = "forward"
    dialect: str | None = None  # the request's (TranslateRequest.dialect): it decides R4's match.source
    issues: tuple[Issue, ...] = ()  # warnings: a code system named by an alias (identifiers.py)


# --- $subsumes -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubsumesRequest:
    """CodeSystem/$subsumes input: `code_a` + `code_b` + `system` (+ `version`), or two codings.

        SubsumesRequest(code_a="M62", code_b="M62.81", system="http://hl7.org/fhir/sid/icd-10-cm")
    """

    code_a: str | None = None
    code_b: str | None = None
    system: str | None = None
    version: str | None = None
    coding_a: Coding | None = None
    coding_b: Coding | None = None


@dataclass(frozen=True, slots=True)
class SubsumesResult:
    """equivalent, subsumes (A is an ancestor of B), subsumed-by or not-subsumed, and the code
    system version the two codes were compared in."""

    outcome: str
    system: str
    version: str | None
    issues: tuple[Issue, ...] = ()  # warnings: a code system named by an alias (identifiers.py)


# --- $validate-code --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Issue:
    """One issue of a $validate-code answer (an OperationOutcome issue). `in_message` says whether
    its text goes into the answer's `message`; it is not on the wire, so it is not compared."""

    severity: str  # error | warning | information
    code: str  # OperationOutcome issue type: code-invalid, not-found, invalid, business-rule, ...
    tx_type: str  # http://hl7.org/fhir/tools/CodeSystem/tx-issue-type code
    text: str
    message_id: str | None = None
    expression: str | None = None
    in_message: bool = field(default=True, compare=False)


def versions_by_system(canonicals: Iterable[str]) -> dict[str, str]:
    """url -> version from `url|version` canonicals (system-version, force-system-version, ...)."""
    found = {}
    for canonical in canonicals:
        url, _, version = canonical.partition("|")
        if version:
            found[url] = version
    return found


@dataclass(frozen=True, slots=True)
class VersionRules:
    """url -> version, from the system-version, check-system-version and force-system-version
    parameters (canonical `url|version` each).

        VersionRules(force={"http://hl7.org/fhir/sid/icd-10-cm": "2026-04-01"})
    """

    default: dict[str, str] = field(default_factory=dict)
    check: dict[str, str] = field(default_factory=dict)
    force: dict[str, str] = field(default_factory=dict)

    parse = staticmethod(versions_by_system)


@dataclass(frozen=True, slots=True)
class ValidateCodeRequest:
    """Either a value set (`url`[+`value_set_version`] or inline `value_set`) or, for
    CodeSystem/$validate-code, `code_system_url` (+ the coding's version). `form` says how the
    concept was given: "code" (code+system+display), "coding" or "codeableConcept"; it decides the
    FHIRPath expressions of the issues.

        ValidateCodeRequest(codings=(Coding("http://hl7.org/fhir/sid/icd-10-cm", "R26.2"),),
                            url="http://fhir-plugin.org/fhir/ValueSet/icd-10-cm-gait-training-diagnoses")
        ValidateCodeRequest(codings=(Coding("http://www.ama-assn.org/go/cpt", "97116", display="Gait training"),),
                            code_system_url="http://www.ama-assn.org/go/cpt")
    """

    codings: tuple[Coding, ...] = ()
    form: str = "code"
    codeable_concept: dict[str, Any] | None = None  # the CodeableConcept as given, echoed back
    url: str | None = None
    value_set_version: str | None = None
    value_set: dict[str, Any] | None = None
    code_system_url: str | None = None
    display_language: str | None = None
    accept_language: str | None = None
    lenient_display: bool = False
    abstract: bool | None = None
    active_only: bool = False
    infer_system: bool = False
    membership_only: bool = False
    default_value_set_version: tuple[str, ...] = ()
    versions: VersionRules = field(default_factory=VersionRules)
    use_supplements: tuple[str, ...] = ()
    date: str | None = None


@dataclass(frozen=True, slots=True)
class ValidateCodeResult:
    result: bool
    code: str | None = None
    system: str | None = None
    version: str | None = None
    display: str | None = None
    message: str | None = None
    issues: tuple[Issue, ...] = ()
    inactive: bool | None = None
    status: str | None = None
    codeable_concept: dict[str, Any] | None = None
    caused_by_unknown_system: tuple[str, ...] = ()
    unknown_systems: tuple[str, ...] = ()
    normalized_code: str | None = None


# --- $expand ---------------------------------------------------------------------------------

DEFAULT_MAX_EXPANSION = 10_000
# The longest ICD-10-CM display has 31 words, its longest word 25 letters: a display pasted whole
# is well within both.
DEFAULT_MAX_FILTER_WORDS = 40
DEFAULT_MAX_FILTER_WORD_LENGTH = 100
# The deepest `contains` nesting of an answer: concept hierarchy levels, each an array and an
# object of JSON (the web layer sets it to half of FHIR_PLUGIN_MAX_JSON_DEPTH, this by default).
DEFAULT_MAX_NESTING = 50


@dataclass(frozen=True, slots=True)
class ExpandRequest:
    """ValueSet/$expand input. Booleans are None when the client did not give them (then they are
    not echoed).

        ExpandRequest(url="http://fhir-plugin.org/fhir/ValueSet/icd-10-cm-gait-training-diagnoses")
        ExpandRequest(value_set={"resourceType": "ValueSet", "status": "active", "compose": {"include": [
            {"system": "http://hl7.org/fhir/sid/icd-10-cm", "filter": [
                {"property": "concept", "op": "is-a", "value": "M62"}]}]}}, filter="weak", count=10)
    """

    url: str | None = None
    value_set: dict[str, Any] | None = None
    value_set_version: str | None = None
    filter: str | None = None
    date: str | None = None
    offset: int | None = None
    count: int | None = None
    include_designations: bool | None = None
    designations: tuple[str, ...] = ()
    include_definition: bool | None = None
    active_only: bool | None = None
    exclude_nested: bool | None = None
    exclude_not_for_ui: bool | None = None
    exclude_post_coordinated: bool | None = None
    display_language: str | None = None
    accept_language: str | None = None  # the HTTP Accept-Language header, used when displayLanguage is absent
    exclude_systems: tuple[str, ...] = ()
    system_versions: tuple[str, ...] = ()  # url|version canonicals
    check_system_versions: tuple[str, ...] = ()
    force_system_versions: tuple[str, ...] = ()
    properties: tuple[str, ...] = ()
    use_supplements: tuple[str, ...] = ()
    default_value_set_versions: tuple[str, ...] = ()
    max_expansion: int = DEFAULT_MAX_EXPANSION  # the most codes one answer lists (count is lowered to it)
    max_nesting: int = DEFAULT_MAX_NESTING  # the deepest hierarchy a nested answer shows
    # the server's limits on the text filter (FHIR_PLUGIN_MAX_FILTER_WORDS, ..._WORD_LENGTH)
    max_filter_words: int = DEFAULT_MAX_FILTER_WORDS
    max_filter_word_length: int = DEFAULT_MAX_FILTER_WORD_LENGTH


@dataclass(frozen=True, slots=True)
class ExpansionParameter:
    """One `expansion.parameter`: `type` is the value[x] suffix (Boolean, String, Uri, Code, Integer)."""

    name: str
    type: str
    value: str | int | bool


@dataclass(frozen=True, slots=True)
class ExpansionEntry:
    """One `expansion.contains` entry; `contains` holds the entries nested under it."""

    system: str
    code: str
    version: str | None = None
    display: str | None = None
    abstract: bool = False
    inactive: bool = False
    designations: tuple[Designation, ...] = ()
    properties: tuple[PropertyValue, ...] = ()
    extensions: tuple[dict[str, Any], ...] = ()
    contains: tuple[ExpansionEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class ExpandResult:
    """The expansion of a value set. `value_set` holds the ValueSet's own elements that an
    expansion repeats (its identity and status; its definition too with includeDefinition).
    `fragment_of` is the code system of a fragment the expansion used (so it may be incomplete)."""

    value_set: dict[str, Any]
    identifier: str
    timestamp: str
    total: int
    offset: int | None = None
    parameters: tuple[ExpansionParameter, ...] = ()
    properties: tuple[tuple[str, str | None], ...] = ()  # (code, uri) of the properties the entries carry
    contains: tuple[ExpansionEntry, ...] = ()
    fragment_of: str | None = None


# --- read, search and metadata ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CodeSystemVersions:
    """A code system the server knows, with its versions (the default first)."""

    url: str
    versions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TerminologyMetadata:
    """What a terminology server says about itself that both sides can tell: the code systems it
    serves (TerminologyCapabilities.codeSystem)."""

    code_systems: tuple[CodeSystemVersions, ...] = ()


unpickle_quickly(globals(), __name__)
