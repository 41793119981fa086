"""Value set semantics: which concepts a ValueSet's compose selects.

`evaluate` walks compose.include / compose.exclude in order and returns the selected members,
flat and in definition order, with the code systems, value sets and supplements it used and the
status warnings an expansion reports. $expand renders the members; $validate-code asks whether a
coding is among them. Filters are in filters.py.

Code system versions follow the $expand rules: `force-system-version` beats the include's
version, which beats `system-version`; `check-system-version` picks among versions for a
versionless include and refuses a version it does not allow. Versions may be wildcards
(`1.x.x`, `1.0.x`): a segment `x` or `*` matches anything, the other segments exactly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from . import budget
from .entries import CodeSystemEntry, Concept
from .errors import CircularValueSet, TooCostly, UnknownCodeSystem, UnknownSupplement, UnknownValueSet, VersionCheckFailed
from .filters import filter_codes
from .identifiers import Renamed, compose_renamed
from .models import versions_by_system
from .registry import Registry, version_key
from .supplements import apply_supplements, find_supplement, supplements_base

# A value set that imports one that imports another...: each level is a recursive evaluation (two
# stack frames), and tx-resources or loaded content can chain as many as they hold. Real
# definitions import a few levels deep.
MAX_IMPORT_DEPTH = 50

__all__ = ["Evaluation", "EvaluationOptions", "Member", "canonical_of", "compose_parameters", "evaluate",
           "members_with_code", "resolve_value_set", "status_warnings", "versions_by_system"]


# Not frozen (hashable all the same): a frozen dataclass's __init__ costs 3.5x more, and an
# expansion of the whole ICD-10-CM builds 98,466 of these.
@dataclass(slots=True, unsafe_hash=True)
class Member:
    system: str
    version: str | None
    code: str
    display: str | None
    concept: Concept | None  # None when the code system is not loaded (an enumerated code taken on trust)
    code_system: CodeSystemEntry | None = None
    nestable: bool = False  # from a whole-system or filter include: may sit under its parent in a hierarchy
    filtered: bool = False  # from an include with a property filter (keeps its hierarchy under a text filter)
    entry: dict[str, Any] | None = None  # the compose include.concept element that listed it, if any

    @property
    def key(self) -> tuple[str, str]:
        return self.system, self.code


@dataclass
class EvaluationOptions:
    """Version rules of the request: canonical url -> version (pattern)."""

    system_versions: dict[str, str] = field(default_factory=dict)
    check_versions: dict[str, str] = field(default_factory=dict)
    force_versions: dict[str, str] = field(default_factory=dict)
    default_value_set_versions: dict[str, str] = field(default_factory=dict)
    use_supplements: tuple[str, ...] = ()
    # $expand lists a code in two stated versions newest first (see _include_order); validation
    # keeps the definition order, which decides the version a versionless code is checked in.
    newest_version_first: bool = False


@dataclass
class Evaluation:
    members: list[Member] = field(default_factory=list)
    used_code_systems: list[str] = field(default_factory=list)  # canonical url|version, in order of use
    used_value_sets: list[str] = field(default_factory=list)
    used_supplements: list[str] = field(default_factory=list)
    used_fragments: list[str] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (warning-<status>, canonical)
    applied: list[tuple[str, str]] = field(default_factory=list)  # version parameters that changed a choice
    unknown_systems: list[str] = field(default_factory=list)  # enumerated includes of unloaded systems
    multi_version_systems: set[str] = field(default_factory=set)  # systems compose names in two versions
    renamed: list[Renamed] = field(default_factory=list)  # includes that name a code system by an alias
    # what $expand's text filter builds over `members` once, shared by the copies of a kept evaluation
    search: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # every canonical url looked up in the registry (found or not): the evaluation is the same in
    # any registry that answers these look-ups the same way (see Registry.home)
    consulted: set[str] = field(default_factory=set, repr=False, compare=False)
    # the bytes of request-made layers (tx-resources) its members may keep alive, once kept
    held_bytes: int = field(default=0, repr=False, compare=False)

    def merge(self, other: Evaluation) -> None:
        for name in ("used_code_systems", "used_value_sets", "used_supplements", "used_fragments", "warnings",
                     "applied", "unknown_systems", "renamed"):
            mine = getattr(self, name)
            mine.extend(x for x in getattr(other, name) if x not in mine)
        self.multi_version_systems |= other.multi_version_systems
        self.consulted |= other.consulted


def members_with_code(evaluation: Evaluation, code: str) -> list[Member]:
    """The members whose code is `code`, in order. A large evaluation is indexed by code once
    (shared by the copies of a kept one): $validate-code against a value set of the whole ICD-10-CM
    would otherwise scan 98,000 members per coding."""
    members = evaluation.members
    if len(members) < 64:
        return [m for m in members if m.code == code]
    index: dict[str, list[Member]] | None = evaluation.search.get("codes")
    if index is None:
        index = {}
        for member in members:
            index.setdefault(member.code, []).append(member)
        evaluation.search["codes"] = index
    return index.get(code, [])


def canonical_of(resource: dict[str, Any]) -> str:
    url, version = resource.get("url", ""), resource.get("version")
    return f"{url}|{version}" if version else url


def version_matches(pattern: str, version: str | None) -> bool:
    if version is None:
        return False
    if pattern == version:
        return True
    wanted, have = pattern.split("."), version.split(".")
    return len(wanted) == len(have) and all(w in ("x", "X", "*") or w == h for w, h in zip(wanted, have))


def resolve_value_set(registry: Registry, canonical: str, version: str | None = None,
                      options: EvaluationOptions | None = None) -> dict[str, Any]:
    """The ValueSet resource named by `canonical` (`url` or `url|version`); UnknownValueSet if absent."""
    url, _, pinned = canonical.partition("|")
    wanted = version or pinned or (options.default_value_set_versions.get(url) if options else None) or None
    versions = registry.resource_versions("ValueSet", url)
    for entry in versions:
        if wanted is None or entry.version == wanted or version_matches(wanted, entry.version):
            return entry.resource
    if wanted and versions:
        raise UnknownValueSet("VS_EXP_IMPORT_UNK_PINNED", value_set=url, version=wanted)
    implicit = _all_codes(registry, url, wanted)
    if implicit is not None:
        return implicit
    raise UnknownValueSet("Unable_to_resolve_value_Set_", value_set=canonical)


def _all_codes(registry: Registry, url: str, version: str | None) -> dict[str, Any] | None:
    """`{code system}?fhir_vs`, the implicit value set of all its codes (the convention SNOMED CT and
    LOINC define, here for every code system held): what the UI's search asks for by URL."""
    system = url.removesuffix("?fhir_vs")
    if system == url or registry.find_code_system(system, version) is None:
        return None
    include: dict[str, Any] = {"system": system, **({"version": version} if version else {})}
    return {"resourceType": "ValueSet", "url": url, "status": "active", "compose": {"include": [include]}}


