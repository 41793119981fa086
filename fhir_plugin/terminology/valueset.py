"""Value set semantics: which concepts a ValueSet's compose selects.

`evaluate` walks compose.include / compose.exclude in order and returns the selected members,
flat and in definition order, with the code systems and value sets it used. $expand renders the
members; $validate-code asks whether a coding is among them. Filters follow the R5 filter-operator
value set (https://hl7.org/fhir/R5/valueset-filter-operator.html); the `concept` (or `code`)
property means the hierarchy, any other property a concept property.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from .errors import InvalidRequest, NotSupported, UnknownValueSet
from .models import CodeSystemEntry, Concept
from .registry import Registry


@dataclass(frozen=True, slots=True)
class Member:
    system: str
    version: str | None
    code: str
    display: str | None
    concept: Concept | None  # None when the code system is not loaded (an enumerated code taken on trust)
    code_system: CodeSystemEntry | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.system, self.code


@dataclass
class Evaluation:
    members: list[Member] = field(default_factory=list)
    used_code_systems: list[str] = field(default_factory=list)  # canonical url|version, in order of use
    used_value_sets: list[str] = field(default_factory=list)


def resolve_value_set(registry: Registry, canonical: str, version: str | None = None) -> dict:
    """The ValueSet resource named by `canonical` (`url` or `url|version`); UnknownValueSet if absent."""
    url, _, pinned = canonical.partition("|")
    wanted = version or pinned or None
    versions = registry.resource_versions("ValueSet", url)
    for entry in versions:
        if wanted is None or entry.version == wanted:
            return entry.resource
    if wanted and versions:
        raise UnknownValueSet("VS_EXP_IMPORT_UNK_PINNED", url, wanted)
    raise UnknownValueSet("Unable_to_resolve_value_Set_", canonical)


# --- filters on one code system ---------------------------------------------------------------


def _descendants(cs: CodeSystemEntry, code: str) -> Iterator[str]:
    stack = list(reversed(cs.concepts[code].children)) if code in cs.concepts else []
    seen: set[str] = set()
    while stack:
        child = stack.pop()
        if child in seen or child not in cs.concepts:
            continue
        seen.add(child)
        yield child
        stack.extend(reversed(cs.concepts[child].children))


def _ancestors(cs: CodeSystemEntry, code: str) -> set[str]:
    found: set[str] = set()
    stack = list(cs.concepts[code].parents) if code in cs.concepts else []
    while stack:
        parent = stack.pop()
        if parent not in found:
            found.add(parent)
            stack.extend(cs.concepts[parent].parents if parent in cs.concepts else ())
    return found


def _property_values(concept: Concept, name: str) -> list[str]:
    values = []
    for prop in concept.properties:
        if prop.code == name:
            value = prop.value
            if isinstance(value, bool):
                values.append("true" if value else "false")
            elif hasattr(value, "code"):
                values.append(value.code)  # type: ignore[union-attr]
            else:
                values.append(str(value))
    if name == "parent":
        values.extend(concept.parents)
    elif name == "child":
        values.extend(concept.children)
    elif name in ("display",) and concept.display:
        values.append(concept.display)
    elif name in ("inactive",) and not any(p.code == "inactive" for p in concept.properties):
        values.append("true" if concept.inactive else "false")
    elif name in ("notSelectable", "not-selectable") and not values:
        values.append("true" if concept.abstract else "false")
    return values


def _filter_codes(cs: CodeSystemEntry, flt: dict) -> set[str]:
    prop, op, value = flt.get("property"), flt.get("op"), flt.get("value")
    if value is None and op != "exists":
        raise InvalidRequest("UNABLE_TO_HANDLE_SYSTEM_FILTER_WITH_NO_VALUE", cs.url, prop, op)
    all_codes = cs.concepts.keys()
    if prop in ("concept", "code"):
        if op == "is-a":
            return {value, *_descendants(cs, value)} if value in cs.concepts else set()
        if op == "descendent-of":
            return set(_descendants(cs, value))
        if op == "is-not-a":
            return set(all_codes) - {value, *_descendants(cs, value)}
        if op == "child-of":
            return set(cs.concepts[value].children) if value in cs.concepts else set()
        if op == "descendent-leaf":
            return {c for c in _descendants(cs, value) if not cs.concepts[c].children}
        if op == "generalizes":
            return {value, *_ancestors(cs, value)} if value in cs.concepts else set()
        if op in ("in", "not-in"):
            listed = {v.strip() for v in value.split(",")}
            return listed & set(all_codes) if op == "in" else set(all_codes) - listed
        if op == "=":
            return {value} if value in cs.concepts else set()
        if op == "regex":
            pattern = _regex(value)
            return {c for c in all_codes if pattern.fullmatch(c)}
    if op == "exists":
        wanted = str(value).lower() != "false"
        return {c for c, concept in cs.concepts.items() if bool(_property_values(concept, prop)) == wanted}
    if op == "=":
        return {c for c, concept in cs.concepts.items() if value in _property_values(concept, prop)}
    if op in ("in", "not-in"):
        listed = {v.strip() for v in value.split(",")}
        inside = {c for c, concept in cs.concepts.items() if listed & set(_property_values(concept, prop))}
        return inside if op == "in" else set(all_codes) - inside
    if op == "regex":
        pattern = _regex(value)
        return {c for c, concept in cs.concepts.items()
                if any(pattern.fullmatch(v) for v in _property_values(concept, prop))}
    raise NotSupported("PARAM_NOT_SUPPORTED", f"filter {prop} {op}", "this filter is not supported")


def _regex(value: str) -> re.Pattern:
    try:
        return re.compile(value)
    except re.error as error:
        raise InvalidRequest("PARAM_BAD_VALUE", "filter", "regex", f"{value!r} ({error})") from None


# --- compose ----------------------------------------------------------------------------------


def _include(registry: Registry, include: dict, evaluation: Evaluation, depth: int) -> list[Member]:
    """The members one include (or exclude) element selects, in code system order."""
    system = include.get("system")
    imported: list[set[tuple[str, str]]] = []
    imported_members: list[Member] = []
    for canonical in include.get("valueSet", []):
        sub = evaluate(registry, resolve_value_set(registry, canonical), depth + 1)
        evaluation.used_value_sets.append(canonical)
        for used in sub.used_code_systems:
            if used not in evaluation.used_code_systems:
                evaluation.used_code_systems.append(used)
        imported.append({m.key for m in sub.members})
        if not imported_members:
            imported_members = sub.members
    if system is None:
        return [m for m in imported_members if all(m.key in keys for keys in imported)]

    cs = registry.find_code_system(system, include.get("version"))
    if cs is None:
        if include.get("concept") and not include.get("filter"):
            return [Member(system, include.get("version"), c["code"], c.get("display"), None)
                    for c in include["concept"]]
        registry.code_system(system, include.get("version"))  # raises the precise not-found error
    assert cs is not None
    if cs.canonical not in evaluation.used_code_systems:
        evaluation.used_code_systems.append(cs.canonical)
    if include.get("concept"):
        codes = []
        for item in include["concept"]:
            concept = cs.find(item["code"])
            if concept is not None:
                codes.append((concept, item.get("display")))
        members = [Member(cs.url, cs.version, c.code, given or c.display, c, cs) for c, given in codes]
    else:
        selected: set[str] | None = None
        for flt in include.get("filter", []):
            codes_for = _filter_codes(cs, flt)
            selected = codes_for if selected is None else selected & codes_for
        ordered = cs.concepts.keys() if selected is None else [c for c in cs.concepts if c in selected]
        members = [Member(cs.url, cs.version, code, cs.concepts[code].display, cs.concepts[code], cs)
                   for code in ordered]
    if imported:
        members = [m for m in members if all(m.key in keys for keys in imported)]
    return members


def evaluate(registry: Registry, value_set: dict, depth: int = 0) -> Evaluation:
    """The members `value_set` selects (compose only; a ValueSet without compose selects nothing)."""
    if depth > 20:
        raise InvalidRequest("VALUESET_CIRCULAR_REFERENCE", value_set.get("url"), "(import depth over 20)")
    evaluation = Evaluation()
    compose = value_set.get("compose") or {}
    seen: dict[tuple[str, str], Member] = {}
    for include in compose.get("include", []):
        for member in _include(registry, include, evaluation, depth):
            seen.setdefault(member.key, member)
    excluded: set[tuple[str, str]] = set()
    for exclude in compose.get("exclude", []):
        excluded.update(m.key for m in _include(registry, exclude, evaluation, depth))
    evaluation.members = [m for k, m in seen.items() if k not in excluded]
    return evaluation
