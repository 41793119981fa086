"""FHIR XML request bodies -> the dict the same body in FHIR JSON parses to, by the rules
xml_writer.py writes with, read safely.

Safety first, since any anonymous client may send XML:
- a body with a DOCTYPE is refused before it is parsed (FHIR XML has none: "SHALL NOT include a
  DTD"); that closes external entities (XXE, a `file:///etc/passwd` entity), entity expansion
  (billion laughs) and DTD loading at once;
- the parser is lxml's with `resolve_entities=False`, `no_network=True`, `load_dtd=False` and
  `huge_tree=False` (libxml2's own limits on depth, 256, and on the size of a text node stay on)
  anyway, and comments and processing instructions are dropped;
- the body is UTF-8 (FHIR's rule), checked before parsing, so that the DOCTYPE check sees the
  characters the parser will see;
- its size is the JSON body's (FHIR_PLUGIN_MAX_REQUEST_BYTES, checked before it is read), and its
  depth is measured without recursion before it is converted (against twice
  FHIR_PLUGIN_MAX_JSON_DEPTH: an XML element is one or two levels of JSON); the JSON it becomes is
  then measured like a JSON body (web/params.py).

What does not follow the FHIR XML rules is refused with what and where (InvalidBody, 400): text
content outside the narrative, attributes other than `value`, `id` and an extension's `url`, an
element the type does not have, a non-repeating element given twice, an element outside the FHIR
namespace. Values are read by the element's type: `true`/`false` of a boolean and the numbers of
integer and decimal elements as JSON has them (a decimal with a point or exponent as a float, as
Python's JSON reader reads it); anything else, and a value its type cannot hold, as a string,
for the operation to judge as it judges a JSON body.

A resource is read with the models of the endpoint's version, and, if it has an element only the
other version has (an R4 ConceptMap sent to /r5), with the other's: the same document a JSON
client would send. Each resource in the body is read at most once per version.
"""

from __future__ import annotations

import re
from typing import Any

from lxml import etree

from ..fhirversions import FhirVersion
from .errors import BodyTooDeep, InvalidBody
from .xml_schema import FHIR_NS, XHTML_NS, Child, UnknownType, children, is_resource_type

_F = "{" + FHIR_NS + "}"
_XSI = "{http://www.w3.org/2001/XMLSchema-instance}"  # xsi:schemaLocation and the like: ignored, never fetched
_X = "{" + XHTML_NS + "}"
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_INTEGER = re.compile(r"-?[0-9]+")
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_INTEGERS = frozenset({"integer", "positiveInt", "unsignedInt"})  # integer64 is a string in JSON


def _bad(reason: str) -> InvalidBody:
    return InvalidBody("BODY_NOT_FHIR_XML", reason=reason)


class _Unknown(Exception):
    """An element that the models of the version tried do not have (the other version may)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_xml(data: bytes, max_depth: int) -> etree._Element:
    """The body's root element, parsed safely (see the module docstring), or InvalidBody (400)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidBody("BODY_NOT_XML", reason=f"it is not UTF-8 ({error.reason} at byte {error.start})") from None
    if _DOCTYPE.search(data):
        raise InvalidBody("BODY_XML_DOCTYPE")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                             huge_tree=False, remove_comments=True, remove_pis=True, collect_ids=False,
                             encoding="utf-8")
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as error:
        if "depth" in str(error).lower():  # libxml2 stops at 256 levels
            raise BodyTooDeep("BODY_XML_TOO_DEEP", limit=max_depth) from None
        raise InvalidBody("BODY_NOT_XML", reason=_one_line(str(error.msg or error))) from None
    if getattr(root.getroottree().docinfo, "doctype", ""):  # the check above makes this impossible; kept as a second lock
        raise InvalidBody("BODY_XML_DOCTYPE")
    _check_depth(root, 2 * max_depth, max_depth)
    return root


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _check_depth(root: etree._Element, bound: int, limit: int) -> None:
    level = [root]
    depth = 0
    while level:
        depth += 1
        if depth > bound:
            raise BodyTooDeep("BODY_XML_TOO_DEEP", limit=limit)
        level = [child for node in level for child in node]


def read_xml(data: bytes, version: FhirVersion, max_depth: int) -> dict[str, Any]:
    """The FHIR JSON document of an XML body sent to a `version` endpoint."""
    root = parse_xml(data, max_depth)
    return _Reader(version).resource(root)


