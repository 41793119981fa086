"""$validate-code: what one request knows while it is answered (the value set, its members, the
request's version rules and supplements), and what checking one coding found out. The checks are
in codings.py, the verdict in operation.py.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from ..entries import CodeSystemEntry, Coding, Concept
from ..errors import InvalidValidateRequest, UnknownCodeSystem, UnknownSupplement, UnknownValueSet
from ..evaluation import Evaluation, EvaluationOptions, resolve_value_set
from ..identifiers import Renamed, compose_renamed
from ..models import Issue, ValidateCodeRequest, VersionRules
from ..registry import Registry
from ..supplements import apply_supplements, find_supplement, supplements_base
from ..valueset import evaluate
from .issues import issue


# --- one coding ------------------------------------------------------------------------------


@dataclass
class CheckedCoding:
    """What validating one coding found out."""

    coding: Coding
    valid: bool = False  # the concept exists (or may: fragment) and is acceptable
    in_vs: bool = False
    cs: CodeSystemEntry | None = None
    concept: Concept | None = None
    issues: list[Issue] = field(default_factory=list)
    unknown_system: str | None = None  # x-unknown-system
    caused_by: str | None = None  # x-caused-by-unknown-system
    display: str | None = None
    skip_membership: bool = False


def issue_paths(form: str, index: int) -> dict[str, str]:
    """The FHIRPath expressions of a coding's issues, by element ("" for the coding itself)."""
    if form == "code":
        return {"": "code", "code": "code", "system": "system", "display": "display", "version": "version"}
    base = "Coding" if form == "coding" else f"CodeableConcept.coding[{index}]"
    return {"": base, **{k: f"{base}.{k}" for k in ("code", "system", "display", "version")}}


def provided_text(coding: Coding) -> str:
    """The code as the not-in-value-set message shows it: system[|version]#code ('display')."""
    text = f"{coding.system or ''}{'|' + coding.version if coding.version else ''}#{coding.code}"
    return f"{text} ('{coding.display}')" if coding.display else text


def concept_status(concept: Concept) -> str | None:
    """The concept's status: a `status` property, else its standards-status extension."""
    for prop in concept.properties + concept.extension_properties:
        if prop.code == "status" and isinstance(prop.value, str):
            return prop.value
    return None


def inactive_text(concept: Concept) -> str:
    status = concept_status(concept)
    if status and status not in ("inactive", "active"):
        return f"{status} and inactive" if concept.inactive else status
    return "inactive"


