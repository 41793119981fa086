"""Members of an expansion -> its typed entries (`expansion.contains`) and the properties they carry.

Display language: `displayLanguage` (or Accept-Language) is a weighted list of language ranges.
For each concept the first range that the code system's own language satisfies keeps the
display; otherwise a designation in that language becomes the display, and the original display
is kept as a designation marked `preferredForLanguage` (as tx.fhir.org does). With `*;q=0` (a
"hard" request) a concept with no designation in the wanted languages gets no display at all.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from . import budget
from .compile import core_extensions
from .entries import Coding, Designation, PropertyValue
from .errors import TooCostly
from .evaluation import Member
from .languages import LanguageRange, ranges as language_ranges
from .models import ExpandRequest, ExpansionEntry

PREFERRED_FOR_LANGUAGE = Coding("http://terminology.hl7.org/CodeSystem/hl7TermMaintInfra", "preferredForLanguage",
                                display="Preferred For Language")
CONCEPT_PROPERTIES = "http://hl7.org/fhir/concept-properties#"
_SD = "http://hl7.org/fhir/StructureDefinition/"
# Extensions of a compose include.concept that describe the concept in this value set; its
# label, order and weight extensions become properties instead (see _ENTRY_PROPERTIES).
_CARRIED_EXTENSIONS = frozenset(_SD + n for n in ("valueset-deprecated", "structuredefinition-standards-status",
                                                  "valueset-concept-definition", "rendering-style",
                                                  "rendering-xhtml"))
_ENTRY_PROPERTIES = {_SD + "valueset-conceptOrder": ("order", "valueInteger"),
                     _SD + "valueset-label": ("label", "valueString"),
                     _SD + "itemWeight": ("weight", "valueDecimal")}
ALWAYS_SHOWN = ("status",)  # concept properties an expansion carries even when not asked for
# The standard concept properties an expansion declares when the code system does not define
# them itself (tx.fhir.org declares these uris; weight is the itemWeight extension).
STANDARD_PROPERTY_URIS = {"status": CONCEPT_PROPERTIES + "status", "order": CONCEPT_PROPERTIES + "order",
                          "label": CONCEPT_PROPERTIES + "label", "weight": CONCEPT_PROPERTIES + "itemWeight",
                          "definition": CONCEPT_PROPERTIES + "definition"}


def _matches(tag: str, language: str | None, exact: bool) -> bool:
    if not language:
        return False
    language = language.lower()
    if exact:
        return tag == language
    return language.split("-")[0] == tag.split("-")[0]


def localise(member: Member, designations: list[Designation], ranges: list[LanguageRange]
             ) -> tuple[str | None, list[Designation], list[Designation]]:
    """(display, remaining designations, added preferredForLanguage designations) for `ranges`."""
    display = member.display
    if not ranges or member.code_system is None:
        return display, designations, []
    own = (member.code_system.resource.get("language") or "en").lower()
    # in the order given, not by weight, as tx.fhir.org does
    wanted = [r.tag for r in ranges if r.quality > 0 and r.tag != "*"]
    hard = any(r.tag == "*" and r.quality == 0 for r in ranges)
    for tag in wanted:
        if _matches(tag, own, exact=False):
            return display, designations, []
        for exact in (True, False):
            found = next((d for d in designations if _matches(tag, d.language, exact)), None)
            if found is not None:
                rest = [d for d in designations if d is not found]
                added = [Designation(display, own, PREFERRED_FOR_LANGUAGE)] if display else []
                return found.value, rest, added
    if hard:
        return None, designations, [Designation(display, own, PREFERRED_FOR_LANGUAGE)] if display else []
    return display, designations, []


def _entry_designation(raw: dict[str, Any]) -> Designation:
    use = raw.get("use")
    coding = Coding(use.get("system"), use.get("code"), use.get("version"), use.get("display")) if use else None
    return Designation(raw["value"], raw.get("language"), coding, extensions=core_extensions(raw))


def _entry_properties(member: Member) -> list[PropertyValue]:
    """Properties the concept's extensions give, overridden by those of the compose entry."""
    by_code = {p.code: p for p in member.concept.extension_properties} if member.concept is not None else {}
    for ext in (member.entry or {}).get("extension", []):
        known = _ENTRY_PROPERTIES.get(ext.get("url"))
        if known and known[1] in ext:
            value = ext[known[1]]
            by_code[known[0]] = (PropertyValue(known[0], Decimal(str(value)), "decimal") if known[0] != "label"
                                 else PropertyValue("label", value, "string"))
    return list(by_code.values())


def _declare(declared: dict[str, str | None], member: Member, code: str) -> None:
    definitions = member.code_system.property_definitions if member.code_system else ()
    definition = next((d for d in definitions if d.code == code), None)
    declared.setdefault(code, definition.uri if definition and definition.uri else STANDARD_PROPERTY_URIS.get(code))


