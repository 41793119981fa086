"""Scrubbing and sorting of the actual response, exactly as the official runner does it
(TxTesterScrubbers / TxTesterSorters; hl7-tx-tests.md sections 5.1 and 5.2).

Only the actual side is touched: the expected files are already scrubbed and in this order. All
functions work in place on parsed JSON (numbers as jsontext.Number). Sorting uses comparators
written like the Java ones (cmp_to_key, stable like Collections.sort), because some of them are
not total orders (a tie-break applies only when both sides have a value) and a key function would
order such lists differently.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cmp_to_key
from typing import Any, TypeVar

from .jsontext import Number

_SD = "http://hl7.org/fhir/StructureDefinition/"
MANAGED_EXTENSIONS = frozenset(
    [_SD + name for name in (
        "codesystem-alternate", "codesystem-conceptOrder", "codesystem-label", "coding-sctdescid",
        "structuredefinition-standards-status", "itemWeight", "rendering-style", "rendering-xhtml",
        "translation", "valueset-concept-definition", "valueset-conceptOrder", "valueset-deprecated",
        "valueset-label", "valueset-supplement", "alternate-code-use", "alternate-code-status",
        "operationoutcome-message-id", "valueset-unclosed", "valueset-unclosed-reason")]
    + ["http://hl7.org/fhir/test/CodeSystem/de-multi", "http://hl7.org/fhir/test/CodeSystem/en-multi"]
    + [f"http://hl7.org/fhir/test/StructureDefinition/unknown-extension-{n}" for n in (1, 3, 4, 5)]
    + ["http://hl7.org/fhir/test/ValueSet/" + name for name in (
        "extensions-bad-supplement", "simple-all", "simple-enumerated", "simple-filter-isa")]
)
# Java's Utilities.isAbsoluteUrl, near enough: a lower-case scheme, then something without spaces.
_ABSOLUTE_URL = re.compile(r"[a-z0-9_][a-z0-9_.+\-]*:[^ ]+")


def is_managed(url: Any) -> bool:
    """Extensions the runner keeps (so compares): relative urls and a fixed list."""
    return not (isinstance(url, str) and _ABSOLUTE_URL.fullmatch(url)) or url in MANAGED_EXTENSIONS


def _items(element: Any, key: str) -> list[dict[str, Any]]:
    """The objects of `element[key]` when it is an array (servers can send anything)."""
    value = element.get(key) if isinstance(element, dict) else None
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


# --- scrubbing (section 5.1) ----------------------------------------------------------------------


def _scrub_extensions(node: Any) -> None:
    """Drop unmanaged extensions from every element below `node`, and empty what that empties.
    Like the Java element visitor, it does not descend into the children of ValueSet.compose."""
    if isinstance(node, list):
        for item in node:
            _scrub_extensions(item)
        return
    if not isinstance(node, dict):
        return
    _filter_extensions(node)
    for key, value in list(node.items()):
        if key == "compose" and node.get("resourceType") == "ValueSet":
            if isinstance(value, dict):
                _filter_extensions(value)
            continue
        _scrub_extensions(value)
        if key.startswith("_"):  # a primitive's extensions: drop it once nothing is left
            if value == {} or (isinstance(value, list) and all(v in (None, {}) for v in value)):
                del node[key]
            elif isinstance(value, list):
                node[key] = [None if v == {} else v for v in value]


def _filter_extensions(element: dict[str, Any]) -> None:
    extensions = element.get("extension")
    if isinstance(extensions, list):
        kept = [e for e in extensions if not isinstance(e, dict) or is_managed(e.get("url"))]
        if kept:
            element["extension"] = kept
        else:
            del element["extension"]


def scrub_domain_resource(resource: dict[str, Any]) -> None:
    resource.pop("text", None)
    resource.pop("meta", None)
    _scrub_extensions(resource)


def scrub_operation_outcome(outcome: dict[str, Any]) -> None:
    scrub_domain_resource(outcome)
    issues = outcome.get("issue")
    if not isinstance(issues, list):
        return
    issues = [i for i in issues if not (isinstance(i, dict) and "diagnostics" in i and "details" not in i)]
    for issue in issues:
        # Diagnostics are free text, never compared, unless they carry the request id back.
        if isinstance(issue, dict) and "x-request-id" not in str(issue.get("diagnostics", "")).lower():
            issue.pop("diagnostics", None)
    if issues:
        outcome["issue"] = issues
    else:
        del outcome["issue"]


def scrub_parameters(parameters: dict[str, Any]) -> None:
    parameters.pop("meta", None)
    items = parameters.get("parameter")
    if not isinstance(items, list):
        return
    items = [p for p in items if not (isinstance(p, dict) and p.get("name") == "diagnostics")]
    if items:
        parameters["parameter"] = items
    else:
        del parameters["parameter"]
    for item in _items(parameters, "parameter"):
        resource = item.get("resource")
        if not isinstance(resource, dict):
            continue
        rtype = resource.get("resourceType")
        if rtype == "ValueSet":
            scrub_domain_resource(resource)
        elif rtype == "OperationOutcome":
            scrub_operation_outcome(resource)
        elif rtype == "Parameters":
            scrub_parameters(resource)


# --- sorting helpers ------------------------------------------------------------------------------


_Ordered = TypeVar("_Ordered", str, tuple[str, str, str, str])


def _cmp(a: _Ordered, b: _Ordered) -> int:
    return (a > b) - (a < b)


def primitive_value(element: Any) -> str | None:
    """The text of an element's primitive value[x] (FHIR's primitiveValue()), or None."""
    if not isinstance(element, dict):
        return None
    for key, value in element.items():
        if key.startswith("value"):
            if isinstance(value, bool):
                return "true" if value else "false"
            if isinstance(value, (str, Number)):
                return str(value)
    return None


def _text(element: Any, key: str) -> str:
    value = element.get(key) if isinstance(element, dict) else None
    return str(value) if isinstance(value, (str, Number)) else ""


def _sort(element: Any, key: str, compare: Callable[[Any, Any], int]) -> None:
    items = element.get(key) if isinstance(element, dict) else None
    if isinstance(items, list) and all(isinstance(i, dict) for i in items):
        items.sort(key=cmp_to_key(compare))


def _sort_strings(element: Any, key: str) -> None:
    items = element.get(key) if isinstance(element, dict) else None
    if isinstance(items, list) and all(isinstance(i, str) for i in items):
        items.sort()


def _by(field: str) -> Callable[[Any, Any], int]:
    return lambda a, b: _cmp(_text(a, field), _text(b, field))


def _compare_extensions(a: dict[str, Any], b: dict[str, Any]) -> int:
    _sort(a, "extension", _compare_extensions)  # the Java comparator sorts nested extensions too
    _sort(b, "extension", _compare_extensions)
    return _cmp(_text(a, "url"), _text(b, "url"))


# --- Parameters -----------------------------------------------------------------------------------


def _part(parameter: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((p for p in _items(parameter, "part") if p.get("name") == name), None)


def _part_value(parameter: dict[str, Any], name: str) -> str | None:
    value = primitive_value(_part(parameter, name))
    return value.lower() if value is not None else None


def _compare_parameters(a: dict[str, Any], b: dict[str, Any]) -> int:
    # As in Java, comparing two parameters first sorts their extensions and parts: a part list is
    # only ever sorted when its parameter takes part in a comparison.
    for side in (a, b):
        _sort(side, "extension", _compare_extensions)
        _sort(side, "part", _compare_parameters)
    name_a, name_b = _text(a, "name"), _text(b, "name")
    if name_a == name_b and name_a in ("property", "designation"):
        first = "code" if name_a == "property" else "language"
        key_a, key_b = _part_value(a, first) or "", _part_value(b, first) or ""
        if key_a != key_b:
            return _cmp(key_a, key_b)
        value_a, value_b = _part_value(a, "value"), _part_value(b, "value")
        if value_a is not None and value_b is not None and value_a != value_b:
            return _cmp(value_a, value_b)
    return _cmp(name_a, name_b)


def _issue_key(issue: dict[str, Any]) -> tuple[str, str, str, str]:
    expressions = issue.get("expression")
    first = expressions[0] if isinstance(expressions, list) and expressions else ""
    details = issue.get("details")
    return (_text(issue, "severity"), _text(issue, "code"), first if isinstance(first, str) else "",
            _text(details, "text"))


def sort_issues(outcome: dict[str, Any]) -> None:
    _sort(outcome, "issue", lambda a, b: _cmp(_issue_key(a), _issue_key(b)))


def sort_parameters(parameters: dict[str, Any]) -> None:
    _sort(parameters, "parameter", _compare_parameters)
    for item in _items(parameters, "parameter"):
        resource = item.get("resource")
        if isinstance(resource, dict) and resource.get("resourceType") == "OperationOutcome":
            sort_issues(resource)
        elif isinstance(resource, dict) and resource.get("resourceType") == "Parameters":
            sort_parameters(resource)
        message = primitive_value(item)
        if item.get("name") == "message" and message is not None and "; " in message:
            # several messages in one string: their order is not significant
            for key in [k for k in item if k.startswith("value")]:
                del item[key]
            item["valueString"] = "; ".join(sorted(message.split("; ")))


# --- ValueSet -------------------------------------------------------------------------------------


def _compare_expansion_parameters(a: dict[str, Any], b: dict[str, Any]) -> int:
    for side in (a, b):
        _sort(side, "extension", _compare_extensions)
    return _cmp(_text(a, "name"), _text(b, "name")) or _cmp(primitive_value(a) or "", primitive_value(b) or "")


def _compare_property_definitions(a: dict[str, Any], b: dict[str, Any]) -> int:
    uri_a, uri_b = a.get("uri"), b.get("uri")
    if uri_a is None or uri_b is None:
        order = 0 if uri_a is None and uri_b is None else (-1 if uri_a is None else 1)
    else:
        order = _cmp(str(uri_a), str(uri_b))
    return order or _cmp(_text(a, "code"), _text(b, "code"))


def _compare_designations(a: dict[str, Any], b: dict[str, Any]) -> int:
    if "language" in a and "language" in b:
        return _cmp(_text(a, "language"), _text(b, "language"))
    return _cmp(_text(a, "value"), _text(b, "value"))


def _sort_contains_features(item: dict[str, Any]) -> None:
    _sort(item, "contains", _by("code"))
    _sort(item, "extension", _compare_extensions)
    _sort(item, "designation", _compare_designations)
    _sort(item, "property", _by("code"))
    for child in _items(item, "contains"):
        _sort_contains_features(child)


def sort_value_set(value_set: dict[str, Any]) -> None:
    _sort(value_set, "extension", _compare_extensions)
    expansion = value_set.get("expansion")
    if not isinstance(expansion, dict):
        return
    _sort(expansion, "parameter", _compare_expansion_parameters)
    _sort(expansion, "property", _compare_property_definitions)
    _sort(expansion, "extension", _compare_extensions)
    _sort(expansion, "contains", _by("code"))  # by code only, not system
    for item in _items(expansion, "contains"):
        _sort_contains_features(item)


# --- metadata -------------------------------------------------------------------------------------


def _compare_codings(a: dict[str, Any], b: dict[str, Any]) -> int:
    return _cmp(_text(a, "system"), _text(b, "system")) or _cmp(_text(a, "code"), _text(b, "code"))


def _compare_concepts(a: dict[str, Any], b: dict[str, Any]) -> int:
    if a.get("coding") and b.get("coding"):
        return _compare_codings(a["coding"][0], b["coding"][0])
    return _cmp(_text(a, "text"), _text(b, "text"))


def sort_capability_statement(statement: dict[str, Any]) -> None:
    for key in ("format", "instantiates", "imports", "acceptLanguage"):
        _sort_strings(statement, key)
    _sort(statement, "rest", _by("mode"))
    for rest in _items(statement, "rest"):
        security = rest.get("security")
        for concept in _items(security, "service"):
            _sort(concept, "coding", _compare_codings)
        _sort(security, "service", _compare_concepts)
        _sort(rest, "resource", _by("type"))
        for resource in _items(rest, "resource"):
            for key in ("supportedProfile", "searchInclude", "searchRevInclude"):
                _sort_strings(resource, key)
            _sort(resource, "interaction", _by("code"))
            _sort(resource, "searchParam", _by("name"))
            _sort(resource, "operation", _by("name"))
        _sort(rest, "interaction", _by("code"))
        _sort(rest, "searchParam", _by("name"))
        _sort(rest, "operation", _by("name"))
        _sort_strings(rest, "compartment")


def _compare_versions(a: dict[str, Any], b: dict[str, Any]) -> int:
    # Java's comparator calls two versions equal when either has no code.
    return 0 if "code" not in a or "code" not in b else _by("code")(a, b)


def sort_terminology_capabilities(capabilities: dict[str, Any]) -> None:
    _sort(capabilities, "codeSystem", _by("uri"))
    for system in _items(capabilities, "codeSystem"):
        _sort(system, "version", _compare_versions)
        for version in _items(system, "version"):
            _sort_strings(version, "language")
            _sort_strings(version, "property")
            _sort(version, "filter", _by("code"))
    _sort(capabilities.get("expansion"), "parameter", _by("name"))
