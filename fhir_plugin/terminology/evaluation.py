"""What a value set's compose selected (`Evaluation`, its `Member`s) and what it names resolved: the
value sets it imports, the version of each code system it includes (by the request's version rules,
`EvaluationOptions`), the supplements it applies, the status warnings they cause.

Apart from valueset.py, which walks compose.include and compose.exclude, because these are what the
operations read back (expand, validate-code) and what the walk asks of the registry: the data and
the look-ups, not the walk.

Code system versions follow the $expand rules: `force-system-version` beats the include's
version, which beats `system-version`; `check-system-version` picks among versions for a
versionless include and refuses a version it does not allow. Versions may be wildcards
(`1.x.x`, `1.0.x`): a segment `x` or `*` matches anything, the other segments exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .entries import CodeSystemEntry, Concept
from .errors import UnknownCodeSystem, UnknownSupplement, UnknownValueSet, VersionCheckFailed
from .identifiers import Renamed
from .registry import Registry, version_key
from .supplements import apply_supplements, find_supplement, supplements_base


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


# --- code system choice, supplements and imports ---------------------------------------------


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


def supplemented(registry: Registry, cs: CodeSystemEntry, wanted: list[str], evaluation: Evaluation
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


def imported_value_set(registry: Registry, canonical: str, options: EvaluationOptions,
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