class ValidationContext:
    """One request: the registry, the value set and its members (computed once)."""

    def __init__(self, registry: Registry, request: ValidateCodeRequest):
        self.registry = registry
        self.request = request
        self.value_set: dict[str, Any] | None = None
        self.evaluation: Evaluation | None = None
        self.vs_problem: Issue | None = None
        self.vs_unknown_system: str | None = None
        self.renamed: list[Renamed] = []  # aliases read as canonical URLs (the request's; the value set's: evaluation)
        self.languages = request.display_language or request.accept_language
        if request.code_system_url is None:
            self._load_value_set()
        self.supplements = self._supplements()

    def _supplements(self) -> list[CodeSystemEntry]:
        """The supplements the request (useSupplement) and the value set (valueset-supplement)
        name; each must exist, else the request fails (VALUESET_SUPPLEMENT_MISSING)."""
        wanted = list(self.request.use_supplements)
        for extension in (self.value_set or {}).get("extension", []):
            if extension.get("url") == _VS_SUPPLEMENT and extension.get("valueCanonical") not in wanted:
                wanted.append(extension["valueCanonical"])
        found = []
        for canonical in wanted:
            supplement = find_supplement(self.registry, canonical)
            if supplement is None:
                raise UnknownSupplement("VALUESET_SUPPLEMENT_MISSING", supplement=canonical)
            found.append(supplement)
        return found

    def supplemented(self, cs: CodeSystemEntry) -> CodeSystemEntry:
        """`cs` with the supplements of this request that supplement it applied."""
        return apply_supplements(self.registry, cs, [s for s in self.supplements if supplements_base(s) == cs.url])

    def renamed_issues(self) -> list[Issue]:
        """The warnings about code systems named by an alias: in the request, in the value set
        and in the value sets it imports."""
        below = self.evaluation.renamed if self.evaluation is not None else []
        if not self.renamed and not below:
            return []
        return [renamed.issue() for renamed in self.renamed + [r for r in below if r not in self.renamed]]

    @property
    def vs_label(self) -> str:
        vs = self.value_set or {}
        if not vs.get("url"):
            return "(unidentified)"
        return f"{vs['url']}|{vs['version']}" if vs.get("version") else vs["url"]

    def _load_value_set(self) -> None:
        request = self.request
        options = self._options()
        if request.value_set is not None:
            self.value_set = request.value_set
        elif request.url is None:  # as the web layer answers a request that names no value set
            raise InvalidValidateRequest("VALIDATE_NO_VALUESET", expression="url")
        else:
            self.value_set = _resolve_requested(self.registry, request.url, request.value_set_version, options)
        if not self.languages:
            self.languages = _expansion_parameter(self.value_set, "displayLanguage") or self.value_set.get("language")
        if self.value_set.get("contained"):  # its imports are rewritten below: never touch the caller's dict
            self.value_set = copy.deepcopy(self.value_set)
        self.registry = _with_contained(self.registry, self.value_set)
        given = self.value_set
        # what this module reads of the compose itself (which systems, which versions) it reads
        # with aliases as canonical URLs; the evaluation warns about them
        self.value_set = compose_renamed(self.registry, given)[0]
        try:
            self.evaluation = evaluate(self.registry, given, options=options)
        except UnknownValueSet as error:  # a broken import: an answer about this value set, not a 404
            error = _as_unresolved(error)
            self.vs_problem = Issue("error", "not-found", "not-found", error.text, error.message_id)
        except UnknownCodeSystem as error:
            self.vs_unknown_system = error.system
            self.vs_problem = issue("error", "not-found", "not-found", "UNKNOWN_CODESYSTEM", self.vs_unknown_system)

    def _options(self) -> EvaluationOptions:
        """The request's rules for the value set engine: forced and default code system versions
        and default versions of imported value sets. `check-system-version` is not passed: a
        version it refuses is an issue about the coding (choose_version), not a failed value set."""
        rules = self.request.versions
        return EvaluationOptions(
            system_versions=dict(rules.default), force_versions=dict(rules.force),
            default_value_set_versions=VersionRules.parse(self.request.default_value_set_version))

    def includes_system(self, system: str) -> bool:
        compose = (self.value_set or {}).get("compose") or {}
        return any(inc.get("system") == system for inc in compose.get("include", []) + compose.get("exclude", []))


_VS_SUPPLEMENT = "http://hl7.org/fhir/StructureDefinition/valueset-supplement"


def _resolve_requested(registry: Registry, url: str, version: str | None, options: EvaluationOptions
                       ) -> dict[str, Any]:
    """The value set the request names. Unlike an import, one that is unknown in the requested
    (or default) version is reported as unknown under its full canonical (`url|version`)."""
    try:
        return resolve_value_set(registry, url, version, options)
    except UnknownValueSet as error:
        raise _as_unresolved(error) from None


def _as_unresolved(error: UnknownValueSet) -> UnknownValueSet:
    """$validate-code names a value set missing in a pinned (or default) version by its full
    canonical, with the generic not-found message; $expand keeps VS_EXP_IMPORT_UNK_PINNED."""
    if error.message_id != "VS_EXP_IMPORT_UNK_PINNED":
        return error
    return UnknownValueSet("Unable_to_resolve_value_Set_", value_set=f"{error.fields['value_set']}|{error.fields['version']}")


def _expansion_parameter(value_set: dict[str, Any], name: str) -> str | None:
    """A value the value set's author fixed for its expansions (valueset-expansion-parameter)."""
    for extension in ((value_set.get("compose") or {}).get("extension") or []):
        if extension.get("url") != "http://hl7.org/fhir/StructureDefinition/valueset-expansion-parameter":
            continue
        parts = {e.get("url"): e for e in extension.get("extension", [])}
        if parts.get("name", {}).get("valueCode") == name:
            value = parts.get("value", {})
            return next((v for k, v in value.items() if k.startswith("value")), None)
    return None


def _with_contained(registry: Registry, value_set: dict[str, Any]) -> Registry:
    """Contained value sets, importable as `#id`, on top of the registry for this request."""
    contained = [r for r in value_set.get("contained", []) if r.get("resourceType") == "ValueSet" and r.get("id")]
    if not contained:
        return registry
    local = {f"#{r['id']}": r.get("url") or f"urn:contained:{r['id']}" for r in contained}
    for include in (value_set.get("compose") or {}).get("include", []):
        if any(c in local for c in include.get("valueSet", [])):
            include["valueSet"] = [local.get(c, c) for c in include["valueSet"]]
    return Registry([{**r, "url": local[f"#{r['id']}"]} for r in contained], parent=registry)
