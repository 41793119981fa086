"""Regular expressions that requests and content supply (ValueSet filters with op `regex`), matched
by RE2 (the google-re2 binding): time linear in the text, whatever the pattern, so that no pattern
can stall a worker by backtracking ((a+)+, (.|.)*#, (x+x+)+y).

This is the only module that imports re2 (google-re2 ships no type hints: the rest of the engine
sees the typed `Pattern` below). A FHIR regex filter matches the whole value (`fullmatch`).

RE2's syntax is Perl's without what needs backtracking: a pattern with a backreference
(`(a)\\1`), lookaround (`(?=`, `(?<=`), an atomic group or a possessive quantifier is refused
(NotSupported, REGEX_NOT_SUPPORTED, with RE2's reason), as is one that does not parse. `\\Z` (end
of text in Python) is read as RE2's `\\z`. `\\d`, `\\w`, `\\s` and `\\b` are ASCII, as in Java by
default; `\\pL` and the like name Unicode classes.

Linear is not free: a pattern's RE2 program is walked for each character of text where its DFA
gives up, so a pattern is refused (TooCostly) beyond MAX_PATTERN_LENGTH characters or
MAX_PROGRAM_SIZE instructions (a counted repetition such as `.{30}` counts each repeat; a list of
20 alternative words is about 200). Over the 98,466 displays of ICD-10-CM, ordinary patterns
(10 to 100 instructions) take 0.12 s on a quiet machine; the slowest shape found within the
limits, `(?i).*[a-m].{44}.*` (369 instructions, a DFA too large to keep), 14 times as long.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import re2  # type: ignore[import-untyped]  # google-re2 ships neither stubs nor py.typed

from .errors import NotSupported, TooCostly

MAX_PATTERN_LENGTH = 1_000
MAX_PROGRAM_SIZE = 500

_OPTIONS = re2.Options()
# RE2 logs a refused pattern to stderr itself; the client gets it as an OperationOutcome instead.
_OPTIONS.log_errors = False
# Whole-value matching reads no group, and RE2 finds groups with slower engines than its DFA.
_OPTIONS.never_capture = True


@dataclass(frozen=True, slots=True)
class Pattern:
    """A compiled pattern: `fullmatch(text)` is whether it matches the whole of `text`."""

    source: str
    _compiled: Any  # re2._Regexp

    def fullmatch(self, text: str) -> bool:
        return self._compiled.fullmatch(text) is not None


def _reason(error: Exception) -> str:
    detail = error.args[0] if error.args else ""
    return detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)


def _re2_dialect(pattern: str) -> str:
    """`pattern` with `\\Z` spelt `\\z`: RE2 has only the latter, Python and Java both."""
    if "\\Z" not in pattern:
        return pattern
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            following = pattern[index + 1]
            out.append("\\z" if following == "Z" else char + following)
            index += 2
        else:
            out.append(char)
            index += 1
    return "".join(out)


def compile_pattern(pattern: str, expression: str | None = None) -> Pattern:
    """`pattern`, compiled. `expression` is where it came from, for the error's OperationOutcome.
    Raises TooCostly (REGEX_TOO_LONG, REGEX_TOO_COMPLEX) or NotSupported (REGEX_NOT_SUPPORTED)."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise TooCostly("REGEX_TOO_LONG", length=len(pattern), limit=MAX_PATTERN_LENGTH, expression=expression)
    try:
        compiled = re2.compile(_re2_dialect(pattern), _OPTIONS)
    except re2.error as error:
        raise NotSupported("REGEX_NOT_SUPPORTED", pattern=pattern, reason=_reason(error), expression=expression) from None
    finally:
        # re2 keeps its last 128 patterns, each with a DFA of up to 8 MiB: clients would choose what
        # a worker holds. A Pattern lives as long as the filter that uses it.
        re2.purge()
    size = int(compiled.programsize)
    if size > MAX_PROGRAM_SIZE:
        raise TooCostly("REGEX_TOO_COMPLEX", pattern=pattern, size=size, limit=MAX_PROGRAM_SIZE, expression=expression)
    return Pattern(pattern, compiled)
