"""`_summary` and `_elements` (FHIR search.html#summary, #elements): a resource cut down to what a
client asked for, and tagged SUBSETTED, as FHIR requires of a resource that is not whole.

Which elements a resource type has, which are summary elements and which are mandatory comes from
the StructureDefinitions, as the fhir.resources models carry them (`summary_element_property`,
`element_required`, and `one_of_many` for a choice element such as source[x]), for the version
being answered: R4's (the R4B models) and R5's lists differ, R5 adding modifierExtension,
versionAlgorithm[x] and effectivePeriod to the summary of all three types, for instance.

- `_summary=true`: the summary elements; `text`: id, meta, text and the mandatory elements; `data`:
  everything but text. (`count` is a search's, `false` is no subset.)
- `_elements=a,b`: those elements, with id, meta, the mandatory elements and the modifiers every
  resource has (implicitRules, modifierExtension; the other modifier of these types, status, is
  mandatory). `CodeSystem.title` names an element too (R5's form); names of another type's
  elements apply to that type only.

Only the top level is cut: both parameters name a resource's own elements, and the bulk of these
resources (concepts, compose, expansion, groups) sits in top-level elements that are not summary
elements. What is kept is kept whole.

The cut is made on the internal R5 resource before fhirversions converts it for R4, key by key
according to what each key becomes in the answered version, so that a summary of ICD-10-CM
copies none of its 98,466 concepts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from ..fhirversions import FhirVersion, model_class, top_level_name

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED",
             "display": "subsetted"}
SUMMARY_VALUES = ("true", "text", "data", "count", "false")
_ALWAYS = frozenset({"resourceType", "id", "meta"})
_MODIFIERS = ("implicitRules", "modifierExtension")


@dataclass(frozen=True, slots=True)
class Subset:
    """What to keep of a resource: `summary` ("true", "text" or "data"), or `elements` (names)."""

    summary: str | None = None
    elements: tuple[str, ...] = ()


@dataclass(frozen=True)
class ElementTable:
    """The top-level elements of one resource type in one FHIR version."""

    keys: dict[str, tuple[str, ...]]  # element name -> its JSON keys (each with its `_` twin)
    order: dict[str, int]  # element name -> its place in the definition
    summary: frozenset[str]  # JSON keys
    mandatory: frozenset[str]  # JSON keys


@cache
def element_table(version: FhirVersion, resource_type: str) -> ElementTable:
    """Read once per version and type from the fhir.resources model (a handful of entries)."""
    model = model_class(version, resource_type)
    keys: dict[str, tuple[str, ...]] = {}
    summary: set[str] = set()
    mandatory: set[str] = set()
    for field in model.model_fields.values():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if not extra.get("element_property"):
            continue
        key = field.alias or ""
        pair = (key, "_" + key)
        choice = extra.get("one_of_many")
        keys[key] = pair
        if isinstance(choice, str):  # versionAlgorithm names versionAlgorithmString and versionAlgorithmCoding
            keys[choice] = keys.get(choice, ()) + pair
        if extra.get("summary_element_property"):
            summary.update(pair)
        if extra.get("element_required") or field.is_required():
            mandatory.update(pair)
    sequence = {name: place for place, name in enumerate(model.elements_sequence())}
    order = {name: min(sequence.get(key, len(sequence)) for key in found[::2]) for name, found in keys.items()}
    return ElementTable(keys, order, frozenset(summary), frozenset(mandatory))


def element_names(version: FhirVersion, resource_type: str, given: Iterable[str]) -> tuple[tuple[str, ...], list[str]]:
    """(the known element names among `given`, once each, in the order of the definition; the
    unknown ones). `Type.name` names `name` for `resource_type`; another type's is left out of both."""
    table = element_table(version, resource_type)
    known: set[str] = set()
    unknown: dict[str, None] = {}  # in the order given, once each (a dict: a client may send 100,000)
    for name in given:
        prefix, dot, rest = name.partition(".")
        if dot:
            if prefix != resource_type:
                continue
            name = rest
        if name in table.keys:
            known.add(name)
        else:
            unknown[name] = None
    return tuple(sorted(known, key=lambda n: (table.order[n], n))), list(unknown)


def _kept_keys(version: FhirVersion, resource_type: str, subset: Subset) -> frozenset[str] | None:
    """The JSON keys (in `version`) to keep; None: all but text (`_summary=data`)."""
    table = element_table(version, resource_type)
    if subset.summary == "data":
        return None
    if subset.summary == "true":
        return table.summary | _ALWAYS
    if subset.summary == "text":
        return table.mandatory | _ALWAYS | {"text"}
    wanted = {key for name in subset.elements + _MODIFIERS for key in table.keys.get(name, ())}
    return frozenset(wanted) | table.mandatory | _ALWAYS


def tagged(resource: dict[str, Any]) -> dict[str, Any]:
    """`resource` (a shallow copy) with SUBSETTED among its meta.tag, once."""
    meta = dict(resource.get("meta") or {})
    found = meta.get("tag")
    tags: list[Any] = found if isinstance(found, list) else []
    if not any(t.get("system") == SUBSETTED["system"] and t.get("code") == SUBSETTED["code"]
               for t in tags if isinstance(t, dict)):
        meta["tag"] = [*tags, SUBSETTED]
    # where FHIR puts it: after resourceType and id
    head: dict[str, Any] = {k: resource[k] for k in ("resourceType", "id") if k in resource}
    return {**head, "meta": meta, **{k: v for k, v in resource.items() if k not in head and k != "meta"}}


def subset_resource(resource: dict[str, Any], version: FhirVersion, subset: Subset) -> dict[str, Any]:
    """The internal (R5) `resource` cut to `subset` as `version` names its elements, tagged
    SUBSETTED; still R5, for fhirversions.resource_for to convert. A shallow copy: what is kept is
    shared with `resource`, nothing is copied deeply."""
    rtype = str(resource.get("resourceType"))
    kept = _kept_keys(version, rtype, subset)
    if kept is None:
        cut = {k: v for k, v in resource.items() if k != "text"}
    else:
        cut = {}
        for key, value in resource.items():
            becomes = top_level_name(version, rtype, key)
            if becomes is not None and becomes in kept:
                cut[key] = value
    return tagged(cut)
