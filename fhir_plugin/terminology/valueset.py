"""Value set semantics: which concepts a ValueSet's compose selects.

`evaluate` walks compose.include / compose.exclude in order and returns the selected members,
flat and in definition order, with the code systems, value sets and supplements it used and the
status warnings an expansion reports. $expand renders the members; $validate-code asks whether a
coding is among them. Filters are in filters.py; the Evaluation it returns, and the resolution of
what a compose names (imported value sets, code system versions, supplements), in evaluation.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from . import budget
from .errors import CircularValueSet, TooCostly, UnknownCodeSystem, UnknownSupplement
from .evaluation import (Evaluation, EvaluationOptions, Member, canonical_of, choose_code_system, imported_value_set,
                         status_warnings, supplemented)
from .filters import filter_codes
from .identifiers import compose_renamed
from .registry import Registry, version_key

# A value set that imports one that imports another...: each level is a recursive evaluation (two
# stack frames), and tx-resources or loaded content can chain as many as they hold. Real
# definitions import a few levels deep.
MAX_IMPORT_DEPTH = 50


# --- compose ----------------------------------------------------------------------------------


def _include(registry: Registry, include: dict[str, Any], evaluation: Evaluation, options: EvaluationOptions,
             path: tuple[str, ...], where: str, supplements: list[str], contained: list[dict[str, Any]]) -> list[Member]:
    """The members one include (or exclude) element selects, in code system order."""
    budget.check()
    system = include.get("system")
    imported: list[set[tuple[str, str]]] = []
    imported_members: list[Member] = []
    for canonical in include.get("valueSet", []):
        value_set, is_contained = imported_value_set(registry, canonical, options, contained, evaluation)
        sub = _evaluate(registry, value_set, options, path)
        used = canonical_of(value_set)
        # a contained ValueSet is part of the one being expanded, not a separate resource used
        if not is_contained and used not in evaluation.used_value_sets:
            evaluation.used_value_sets.append(used)
        evaluation.warnings.extend(w for w in status_warnings(value_set) if w not in evaluation.warnings)
        evaluation.merge(sub)
        imported.append({m.key for m in sub.members})
        if not imported_members:
            imported_members = sub.members
    if system is None:
        # Imported members are listed flat: the hierarchy belongs to the imported expansion
        # (tx.fhir.org does not nest them, and the HL7 deprecated/not-withdrawn test expects that).
        return [replace(m, nestable=False) for m in imported_members if all(m.key in keys for keys in imported)]

    cs = choose_code_system(registry, system, include.get("version"), options, evaluation)
    if cs is None:
        if include.get("concept") and not include.get("filter"):
            evaluation.unknown_systems.append(system)
            return [Member(system, include.get("version"), c["code"], c.get("display"), None, entry=c)
                    for c in include["concept"]]
        raise UnknownCodeSystem("UNKNOWN_CODESYSTEM_EXP", system=system, expression="system")
    if cs.canonical not in evaluation.used_code_systems:
        evaluation.used_code_systems.append(cs.canonical)
        evaluation.warnings.extend(w for w in status_warnings(cs.resource) if w not in evaluation.warnings)
    if cs.content == "fragment" and cs.canonical not in evaluation.used_fragments:
        evaluation.used_fragments.append(cs.canonical)
    cs = supplemented(registry, cs, supplements, evaluation)
    if include.get("concept"):
        members = []
        for item in budget.checked(include["concept"]):
            concept = cs.find(item["code"])
            if concept is not None:
                members.append(Member(cs.url, cs.version, concept.code, item.get("display") or concept.display,
                                      concept, cs, entry=item))
    else:
        selected: set[str] | None = None
        ordered: Iterable[str]
        for index, flt in enumerate(include.get("filter", [])):
            budget.check()
            codes_for = filter_codes(cs, flt, f"{where}.filter[{index}]")
            selected = codes_for if selected is None else selected & codes_for
        if selected is None:
            ordered = cs.concepts.keys()
        elif cs.positions and len(selected) * 8 < len(cs.concepts):
            ordered = sorted(selected & cs.concepts.keys(), key=cs.positions.__getitem__)
        else:
            ordered = [c for c in cs.concepts if c in selected]
        filtered = bool(include.get("filter"))
        members = [Member(cs.url, cs.version, code, cs.concepts[code].display, cs.concepts[code], cs, nestable=cs.nestable,
                          filtered=filtered)
                   for code in ordered]
    if imported:
        members = [m for m in members if all(m.key in keys for keys in imported)]
    return members


def _value_set_supplements(value_set: dict[str, Any], options: EvaluationOptions) -> list[str]:
    found = [e["valueCanonical"] for e in value_set.get("extension", [])
             if e.get("url") == "http://hl7.org/fhir/StructureDefinition/valueset-supplement" and "valueCanonical" in e]
    return found + [s for s in options.use_supplements if s not in found]


EXPANSION_PARAMETER = "http://hl7.org/fhir/StructureDefinition/valueset-expansion-parameter"


def compose_parameters(value_set: dict[str, Any]) -> dict[str, str]:
    """Expansion parameters the ValueSet itself sets (valueset-expansion-parameter extension)."""
    found: dict[str, str] = {}
    for holder in (value_set, value_set.get("compose") or {}):
        for ext in holder.get("extension", []):
            if ext.get("url") != EXPANSION_PARAMETER:
                continue
            parts = {e.get("url"): next((v for k, v in e.items() if k.startswith("value")), None)
                     for e in ext.get("extension", [])}
            name = parts.get("name")
            if name and parts.get("value") is not None:
                value = parts["value"]
                found[name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return found


def _merge_versions(seen: dict[tuple[str, str | None, str], Member]) -> dict[tuple[str, str | None, str], Member]:
    """versionsMatch=true: one member per code, from the newest version that has it."""
    best: dict[tuple[str, str], Member] = {}
    for member in seen.values():
        current = best.get(member.key)
        if current is None or version_key(member.version) > version_key(current.version):
            best[member.key] = member
    return {(m.system, m.version, m.code): m for m in best.values()}


def _multi_version_systems(compose: dict[str, Any]) -> set[str]:
    """Systems the compose names with different versions (a stated version vs another, or none):
    their expansion entries carry `version`. One system named twice with the same (or no)
    version is one version, and its entries do not."""
    stated: dict[str, set[str | None]] = {}
    for item in compose.get("include", []) + compose.get("exclude", []):
        if item.get("system"):
            stated.setdefault(item["system"], set()).add(item.get("version"))
    return {system for system, versions in stated.items() if len(versions) > 1}


def _include_order(includes: list[dict[str, Any]]) -> list[int]:
    """The order includes are evaluated in: includes stating versions of the same system are
    taken newest version first (they keep the places they hold among the others), so that a
    code in two versions lists the newer first, as tx.fhir.org does (HL7 overload tests)."""
    order = list(range(len(includes)))
    positions: dict[str, list[int]] = {}
    for index, include in enumerate(includes):
        if include.get("system") and include.get("version"):
            positions.setdefault(include["system"], []).append(index)
    for places in positions.values():
        ranked = sorted(places, key=lambda i: version_key(includes[i]["version"]), reverse=True)
        for place, index in zip(places, ranked):
            order[place] = index
    return order


def _evaluate(registry: Registry, value_set: dict[str, Any], options: EvaluationOptions, path: tuple[str, ...]) -> Evaluation:
    me = canonical_of(value_set)
    if me and me in path:
        raise CircularValueSet("VALUESET_CIRCULAR_REFERENCE", value_set=me, pathway="[" + ", ".join(path + (me,)) + "]")
    if len(path) >= MAX_IMPORT_DEPTH:
        raise TooCostly("VALUESET_IMPORTS_TOO_DEEP", value_set=path[0], limit=MAX_IMPORT_DEPTH)
    path = path + ((me,) if me else ())
    evaluation = Evaluation()
    value_set, evaluation.renamed = compose_renamed(registry, value_set)
    # the evaluation depends on what the aliases name: a layer that declares one is its home
    evaluation.consulted.update(renamed.given for renamed in evaluation.renamed)
    compose = value_set.get("compose") or {}
    supplements = _value_set_supplements(value_set, options)
    contained = value_set.get("contained", [])
    evaluation.multi_version_systems = _multi_version_systems(compose)
    seen: dict[tuple[str, str | None, str], Member] = {}
    includes = compose.get("include", [])
    order = _include_order(includes) if options.newest_version_first else range(len(includes))
    for index in order:
        for member in budget.checked(_include(registry, includes[index], evaluation, options, path,
                                              f"ValueSet.compose.include[{index}]", supplements, contained)):
            seen.setdefault((member.system, member.version, member.code), member)
    versions_match = compose_parameters(value_set).get("versionsMatch")
    if versions_match == "true":
        evaluation.applied.append(("versionsMatch", "true"))
        seen = _merge_versions(seen)
    included_versions: dict[str, set[str | None]] = {}
    for system, version, _ in seen:
        included_versions.setdefault(system, set()).add(version)
    excluded: set[tuple[str, str | None, str]] = set()
    for index, exclude in enumerate(compose.get("exclude", [])):
        for member in budget.checked(_include(registry, exclude, evaluation, options, path,
                                              f"ValueSet.compose.exclude[{index}]", supplements, contained)):
            # An exclude of a version the includes do not use removes the code from every version
            # (versionsMatch, unless the ValueSet says versionsMatch=false); one of a version they
            # use removes only that version's code.
            same_version = member.version in included_versions.get(member.system, set())
            if versions_match == "false" or (exclude.get("version") and same_version):
                excluded.add((member.system, member.version, member.code))
            else:
                excluded.add((member.system, None, member.code))
                if exclude.get("version") and ("versionsMatch", "true") not in evaluation.applied:
                    evaluation.applied.append(("versionsMatch", "true"))
    evaluation.members = [m for k, m in seen.items()
                          if k not in excluded and (m.system, None, m.code) not in excluded]
    for canonical in options.use_supplements:
        if not any(u == canonical or u.partition("|")[0] == canonical for u in evaluation.used_supplements):
            raise UnknownSupplement("VALUESET_SUPPLEMENT_MISSING", supplement=canonical)
    return evaluation


def evaluate(registry: Registry, value_set: dict[str, Any], options: EvaluationOptions | None = None) -> Evaluation:
    """The members `value_set` selects (compose only; a ValueSet without compose selects nothing).

    Members are unique per (system, version, code): two versions of one code system may both
    contribute a code. Cycles are detected by the import pathway.

    An $expand of an is-a filter, or of the whole ICD-10-CM under a text filter (a typeahead), spends
    nearly all its time listing members (98,000 for the whole system). The list depends only on the
    registry (immutable once built), the ValueSet and the request's version rules, so it is kept in
    the registry's bounded cache: `members` of the result is shared and must not be changed in place;
    the other lists are the caller's own.

    It is kept in the lowest layer of the registry that answers each of its look-ups the same way
    (`Registry.home`), under that layer's token: an evaluation of the loaded content asked for in
    requests that each bring other tx-resources is computed and kept once, not once per overlay."""
    chosen = options or EvaluationOptions()
    return _kept(registry, value_set, chosen, lambda: _evaluate(registry, value_set, chosen, ()))


def _kept(registry: Registry, value_set: dict[str, Any], options: EvaluationOptions,
          compute: Callable[[], Evaluation]) -> Evaluation:
    try:
        text = json.dumps(value_set, sort_keys=True)
    except (TypeError, ValueError):
        return compute()
    rest = (hashlib.sha256(text.encode()).digest(), repr(options))
    kept: Evaluation | None = None
    for layer in registry.layers():
        # the evaluation kept there holds for this registry if no layer above it changes its look-ups
        kept = layer.caches.evaluations.find((layer.token, *rest),
                                             lambda found: registry.home(found.consulted) is layer)
        if kept is not None:
            break
    if kept is None:
        kept = compute()
        home = registry.home(kept.consulted)
        kept.held_bytes = home.held_bytes()
        home.caches.evaluations.missed()
        home.caches.evaluations.put((home.token, *rest), kept)
    changes: dict[str, Any] = {f.name: list(getattr(kept, f.name)) for f in dataclasses.fields(kept)
                               if isinstance(getattr(kept, f.name), list) and f.name != "members"}
    changes["multi_version_systems"] = set(kept.multi_version_systems)
    changes["consulted"] = set(kept.consulted)
    return dataclasses.replace(kept, **changes)
