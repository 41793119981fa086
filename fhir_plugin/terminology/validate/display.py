"""$validate-code: issues, and the display check with its language rules.

The wording, issue codes and tx-issue-type codes follow what the HL7 terminology tests expect
(docs/hl7-tx-tests.md section 8). Each issue says whether it goes into the `message` output:
the reference servers put errors and some warnings there, but not notes such as a case
difference or a code unknown to a fragment.
"""

from __future__ import annotations

import re
from dataclasses import replace

from ..entries import CodeSystemEntry, Concept, Designation
from ..errors import InvalidDisplayLanguage
from ..languages import preferred
from ..models import Issue
from .issues import issue


# --- languages ---------------------------------------------------------------------------------

_LANGUAGE_TAG = re.compile(r"^([A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*|\*)$")


def check_language_list(value: str | None) -> None:
    """A displayLanguage that is no language list at all (e.g. '-') is a client error."""
    if value is None:
        return
    for item in value.split(","):
        tag = item.split(";")[0].strip()
        if not _LANGUAGE_TAG.match(tag):
            raise InvalidDisplayLanguage("INVALID_DISPLAY_NAME", language=value)


def _matches(wanted: list[str], language: str | None) -> bool:
    """A display with no language matches any request; 'de' matches 'de-CH' and the reverse."""
    if language is None:
        return True
    have = language.lower()
    return any(tag == "*" or tag == have or tag.split("-")[0] == have.split("-")[0] for tag in wanted)


_STANDARDS_STATUS = "http://hl7.org/fhir/StructureDefinition/structuredefinition-standards-status"


def _retired(designation: Designation) -> bool:
    """A designation marked deprecated or withdrawn: no longer a correct display."""
    return any(e.get("url") == _STANDARDS_STATUS and e.get("valueCode") in ("deprecated", "withdrawn")
               for e in designation.extensions)


def _is_display(designation: Designation) -> bool:
    # A designation with a use but no language is a term for that special use (e.g. an
    # 'olde-english' form), not a display of the concept in the code system's language.
    return bool(designation.value) and (designation.language is not None or designation.use is None)


def candidates(concept: Concept, cs: CodeSystemEntry) -> list[tuple[str, str | None]]:
    """Every (display, language) the concept is known by, the preferred display first."""
    default = cs.resource.get("language")
    found: list[tuple[str, str | None]] = []
    if concept.display:
        found.append((concept.display, default))
    for designation in concept.designations:
        language = designation.language or default
        if _is_display(designation) and not _retired(designation) and (designation.value, language) not in found:
            found.append((designation.value, language))
    return found


def _quoted(value: str) -> str:
    return value if value.isalnum() else f'"{value}"'


def retired_display(given: str, concept: Concept, cs: CodeSystemEntry, path: str) -> Issue | None:
    """`given` is a designation of the concept that is marked deprecated or withdrawn: still
    accepted, with a warning that names the correct displays (outside `message`)."""
    if not any(d.value == given and _retired(d) for d in concept.designations):
        return None
    correct = ",".join(_quoted(value) for value, _ in candidates(concept, cs)) + "."
    found = issue("warning", "invalid", "display-comment", "INACTIVE_DISPLAY_FOUND_other", "", given, concept.code,
                  correct, "deprecated", expression=path, in_message=False)
    return replace(found, message_id="INACTIVE_DISPLAY_FOUND")  # the catalogue id, without plural form


def display_for(concept: Concept, cs: CodeSystemEntry, languages: str | None) -> str | None:
    """The display to report: the first one in a requested language, else the preferred one."""
    if languages:
        wanted = preferred(languages)
        for tag in wanted:
            for value, language in candidates(concept, cs):
                if language is not None and _matches([tag], language):
                    return value
    return concept.display


def _normalised(text: str) -> str:
    return " ".join(text.split())


def _choices(found: list[tuple[str, str | None]]) -> str:
    shown = [f"'{value}' ({language})" if language else f"'{value}'" for value, language in found]
    if len(shown) == 1:
        return shown[0]
    return f"one of {len(shown)} choices: " + " or ".join(shown)


def check_display(given: str, concept: Concept, cs: CodeSystemEntry, system: str, languages: str | None,
                  lenient: bool, path: str) -> Issue | None:
    """None when `given` is a valid display of the concept for the requested languages."""
    retired = retired_display(given, concept, cs, path)
    if retired is not None:
        return retired
    every = candidates(concept, cs)
    wanted = preferred(languages) if languages else []
    label = languages if languages else "--"
    in_language = [c for c in every if _matches(wanted, c[1])] if wanted else every
    if not in_language:
        # Nothing in the requested language: the display is judged against the default ones.
        if any(value == given for value, _ in every):
            return issue("information", "invalid", "invalid-display", "NO_VALID_DISPLAY_FOUND_NONE_FOR_LANG_OK",
                         "", system, concept.code, label, given, expression=path)
        return issue("warning" if lenient else "error", "invalid", "invalid-display",
                     "NO_VALID_DISPLAY_FOUND_NONE_FOR_LANG_ERR", given, system, concept.code, label,
                     concept.display, expression=path)
    if any(value == given for value, _ in in_language):
        return None
    severity = "warning" if lenient else "error"
    if any(_normalised(value) == _normalised(given) for value, _ in in_language):
        return issue(severity, "invalid", "invalid-display", "Display_Name_WS_for__should_be_one_of__instead_of",
                     "", system, concept.code, _choices(in_language), given, label, expression=path)
    return issue(severity, "invalid", "invalid-display", "Display_Name_for__should_be_one_of__instead_of",
                 "", system, concept.code, _choices(in_language), given, label, expression=path)
