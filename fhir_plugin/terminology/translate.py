"""ConceptMap/$translate: forward, reverse, and "is this pairing mapped?".

Spec: https://hl7.org/fhir/R5/operation-conceptmap-translate.html (R4: conceptmap-operation-translate).
Modes (TranslateRequest.mode):
- forward: source concept -> every target it maps to;
- target (R5 reverse): a target concept -> every source concept that maps to it; each match's
  `concept` is the given target and `source` the source concept found (the HL7 test suite's shape);
- reverse (R4 `reverse=true`): the given code is target-side; each match's `concept` is the
  source-side answer (HAPI's shape);
- pair (our choice for a source *and* a target concept): the forward matches narrowed to that
  target, so one request answers "is 97116 -> R26.2 mapped?" with result true or false.
Relationships are always reported as stored (source -> target). No map, or no match, is an answer:
result=false with a message, never an error; its issues say which given code or code system does
not exist (translate_checks), so "not mapped" is said only of codes that exist. An unknown `url`
is an error.
A match's `display` is the ConceptMap's own (target.display, element.display), never looked up
in the code system: the map states what it maps, as tx.fhir.org answers (HL7 translate tests).
"""

from __future__ import annotations

from dataclasses import replace

from . import budget
from .compile import compile_concept_map
from .entries import Coding, ConceptMapEntry, MapGroup
from .errors import InvalidRequest, answer_message
from .identifiers import Renamer
from .models import TranslateMatch, TranslateRequest, TranslateResult
from .registry import Registry
from .translate_checks import given_code_issues


def _url(canonical: str | None) -> str | None:
    return canonical.split("|", 1)[0] if canonical else None


def _check(request: TranslateRequest) -> None:
    if request.reverse and request.target:
        raise InvalidRequest("TRANSLATE_REVERSE_WITH_TARGET", expression="reverse")
    if not request.source and not request.target:
        raise InvalidRequest("TRANSLATE_NO_SOURCE")
    for name, codings in (("sourceCode", request.source), ("targetCode", request.target)):
        for coding in codings:
            if not coding.code or (not coding.system and name == "sourceCode"):
                raise InvalidRequest("TRANSLATE_CODING_INCOMPLETE", parameter=name, expression=name)


def _maps(registry: Registry, request: TranslateRequest) -> list[ConceptMapEntry]:
    if request.concept_map is not None:
        maps = [compile_concept_map(request.concept_map)]
    elif request.url:
        maps = [registry.concept_map(request.url, request.concept_map_version)]
    else:
        maps = _one_version_each(registry)
    if request.source_scope:
        maps = [m for m in maps if _url(m.source_scope) == _url(request.source_scope)]
    if request.target_scope:
        maps = [m for m in maps if _url(m.target_scope) == _url(request.target_scope)]
    return maps


def _one_version_each(registry: Registry) -> list[ConceptMapEntry]:
    """Every concept map, but of one held in several versions (R4's and R5's core, a tx-resource
    over a loaded map, two loads) only the version its url alone names (`Registry.concept_map`:
    the preferred release's, else the latest): two versions of one map would each answer, twice
    over or in contradiction. A translation without `url` uses each map once."""
    maps = registry.concept_maps()
    held: dict[str, int] = {}
    for cm in maps:
        if cm.url:
            held[cm.url] = held.get(cm.url, 0) + 1
    chosen = {url: registry.concept_map(url) for url, count in held.items() if count > 1}
    return [cm for cm in maps if not cm.url or held[cm.url] == 1 or chosen[cm.url] is cm]


def _version_ok(wanted: str | None, stored: str | None) -> bool:
    return wanted is None or stored is None or wanted == stored


def _renamed_groups(renamer: Renamer, groups: list[tuple[ConceptMapEntry, MapGroup]]) -> None:
    """A map may name a code system by an alias too: warned about when its group takes part."""
    for cm, group in groups:
        index = next(i for i, g in enumerate(cm.groups) if g is group)
        renamer.system(group.source, f"ConceptMap.group[{index}].source")
        renamer.system(group.target, f"ConceptMap.group[{index}].target")


def _forward(request: TranslateRequest, maps: list[ConceptMapEntry], aliases: dict[str, str],
             seen_groups: list[MapGroup], renamed: list[tuple[ConceptMapEntry, MapGroup]]) -> list[TranslateMatch]:
    matches = []
    for coding in request.source:
        budget.check()
        for cm in maps:
            for group in cm.groups:
                source, target_system = group.source, group.target
                if source in aliases or target_system in aliases:
                    source, target_system = (aliases.get(source or "", source), aliases.get(target_system or "",
                                                                                              target_system))
                if source != coding.system or not _version_ok(coding.version, group.source_version):
                    continue
                if request.target_system and target_system != request.target_system:
                    continue
                seen_groups.append(group)
                if source is not group.source or target_system is not group.target:
                    renamed.append((cm, group))
                element = group.elements.get(coding.code) if coding.code is not None else None
                for target in element.targets if element else ():
                    concept = Coding(target_system, target.code, group.target_version, target.display)
                    matches.append(TranslateMatch(target.relationship, concept, cm.canonical))
    return matches


