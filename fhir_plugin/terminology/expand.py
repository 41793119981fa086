"""ValueSet/$expand: the expansion of a value set, as a typed ExpandResult.

Spec: https://hl7.org/fhir/R5/valueset-operation-expand.html. The output follows what the HL7
terminology test suite expects (and tx.fhir.org returns): every parameter that shaped the result
is echoed in `expansion.parameter` (those the client gave, the version rules that were applied,
`used-codesystem` / `used-valueset` / `used-supplement` as url|version, `warning-<status>` for
draft, experimental, deprecated and withdrawn content); `contains` is nested along the code
system hierarchy for whole-system and filter includes unless `excludeNested` is true or the
result is paged (paging counts a flat list); with a text filter only filter includes nest.
The ValueSet's own deprecated/withdrawn (standards-status) status is warned about like that of
the resources it uses. `includeDefinition` echoes the definition (extensions, compose) too.

The text filter (`filter`) is a case-insensitive word-prefix match: every word of the filter must
start some word of the display or of a designation ("gait tra" finds "Gait training"). A filter
of more than FHIR_PLUGIN_MAX_FILTER_WORDS words, or with a word longer than
FHIR_PLUGIN_MAX_FILTER_WORD_LENGTH characters, is refused as too-costly.
Expansions larger than FHIR_PLUGIN_MAX_EXPANSION codes (or the client's X-TOO-COSTLY-THRESHOLD
header, whichever is lower) are refused as too-costly unless `count` pages them, and no page
is larger than that limit: a larger `count` is lowered to it (and echoed as lowered), as a FHIR
search may return fewer than `_count`; `total` and `offset` tell the client there is more to page
through. Refusing such a count instead would refuse `count=2147483647` on a value set of three
codes, which clients send to mean "all of it". A nested answer deeper than `max_nesting`
hierarchy levels is refused as too-costly (a flat one, `excludeNested`, is always possible).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import datetime, timezone
from itertools import islice
from typing import Any

from . import budget
from .errors import InvalidRequest, NotSupported, TooCostly, UnknownCodeSystem
from .evaluation import Evaluation, EvaluationOptions, Member, canonical_of, resolve_value_set, status_warnings
from .expansion import contains_tree
from .identifiers import Renamer
from .models import ExpandRequest, ExpandResult, ExpansionParameter, versions_by_system
from .registry import Registry
from .textindex import WordIndex
from .valueset import compose_parameters, evaluate
# The ValueSet's own elements an expansion repeats: its identity and status, not its definition
# (compose, description, narrative, extensions), as tx.fhir.org answers and the HL7 tests expect.
_ECHOED_ELEMENTS = ("resourceType", "id", "language", "url", "version", "name", "title", "status", "experimental",
                    "date", "publisher")
# What `includeDefinition=true` adds: the definition itself (R5 $expand parameter).
_DEFINITION_ELEMENTS = ("extension", "description", "compose")


def _options(request: ExpandRequest) -> EvaluationOptions:
    return EvaluationOptions(
        system_versions=versions_by_system(request.system_versions),
        check_versions=versions_by_system(request.check_system_versions),
        force_versions=versions_by_system(request.force_system_versions),
        default_value_set_versions=versions_by_system(request.default_value_set_versions),
        use_supplements=request.use_supplements,
        newest_version_first=True,
    )


def words(text: str) -> list[str]:
    return [w for w in re.split(r"[^\w]+", text.casefold()) if w]


def filter_words(request: ExpandRequest) -> list[str]:
    """The words of the text filter that decide the match, most selective first. A filter without
    any (an emoji, punctuation) is matched as it is, so that it finds what holds it, not everything.

    Each word costs a search in every member examined: more words than `max_filter_words`, or a
    word longer than `max_filter_word_length`, is refused as too costly. Repeated words, and words
    that start a longer word of the filter ("dis disease"), are implied by another and dropped."""
    given = words(request.filter or "") or [(request.filter or "").strip().casefold()]
    if len(given) > request.max_filter_words:
        raise TooCostly("FILTER_TOO_MANY_WORDS", count=len(given), limit=request.max_filter_words, expression="filter")
    longest = max(given, key=len)
    if len(longest) > request.max_filter_word_length:
        raise TooCostly("FILTER_WORD_TOO_LONG", length=len(longest), limit=request.max_filter_word_length,
                        expression="filter")
    wanted: list[str] = []
    for word in sorted(set(given), key=lambda w: (-len(w), w)):
        if not any(kept.startswith(word) for kept in wanted):
            wanted.append(word)
    return wanted


def _search_text(member: Member) -> str:
    """The words of the member's display, code and designations, each after a space, so that
    " " + prefix in it is a word-prefix test done in C. Kept on the code system entry, since a
    typeahead over the whole ICD-10-CM would otherwise split 98,000 displays on every request."""
    concept, cs = member.concept, member.code_system
    kept = cs.search_words if cs is not None and concept is not None and member.display == concept.display else None
    if kept is not None:
        found = kept.get(member.code)
        if found is not None:
            return found
    texts = [member.display or "", member.code]
    if concept is not None:
        texts.extend(d.value for d in concept.designations)
    text = "".join(" " + w for t in texts for w in words(t))
    if kept is not None:
        kept[member.code] = text
    return text


def text_matches(member: Member, wanted: list[str]) -> bool:
    """Whether every word of `wanted` starts a word of the member."""
    return _holds_all(_search_text(member), [" " + word for word in wanted])


def _holds_all(text: str, needles: list[str]) -> bool:
    return all(needle in text for needle in needles)


# Below this many members a plain scan is as quick as building the index.
_INDEXED_MEMBERS = 5_000


def text_filtered(evaluation: Evaluation, wanted: list[str], limit: int | None = None) -> list[Member]:
    """The evaluation's members that match every word of the text filter (`filter_words`), in
    order (the first `limit` of them, if given). A large kept evaluation gets an index of its
    members' words (textindex.py: built once, shared by its copies), so that a word finds the
    members it starts a word of by bisection, and only those are checked for the other words."""
    members = evaluation.members
    if len(members) < _INDEXED_MEMBERS:
        needles = [" " + word for word in wanted]
        found = (m for m in members if _holds_all(_search_text(m), needles))
        return list(found if limit is None else islice(found, limit))
    budget.check()
    index: WordIndex | None = evaluation.search.get("words")
    if index is None:
        index = evaluation.search["words"] = WordIndex([_search_text(m) for m in budget.checked(members)])
    return [members[position] for position in index.matches(wanted, limit)]


def _is_inactive(member: Member) -> bool:
    return member.concept is not None and member.concept.inactive


def _excluded_system(member: Member, excluded: tuple[str, ...]) -> bool:
    for canonical in excluded:
        url, _, version = canonical.partition("|")
        if member.system == url and (not version or member.version == version):
            return True
    return False


def _language_echo(value: str) -> str:
    """tx.fhir.org re-renders a weighted language list with ', ' between the ranges."""
    return ", ".join(part.strip() for part in value.split(",")) if ";" in value else value


def _display_language(request: ExpandRequest, value_set: dict[str, Any]) -> str | None:
    return (request.display_language or request.accept_language
            or compose_parameters(value_set).get("displayLanguage") or value_set.get("language"))


def expand_value_set(registry: Registry, request: ExpandRequest) -> ExpandResult:
    """The expansion of the requested value set. Raises the TerminologyError subclasses of evaluate."""
    if request.value_set is not None:
        value_set = request.value_set
    elif request.url:
        value_set = resolve_value_set(registry, request.url, request.value_set_version, _options(request))
    else:
        raise InvalidRequest("EXPAND_NO_VALUESET", expression="url")
    wanted = filter_words(request) if request.filter else []
    renamer = Renamer(registry)
    if any(value.partition("|")[0] in renamer.aliases for value in (
            *request.exclude_systems, *request.system_versions, *request.check_system_versions,
            *request.force_system_versions)):
        request = replace(
            request, exclude_systems=renamer.canonicals(request.exclude_systems, "exclude-system"),
            system_versions=renamer.canonicals(request.system_versions, "system-version"),
            check_system_versions=renamer.canonicals(request.check_system_versions, "check-system-version"),
            force_system_versions=renamer.canonicals(request.force_system_versions, "force-system-version"))
    evaluation = evaluate(registry, value_set, options=_options(request))
    if renamer.found:
        evaluation.renamed[:0] = [r for r in renamer.found if r not in evaluation.renamed]
    for warning in status_warnings(value_set):
        # draft / experimental describe the request's own ValueSet and are not warned about (the
        # HL7 tests expect none); deprecated and withdrawn are
        if warning[0] in ("warning-deprecated", "warning-withdrawn") and warning not in evaluation.warnings:
            evaluation.warnings.append(warning)
    if evaluation.unknown_systems:
        raise UnknownCodeSystem("UNKNOWN_CODESYSTEM_EXP", system=evaluation.unknown_systems[0], expression="system")
    _refuse_content_not_present(registry, evaluation, value_set)
    # every filter below is a condition on each member alone, so the text filter, the one an
    # index speeds up, goes first
    members = text_filtered(evaluation, wanted) if request.filter else evaluation.members
    budget.check()
    compose = value_set.get("compose") or {}
    if request.active_only or compose.get("inactive") is False:
        members = [m for m in members if not _is_inactive(m)]
    if request.exclude_not_for_ui:
        members = [m for m in members if not (m.concept is not None and m.concept.abstract)]
    if request.exclude_systems:
        members = [m for m in members if not _excluded_system(m, request.exclude_systems)]
    total = len(members)
    limit = request.max_expansion
    name = canonical_of(value_set) or "(inline)"
    if request.count is None and total > limit:
        raise TooCostly("VALUESET_TOO_COSTLY", value_set=name, size=f">{limit}")
    if request.count is not None and request.count > limit:
        request = replace(request, count=limit)

    paged = request.offset is not None or request.count is not None
    offset = request.offset or 0
    if paged:
        end = None if request.count is None else offset + request.count
        shown = members[offset:end]
    else:
        shown = members
    nested = not request.exclude_nested and not paged
    language = _display_language(request, value_set)
    contains, properties = contains_tree(shown, nested, request, evaluation.multi_version_systems, language,
                                         only_filtered=bool(request.filter), name=name)

    echoed = _ECHOED_ELEMENTS + (_DEFINITION_ELEMENTS if request.include_definition else ())
    return ExpandResult(
        value_set={k: value_set[k] for k in echoed if k in value_set},
        identifier=f"urn:uuid:{uuid.uuid4()}",
        timestamp=datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
        total=total, offset=offset if paged else None, parameters=_echo(request, evaluation, language),
        properties=properties, contains=contains,
        fragment_of=evaluation.used_fragments[0].partition("|")[0] if evaluation.used_fragments else None)


def _refuse_content_not_present(registry: Registry, evaluation: Evaluation, value_set: dict[str, Any]) -> None:
    """A code system held without its codes (content = not-present) expands to nothing, which would
    read as "no codes": the TX IG says a server SHALL NOT expand with one, so the expansion is
    refused, naming it."""
    for canonical in evaluation.used_code_systems:
        url, _, version = canonical.partition("|")
        if registry.code_system(url, version or None).content == "not-present":
            raise NotSupported("VALUESET_CONTENT_NOT_PRESENT", system=url, version=version or "(none)",
                               value_set=canonical_of(value_set) or "(inline)")


def first_matches(registry: Registry, request: ExpandRequest, limit: int) -> list[Member]:
    """The first `limit` members of `request.url`'s expansion under its text filter: the members of
    $expand's first page (count=`limit`), without counting the others (a type-ahead shows no
    total). For a request that names no language, no version rule and no other filter (what the
    UI asks); their display is the member's, as in that page."""
    value_set = resolve_value_set(registry, request.url or "", request.value_set_version, _options(request))
    evaluation = evaluate(registry, value_set, options=_options(request))
    if evaluation.unknown_systems:
        raise UnknownCodeSystem("UNKNOWN_CODESYSTEM_EXP", system=evaluation.unknown_systems[0], expression="system")
    _refuse_content_not_present(registry, evaluation, value_set)
    return text_filtered(evaluation, filter_words(request), limit)