class _Reader:
    def __init__(self, version: FhirVersion) -> None:
        self.versions = (version, FhirVersion.R4 if version is FhirVersion.R5 else FhirVersion.R5)
        # each resource read once: what a resource becomes does not depend on the one around it
        # (a dict keyed by the element holds its proxy, so that the key stays the same object)
        self.done: dict[etree._Element, dict[str, Any]] = {}

    def resource(self, element: etree._Element) -> dict[str, Any]:
        if element in self.done:
            return self.done[element]
        tag = element.tag
        if not isinstance(tag, str) or not tag.startswith(_F):
            raise _bad(f"<{_name(element)}> is not a FHIR resource: FHIR XML is in the namespace {FHIR_NS}")
        resource_type = tag[len(_F):]
        versions = [version for version in self.versions if is_resource_type(version, resource_type)]
        if not versions:
            raise _bad(f"<{resource_type}> is not a FHIR resource type")
        if _attributes(element):
            raise _bad(f"<{resource_type}> has an attribute '{_attributes(element)[0][0]}'; a resource has none")
        first: _Unknown | None = None
        for version in versions:
            try:
                read = self.complex(element, resource_type, version, resource_level=True)
            except _Unknown as unknown:
                first = first or unknown
                continue
            self.done[element] = {"resourceType": resource_type, **read}
            return self.done[element]
        assert first is not None
        raise _bad(first.reason)

    def complex(self, element: etree._Element, type_name: str, version: FhirVersion,
                resource_level: bool = False) -> dict[str, Any]:
        where = _name(element)
        try:
            schema = children(version, type_name)
        except UnknownType:
            raise _Unknown(f"<{where}> has no type {type_name} in FHIR {version.value}") from None
        out: dict[str, Any] = {}
        if not resource_level:
            for attribute, value in _attributes(element):
                if attribute == "id" or attribute == "url" and type_name == "Extension":
                    out[str(attribute)] = value
                else:
                    raise _bad(f"<{where}> has an attribute '{attribute}': FHIR XML allows only 'id' here"
                               f"{' and url' if type_name == 'Extension' else ''}")
        _no_text(element)
        primitives: dict[str, list[tuple[Any, dict[str, Any] | None]]] = {}
        for node in element:
            name = "div" if node.tag == _X + "div" and "div" in schema else _fhir_name(node)
            child = schema.get(name)
            if child is None or (not resource_level and name == "id") or (type_name == "Extension" and name == "url"):
                raise _Unknown(f"<{where}> has no element <{name}> in FHIR {version.value}")
            if child.kind == "primitive":
                if name in primitives and not child.repeats:
                    raise _bad(f"<{where}> has <{name}> more than once; it may have one")
                primitives.setdefault(name, []).append(self.primitive(node, child, version))
            elif child.kind == "xhtml":
                self._put(out, name, child, _xhtml(node), where)
            elif child.kind == "resource":
                self._put(out, name, child, self.contained(node), where)
            else:
                self._put(out, name, child, self.complex(node, child.type, version), where)
        for name, pairs in primitives.items():  # a repeating primitive: values and shadows item by item
            values, shadows = [value for value, _ in pairs], [shadow for _, shadow in pairs]
            repeats = schema[name].repeats
            if any(value is not None for value in values):
                out[name] = values if repeats else values[0]
            if any(shadow is not None for shadow in shadows):
                out["_" + name] = shadows if repeats else shadows[0]
        # in the order of the type, as the JSON of the same resource would be written
        return dict(sorted(out.items(), key=lambda item: _place(schema, item[0])))

    @staticmethod
    def _put(out: dict[str, Any], name: str, child: Child, value: Any, where: str) -> None:
        if child.repeats:
            out.setdefault(name, []).append(value)
        elif name in out:
            raise _bad(f"<{where}> has <{name}> more than once; it may have one")
        else:
            out[name] = value

    def primitive(self, element: etree._Element, child: Child, version: FhirVersion) -> tuple[Any, dict[str, Any] | None]:
        where = _name(element)
        shadow: dict[str, Any] = {}
        value: Any = None
        for attribute, text in _attributes(element):
            if attribute == "value":
                value = _typed(str(text), child.type)
            elif attribute == "id":
                shadow["id"] = text
            else:
                raise _bad(f"<{where}> has an attribute '{attribute}': a primitive has only 'value' and 'id'")
        _no_text(element)
        for node in element:
            if _fhir_name(node) != "extension":
                raise _bad(f"<{where}> holds <{_fhir_name(node)}>: a primitive holds only extensions")
            shadow.setdefault("extension", []).append(self.complex(node, "Extension", version))
        if value is None and not shadow:
            raise _bad(f"<{where}> has no value attribute and no extension")
        return value, shadow or None

    def contained(self, element: etree._Element) -> dict[str, Any]:
        where = _name(element)
        if _attributes(element):
            raise _bad(f"<{where}> has an attribute '{_attributes(element)[0][0]}'; it holds a resource only")
        _no_text(element)
        inner = list(element)
        if len(inner) != 1:
            raise _bad(f"<{where}> must hold exactly one resource, not {len(inner)} elements")
        return self.resource(inner[0])


def _attributes(element: etree._Element) -> list[tuple[str, str]]:
    return [(str(name), str(value)) for name, value in element.attrib.items() if not str(name).startswith(_XSI)]


def _place(schema: dict[str, Child], key: str) -> tuple[int, bool]:
    child = schema.get(key.lstrip("_"))
    return (child.order if child is not None else -1), key.startswith("_")


def _name(element: etree._Element) -> str:
    return str(etree.QName(element).localname) if isinstance(element.tag, str) else "?"


def _fhir_name(element: etree._Element) -> str:
    tag = element.tag
    if not isinstance(tag, str) or not tag.startswith(_F):
        parent = element.getparent()
        raise _bad(f"<{_name(element)}> in <{_name(parent) if parent is not None else '?'}> is not in the FHIR "
                   f"namespace {FHIR_NS}")
    return tag[len(_F):]


def _no_text(element: etree._Element) -> None:
    """FHIR XML carries values in attributes: text between elements is only whitespace."""
    if element.text and element.text.strip() or any(node.tail and node.tail.strip() for node in element):
        raise _bad(f"<{_name(element)}> holds text; FHIR XML puts values in 'value' attributes")


def _xhtml(element: etree._Element) -> str:
    if element.tag != _X + "div":
        raise _bad(f"the narrative must be an XHTML <div> in the namespace {XHTML_NS}, not <{_name(element)}>")
    return etree.tostring(element, encoding="unicode", with_tail=False)


def _typed(text: str, fhir_type: str) -> Any:
    """A primitive's value as JSON has it (see the module docstring)."""
    if fhir_type == "boolean":
        return {"true": True, "false": False}.get(text, text)
    try:
        if fhir_type in _INTEGERS and _INTEGER.fullmatch(text):
            return int(text)
        if fhir_type == "decimal" and _DECIMAL.fullmatch(text):
            return int(text) if text.lstrip("-").isdigit() else float(text)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        pass
    return text
