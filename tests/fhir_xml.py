"""An independent reader of FHIR XML for the tests: lxml and the rules of https://hl7.org/fhir/xml.html
and json.html, with no schema, and nothing of fhir_plugin's.

Without a schema an XML document does not say which elements repeat, and JSON does not say in what
order, so both sides are brought to one form that keeps everything else:

- a resource is {resourceType: [its content]}, also inside an element (`resource`, `contained`);
- an element is {"@id": ..., "@url": ..., "@value": ..., child name: [each child's form, in order]};
  its attributes are its XML attributes, and in JSON the `id` of an element that is not a resource,
  the `url` of an extension, a primitive's value and what its `_name` shadow holds;
- a primitive value is its text: `true`/`false`, a string as it is; a number is compared as a
  decimal number (JSON 1.5 and XML "1.50" are the same decimal, JSON 2 and XML "2.0" too: JSON
  writes numbers as numbers, and our JSON writer drops trailing zeros);
- the XHTML narrative is compared in its canonical XML form (C14N 2.0).

`from_xml(xml) == from_json(document)` then says that the XML holds exactly what the JSON holds.
The order of the elements is checked on its own (test_http_xml.py), against the models.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from lxml import etree

FHIR = "{http://hl7.org/fhir}"
XHTML_DIV = "{http://www.w3.org/1999/xhtml}div"


class Number:
    """A JSON number: equal to the XML text of the same decimal number."""

    def __init__(self, value: int | float) -> None:
        self.value = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Number):
            return self.value == other.value
        if isinstance(other, str):
            try:
                return Decimal(other) == self.value
            except InvalidOperation:
                return False
        return NotImplemented

    def __repr__(self) -> str:
        return f"Number({self.value})"


def _c14n(div: etree._Element) -> str:
    return etree.tostring(div, method="c14n2").decode()


def parse(data: bytes) -> etree._Element:
    return etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))


def from_xml(data: bytes | etree._Element) -> dict[str, Any]:
    root = parse(data) if isinstance(data, bytes) else data
    assert root.tag.startswith(FHIR), root.tag
    return {root.tag[len(FHIR):]: [_element(root)]}


def _element(element: etree._Element) -> dict[str, Any]:
    form: dict[str, Any] = {f"@{name}": value for name, value in element.attrib.items()}
    assert not (element.text or "").strip(), f"text in <{element.tag}>"
    for child in element:
        assert not (child.tail or "").strip(), f"text after <{child.tag}>"
        if child.tag == XHTML_DIV:
            form.setdefault("div", []).append(_c14n(child))
            continue
        assert child.tag.startswith(FHIR), child.tag
        name = child.tag[len(FHIR):]
        inner = list(child)
        if len(inner) == 1 and inner[0].tag.startswith(FHIR) and inner[0].tag[len(FHIR):][:1].isupper() \
                and not child.attrib:
            form.setdefault(name, []).append(from_xml(inner[0]))  # an element holding a resource
        else:
            form.setdefault(name, []).append(_element(child))
    return form


def _value(value: Any) -> Any:
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return Number(value)
    assert isinstance(value, str), value
    return value


def from_json(document: dict[str, Any]) -> dict[str, Any]:
    return {document["resourceType"]: [_object(document, resource=True)]}


def _object(value: dict[str, Any], resource: bool = False, extension: bool = False) -> dict[str, Any]:
    form: dict[str, Any] = {}
    for key, item in value.items():
        if key == "resourceType" and resource:
            continue
        if key.startswith("_"):
            continue  # with its primitive, below
        if not resource and (key == "id" or extension and key == "url"):
            form[f"@{key}"] = item
            continue
        shadow = value.get("_" + key)
        items = item if isinstance(item, list) else [item]
        shadows = shadow if isinstance(shadow, list) else [shadow] * len(items)
        found = [_item(key, one, extra) for one, extra in zip(items, shadows) if one is not None or extra]
        if found:
            form[key] = found
    for key, shadow in value.items():  # a primitive given by its shadow alone
        if key.startswith("_") and key[1:] not in value:
            shadows = shadow if isinstance(shadow, list) else [shadow]
            found = [_item(key[1:], None, extra) for extra in shadows if extra]
            if found:
                form[key[1:]] = found
    return form


def _item(key: str, item: Any, shadow: dict[str, Any] | None) -> Any:
    if isinstance(item, dict):
        if "resourceType" in item:
            return from_json(item)
        return _object(item, extension=key in ("extension", "modifierExtension"))
    if key == "div":
        return _c14n(etree.fromstring(item.encode()))
    form: dict[str, Any] = {}
    if shadow:
        if "id" in shadow:
            form["@id"] = shadow["id"]
        if shadow.get("extension"):
            form["extension"] = [_object(e, extension=True) for e in shadow["extension"]]
    if item is not None:
        form["@value"] = _value(item)
    return form
