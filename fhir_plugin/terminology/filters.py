"""ValueSet.compose.include.filter on one code system: which codes a filter selects.

Operators follow the R5 filter-operator value set (https://hl7.org/fhir/R5/valueset-filter-operator.html).
The `concept` (or `code`) property means the hierarchy; any other property is a concept property,
with `inactive` and `display` answered from the compiled concept when the code system does not
carry them as explicit properties. `notSelectable` is matched only where a concept states it:
`notSelectable = false` selects the concepts that say false, not those that say nothing (HL7
notSelectable tests). Values compare exactly: `TRUE` is not the boolean true.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from . import budget
from .errors import InvalidRequest, InvalidValueSet, NotSupported
from .models import CodeSystemEntry, Coding, Concept

# A regex whose nested quantifiers could backtrack for ever ((a+)+, ((a+)+)+): Python's re has
# no timeout. The common shape, a group holding one quantified atom and quantified again, is
# rewritten to an equivalent pattern without the nesting ((A+)+ = (A)+, (A*)+ = (A+)* = (A)*);
# whatever nesting remains is matched only against strings short enough to fail fast.
# An atom: an escape, a character class, a group without quantifiers inside, or one character.
_ATOM = r"(?:\\.|\[(?:\\.|[^\]\\])*\]|\((?:\?:)?[^()+*?{}\\\[]*\)|[^()\[\]\\|+*?{}])"
_REDUNDANT_NESTING = re.compile(r"\((\?:)?(" + _ATOM + r")([+*])\)([+*])(?![+?{])")
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
            matcher = _regex(value)
            return {c for c in budget.checked(all_codes) if matcher(c)}
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
        matcher = _regex(value)
        # a Coding without a code (None) matches no pattern
        return {c for c, concept in budget.checked(cs.concepts.items())
                if any(v is not None and matcher(v) for v in property_values(concept, prop))}
    raise NotSupported("PARAM_NOT_SUPPORTED", parameter=f"filter {prop} {op}", reason="this filter is not supported")


def has_nested_quantifier(value: str) -> bool:
    """Whether a quantified group of `value` contains a quantifier (the exponential shape)."""
    stack: list[bool] = []  # per open group: does it contain a quantifier so far
    index = 0
    while index < len(value):
        char = value[index]
        if char == "\\":
            index += 2
            continue
        if char == "[":  # skip a character class: its quantifier characters are literals
            end = index + 1
            while end < len(value) and value[end] != "]":
                end += 2 if value[end] == "\\" else 1
            index = end + 1
            continue
        if char == "(":
            stack.append(False)
        elif char == ")" and stack:
            inner = stack.pop()
            following = value[index + 1:index + 2]
            if inner and following in ("+", "*", "{"):
                return True
            if stack:
                stack[-1] = stack[-1] or inner or following in ("+", "*", "{", "?")
        elif char in "+*{" and stack:
            stack[-1] = True
        index += 1
    return False


def flatten_nested_quantifiers(value: str) -> str:
    """`value` with (A+)+, (A*)+, (A+)* and (A*)* (A one atom) rewritten to (A)+ or (A)*, which
    match the same strings without exponential backtracking; repeated for deeper nesting."""
    while True:
        rewritten = _REDUNDANT_NESTING.sub(
            lambda m: f"({m.group(1) or ''}{m.group(2)}){'+' if m.group(3) == m.group(4) == '+' else '*'}", value)
        if rewritten == value:
            return value
        value = rewritten


def _regex(value: str) -> Callable[[str], object]:
    try:
        re.compile(value)
        value = flatten_nested_quantifiers(value)
        pattern = re.compile(value)
    except re.error as error:
        raise InvalidRequest("PARAM_BAD_VALUE", parameter="filter", type="regex", value=f"{value!r} ({error})") from None
    if not has_nested_quantifier(value):
        return pattern.fullmatch
    # Catastrophic backtracking needs a long non-matching input: refuse to try on long strings.
    return lambda text: len(text) <= _MAX_GUARDED_LENGTH and pattern.fullmatch(text) is not None
