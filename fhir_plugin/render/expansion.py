"""An ExpandResult <-> the FHIR ValueSet with its `expansion` (R5 form; fhirversions converts for R4).

`value_set` renders a result for the server; `expand_result` reads a server's answer back for the
client, so that both give the same typed result.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..terminology.entries import Coding, Designation, PropertyValue
from ..terminology.models import ExpandResult, ExpansionEntry, ExpansionParameter

UNCLOSED = "http://hl7.org/fhir/StructureDefinition/valueset-unclosed"
UNCLOSED_REASON = "http://hl7.org/fhir/StructureDefinition/valueset-unclosed-reason"
_FRAGMENT_REASON = "This extension is based on a fragment of the code system "


def _designation(designation: Designation) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if designation.language:
        out["language"] = designation.language
    if designation.use is not None:
        use = designation.use
        out["use"] = {k: v for k, v in (("system", use.system), ("code", use.code), ("display", use.display)) if v}
    out["value"] = designation.value
    if designation.extensions:
        out["extension"] = [dict(e) for e in designation.extensions]
    return out


def property_value(prop: PropertyValue) -> dict[str, Any]:
    """A concept property as `expansion.contains.property` carries it."""
    value = prop.value
    if isinstance(value, Coding):
        coding = {k: getattr(value, k) for k in ("system", "code", "version", "display") if getattr(value, k)}
        return {"code": prop.code, "valueCoding": coding}
    if prop.type == "decimal" and isinstance(value, Decimal):
        # a whole number written without a point (an order of 1) stays an integer in JSON
        return {"code": prop.code, "valueDecimal": int(value) if value == value.to_integral_value()
                and "." not in str(value) else float(value)}
    return {"code": prop.code, "value" + prop.type[0].upper() + prop.type[1:]: value}


def _entry(entry: ExpansionEntry) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if entry.extensions:
        item["extension"] = [dict(e) for e in entry.extensions]
    item["system"] = entry.system
    if entry.version:
        item["version"] = entry.version
    if entry.abstract:
        item["abstract"] = True
    if entry.inactive:
        item["inactive"] = True
    item["code"] = entry.code
    if entry.display:
        item["display"] = entry.display
    if entry.designations:
        item["designation"] = [_designation(d) for d in entry.designations]
    if entry.properties:
        item["property"] = [property_value(p) for p in entry.properties]
    if entry.contains:
        item["contains"] = [_entry(child) for child in entry.contains]
    return item


def value_set(result: ExpandResult) -> dict[str, Any]:
    """The ValueSet an $expand answers with (R5)."""
    expansion: dict[str, Any] = {"identifier": result.identifier, "timestamp": result.timestamp, "total": result.total}
    if result.fragment_of:
        expansion["extension"] = [{"url": UNCLOSED, "valueBoolean": True},
                                  {"url": UNCLOSED_REASON, "valueString": _FRAGMENT_REASON + result.fragment_of}]
    if result.offset is not None:
        expansion["offset"] = result.offset
    expansion["parameter"] = [{"name": p.name, f"value{p.type}": p.value} for p in result.parameters]
    if result.properties:
        expansion["property"] = [{"code": code, **({"uri": uri} if uri else {})} for code, uri in result.properties]
    if result.contains:
        expansion["contains"] = [_entry(entry) for entry in result.contains]
    return {**result.value_set, "expansion": expansion}


# --- reading an answer back -------------------------------------------------------------------------


def _dicts(value: object) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _value(element: dict[str, Any]) -> tuple[str, Any]:
    key = next((k for k in element if k.startswith("value")), "value")
    return key[5:], element.get(key)


def _coding(raw: object) -> Coding | None:
    if not isinstance(raw, dict):
        return None
    return Coding(raw.get("system"), raw.get("code"), raw.get("version"), raw.get("display"))


def _property(raw: dict[str, Any]) -> PropertyValue:
    kind, value = _value(raw)
    if kind == "Coding":
        return PropertyValue(str(raw.get("code")), _coding(value) or Coding(), "Coding")
    kind = kind[:1].lower() + kind[1:]
    if kind == "decimal":
        value = Decimal(str(value))
    return PropertyValue(str(raw.get("code")), value, kind)


def _read_entry(raw: dict[str, Any]) -> ExpansionEntry:
    return ExpansionEntry(
        system=str(raw.get("system")), code=str(raw.get("code")), version=raw.get("version"),
        display=raw.get("display"), abstract=raw.get("abstract") is True, inactive=raw.get("inactive") is True,
        designations=tuple(Designation(str(d.get("value")), d.get("language"), _coding(d.get("use")),
                                       extensions=tuple(_dicts(d.get("extension"))))
                           for d in _dicts(raw.get("designation"))),
        properties=tuple(_property(p) for p in _dicts(raw.get("property"))),
        extensions=tuple(_dicts(raw.get("extension"))),
        contains=tuple(_read_entry(child) for child in _dicts(raw.get("contains"))))


def expand_result(resource: dict[str, Any]) -> ExpandResult:
    """The ExpandResult of an $expand answer (a ValueSet in R5 form)."""
    given = resource.get("expansion")
    expansion: dict[str, Any] = given if isinstance(given, dict) else {}
    fragment = next((e.get("valueString") for e in _dicts(expansion.get("extension")) if e.get("url") == UNCLOSED_REASON),
                    None)
    return ExpandResult(
        value_set={k: v for k, v in resource.items() if k != "expansion"},
        identifier=str(expansion.get("identifier")), timestamp=str(expansion.get("timestamp")),
        total=int(expansion.get("total") or 0), offset=expansion.get("offset"),
        parameters=tuple(ExpansionParameter(str(p.get("name")), *_value(p)) for p in _dicts(expansion.get("parameter"))),
        properties=tuple((str(p.get("code")), p.get("uri")) for p in _dicts(expansion.get("property"))),
        contains=tuple(_read_entry(entry) for entry in _dicts(expansion.get("contains"))),
        fragment_of=fragment.removeprefix(_FRAGMENT_REASON) if isinstance(fragment, str) else None)
