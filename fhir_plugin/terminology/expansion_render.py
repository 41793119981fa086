"""Members of an expansion -> `expansion.contains` (and the `expansion.property` declarations).

Display language: `displayLanguage` (or Accept-Language) is a weighted list of language ranges.
For each concept the first range that the code system's own language satisfies keeps the
display; otherwise a designation in that language becomes the display, and the original display
is kept as a designation marked `preferredForLanguage` (as tx.fhir.org does). With `*;q=0` (a
"hard" request) a concept with no designation in the wanted languages gets no display at all.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from .compile import core_extensions
from .models import Coding, Designation, PropertyValue

if TYPE_CHECKING:
    from .expand import ExpandRequest
    from .valueset import Member

PREFERRED_FOR_LANGUAGE = {"system": "http://terminology.hl7.org/CodeSystem/hl7TermMaintInfra",
                          "code": "preferredForLanguage", "display": "Preferred For Language"}
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


def language_ranges(value: str) -> list[tuple[str, float]]:
    ranges = []
    for item in value.split(","):
        tag, *params = [p.strip() for p in item.split(";")]
        quality = 1.0
        for param in params:
            if param.replace(" ", "").startswith("q="):
                try:
                    quality = float(param.replace(" ", "")[2:])
                except ValueError:
                    pass  # a malformed weight counts as 1, rather than failing the expansion
        if tag:
            ranges.append((tag.lower(), quality))
    return ranges


def _matches(tag: str, language: str | None, exact: bool) -> bool:
    if not language:
        return False
    language = language.lower()
    if exact:
        return tag == language
    return language.split("-")[0] == tag.split("-")[0]


def localise(member: Member, designations: list[Designation], ranges: list[tuple[str, float]]
             ) -> tuple[str | None, list[Designation], list[Designation]]:
    """(display, remaining designations, added preferredForLanguage designations) for `ranges`."""
    display = member.display
    if not ranges or member.code_system is None:
        return display, designations, []
    own = (member.code_system.resource.get("language") or "en").lower()
    wanted = [tag for tag, q in ranges if q > 0 and tag != "*"]
    hard = any(tag == "*" and q == 0 for tag, q in ranges)
    for tag in wanted:
        if _matches(tag, own, exact=False):
            return display, designations, []
        for exact in (True, False):
            found = next((d for d in designations if _matches(tag, d.language, exact)), None)
            if found is not None:
                rest = [d for d in designations if d is not found]
                added = [Designation(display, own, None)] if display else []
                return found.value, rest, added
    if hard:
        return None, designations, [Designation(display, own, None)] if display else []
    return display, designations, []


def _designation_dict(designation: Designation, preferred: bool = False) -> dict:
    out: dict = {}
    if designation.language:
        out["language"] = designation.language
    if preferred:
        out["use"] = dict(PREFERRED_FOR_LANGUAGE)
    elif designation.use is not None:
        use = {k: v for k, v in (("system", designation.use.system), ("code", designation.use.code),
                                 ("display", designation.use.display)) if v}
        out["use"] = use
    out["value"] = designation.value
    if designation.extensions:
        out["extension"] = [dict(e) for e in designation.extensions]
    return out


def _entry_designation(raw: dict) -> Designation:
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


def _declare(declared: dict, member: Member, code: str) -> None:
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


def _property_dict(prop: PropertyValue) -> dict:
    value = prop.value
    if prop.type == "Coding":
        coding = {k: getattr(value, k) for k in ("system", "code", "version", "display") if getattr(value, k)}
        return {"code": prop.code, "valueCoding": coding}
    if prop.type == "decimal" and isinstance(value, Decimal):
        value = int(value) if value == value.to_integral_value() and "." not in str(value) else float(value)
    key = "value" + prop.type[0].upper() + prop.type[1:]
    return {"code": prop.code, key: value}


def _entry(member: Member, request: ExpandRequest, multi_version: set[str], ranges, declared: dict) -> dict:
    concept = member.concept
    item: dict = {}
    extensions = [dict(e) for e in (member.entry or {}).get("extension", []) if e.get("url") in _CARRIED_EXTENSIONS]
    if concept is not None:
        given = {e.get("url") for e in extensions}
        extensions += [dict(e) for e in concept.extensions if e.get("url") not in given]
    if extensions:
        item["extension"] = extensions
    item["system"] = member.system
    if member.version and member.system in multi_version:
        item["version"] = member.version
    if concept is not None and concept.abstract:
        item["abstract"] = True
    if concept is not None and concept.inactive:
        item["inactive"] = True
    item["code"] = member.code
    designations = list(concept.designations) if concept is not None else []
    if member.entry:
        designations.extend(_entry_designation(d) for d in member.entry.get("designation", []))
    display, designations, added = localise(member, designations, ranges)
    if display:
        item["display"] = display
    if request.include_designations:
        shown = [_designation_dict(d, preferred=True) for d in added]
        shown += [_designation_dict(d) for d in designations if _wanted_designation(d, request.designations)]
        if shown:
            item["designation"] = shown
    if concept is not None:
        props = []
        wanted = set(request.properties)
        if "definition" in wanted and concept.definition:
            props.append({"code": "definition", "valueString": concept.definition})
            declared.setdefault("definition", CONCEPT_PROPERTIES + "definition")
        # order, label, weight and a standards status from extensions are always shown, as
        # tx.fhir.org does; a stated property of the same code wins over them
        stated = {p.code for p in concept.properties}
        for prop in _entry_properties(member):
            if prop.code not in stated:
                props.append(_property_dict(prop))
                _declare(declared, member, prop.code)
        for prop in concept.properties:
            # status is shown unasked only when it says something (retired, deprecated), as tx.fhir.org does
            shown_anyway = prop.code in ALWAYS_SHOWN and prop.value != "active"
            if prop.code in wanted or "*" in wanted or shown_anyway:
                props.append(_property_dict(prop))
                _declare(declared, member, prop.code)
        if props:
            item["property"] = props
    return item


def contains_tree(members: list[Member], nested: bool, request: ExpandRequest, multi_version: set[str],
                  language: str | None, only_filtered: bool = False) -> tuple[list[dict], list[dict]]:
    """The contains list (nested along the hierarchy when `nested`) and the property declarations.
    With `only_filtered` (a text-filtered expansion) only members of property-filter includes
    nest: tx.fhir.org answers a text search over a whole code system as a flat list, but keeps
    the hierarchy of a filtered include (HL7 search tests)."""
    ranges = language_ranges(language) if language else []
    declared: dict[str, str | None] = {}
    entries = [_entry(m, request, multi_version, ranges, declared) for m in members]
    top: list[dict] = []
    if nested:
        where = {(m.system, m.version, m.code): e for m, e in zip(members, entries)}
        for member, entry in zip(members, entries):
            parent = None
            if member.nestable and member.concept is not None and (member.filtered or not only_filtered):
                parent = next((where[(member.system, member.version, p)] for p in member.concept.parents
                               if (member.system, member.version, p) in where), None)
            if parent is not None:
                parent.setdefault("contains", []).append(entry)
            else:
                top.append(entry)
    else:
        top = entries
    properties = [{"code": code, **({"uri": uri} if uri else {})} for code, uri in declared.items()]
    return top, properties
