"""ValueSet.compose.include.filter on one code system: which codes a filter selects.

Operators follow the R5 filter-operator value set (https://hl7.org/fhir/R5/valueset-filter-operator.html).
The `concept` (or `code`) property means the hierarchy; any other property is a concept property,
with `notSelectable`/`not-selectable`, `inactive`, `status` and `display` answered from the
compiled concept when the code system does not carry them as explicit properties (the HL7
notSelectable tests filter on `notSelectable=false` for code systems that never state it).
Values of boolean properties compare case-insensitively (`TRUE` is `true`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .errors import InvalidRequest, InvalidValueSet, NotSupported
from .models import CodeSystemEntry, Concept

# A regex whose nested quantifiers could backtrack for ever ((a+)+, ((a+)+)+): Python's re has
# no timeout, so such patterns are matched with a bounded-length guard instead (see _regex).
_NESTED_QUANTIFIER = re.compile(r"\([^()]*[+*][^()]*\)[+*{]")
_MAX_GUARDED_LENGTH = 40


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


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "code"):
        return value.code  # type: ignore[union-attr]
    return str(value)


def property_values(concept: Concept, name: str) -> list[str]:
    values = [_scalar(p.value) for p in concept.properties if p.code == name]
    if name == "parent":
        values.extend(concept.parents)
    elif name == "child":
        values.extend(concept.children)
    elif name == "display" and concept.display:
        values.append(concept.display)
    elif name == "inactive" and not values:
        values.append("true" if concept.inactive else "false")
    elif name in ("notSelectable", "not-selectable") and not values:
        values.append("true" if concept.abstract else "false")
    return values


def _same(a: str, b: str) -> bool:
    return a == b or (a.lower() in ("true", "false") and a.lower() == b.lower())


def filter_codes(cs: CodeSystemEntry, flt: dict, where: str | None = None) -> set[str]:
    """The codes of `cs` that `flt` selects. `where` is the filter's path, for error messages."""
    prop, op, value = flt.get("property"), flt.get("op"), flt.get("value")
    if value is None and op != "exists":
        raise InvalidValueSet("UNABLE_TO_HANDLE_SYSTEM_FILTER_WITH_NO_VALUE", cs.url, prop, op, expression=where)
    all_codes = cs.concepts.keys()
    if prop in ("concept", "code"):
        if op == "is-a":
            return {value, *descendants(cs, value)} if value in cs.concepts else set()
        if op == "descendent-of":
            return set(descendants(cs, value))
        if op == "is-not-a":
            return set(all_codes) - {value, *descendants(cs, value)}
        if op == "child-of":
            return set(cs.concepts[value].children) if value in cs.concepts else set()
        if op == "descendent-leaf":
            return {c for c in descendants(cs, value) if not cs.concepts[c].children}
        if op == "generalizes":
            return {value, *ancestors(cs, value)} if value in cs.concepts else set()
        if op in ("in", "not-in"):
            listed = {v.strip() for v in value.split(",")}
            return listed & set(all_codes) if op == "in" else set(all_codes) - listed
        if op == "=":
            return {value} if value in cs.concepts else set()
        if op == "regex":
            matcher = _regex(value)
            return {c for c in all_codes if matcher(c)}
    if op == "exists":
        wanted = str(value).lower() != "false"
        return {c for c, concept in cs.concepts.items() if bool(property_values(concept, prop)) == wanted}
    if op == "=":
        return {c for c, concept in cs.concepts.items()
                if any(_same(v, value) for v in property_values(concept, prop))}
    if op in ("in", "not-in"):
        listed = [v.strip() for v in value.split(",")]
        inside = {c for c, concept in cs.concepts.items()
                  if any(_same(v, w) for v in property_values(concept, prop) for w in listed)}
        return inside if op == "in" else set(all_codes) - inside
    if op == "regex":
        matcher = _regex(value)
        return {c for c, concept in cs.concepts.items() if any(matcher(v) for v in property_values(concept, prop))}
    raise NotSupported("PARAM_NOT_SUPPORTED", f"filter {prop} {op}", "this filter is not supported")


def _regex(value: str):
    try:
        pattern = re.compile(value)
    except re.error as error:
        raise InvalidRequest("PARAM_BAD_VALUE", "filter", "regex", f"{value!r} ({error})") from None
    if not _NESTED_QUANTIFIER.search(value):
        return pattern.fullmatch
    # Catastrophic backtracking needs a long non-matching input: refuse to try on long strings.
    return lambda text: len(text) <= _MAX_GUARDED_LENGTH and pattern.fullmatch(text) is not None
