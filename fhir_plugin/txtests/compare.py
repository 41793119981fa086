"""The official runner's verdict on one response (hl7-tx-tests.md sections 4.6 and 5).

`Comparer` is CompareUtilities: expected (the raw test file, with its `$...$` templates and
`$optional$` markers) against actual (the scrubbed, sorted response), strict or pattern mode,
first difference wins. `check_response` / `check_metadata` are the per-operation steps around it:
R4 -> R5 conversion, error or success, scrubbing and sorting, then the HTTP status class.
Messages name a JSON path (`parameter[3].valueString`) and say what was expected and found.
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..fhirversions import FhirVersion, to_r5
from . import normalize
from .jsontext import Number, dumps, loads

_YMD = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])"
_TIME = r"T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
_PATTERNS = {
    "$instant$": re.compile(_YMD + _TIME),
    "$date$": re.compile(f"{_YMD}({_TIME})?"),
    "$uuid$": re.compile(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
    "$id$": re.compile(r"[A-Za-z0-9\-.]{1,64}"),
    "$token$": re.compile(r"[0-9a-zA-Z_][0-9a-zA-Z_.\-]*"),
    # Java's `[[:blank:|:blank:]]` is a nested character class, i.e. one of ":blank|".
    "$url$": re.compile(r"(((https?)://)(%[0-9A-Fa-f]{2}|[-()_.!~*';/?:@&=+$,A-Za-z0-9])+)([).!';/?:,][:blank|])?"),
    "$semver$": re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
                           r"(-((0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(\.(0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
                           r"(\+([0-9a-zA-Z-]+(\.[0-9a-zA-Z-]+)*))?"),
}
_JAVA_TRIMMED = "".join(chr(c) for c in range(0x21))  # String.trim() strips every char <= U+0020
_BASE64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}
_BASE64.update({"-": 62, "_": 63})
EXPECTED_TYPE = {"expand": "ValueSet", "validate-code": "Parameters", "cs-validate-code": "Parameters",
                 "batch-validate": "Parameters", "lookup": "Parameters", "translate": "Parameters",
                 "compare": "Parameters"}


class TemplateError(ValueError):
    """An expected file uses a `$...$` template the runner does not know (the test errors)."""


def _java_split(text: str, separator: str) -> list[str]:
    """String.split: trailing empty strings are dropped (all of them: "|" gives no parts at all)."""
    if not text:
        return [""]
    parts = text.split(separator)
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def lenient_base64(text: str) -> bytes:
    """Apache commons-codec Base64.decodeBase64: other characters ignored, '-'/'_' as '+'/'/',
    decoding stops at the first '=', a final group of 1 character is dropped."""
    values = []
    for char in text:
        if char == "=":
            break
        if char in _BASE64:
            values.append(_BASE64[char])
    out = bytearray()
    for start in range(0, len(values) - 1, 4):
        group = values[start:start + 4]
        bits = 0
        for value in group:
            bits = bits << 6 | value
        bits <<= 6 * (4 - len(group))
        out += bits.to_bytes(3, "big")[:len(group) - 1]
    return bytes(out)


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return "a primitive"


def _show(value: Any) -> str:
    text = dumps(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _as_number(value: Any) -> Any:
    """Python numbers (from plain json.loads, or built by code) as their JSON text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Number(json.dumps(value))
    return value


def _all_optional(value: Any) -> bool:
    """An array whose object items all carry `$optional$` (primitive items do not count): its
    absence is never reported, so a missing array of primitives passes too (section 5.3)."""
    return isinstance(value, list) and all("$optional$" in item for item in value if isinstance(item, dict))


