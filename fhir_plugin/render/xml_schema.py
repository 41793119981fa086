"""What FHIR XML needs to know of each element, read from the fhir.resources models: the order of
a type's elements, which of them repeat, and what each one is (a primitive of which type, a
complex type, a resource, the XHTML narrative).

JSON does not need this (its objects have no order and its arrays say what repeats), XML does:
elements come in the order of the StructureDefinitions, and nothing marks a repeating element.
fhir.resources generates its models from the StructureDefinitions and keeps that order
(`elements_sequence()`), so the models are the schema here; nothing about a type is written out
by hand. R5 documents use the R5 models (`fhir.resources`), R4 documents the R4B ones
(`fhir.resources.R4B`, as content validation does).

R4B for R4: compared with the FHIR 4.0.1 XML schema (fhir-single.xsd) over the 96 types reachable
from the resources this server reads and writes (Parameters, OperationOutcome, Bundle, CodeSystem,
ValueSet, ConceptMap, NamingSystem, CapabilityStatement, TerminologyCapabilities and their data
types), the R4B models have the same elements in the same order with the same cardinalities, but
for `Extension.value[x]`: R4B dropped `valueMeta` and added `valueCodeableReference` and
`valueRatioRange`. R4's `Extension.value[x]` is the open type that R4B's
`Parameters.parameter.value[x]` still is (the same 50 choices), so on R4 an extension takes its
value choices from there. (Also: R4's `Dosage.doseAndRate` and `Timing.repeat` allowed a
`modifierExtension` that R4B does not; no terminology document uses either.)

Built once per type and version, on first use: nothing here is imported for JSON.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from ..fhirversions import FhirVersion

FHIR_NS = "http://hl7.org/fhir"
XHTML_NS = "http://www.w3.org/1999/xhtml"
Kind = Literal["primitive", "complex", "resource", "xhtml"]
_MODELS = {FhirVersion.R4: "fhir.resources.R4B", FhirVersion.R5: "fhir.resources"}


@dataclass(frozen=True, slots=True)
class Child:
    """One element of a type: its place in the type's order, whether it repeats, what it is."""

    order: int
    repeats: bool
    kind: Kind
    type: str  # the FHIR type: "boolean", "decimal", "Coding", "CodeSystemConcept", "Resource"


class UnknownType(LookupError):
    """A type (or resource type) that the models of a version do not have."""


def _root(version: FhirVersion) -> Any:
    root = importlib.import_module(_MODELS[version])
    # the models resolve a field's type through the version's fhirtypes registry
    importlib.import_module(f"{_MODELS[version]}.fhirtypes")
    return root


@lru_cache(maxsize=None)
def children(version: FhirVersion, type_name: str) -> dict[str, Child]:
    """The elements of `type_name` (a resource, data type or backbone element such as
    "CodeSystemConcept") in `version`, by their JSON (and XML) name, in order."""
    from fhir_core.utils import determine_version_prefix_from_class, get_fhir_type_name, is_list_type, \
        is_primitive_type

    try:
        model = _root(version).get_fhir_model_class(type_name)
    except (ValueError, AttributeError):
        raise UnknownType(type_name) from None
    prefix = determine_version_prefix_from_class(model)
    aliases = model.get_alias_mapping()
    found: dict[str, Child] = {}
    for order, name in enumerate(model.elements_sequence()):
        field = model.model_fields[aliases[name]]
        fhir_type = str(get_fhir_type_name(field, prefix=prefix))
        kind: Kind = "complex"
        if fhir_type == "xhtml":
            kind = "xhtml"
        elif is_primitive_type(field):
            kind = "primitive"
        elif fhir_type == "Resource":
            kind = "resource"
        found[name] = Child(order, is_list_type(field), kind, fhir_type)
    if version is FhirVersion.R4 and type_name == "Extension":
        found = _r4_open_type(found)
    return found


def _r4_open_type(extension: dict[str, Child]) -> dict[str, Child]:
    """R4's Extension.value[x]: the choices of R4B's Parameters.parameter.value[x] (see above),
    in the one place of the choice."""
    place = min(child.order for name, child in extension.items() if name.startswith("value"))
    kept = {name: child for name, child in extension.items() if not name.startswith("value")}
    choices = {name: Child(place, child.repeats, child.kind, child.type)
               for name, child in children(FhirVersion.R4, "ParametersParameter").items() if name.startswith("value")}
    return dict(sorted({**kept, **choices}.items(), key=lambda item: item[1].order))


def is_resource_type(version: FhirVersion, name: str) -> bool:
    """Whether `name` is a resource type of `version` (not a data type, nor an abstract base)."""
    if name in ("Resource", "DomainResource"):
        return False
    try:
        model = _root(version).get_fhir_model_class(name)
    except (ValueError, AttributeError):
        return False
    return bool(model.has_resource_base()) and model.get_resource_type() == name
