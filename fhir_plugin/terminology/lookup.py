"""CodeSystem/$lookup: the details of one concept.

Spec: https://hl7.org/fhir/R5/operation-codesystem-lookup.html (R4: codesystem-operation-lookup).
Without `property`, everything is returned (definition, designations, every property, parent,
child, inactive), as tx.fhir.org and HAPI do; with `property`, only what was asked for, `*`
meaning all. `name`, `version`, `display` and `abstract` are always returned. `date` is
accepted and checked, but loaded content carries no history, so it does not change the answer.
`useSupplement` names supplements whose designations and properties are added (each designation
carrying its supplement as `source`); one that is not loaded is an error without an expression,
as tx.fhir.org reports it.
"""

from __future__ import annotations

from .entries import CodeSystemEntry, Coding, Concept, Designation, PropertyValue
from .errors import InvalidRequest, UnknownCode, UnknownSupplement
from .identifiers import Renamer
from .languages import preferred, same_language
from .models import LookupRequest, LookupResult
from .registry import Registry
from .supplements import apply_supplements, find_supplement, supplements_base


def resolve_coding(system: str | None, code: str | None, version: str | None, coding: Coding | None,
                   names: tuple[str, str, str, str] = ("system", "code", "version", "coding")) -> Coding:
    """One Coding from `system`+`code`(+`version`) or `coding`; conflicts and gaps are errors."""
    if coding is not None:
        for mine, theirs, name in ((system, coding.system, names[0]), (code, coding.code, names[1]),
                                   (version, coding.version, names[2])):
            if mine is not None and theirs is not None and mine != theirs:
                raise InvalidRequest("PARAM_CONFLICT", parameter=name, other=names[3], value=mine, other_value=theirs, expression=name)
        system = coding.system or system
        code = coding.code or code
        version = coding.version or version
    return Coding(system, code, version)


def _wants(requested: tuple[str, ...], name: str) -> bool:
    return not requested or "*" in requested or name in requested


def _display_for(concept: Concept, cs: CodeSystemEntry, language: str | None) -> str | None:
    if not language:
        return concept.display
    default_language = (cs.resource.get("language") or "").lower()
    for tag in preferred(language):
        if tag == "*" or tag == default_language:
            return concept.display
        languages = [(d.language.lower(), d.value) for d in concept.designations if d.language]
        exact = next((value for lang, value in languages if lang == tag), None)
        if exact is not None:
            return exact
        if default_language and same_language(tag, default_language):
            return concept.display
        close = next((value for lang, value in languages if same_language(tag, lang)), None)
        if close is not None:
            return close
    return concept.display


PREFERRED_FOR_LANGUAGE = Coding("http://terminology.hl7.org/CodeSystem/hl7TermMaintInfra", "preferredForLanguage",
                                display="Preferred For Language")


def _designations(concept: Concept, cs: CodeSystemEntry) -> tuple[Designation, ...]:
    """The concept's designations, led by its display as the preferred term in the code system's
    language (as tx.fhir.org reports it), so that a client sees every term with its language."""
    language = cs.resource.get("language")
    if not concept.display or not language or any(
            d.value == concept.display and (d.language or "").lower() == language.lower() for d in concept.designations):
        return concept.designations
    return (Designation(concept.display, language, PREFERRED_FOR_LANGUAGE), *concept.designations)


def lookup_code(registry: Registry, request: LookupRequest) -> LookupResult:
    """Find one concept and report what the request asks for."""
    coding = resolve_coding(request.system, request.code, request.version, request.coding)
    renamer = None
    if coding.system in registry.aliases:  # named by an alias: the one look-up a canonical URL costs
        renamer = Renamer(registry)
        coding = renamer.coding(coding, "coding.system" if request.coding is not None and request.coding.system
                                else "system")
    if not coding.code or not coding.system:
        missing = "system" if coding.code else "code"
        raise InvalidRequest("LOOKUP_NO_CODE", expression=missing)
    supplements = []
    for canonical in request.use_supplements:
        supplement = find_supplement(registry, canonical)
        if supplement is None:
            raise UnknownSupplement("VALUESET_SUPPLEMENT_MISSING", supplement=canonical)
        supplements.append(supplement)
    cs = registry.code_system(coding.system, coding.version)
    supplements = [s for s in supplements if supplements_base(s) == cs.url]
    cs = apply_supplements(registry, cs, supplements)
    concept = cs.find(coding.code)
    if concept is None:
        version = cs.version or "(none)"
        if cs.content == "fragment":
            raise UnknownCode("UNKNOWN_CODE_IN_FRAGMENT", code=coding.code, system=cs.url, version=version, expression="code")
        if cs.content == "not-present":
            raise UnknownCode("LOOKUP_CODE_NOT_PRESENT", code=coding.code, system=cs.url, version=version, expression="code")
        raise UnknownCode("LOOKUP_CODE_NOT_FOUND", code=coding.code, system=cs.url, version=version, expression="code")

    wanted = request.properties
    properties: list[PropertyValue] = []
    for name, codes in (("parent", concept.parents), ("child", concept.children)):
        if _wants(wanted, name):
            for code in codes:
                related = cs.concepts.get(code)
                properties.append(PropertyValue(name, code, "code", related.display if related else None))
    properties.extend(p for p in concept.properties if _wants(wanted, p.code))
    if _wants(wanted, "inactive") and not any(p.code == "inactive" for p in concept.properties):
        properties.append(PropertyValue("inactive", concept.inactive, "boolean"))
    return LookupResult(
        name=cs.name or cs.title or cs.url,
        system=cs.url,
        version=cs.version,
        code=concept.code,
        display=_display_for(concept, cs, request.display_language),
        definition=concept.definition if _wants(wanted, "definition") else None,
        abstract=concept.abstract,
        designations=_designations(concept, cs) if _wants(wanted, "designation") else (),
        properties=tuple(properties),
        used_supplements=tuple(s.canonical for s in supplements),
        issues=renamer.issues() if renamer else (),
    )
