"""CodeSystem/$subsumes: how two codes of one code system relate in its hierarchy.

Spec: https://hl7.org/fhir/R5/codesystem-operation-subsumes.html. Outcome is `equivalent`,
`subsumes` (A is an ancestor of B), `subsumed-by` or `not-subsumed`; both codes must exist, and
both codings must be in the one code system named.
"""

from __future__ import annotations

from .entries import Concept
from .errors import InvalidRequest, UnknownCode
from .identifiers import Renamer
from .lookup import resolve_coding
from .models import SubsumesRequest, SubsumesResult
from .registry import Registry


def _ancestors(registry_concepts: dict[str, Concept], code: str) -> set[str]:
    found: set[str] = set()
    stack = list(registry_concepts[code].parents)
    while stack:
        parent = stack.pop()
        if parent not in found and parent in registry_concepts:
            found.add(parent)
            stack.extend(registry_concepts[parent].parents)
    return found


def subsumes(registry: Registry, request: SubsumesRequest) -> SubsumesResult:
    a = resolve_coding(request.system, request.code_a, request.version, request.coding_a,
                       ("system", "codeA", "version", "codingA"))
    b = resolve_coding(request.system, request.code_b, request.version, request.coding_b,
                       ("system", "codeB", "version", "codingB"))
    for name, coding in (("A", a), ("B", b)):
        if not coding.code:
            raise InvalidRequest("SUBSUMES_MISSING", which=name, expression=f"code{name}")
    renamer = None
    if a.system in registry.aliases or b.system in registry.aliases:
        renamer = Renamer(registry)
        a, b = (renamer.coding(coding, f"coding{name}.system" if given is not None and given.system else "system")
                for name, coding, given in (("A", a, request.coding_a), ("B", b, request.coding_b)))
    if not a.system or not b.system:
        raise InvalidRequest("PARAM_REQUIRES", parameter="codeA" if not a.system else "codeB", required="system", expression="system")
    if a.system != b.system:
        raise InvalidRequest("SUBSUMES_SYSTEMS_DIFFER", system_a=a.system, system_b=b.system, expression="codingB")
    cs = registry.code_system(a.system, a.version or b.version)
    found = {}
    for name, coding in (("A", a), ("B", b)):
        assert coding.code  # SUBSUMES_MISSING above otherwise
        concept = cs.find(coding.code)
        if concept is None:
            message = "LOOKUP_CODE_NOT_PRESENT" if cs.content == "not-present" else "LOOKUP_CODE_NOT_FOUND"
            raise UnknownCode(message, code=coding.code, system=cs.url, version=cs.version or "(none)",
                              expression=f"code{name}")
        found[name] = concept.code
    if found["A"] == found["B"]:
        outcome = "equivalent"
    elif found["A"] in _ancestors(cs.concepts, found["B"]):
        outcome = "subsumes"
    elif found["B"] in _ancestors(cs.concepts, found["A"]):
        outcome = "subsumed-by"
    else:
        outcome = "not-subsumed"
    return SubsumesResult(outcome, cs.url, cs.version, renamer.issues() if renamer else ())