class Comparer:
    """CompareUtilities. `version` is the server's FHIR release ("4.0.1" / "5.0.0") for `$version$`
    and `"$optional$": "version:N"`; `pattern` is the metadata tests' pattern mode (section 5.7)."""

    def __init__(self, modes: Iterable[str] = ("general",), version: str | None = None, pattern: bool = False):
        self.modes = frozenset(modes)
        self.version = version
        self.pattern = pattern
        self.warnings: list[str] = []

    def compare(self, expected: Any, actual: Any) -> str | None:
        """The first difference, or None."""
        return self.compare_nodes("", expected, actual, False)

    def is_optional(self, item: Any) -> bool:
        if not isinstance(item, dict) or "$optional$" not in item:
            return False
        flag = item["$optional$"]
        if flag is True:
            return True
        if not isinstance(flag, str):
            return False
        if flag.startswith("!"):
            return flag[1:] not in self.modes
        if flag.startswith("warning:"):
            return True
        if flag.startswith("version:"):
            return self.version is not None and self.version.startswith(flag[len("version:"):])
        return flag in self.modes

    def compare_objects(self, path: str, expected: dict[str, Any], actual: dict[str, Any]) -> str | None:
        optional: set[str] = set()
        if "$optional-properties$" in expected:
            optional = {*expected["$optional-properties$"], "$optional-properties$", "$count-arrays$"}
        count_only = set(expected.get("$count-arrays$", []))
        for name, value in actual.items():
            if name == "fhir_comments":
                continue
            if name in expected:
                difference = self.compare_nodes(_join(path, name), expected[name], value, name in count_only)
                if difference:
                    return difference
            elif not self.pattern and name not in optional:
                return f"{_join(path, name)}: unexpected property, value {_show(value)}"
        for name, value in expected.items():
            if name in ("fhir_comments", "$optional$") or "*" in optional or name in optional:
                continue
            if name not in actual and not _all_optional(value):
                return f"{_join(path, name)}: missing property, expected {_show(value)}"
        return None

    def compare_nodes(self, path: str, expected: Any, actual: Any, count_only: bool) -> str | None:
        where = path or "(root)"
        if _kind(expected) != _kind(actual):
            return f"{where}: expected {_kind(expected)} {_show(expected)}, got {_kind(actual)} {_show(actual)}"
        if isinstance(actual, dict):
            return self.compare_objects(path, expected, actual)
        if isinstance(actual, list):
            return self._compare_arrays(path, expected, actual, count_only)
        if self._primitives_match(expected, actual):
            return None
        return f"{where}: expected {_show(expected)}, got {_show(actual)}"

    def _primitives_match(self, expected: Any, actual: Any) -> bool:
        expected, actual = _as_number(expected), _as_number(actual)
        if isinstance(expected, bool) or isinstance(actual, bool):
            return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
        if isinstance(expected, Number) or isinstance(actual, Number):
            return isinstance(expected, Number) and isinstance(actual, Number) and expected.text == actual.text
        if isinstance(expected, str) and isinstance(actual, str):
            if "<div" in expected and "<div" in actual:  # narrative is never compared
                return True
            if self.matches(actual, expected):
                return True
            decoded = lenient_base64(actual)  # the runner's last resort; see section 5.9
            return bool(decoded) and decoded == lenient_base64(expected)
        return expected is None and actual is None

    def matches(self, actual: str, expected: str) -> bool:
        """A string against an expected string or `$...$` template (section 5.5)."""
        if not (expected.startswith("$") and expected.endswith("$")):
            if self.version is not None:
                expected = expected.replace("$version$", self.version)
            return actual == expected
        if expected.startswith("$choice:"):
            return actual in _java_split(expected[len("$choice:"):-1], "|")
        if expected.startswith("$fragments:"):
            return all(f.lower() in actual.lower() for f in _java_split(expected[len("$fragments:"):-1], "|"))
        if expected.startswith("$external:"):
            # Without an externals table: anything, or the fragments up to the next ':' (so a URL
            # fragment shrinks to its scheme, as in the Java runner).
            command = _java_split(expected[1:-1], ":")
            return len(command) <= 2 or all(f.lower() in actual.lower() for f in _java_split(command[2], "|"))
        if expected == "$$":
            return True
        if expected == "$string$":
            return actual == actual.strip(_JAVA_TRIMMED)
        if expected == "$version$":
            return self.version is None or actual == self.version
        if expected in _PATTERNS:
            return _PATTERNS[expected].fullmatch(actual) is not None
        raise TemplateError(f"unknown template {expected}")

    def _compare_arrays(self, path: str, expected: list[Any], actual: list[Any], count_only: bool) -> str | None:
        where = path or "(root)"
        if count_only:
            return None if len(expected) == len(actual) else \
                f"{where}: expected {len(expected)} items, got {len(actual)}"
        if self.pattern:
            return self._compare_pattern_arrays(path, expected, actual)
        optional_count = sum(1 for item in expected if self.is_optional(item))
        required = len(expected) - optional_count
        if len(actual) > len(expected) or len(actual) < required:
            wanted = f"{len(expected)}" if not optional_count else f"{required} to {len(expected)}"
            return f"{where}: expected {wanted} items, got {len(actual)}{_names_hint(self, expected, actual)}"
        cursor = 0
        for index, item in enumerate(expected):
            if cursor >= len(actual):
                if index >= required and self.is_optional(item):
                    # The rest of the expected items are not looked at (section 5.4, the tail rule).
                    flag = item["$optional$"]
                    if isinstance(flag, str) and flag.startswith("warning:"):
                        self.warnings.append(flag[len("warning:"):])
                    return None
                return f"{where}[{index}]: no item left to match expected {_show(item)}"
            difference = self.compare_nodes(f"{path}[{index}]", item, actual[cursor], False)
            if difference and not self.is_optional(item):
                return difference
            if not difference:
                cursor += 1  # greedy: an optional item that matches consumes the actual item
        if cursor < len(actual):
            return f"{where}[{cursor}]: unexpected item {_show(actual[cursor])}"
        return None

    def _compare_pattern_arrays(self, path: str, expected: list[Any], actual: list[Any]) -> str | None:
        cursor = 0
        for index, item in enumerate(expected):
            while cursor < len(actual):
                cursor += 1
                if not self.compare_nodes(f"{path}[{index}]", item, actual[cursor - 1], False):
                    break
            else:
                return f"{path}[{index}]: no item (in order) matches expected {_show(item)}"
        return None


