"""Read and search of the loaded CodeSystem, ValueSet and ConceptMap resources.

The search parameters are FHIR's for these three types (R4 and R5 define the same ones here):
string parameters (name, title, publisher, description) match at the start of the value after
both sides are folded for case and accents, as FHIR's string search does by default; `:exact`
asks for the same characters exactly, `:contains` for the folded value anywhere. url (optionally
`url|version`), version, status and _id match exactly. A criterion's values are alternatives (the
comma of a FHIR query); criteria must all hold (a parameter given twice must match twice).

Matches come in the registry's order (run-time loads first, then the start-up content in the
order it was read), the same for the same content, so that pages of a search do not shift.

An id may be held by several resources (FHIR core's copies of R4 and R5, packages' own ids): `_id`
matches the one a read of that id gives (for a registry that prefers a version, its copy: see
registry.py), and the matches that share an id come together, that one first.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping, Sequence

from .budget import checked
from .entries import ResourceEntry
from .errors import InvalidRequest, NotFound
from .models import Criterion
from .registry import Registry

STRING, TOKEN, URI = "string", "token", "uri"
# name -> type, in the order the CapabilityStatement lists them
SEARCH_PARAMETERS: dict[str, str] = {"_id": TOKEN, "url": URI, "version": TOKEN, "name": STRING, "title": STRING,
                                     "status": TOKEN, "publisher": STRING, "description": STRING}
# the modifiers each type of parameter supports here (besides none)
MODIFIERS: dict[str, tuple[str, ...]] = {STRING: ("exact", "contains"), TOKEN: (), URI: ()}


def supports(name: str, modifier: str | None) -> bool:
    """Whether `name` is a search parameter here, with `modifier` (None: without one)."""
    kind = SEARCH_PARAMETERS.get(name)
    return kind is not None and (modifier is None or modifier in MODIFIERS[kind])


def fold(text: str) -> str:
    """`text` without case or accents, for FHIR's default string matching: decomposed, its
    combining marks dropped, case-folded ("Ménière" -> "meniere")."""
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def read_resource(registry: Registry, resource_type: str, resource_id: str) -> ResourceEntry:
    entry = registry.by_id(resource_type, resource_id)
    if entry is None:
        raise NotFound("RESOURCE_NOT_FOUND", resource_type=resource_type, id=resource_id)
    return entry


def _value(entry: ResourceEntry, name: str) -> str | None:
    if name == "_id":
        return entry.id
    if name in ("url", "version", "name", "title", "status"):
        value: str | None = getattr(entry, name)
        return value
    found = entry.resource.get(name)  # publisher, description: read where they are
    return found if isinstance(found, str) else None


def _test(criterion: Criterion, resource_type: str, registry: Registry) -> Callable[[ResourceEntry], bool]:
    """A predicate on entries for `criterion`; an unknown parameter or modifier is refused."""
    name, modifier = criterion.name, criterion.modifier
    if name not in SEARCH_PARAMETERS:
        raise InvalidRequest("SEARCH_PARAM_UNKNOWN", parameter=name, resource_type=resource_type, expression=name)
    if not supports(name, modifier):
        raise InvalidRequest("SEARCH_MODIFIER_UNSUPPORTED", parameter=name, modifier=modifier,
                             resource_type=resource_type, expression=f"{name}:{modifier}")
    values = criterion.values
    if name == "url":
        wanted = [value.partition("|")[::2] for value in values]
        return lambda e: any(e.url == url and (not version or e.version == version) for url, version in wanted)
    if name == "_id":  # the logical id names what a read of it gives, not every resource that has it
        ids = frozenset(values)
        return lambda e: e.id in ids and registry.by_id(resource_type, e.id) is e
    if SEARCH_PARAMETERS[name] != STRING or modifier == "exact":
        exact = frozenset(values)
        return lambda e: _value(e, name) in exact
    folded = [fold(value) for value in values]
    if modifier == "contains":
        return lambda e: (found := _value(e, name)) is not None and any(w in fold(found) for w in folded)
    return lambda e: (found := _value(e, name)) is not None and fold(found).startswith(tuple(folded))


def search_resources(registry: Registry, resource_type: str,
                     criteria: Mapping[str, str] | Sequence[Criterion]) -> list[ResourceEntry]:
    """Every `resource_type` resource that meets all `criteria`: Criterion objects, or a mapping of
    parameter names to one value each (no modifiers, no alternatives)."""
    given = [Criterion(k, (v,)) for k, v in criteria.items()] if isinstance(criteria, Mapping) else list(criteria)
    tests = [_test(criterion, resource_type, registry) for criterion in given]
    found = [e for e in checked(registry.entries(resource_type)) if all(test(e) for test in tests)]
    return _reads_first(registry, resource_type, found)


def _reads_first(registry: Registry, resource_type: str, found: list[ResourceEntry]) -> list[ResourceEntry]:
    """`found` with the entries that share an id together, at the first one's place, the one a
    read of that id gives first: on /r4 FHIR core's R4 copy before R5's."""
    groups: dict[object, list[ResourceEntry]] = {}
    for entry in found:
        groups.setdefault(entry.id or id(entry), []).append(entry)
    if len(groups) == len(found):
        return found
    ordered: list[ResourceEntry] = []
    for key, group in groups.items():
        if len(group) > 1 and isinstance(key, str):
            read = registry.by_id(resource_type, key)
            group.sort(key=lambda entry: entry is not read)
        ordered.extend(group)
    return ordered
