"""A FHIR document (the dict the JSON answer is written from) -> FHIR XML bytes, by the rules of
FHIR's XML format (https://hl7.org/fhir/xml.html), with lxml for the XML itself and the
fhir.resources models for what each element is (xml_schema.py).

The rules, as applied here:
- the root element is the resource type, in the FHIR namespace; a resource inside an element
  (`Parameters.parameter.resource`, `Bundle.entry.resource`, `contained`, `response.outcome`) is
  an element of its type inside that element;
- elements in the order of the type's definition, a repeating element once per item;
- a primitive's value in its `value` attribute; what JSON puts in the `_name` shadow property (an
  `id`, extensions) on the same element: `id` as an attribute, extensions as child elements; a
  repeating primitive pairs item by item with its shadow array (`null` where one side has none);
- `id` of an element that is not a resource, and `url` of an extension, are attributes; the id of
  a resource is an element;
- `Narrative.div` is XHTML, in the XHTML namespace, taken as it is.

Values are written as the JSON answer writes them: `true`/`false`, integers, decimals with the
digits they have (a Decimal as written, a float as its shortest round-trip text), strings as they
are. XML 1.0 cannot carry some characters at all (C0 controls other than tab, line feed and
carriage return, unpaired surrogates, U+FFFE and U+FFFF); FHIR strings may not hold them either,
but an error message may echo one from a request: each is written as U+FFFD.

Why not fhir.resources' own `model_dump_xml`: measured with fhir.resources 8.3 (and pinned by
tests/test_xml_format.py), it writes a Decimal 1.50 as "1.5" and 1E+2 as "100.0", drops the `id`
of a primitive (`_name.id`), and its pretty printing adds whitespace inside the XHTML narrative;
it also needs every answer validated into pydantic models first, which the JSON path avoids.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from lxml import etree

from ..fhirversions import FhirVersion
from .xml_schema import FHIR_NS, XHTML_NS, Child, UnknownType, children, is_resource_type

_F = "{" + FHIR_NS + "}"
_X = "{" + XHTML_NS + "}"
_FHIR_NSMAP: Any = {None: FHIR_NS}  # the default namespace (lxml-stubs types nsmap keys as str)
_XHTML_NSMAP: Any = {None: XHTML_NS}
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class NotWritable(ValueError):
    """A document that FHIR XML cannot express: a key that is no element of its type, an unknown
    resource type. Our own answers never are (the tests write every kind of them)."""


def dumps_xml(document: dict[str, Any], version: FhirVersion, pretty: bool = False) -> bytes:
    """`document` as FHIR XML (UTF-8, with an XML declaration); `pretty` indents by 2 but leaves
    the XHTML narrative as it is."""
    root = _Writer(version).resource(None, document)
    if pretty:
        _indent(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


_SCHEMAS: dict[FhirVersion, dict[str, dict[str, Child]]] = {version: {} for version in FhirVersion}


class _Writer:
    """One document's writing. Every element's type comes from its parent's schema; the schemas
    are looked up in a plain dict per version (children() is cached too, but an Enum argument
    costs a Python-level hash on each call)."""

    def __init__(self, version: FhirVersion) -> None:
        self.version = version
        self.schemas = _SCHEMAS[version]

    def schema(self, type_name: str) -> dict[str, Child]:
        found = self.schemas.get(type_name)
        if found is None:
            try:
                found = self.schemas[type_name] = children(self.version, type_name)
            except UnknownType:
                raise NotWritable(f"no {self.version.value} type {type_name}") from None
        return found

    def resource(self, parent: etree._Element | None, document: Any) -> etree._Element:
        resource_type = document.get("resourceType") if isinstance(document, dict) else None
        if not isinstance(resource_type, str) or not is_resource_type(self.version, resource_type):
            raise NotWritable(f"not a {self.version.value} resource: {str(resource_type)[:100]}")
        tag = _F + resource_type
        element = etree.Element(tag, nsmap=_FHIR_NSMAP) if parent is None else etree.SubElement(parent, tag)
        self.content(element, document, resource_type, resource=True)
        return element

    def content(self, element: etree._Element, value: dict[str, Any], type_name: str, resource: bool = False) -> None:
        schema = self.schema(type_name)
        names: list[tuple[int, str]] = []
        for key, item in value.items():
            name = key[1:] if key[:1] == "_" else key
            if not resource and name == "id" or name == "url" and type_name == "Extension":
                if key == name and item is not None:  # attributes (a `_id` or `_url` has no place in XML)
                    _set(element, name, _text(item))
                continue
            child = schema.get(name)
            if child is None:
                if resource and key == "resourceType":
                    continue
                raise NotWritable(f"{type_name} has no element '{name}' in {self.version.value}")
            if key == name or name not in value:  # `x` and `_x` give one element
                names.append((child.order, name))
        names.sort()
        for _, name in names:
            self.element(element, name, schema[name], value.get(name), value.get("_" + name))

    def element(self, parent: etree._Element, name: str, child: Child, value: Any, shadow: Any) -> None:
        tag = _F + name
        kind = child.kind
        if kind == "primitive":
            if child.repeats and (isinstance(value, list) or isinstance(shadow, list)):
                values, shadows = _items(value), _items(shadow)
                for index in range(max(len(values), len(shadows))):
                    self.primitive(parent, tag, values[index] if index < len(values) else None,
                                   shadows[index] if index < len(shadows) else None)
            else:
                self.primitive(parent, tag, value, shadow)
        elif kind == "complex":
            for item in value if isinstance(value, list) else (value,):
                if isinstance(item, dict):
                    self.content(etree.SubElement(parent, tag), item, child.type)
        elif kind == "resource":
            for item in _items(value):
                self.resource(etree.SubElement(parent, tag), item)
        elif value is not None:  # the narrative's div
            parent.append(_div(value))

    def primitive(self, parent: etree._Element, tag: str, value: Any, shadow: Any) -> None:
        if not isinstance(shadow, dict) or not shadow:
            if value is not None:
                _element(parent, tag, {"value": value if type(value) is str else _text(value)})
            return
        attributes = {} if shadow.get("id") is None else {"id": _text(shadow["id"])}
        if value is not None:
            attributes["value"] = _text(value)
        element = _element(parent, tag, attributes)
        unknown = [key for key in shadow if key not in ("id", "extension")]
        if unknown:
            raise NotWritable(f"a primitive's extension holds '{unknown[0]}'")
        for item in _items(shadow.get("extension")):  # the rest of a shadow: it is an Element
            if isinstance(item, dict):
                self.content(etree.SubElement(element, _F + "extension"), item, "Extension")


def _items(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _element(parent: etree._Element, tag: str, attributes: dict[str, str]) -> etree._Element:
    try:
        return etree.SubElement(parent, tag, attributes)
    except ValueError:  # a character XML cannot carry (see the module docstring)
        return etree.SubElement(parent, tag, {k: _NOT_XML.sub("\ufffd", v) for k, v in attributes.items()})


def _text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return value if isinstance(value, str) else str(value)


def _set(element: etree._Element, name: str, text: str) -> None:
    try:
        element.set(name, text)
    except ValueError:  # a character XML cannot carry (see the module docstring)
        element.set(name, _NOT_XML.sub("\ufffd", text))


def _div(value: Any) -> etree._Element:
    """The narrative's XHTML as an element. Content was validated at load, but a div that is not
    well-formed XHTML (an HTML entity such as &nbsp;, no namespace) is still written: without a
    namespace its elements are put in XHTML's, and what does not parse at all is written as the
    text of a div, so that nothing of it is lost."""
    text = value if isinstance(value, str) else str(value)
    try:
        # a parser per narrative: an lxml parser is not to be shared between threads
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
        div = etree.fromstring(text.encode("utf-8"), parser)
    except (etree.XMLSyntaxError, ValueError):
        div = None
    if div is not None and not isinstance(div.tag, str):
        div = None
    if div is None:
        div = etree.Element(_X + "div", nsmap=_XHTML_NSMAP)
        div.text = _NOT_XML.sub("\ufffd", text)
        return div
    if str(div.tag).startswith("{"):
        return div
    return _in_xhtml(div, None)


def _in_xhtml(node: etree._Element, parent: etree._Element | None) -> etree._Element:
    """A copy of `node` with every element without a namespace in XHTML's, declared once as the
    default namespace (renaming in place would give them a prefix)."""
    tag = str(node.tag)
    tag = tag if tag.startswith("{") else _X + tag
    attributes = {str(name): str(value) for name, value in node.attrib.items()}
    copy = etree.Element(tag, attributes, nsmap=_XHTML_NSMAP) if parent is None else \
        etree.SubElement(parent, tag, attributes)
    copy.text, copy.tail = node.text, node.tail if parent is not None else None
    for child in node:
        if isinstance(child.tag, str):
            _in_xhtml(child, copy)
        elif child.tail:  # a comment or processing instruction is left out, the text after it is not
            last = copy[-1] if len(copy) else None
            if last is None:
                copy.text = (copy.text or "") + child.tail
            else:
                last.tail = (last.tail or "") + child.tail
    return copy


def _indent(root: etree._Element) -> None:
    """Indentation by 2, outside the narratives: whitespace added between XHTML elements would
    change the narrative's text."""
    narratives = [div for div in root.iter(_X + "div") if not str(getattr(div.getparent(), "tag", "")).startswith(_X)]
    kept = [(node, node.text, node.tail, node is div) for div in narratives for node in div.iter()]
    etree.indent(root, space="  ")
    for node, text, tail, is_narrative in kept:
        node.text = text
        if not is_narrative:  # the narrative's own tail is its parent's indentation
            node.tail = tail