def _echo(request: ExpandRequest, evaluation: Evaluation, language: str | None) -> tuple[ExpansionParameter, ...]:
    """Every parameter that shaped the result, once each."""
    params: list[ExpansionParameter] = []

    def add(name: str, kind: str, value: str | int | bool) -> None:
        item = ExpansionParameter(name, kind, value)
        if item not in params:
            params.append(item)

    for name, value in (("activeOnly", request.active_only), ("excludeNested", request.exclude_nested),
                        ("includeDesignations", request.include_designations),
                        ("includeDefinition", request.include_definition),
                        ("excludeNotForUI", request.exclude_not_for_ui),
                        ("excludePostCoordinated", request.exclude_post_coordinated)):
        if value is not None:
            add(name, "Boolean", value)
    if language:
        add("displayLanguage", "Code", _language_echo(language))
    if request.filter:
        add("filter", "String", request.filter)
    if request.count is not None:
        add("count", "Integer", request.count)
    if request.offset is not None:
        add("offset", "Integer", request.offset)
    for designation in request.designations:
        add("designation", "String", designation)
    for canonical in request.exclude_systems:
        add("exclude-system", "Uri", canonical)
    for canonical in request.force_system_versions:
        add("force-system-version", "Uri", canonical)
    for canonical in request.default_value_set_versions:
        add("default-valueset-version", "Uri", canonical)
    for name, setting in evaluation.applied:
        if name == "versionsMatch":
            add(name, "Boolean", setting == "true")
        elif name != "force-system-version":
            add(name, "Uri", setting)
    for canonical in evaluation.used_code_systems:
        add("used-codesystem", "Uri", canonical)
    for canonical in evaluation.used_value_sets:
        add("used-valueset", "Uri", canonical)
    for canonical in evaluation.used_supplements:
        add("used-supplement", "Uri", canonical)
    for canonical in evaluation.used_fragments:
        add("used-fragment", "Uri", canonical)
    for name, canonical in evaluation.warnings:
        add(name, "Uri", canonical)
    for renamed in evaluation.renamed:
        parameter = renamed.expansion_parameter()
        add(parameter.name, parameter.type, parameter.value)
    return tuple(params)
