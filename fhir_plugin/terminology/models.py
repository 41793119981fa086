"""Typed values of the engine: compiled content, operation requests and results.

Frozen dataclasses, snake_case, no FHIR JSON: the web layer and the client translate between
these and Parameters. Internal semantics are R5 (relationship codes, canonical `url|version`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Union

PropertyScalar = Union[str, int, bool, Decimal, "Coding"]


@dataclass(frozen=True, slots=True)
class Coding:
    system: str | None = None
    code: str | None = None
    version: str | None = None
    display: str | None = None


@dataclass(frozen=True, slots=True)
class Designation:
    value: str
    language: str | None = None
    use: Coding | None = None
    source: str | None = None  # url|version of the supplement that added it, if any
    # FHIR extensions on the designation (raw dicts, e.g. coding-sctdescid); echoed by $expand
    extensions: tuple[dict, ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True)
class PropertyValue:
    """One concept property. `type` is the FHIR value[x] suffix: code, Coding, string, integer,
    boolean, dateTime or decimal. `description` is the display of a code-valued property
    (e.g. the parent's display), as the $lookup output carries it."""

    code: str
    value: PropertyScalar
    type: str
    description: str | None = None


@dataclass(frozen=True, slots=True)
class PropertyDefinition:
    code: str
    type: str
    uri: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Concept:
    code: str
    display: str | None
    definition: str | None = None
    designations: tuple[Designation, ...] = ()
    properties: tuple[PropertyValue, ...] = ()
    parents: tuple[str, ...] = ()
    children: tuple[str, ...] = ()
    abstract: bool = False
    inactive: bool = False
    # What concept extensions say that $expand reports as properties (order, label, weight,
    # status from codesystem-conceptOrder, codesystem-label, itemWeight, standards-status) and
    # the rendering extensions it echoes; kept apart so that $lookup output does not change.
    extension_properties: tuple[PropertyValue, ...] = ()
    extensions: tuple[dict, ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True)
class CodeSystemEntry:
    url: str
    version: str | None
    id: str | None
    name: str | None
    title: str | None
    status: str
    content: str
    case_sensitive: bool
    concepts: dict[str, Concept]
    folded_codes: dict[str, str]  # case-folded code -> code, only when not case-sensitive
    property_definitions: tuple[PropertyDefinition, ...]
    resource: dict = field(repr=False, compare=False)
    # code -> its place in `concepts`: a filter that selects a few codes of a large system lists
    # them in code system order without walking every concept.
    positions: dict[str, int] = field(default_factory=dict, repr=False, compare=False)
    # code -> the case-folded words $expand's text filter matches, filled as filters ask for them
    # (a mutable holder on a frozen entry: a supplemented copy must be given a new one).
    search_words: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def canonical(self) -> str:
        return f"{self.url}|{self.version}" if self.version else self.url

    def find(self, code: str) -> Concept | None:
        concept = self.concepts.get(code)
        if concept is None and self.folded_codes:
            real = self.folded_codes.get(code.casefold())
            concept = self.concepts.get(real) if real else None
        return concept


@dataclass(frozen=True, slots=True)
class MapTarget:
    code: str | None
    display: str | None
    relationship: str
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class MapElement:
    code: str
    display: str | None
    targets: tuple[MapTarget, ...]
    no_map: bool = False


@dataclass(frozen=True, slots=True)
class MapGroup:
    source: str | None
    source_version: str | None
    target: str | None
    target_version: str | None
    elements: dict[str, MapElement]
    # target system code -> the (element, target) pairs that reach it, for reverse translation
    by_target: dict[str, tuple[tuple[MapElement, MapTarget], ...]]


@dataclass(frozen=True, slots=True)
class ConceptMapEntry:
    url: str | None
    version: str | None
    id: str | None
    name: str | None
    status: str
    source_scope: str | None
    target_scope: str | None
    groups: tuple[MapGroup, ...]
    resource: dict = field(repr=False, compare=False)

    @property
    def canonical(self) -> str | None:
        if self.url and self.version:
            return f"{self.url}|{self.version}"
        return self.url


@dataclass(frozen=True, slots=True)
class ResourceEntry:
    """Any other conformance resource (ValueSet, ...), kept for read and search."""

    resource_type: str
    url: str | None
    version: str | None
    id: str | None
    name: str | None
    title: str | None
    status: str | None
    resource: dict = field(repr=False, compare=False)


# --- $lookup ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LookupRequest:
    """CodeSystem/$lookup input. Give `system` + `code`, or `coding`."""

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


# --- $translate ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TranslateRequest:
    """ConceptMap/$translate input, with R4 and R5 names already reconciled.

    `source` holds the concept(s) to translate (from code/coding/codeableConcept or their R5
    `source*` forms). `target` holds a target-side concept (R5 targetCode/targetCoding/
    targetCodeableConcept). With only `target`, the translation runs in reverse; with both, the
    request asks whether that one pairing is mapped. `reverse=True` is R4's flag: then `source`
    names a target-side concept and the answer is the source-side concepts.
    """

    source: tuple[Coding, ...] = ()
    target: tuple[Coding, ...] = ()
    target_system: str | None = None
    source_system: str | None = None
    source_scope: str | None = None
    target_scope: str | None = None
    url: str | None = None
    concept_map_version: str | None = None
    concept_map: dict | None = None
    reverse: bool = False

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
