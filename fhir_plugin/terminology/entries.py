"""The compiled content the registry holds: code systems with their concepts, concept maps with
their groups, and every other conformance resource as read.

Apart from the operations' requests and results (models.py) because these are what load time
builds and the compiled-content cache pickles, about a million objects with the full content: the
values both sides share (Coding, Designation, PropertyValue) live here too, since concepts are
made of them. Frozen slots dataclasses, internal semantics R5.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from decimal import Decimal
from typing import Any, Union

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
    extensions: tuple[dict[str, Any], ...] = field(default=(), compare=False)


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
    extensions: tuple[dict[str, Any], ...] = field(default=(), compare=False)


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
    resource: dict[str, Any] = field(repr=False, compare=False)
    # code -> its place in `concepts`: a filter that selects a few codes of a large system lists
    # them in code system order without walking every concept.
    positions: dict[str, int] = field(default_factory=dict, repr=False, compare=False)
    # code -> the case-folded words $expand's text filter matches, filled as filters ask for them
    # (a mutable holder on a frozen entry: a supplemented copy must be given a new one).
    search_words: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    # Whether expansions nest along the hierarchy: not when it comes from properties the code system
    # names itself (THO's `subsumedBy`), which the reference server lists flat.
    nestable: bool = field(default=True, compare=False)

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
    resource: dict[str, Any] = field(repr=False, compare=False)

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
    resource: dict[str, Any] = field(repr=False, compare=False)


def quick_setstate(cls: type) -> None:
    """Unpickle `cls` (a slots dataclass) through its slots' own setters: the compiled content
    cache holds about a million such objects with the complete ICD-10-CM and HL7 Terminology, and
    the dataclasses module's __setstate__ looks its fields up again for every one of them (a third
    of a warm start's unpickling, measured: 0.71 s -> 0.46 s for ICD-10-CM)."""
    names = tuple(f.name for f in fields(cls))
    setters = tuple(cls.__dict__[name].__set__ for name in names)

    def __setstate__(self: Any, state: list[Any]) -> None:
        for set_value, value in zip(setters, state):
            set_value(self, value)

    setattr(cls, "__setstate__", __setstate__)


def unpickle_quickly(namespace: dict[str, Any], module: str) -> None:
    """Give every frozen slots dataclass defined in `module` (pickled as the list of its fields'
    values, dataclasses' __getstate__) the quick __setstate__."""
    for cls in list(namespace.values()):
        if (isinstance(cls, type) and cls.__module__ == module and is_dataclass(cls)
                and "__getstate__" in cls.__dict__):
            quick_setstate(cls)


unpickle_quickly(globals(), __name__)