def _backward(request: TranslateRequest, maps: list[ConceptMapEntry], aliases: dict[str, str],
              seen_groups: list[MapGroup], renamed: list[tuple[ConceptMapEntry, MapGroup]]) -> list[TranslateMatch]:
    """Matches whose target is the given concept; R4 `reverse` reports the source side as `concept`."""
    given = request.source if request.reverse else request.target
    source_system = request.target_system if request.reverse else request.source_system
    target_system = None if request.reverse else request.target_system
    matches = []
    for coding in given:
        system = coding.system or target_system
        for cm in maps:
            for group in cm.groups:
                group_source, group_target = group.source, group.target
                if group_source in aliases or group_target in aliases:
                    group_source, group_target = (aliases.get(group_source or "", group_source),
                                                  aliases.get(group_target or "", group_target))
                if system and group_target != system:
                    continue
                if source_system and group_source != source_system:
                    continue
                seen_groups.append(group)
                if group_source is not group.source or group_target is not group.target:
                    renamed.append((cm, group))
                for element, target in group.by_target.get(coding.code, ()) if coding.code is not None else ():
                    target_coding = Coding(group_target, target.code, group.target_version, target.display)
                    source_coding = Coding(group_source, element.code, group.source_version, element.display)
                    if request.reverse:
                        matches.append(TranslateMatch(target.relationship, source_coding, cm.canonical))
                    else:
                        matches.append(TranslateMatch(target.relationship, target_coding, cm.canonical, source_coding))
    return matches


def _names_an_alias(request: TranslateRequest, aliases: dict[str, str]) -> bool:
    for coding in request.source:
        if coding.system in aliases:
            return True
    for coding in request.target:
        if coding.system in aliases:
            return True
    return False


def _given_in(request: TranslateRequest, renamer: Renamer) -> TranslateRequest:
    """The request with the code systems it names by an alias named by their URLs. The warnings
    name the parameters in the release the request spoke (R4's names for an R4 dialect)."""
    r4 = request.dialect == "R4"

    def where(codings: tuple[Coding, ...], form: str | None, code: str, coding: str, concept: str) -> str:
        chosen = form or ("coding" if len(codings) == 1 else "codeableConcept")
        return {"code": code, "coding": f"{coding}.system"}.get(chosen, f"{concept}.coding[{{index}}].system")

    source = where(request.source, request.source_form, *(("system", "coding", "codeableConcept") if r4 else
                                                          ("sourceSystem", "sourceCoding", "sourceCodeableConcept")))
    target = where(request.target, request.target_form, "targetSystem", "targetCoding", "targetCodeableConcept")
    return replace(
        request, source=renamer.codings(request.source, source), target=renamer.codings(request.target, target),
        source_system=renamer.system(request.source_system, "system" if r4 else "sourceSystem"),
        target_system=renamer.system(request.target_system, "targetsystem" if r4 else "targetSystem"))


def translate_concept(registry: Registry, request: TranslateRequest) -> TranslateResult:
    """Translate a concept with the loaded (or given) ConceptMaps."""
    _check(request)
    aliases = registry.aliases
    renamer = None
    if request.source_system in aliases or request.target_system in aliases or _names_an_alias(request, aliases):
        renamer = Renamer(registry)
        request = _given_in(request, renamer)
    mode = request.mode
    maps = _maps(registry, request)
    seen_groups: list[MapGroup] = []
    renamed: list[tuple[ConceptMapEntry, MapGroup]] = []
    if mode in ("forward", "pair"):
        matches = _forward(request, maps, aliases, seen_groups, renamed)
        if mode == "pair":
            matches = [m for m in matches if any(
                m.concept.code == t.code and (not t.system or m.concept.system == t.system) for t in request.target)]
    else:
        matches = _backward(request, maps, aliases, seen_groups, renamed)
    if renamed:
        renamer = renamer or Renamer(registry)
        _renamed_groups(renamer, renamed)
    matches = list(dict.fromkeys(matches))
    result = any(m.relationship != "not-related-to" for m in matches)
    text = None
    if not result:
        first = (request.target if mode == "target" else request.source)[0]
        # the system the answer would be in: in target mode targetSystem is the given concept's own
        # system, and the answers are source-side concepts
        if mode == "target":
            wanted = request.source_system
        else:
            wanted = request.target_system or (request.target[0].system if mode == "pair" else None)
        if mode == "pair":
            target = request.target[0]
            text = answer_message("TRANSLATE_PAIR_NOT_MAPPED", first.code, first.system, target.code,
                           target.system or "any code system")
        elif not seen_groups:
            text = answer_message("TRANSLATE_NO_MAP", first.system or "any code system",
                           f" to '{wanted}'" if wanted else "")
        else:
            text = answer_message("TRANSLATE_NOT_FOUND", first.code, first.system or "any code system",
                           f" (to '{wanted}')" if wanted else "")
    issues = given_code_issues(registry, request) if not result else ()
    if renamer is not None:
        issues += renamer.issues()
    if not issues:
        return TranslateResult(result=result, matches=tuple(matches), message=text, mode=mode, dialect=request.dialect)
    text = "; ".join(([text] if text else []) + [found.text for found in issues])
    return TranslateResult(result=result, matches=tuple(matches), message=text, mode=mode, dialect=request.dialect,
                           issues=issues)
