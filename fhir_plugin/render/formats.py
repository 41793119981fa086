"""Content negotiation and the bytes of an answer: FHIR JSON or FHIR XML, out and in, and a clear
406/415 for anything else.

FHIR's rules (http.html#mime-type): `_format` wins over `Accept`; `json`, `xml` and the media types
are its values. An answer's Content-Type is what was asked for: application/fhir+json for `json`
and fhir+json, application/fhir+xml for `xml` and fhir+xml, and application/json,
application/xml and text/xml as they were asked. JSON is the default (no Accept, `*/*`).

XML is written and read by xml_writer.py and xml_reader.py, imported on the first XML request:
a JSON request costs the dictionary look-ups it cost before.
"""

from __future__ import annotations

import json
from decimal import Decimal
from functools import lru_cache
from typing import Any

import orjson

from ..fhirversions import FhirVersion
from .errors import InvalidBody, NotAcceptable, UnsupportedMediaType

FHIR_JSON = "application/fhir+json"
JSON = "application/json"
FHIR_XML = "application/fhir+xml"
XML_TYPES = frozenset({FHIR_XML, "application/xml", "text/xml"})
_FORMAT_ALIASES = {"json": FHIR_JSON, FHIR_JSON: FHIR_JSON, JSON: JSON, "text/json": JSON,
                   "xml": FHIR_XML, FHIR_XML: FHIR_XML, "application/xml": "application/xml", "text/xml": "text/xml"}
_ACCEPTED = {FHIR_JSON: FHIR_JSON, "application/*": FHIR_JSON, "*/*": FHIR_JSON, JSON: JSON, "text/json": JSON,
             FHIR_XML: FHIR_XML, "application/xml": "application/xml", "text/xml": "text/xml"}
_OTHER_FORMATS = ("ttl", "text/turtle", "html", "text/html")  # FHIR formats we do not produce: 406, not 400
_READABLE = {FHIR_JSON: FHIR_JSON, JSON: JSON, "application/x-www-form-urlencoded": "application/x-www-form-urlencoded",
             "text/json": "text/json", FHIR_XML: FHIR_XML, "application/xml": FHIR_XML, "text/xml": FHIR_XML}


def _mime(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def response_mimetype(format_param: str | None, accept: str | None) -> str:
    """The media type to answer with: `_format` wins over Accept (FHIR http.html#mime-type)."""
    if format_param:
        wanted = _mime(format_param)
        if wanted in _FORMAT_ALIASES:
            return _FORMAT_ALIASES[wanted]
        if wanted in _OTHER_FORMATS:
            raise NotAcceptable("NOT_ACCEPTABLE", accept=format_param)
        raise InvalidBody("BAD_FORMAT", format=format_param, expression="_format")
    if not accept or not accept.strip():
        return FHIR_JSON
    return _from_accept(accept)


@lru_cache(maxsize=256)  # bounded: a client may send a new header every time; a refusal is not kept
def _from_accept(accept: str) -> str:
    ranges = []
    for item in accept.split(","):
        mime = _mime(item)
        quality = 1.0
        for param in item.split(";")[1:]:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    pass  # a malformed weight is ignored, as if the range had none
        if mime and quality > 0:
            ranges.append((quality, mime))
    for _, mime in sorted(ranges, key=lambda r: -r[0]):  # stable: of equal weights, the first listed
        if mime in _ACCEPTED:
            return _ACCEPTED[mime]
    raise NotAcceptable("NOT_ACCEPTABLE", accept=accept)


def check_body_type(content_type: str | None) -> str:
    """The body's media type, if we can read it (every XML type as application/fhir+xml); no
    Content-Type is read as JSON."""
    mime = _mime(content_type or "")
    if not mime:
        return FHIR_JSON
    if mime in _READABLE:
        return _READABLE[mime]
    raise UnsupportedMediaType("UNSUPPORTED_MEDIA_TYPE", content_type=content_type)


def write(document: dict[str, Any], mimetype: str, version: FhirVersion, pretty: bool) -> bytes:
    """The bytes of `document` in the negotiated `mimetype` (response_mimetype)."""
    if mimetype not in XML_TYPES:
        return dumps(document, pretty)
    from .xml_writer import dumps_xml

    return dumps_xml(document, version, pretty)


def read_xml(data: bytes, version: FhirVersion, max_depth: int) -> dict[str, Any]:
    """An XML body as the FHIR JSON document it stands for (xml_reader.py)."""
    from . import xml_reader

    return xml_reader.read_xml(data, version, max_depth)


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value) if value != value.to_integral_value() else int(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(resource: dict[str, Any], pretty: bool) -> bytes:
    """UTF-8 JSON, compact or indented by 2. orjson writes the same bytes as the standard library
    (checked over every response of the HTTP tests) about ten times faster: serialising was a
    third of an uncached $lookup's time. What orjson refuses (an integer beyond 64 bits, echoed
    from a request) is written by the standard library instead."""
    try:
        return orjson.dumps(resource, default=_default, option=orjson.OPT_INDENT_2 if pretty else 0)
    except orjson.JSONEncodeError:
        pass
    if pretty:
        return json.dumps(resource, indent=2, ensure_ascii=False, default=_default).encode()
    return json.dumps(resource, separators=(",", ":"), ensure_ascii=False, default=_default).encode()