def _names_hint(comparer: Comparer, expected: list[Any], actual: list[Any]) -> str:
    """For arrays of named items (Parameters), which names are missing or unexpected."""
    if not all(isinstance(i, dict) and "name" in i for i in expected + actual):
        return ""
    required = Counter(str(i["name"]) for i in expected if not comparer.is_optional(i))
    allowed = Counter(str(i["name"]) for i in expected)
    found = Counter(str(i["name"]) for i in actual)
    hints = []
    if missing := sorted((required - found).elements()):
        hints.append("missing " + ", ".join(missing))
    if extra := sorted((found - allowed).elements()):
        hints.append("unexpected " + ", ".join(extra))
    return f" ({'; '.join(hints)})" if hints else ""


# --- one response ---------------------------------------------------------------------------------


@dataclass
class Verdict:
    message: str | None  # None: the test passed
    warnings: list[str] = field(default_factory=list)
    actual: Any = None  # the actual response as compared (R5, scrubbed, sorted)


def status_class_ok(http_code: str, status: int) -> bool:
    low = {"2xx": 200, "3xx": 300, "4xx": 400, "5xx": 500}[http_code]
    return low <= status < low + 100


def _is_error_outcome(resource: Any) -> bool:
    return isinstance(resource, dict) and resource.get("resourceType") == "OperationOutcome" and any(
        isinstance(i, dict) and i.get("severity") in ("error", "fatal") for i in resource.get("issue", []))


def _normalised(operation: str, status: int, actual: Any) -> tuple[Any, str | None]:
    """The actual resource scrubbed and sorted as the runner does, or a reason it cannot be."""
    rtype = actual.get("resourceType") if isinstance(actual, dict) else None
    if not 200 <= status < 300 or _is_error_outcome(actual):
        # An error (a 2xx carrying an error OperationOutcome counts as one, with its 2xx status).
        if rtype != "OperationOutcome":
            return actual, f"HTTP {status} without an OperationOutcome body ({rtype or 'not FHIR JSON'})"
        if operation == "cs-validate-code":
            actual.pop("text", None)  # the runner compares these errors unscrubbed
        else:
            normalize.scrub_operation_outcome(actual)  # top-level issues are not sorted
        return actual, None
    wanted = EXPECTED_TYPE[operation]
    if rtype != wanted:
        return actual, f"expected a {wanted} response, got {rtype or 'no FHIR JSON'} (HTTP {status})"
    if rtype == "Parameters":
        normalize.scrub_parameters(actual)
        normalize.sort_parameters(actual)
    else:
        normalize.scrub_domain_resource(actual)
        normalize.sort_value_set(actual)
    return actual, None


def _parse(body: bytes) -> Any:
    try:
        return loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def check_response(operation: str, http_code: str, expected: Any, status: int, body: bytes,
                   version: FhirVersion, modes: Iterable[str] = ("general",)) -> Verdict:
    """The runner's verdict on one operation response (not metadata)."""
    actual = _parse(body)
    if version is FhirVersion.R4 and isinstance(actual, dict):
        actual = to_r5(actual)
    actual, problem = _normalised(operation, status, actual)
    if problem:
        return Verdict(problem, actual=actual if actual is not None else body.decode("utf-8", "replace"))
    comparer = Comparer(modes, version.release)
    try:
        difference = comparer.compare(expected, actual)
    except TemplateError as error:
        difference = f"test file error: {error}"
    # (The runner's validate-code check "has system <=> has version" is wrapped in a catch-all
    # there and never fails a test, so it is left out.)
    if not status_class_ok(http_code, status):
        # Checked after the body, but it is the runner's message when both are wrong.
        difference = f"HTTP status: expected {http_code}, got {status}" + (
            f"; first difference: {difference}" if difference else "")
    return Verdict(difference, comparer.warnings, actual)


def check_metadata(operation: str, expected: Any, resource: Any, version: FhirVersion,
                   modes: Iterable[str] = ("general",)) -> Verdict:
    """The metadata / term-caps tests: the start-up resources in pattern mode, sorted, not scrubbed."""
    wanted = "CapabilityStatement" if operation == "metadata" else "TerminologyCapabilities"
    if not isinstance(resource, dict) or resource.get("resourceType") != wanted:
        return Verdict(f"expected a {wanted}, got {_show(resource)}", actual=resource)
    actual = copy.deepcopy(to_r5(resource) if version is FhirVersion.R4 else resource)
    if operation == "metadata":
        normalize.sort_capability_statement(actual)
    else:
        normalize.sort_terminology_capabilities(actual)
    comparer = Comparer(modes, version.release, pattern=True)
    try:
        difference = comparer.compare(expected, actual)
    except TemplateError as error:
        difference = f"test file error: {error}"
    return Verdict(difference, comparer.warnings, actual)


def pretty(value: Any) -> str:
    """Indented JSON (numbers as sent), for the expected/ and actual/ files."""
    return dumps(value, indent=2) if not isinstance(value, str) else json.dumps(value)