def status_warnings(resource: dict[str, Any]) -> list[tuple[str, str]]:
    """The warning-* expansion parameters a used resource causes (draft, experimental, ...)."""
    found = []
    standards = next((e.get("valueCode") for e in resource.get("extension", [])
                      if e.get("url", "").endswith("/structuredefinition-standards-status")), None)
    if standards in ("deprecated", "withdrawn"):
        found.append((f"warning-{standards}", canonical_of(resource)))
    if resource.get("status") == "draft":
        found.append(("warning-draft", canonical_of(resource)))
    if resource.get("experimental") is True:
        found.append(("warning-experimental", canonical_of(resource)))
    return found


# --- code system choice ---------------------------------------------------------------------


def _pick(versions: list[CodeSystemEntry], pattern: str) -> CodeSystemEntry | None:
    return next((cs for cs in versions if version_matches(pattern, cs.version)), None)  # newest first


def choose_code_system(registry: Registry, system: str, version: str | None, options: EvaluationOptions,
                       evaluation: Evaluation) -> CodeSystemEntry | None:
    """The code system version an include uses (None: not loaded, UnknownCodeSystem: no such version)."""
    evaluation.consulted.add(system)
    versions = [cs for cs in registry.code_system_versions(system) if cs.content != "supplement"]
    if not versions:
        return None
    forced, check = options.force_versions.get(system), options.check_versions.get(system)
    wanted = forced or version
    if forced:
        evaluation.applied.append(("force-system-version", f"{system}|{forced}"))
    elif wanted is None and system in options.system_versions:
        wanted = options.system_versions[system]
        evaluation.applied.append(("system-version", f"{system}|{wanted}"))
    elif wanted is None and check:
        wanted = check
        evaluation.applied.append(("check-system-version", f"{system}|{check}"))
    cs = versions[0] if wanted is None else _pick(versions, wanted)
    if cs is None:
        known = " or ".join(sorted((v.version or "(none)" for v in versions), key=version_key))
        raise UnknownCodeSystem("UNKNOWN_CODESYSTEM_VERSION_EXP", system=system, version=wanted, known=known)
    if check and not forced and not version_matches(check, cs.version):
        raise VersionCheckFailed("VALUESET_VERSION_CHECK", system=system, version=cs.version, required=check)
    return cs


def _supplements(registry: Registry, cs: CodeSystemEntry, wanted: list[str], evaluation: Evaluation
                 ) -> CodeSystemEntry:
    """`cs` with those of the `wanted` supplements that supplement it applied."""
    applied = []
    for canonical in wanted:
        evaluation.consulted.add(canonical.partition("|")[0])
        found = find_supplement(registry, canonical)
        if found is None:
            raise UnknownSupplement("VALUESET_SUPPLEMENT_MISSING", supplement=canonical)
        if supplements_base(found) == cs.url:
            applied.append(found)
            if found.canonical not in evaluation.used_supplements:
                evaluation.used_supplements.append(found.canonical)
    return apply_supplements(registry, cs, applied)


def _imported_value_set(registry: Registry, canonical: str, options: EvaluationOptions,
                        contained: list[dict[str, Any]], evaluation: Evaluation) -> tuple[dict[str, Any], bool]:
    """(ValueSet, is it contained) for an include.valueSet entry; `#id` names a contained resource."""
    if canonical.startswith("#"):
        found = next((r for r in contained if r.get("resourceType") == "ValueSet" and r.get("id") == canonical[1:]),
                     None)
        if found is None:
            raise UnknownValueSet("Unable_to_resolve_value_Set_", value_set=canonical)
        return found, True
    evaluation.consulted.add(canonical.partition("|")[0])
    return resolve_value_set(registry, canonical, options=options), False


# --- compose ----------------------------------------------------------------------------------


def _include(registry: Registry, include: dict[str, Any], evaluation: Evaluation, options: EvaluationOptions,
             path: tuple[str, ...], where: str, supplements: list[str], contained: list[dict[str, Any]]) -> list[Member]:
    """The members one include (or exclude) element selects, in code system order."""
    budget.check()
    system = include.get("system")
    imported: list[set[tuple[str, str]]] = []
    imported_members: list[Member] = []
    for canonical in include.get("valueSet", []):
        value_set, is_contained = _imported_value_set(registry, canonical, options, contained, evaluation)
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
    cs = _supplements(registry, cs, supplements, evaluation)
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
