"""ValueSet.compose.include.filter on one code system: which codes a filter selects.

Operators follow the R5 filter-operator value set (https://hl7.org/fhir/R5/valueset-filter-operator.html).
The `concept` (or `code`) property means the hierarchy; any other property is a concept property,
with `inactive` and `display` answered from the compiled concept when the code system does not
carry them as explicit properties. `notSelectable` is matched only where a concept states it:
`notSelectable = false` selects the concepts that say false, not those that say nothing (HL7
notSelectable tests). Values compare exactly: `TRUE` is not the boolean true. A `regex` filter
matches the whole value, with RE2 in time linear in the value (patterns.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from . import budget
from .entries import CodeSystemEntry, Coding, Concept
from .errors import InvalidValueSet, NotSupported
from .patterns import compile_pattern


def descendants(cs: CodeSystemEntry, code: str) -> Iterator[str]:
    stack = list(reversed(cs.concepts[code].children)) if code in cs.concepts else []
    seen: set[str] = set()
    while stack:
        child = stack.pop()
        if child in seen or child not in cs.concepts:
            continue
        seen.add(child)
        yield child
        stack.extend(reversed(cs.concepts[child].children))


def ancestors(cs: CodeSystemEntry, code: str) -> set[str]:
    found: set[str] = set()
    stack = list(cs.concepts[code].parents) if code in cs.concepts else []
    while stack:
        parent = stack.pop()
        if parent not in found:
            found.add(parent)
            stack.extend(cs.concepts[parent].parents if parent in cs.concepts else ())
    return found


def _scalar(value: object) -> str | None:
    """A property value as a filter compares it; None for a Coding without a code."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Coding):
        return value.code
    return str(value)


def property_values(concept: Concept, name: str) -> list[str | None]:
    values = [_scalar(p.value) for p in concept.properties if p.code == name]
    if name == "parent":
        values.extend(concept.parents)
    elif name == "child":
        values.extend(concept.children)
    elif name == "display" and concept.display:
        values.append(concept.display)
    elif name == "inactive" and not values:
        values.append("true" if concept.inactive else "false")
    return values


def _same(a: str | None, b: str) -> bool:
    return a == b


def filter_codes(cs: CodeSystemEntry, flt: dict[str, Any], where: str | None = None) -> set[str]:
    """The codes of `cs` that `flt` selects. `where` is the filter's path, for error messages."""
    # JSON strings, but `value` may be absent with op "exists" (and only then: see the check)
    prop: Any = flt.get("property")
    op: Any = flt.get("op")
    value: Any = flt.get("value")
    if value is None and op != "exists":
        raise InvalidValueSet("UNABLE_TO_HANDLE_SYSTEM_FILTER_WITH_NO_VALUE", system=cs.url, property=prop, op=op, expression=where)
    all_codes = cs.concepts.keys()
    if prop in ("concept", "code"):
        if op == "is-a":
            return {value, *budget.checked(descendants(cs, value))} if value in cs.concepts else set()
        if op == "descendent-of":
            return set(budget.checked(descendants(cs, value)))
        if op == "is-not-a":
            return set(all_codes) - {value, *budget.checked(descendants(cs, value))}
        if op == "child-of":
            return set(cs.concepts[value].children) if value in cs.concepts else set()
        if op == "descendent-leaf":
            return {c for c in budget.checked(descendants(cs, value)) if not cs.concepts[c].children}
        if op == "generalizes":
            return {value, *ancestors(cs, value)} if value in cs.concepts else set()
        if op in ("in", "not-in"):
            listed = {v.strip() for v in value.split(",")}
            return listed & set(all_codes) if op == "in" else set(all_codes) - listed
        if op == "=":
            return {value} if value in cs.concepts else set()
        if op == "regex":
            matches = compile_pattern(value, f"{where}.value" if where else None).fullmatch
            return {c for c in budget.checked(all_codes) if matches(c)}
    if op == "exists":
        wanted = str(value).lower() != "false"
        return {c for c, concept in budget.checked(cs.concepts.items())
                if bool(property_values(concept, prop)) == wanted}
    if op == "=":
        return {c for c, concept in budget.checked(cs.concepts.items())
                if any(_same(v, value) for v in property_values(concept, prop))}
    if op in ("in", "not-in"):
        wanted_values = [v.strip() for v in value.split(",")]
        inside = {c for c, concept in budget.checked(cs.concepts.items())
                  if any(_same(v, w) for v in property_values(concept, prop) for w in wanted_values)}
        return inside if op == "in" else set(all_codes) - inside
    if op == "regex":
        matches = compile_pattern(value, f"{where}.value" if where else None).fullmatch
        # a Coding without a code (None) matches no pattern
        return {c for c, concept in budget.checked(cs.concepts.items())
                if any(v is not None and matches(v) for v in property_values(concept, prop))}
    raise NotSupported("PARAM_NOT_SUPPORTED", parameter=f"filter {prop} {op}", reason="this filter is not supported")