def _wanted_designation(designation: Designation, filters: tuple[str, ...]) -> bool:
    if not filters:
        return True
    for item in filters:
        system, _, code = item.rpartition("|")
        if system == "urn:ietf:bcp:47" and designation.language == code:
            return True
        if designation.use is not None and designation.use.code == code and (not system or designation.use.system == system):
            return True
    return False


def _entry(member: Member, request: ExpandRequest, multi_version: set[str], ranges: list[LanguageRange],
           declared: dict[str, str | None]) -> ExpansionEntry:
    concept = member.concept
    extensions = [dict(e) for e in (member.entry or {}).get("extension", []) if e.get("url") in _CARRIED_EXTENSIONS]
    if concept is not None:
        given = {e.get("url") for e in extensions}
        extensions += [dict(e) for e in concept.extensions if e.get("url") not in given]
    designations = list(concept.designations) if concept is not None else []
    if member.entry:
        designations.extend(_entry_designation(d) for d in member.entry.get("designation", []))
    display, designations, added = localise(member, designations, ranges)
    shown: list[Designation] = []
    if request.include_designations:
        # where a designation came from (a supplement) is not part of an expansion
        shown = added + [replace(d, source=None) if d.source else d for d in designations
                         if _wanted_designation(d, request.designations)]
    props: list[PropertyValue] = []
    if concept is not None:
        wanted = set(request.properties)
        if "definition" in wanted and concept.definition:
            props.append(PropertyValue("definition", concept.definition, "string"))
            declared.setdefault("definition", CONCEPT_PROPERTIES + "definition")
        # order, label, weight and a standards status from extensions are always shown, as
        # tx.fhir.org does; a stated property of the same code wins over them
        stated = {p.code for p in concept.properties}
        for prop in _entry_properties(member):
            if prop.code not in stated:
                props.append(prop)
                _declare(declared, member, prop.code)
        for prop in concept.properties:
            # status is shown unasked only when it says something (retired, deprecated), as tx.fhir.org does
            shown_anyway = prop.code in ALWAYS_SHOWN and prop.value != "active"
            if prop.code in wanted or "*" in wanted or shown_anyway:
                props.append(prop)
                _declare(declared, member, prop.code)
    return ExpansionEntry(
        system=member.system, code=member.code,
        version=member.version if member.version and member.system in multi_version else None,
        display=display or None, abstract=concept is not None and concept.abstract,
        inactive=concept is not None and concept.inactive, designations=tuple(shown), properties=tuple(props),
        extensions=tuple(extensions))


def contains_tree(members: list[Member], nested: bool, request: ExpandRequest, multi_version: set[str],
                  language: str | None, only_filtered: bool = False, name: str = "(inline)"
                  ) -> tuple[tuple[ExpansionEntry, ...], tuple[tuple[str, str | None], ...]]:
    """The entries (nested along the hierarchy when `nested`) and the (code, uri) of the properties
    they carry. With `only_filtered` (a text-filtered expansion) only members of property-filter
    includes nest: tx.fhir.org answers a text search over a whole code system as a flat list, but
    keeps the hierarchy of a filtered include (HL7 search tests).

    A hierarchy nested deeper than `request.max_nesting` levels is refused (TooCostly) rather than
    built: parent properties let a flat CodeSystem of a few kilobytes describe a chain thousands of
    concepts deep, and this tree and everything that renders it are walked recursively."""
    ranges = language_ranges(language) if language else []
    declared: dict[str, str | None] = {}
    entries = [_entry(m, request, multi_version, ranges, declared) for m in budget.checked(members)]
    properties = tuple(declared.items())
    if not nested:
        return tuple(entries), properties
    where = {(m.system, m.version, m.code): index for index, m in enumerate(members)}
    children: dict[int, list[int]] = {}
    tops: list[int] = []
    for index, member in enumerate(members):
        parent = None
        if member.nestable and member.concept is not None and (member.filtered or not only_filtered):
            parent = next((where[(member.system, member.version, p)] for p in member.concept.parents
                           if (member.system, member.version, p) in where), None)
        if parent is not None:
            children.setdefault(parent, []).append(index)
        else:
            tops.append(index)
    built: set[int] = set()
    deepest = request.max_nesting

    def build(index: int, level: int) -> ExpansionEntry:
        if level > deepest:
            raise TooCostly("EXPANSION_TOO_DEEP", value_set=name, limit=deepest)
        built.add(index)  # a hierarchy with a cycle in it is cut where it comes round again
        below = tuple(build(child, level + 1) for child in children.get(index, ()) if child not in built)
        return replace(entries[index], contains=below) if below else entries[index]

    return tuple(build(index, 1) for index in tops), properties
