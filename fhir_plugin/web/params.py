"""Request -> typed request. One parser for query strings, form bodies and Parameters bodies.

Unknown operation parameters are ignored (as tx.fhir.org and HAPI do: clients add their own, such
as the HL7 runner's `uuid`); known ones are checked for type and cardinality, and conflicting
inputs are refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge

from ..fhirversions import TRANSLATE_ALIASES, FhirVersion, translate_dialect
from ..content.limits import DEFAULT_MAX_JSON_DEPTH, DepthError, deeper_than, parse_json
from ..render.errors import BodyTooDeep, InvalidBody, RequestTooLarge
from ..render.formats import FHIR_XML, check_body_type, read_xml
from ..terminology.entries import CodeSystemEntry, Coding, ConceptMapEntry
from ..terminology.errors import InvalidRequest, TooCostly
from ..terminology.lookup import resolve_coding
from ..terminology.models import LookupRequest, SubsumesRequest, TranslateRequest
from .compression import body_coding, inflate_body

QUERY_CHECKED = "fhir_plugin.query_checked"  # environ: check_query_string found it UTF-8

# Validates a resource sent inline (valueSet, conceptMap): (resource, where it was given) -> the
# R5 resource. The runtime's, which keeps what it validated (fhir_plugin.runtime.overlay).
Inline = Callable[[dict[str, Any], str], dict[str, Any]]

CONTROL = frozenset({"_format", "_pretty"})
_CODE = re.compile(r"^[^\s]+( [^\s]+)*$")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_DATETIME = re.compile(
    r"^([0-9]{4})(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)"
    r"(\.[0-9]{1,9})?(Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$"
)
_PRIMITIVE_KINDS = {"String", "Uri", "Url", "Canonical", "Code", "Id", "Oid", "Uuid", "Markdown", "Boolean",
                    "DateTime", "Date", "Instant", "Integer", "Decimal"}


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    kind: str  # "query" for URL/form strings, else the value[x] suffix, "resource" or "part"
    value: Any


def raw_body(request: Request, max_bytes: int) -> bytes:
    """The body, whatever its type, read to its end and refused beyond `max_bytes` (413); sent
    with a Content-Encoding, inflated to at most `max_bytes` as well (web.compression)."""
    coding = body_coding(request)  # first: an unknown coding is refused before the body is read
    if request.content_length is not None and request.content_length > max_bytes:
        raise RequestTooLarge("BODY_TOO_LARGE", limit=max_bytes)
    # Read to the end: one read() may stop short, and a body without Content-Length (chunked)
    # must not be cut off silently at werkzeug's MAX_CONTENT_LENGTH cap, which stops at the cap
    # without error and only raises on the next read.
    data = bytearray()
    try:
        while len(data) <= max_bytes:
            chunk = request.stream.read(max_bytes + 1 - len(data))
            if not chunk:
                break
            data += chunk
    except RequestEntityTooLarge:
        raise RequestTooLarge("BODY_TOO_LARGE", limit=min(max_bytes, request.max_content_length or max_bytes)) from None
    if len(data) > max_bytes:
        raise RequestTooLarge("BODY_TOO_LARGE", limit=max_bytes)
    return inflate_body(bytes(data), coding, max_bytes) if coding else bytes(data)


def body_document(data: bytes, mime: str, max_depth: int, version: FhirVersion = FhirVersion.R5) -> Any:
    """The FHIR document of a JSON or XML body (`mime` as check_body_type gives it), refused if it
    nests deeper than `max_depth`. An XML body is read with the models of the endpoint's `version`
    and measured as the JSON it stands for."""
    if mime == FHIR_XML:
        read = read_xml(data, version, max_depth)
        if deeper_than(read, max_depth):
            raise BodyTooDeep("BODY_XML_TOO_DEEP", limit=max_depth)
        return read
    try:
        text = data.decode("utf-8-sig")
        document = parse_json(text, max_depth)
        if "\\u" in text and _SURROGATE_ESCAPE.search(text):
            try:  # a \ud800 escape without its pair decodes to a string that cannot be encoded as UTF-8
                json.dumps(document, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("a string holds an unpaired UTF-16 surrogate escape") from None
    except DepthError as error:
        raise BodyTooDeep("BODY_TOO_DEEP", limit=error.limit) from None
    except (UnicodeError, ValueError) as error:
        raise InvalidBody("BODY_NOT_JSON", reason=str(error) or type(error).__name__) from None
    return document


def _parameters(data: bytes, mime: str, max_depth: int, version: FhirVersion) -> list[Param]:
    document = body_document(data, mime, max_depth, version)
    if not isinstance(document, dict) or document.get("resourceType") != "Parameters":
        found = document.get("resourceType") if isinstance(document, dict) else type(document).__name__
        raise InvalidBody("BODY_NOT_PARAMETERS", found=found or "a JSON object without resourceType")
    return parameter_list(document)


def parameter_list(document: dict[str, Any]) -> list[Param]:
    """The entries of a Parameters resource (the body's, or a nested one such as a batch's
    `validation`), each checked: a name and exactly one value[x], resource or part."""
    raw = document.get("parameter", [])
    if not isinstance(raw, list):
        raise InvalidBody("BODY_BAD_PARAMETERS", reason="'parameter' must be an array")
    params = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            raise InvalidBody("BODY_BAD_PARAMETERS", reason=f"parameter[{index}] has no name")
        values = [k for k in item if k.startswith("value")] + [k for k in ("resource", "part") if k in item]
        if len(values) != 1:
            raise InvalidBody("BODY_BAD_PARAMETERS", reason=f"parameter[{index}] ('{item['name']}') must have exactly "
                                 "one value[x], resource or part")
        key = values[0]
        params.append(Param(item["name"], key[5:] if key.startswith("value") else key, item[key]))
    return params


def check_query_string(request: Request) -> None:
    """Invalid UTF-8 in the query string is a 400, as in a form body (werkzeug would pass '%FF' on as text).
    Checked once per request, however many readers ask."""
    environ = request.environ
    if QUERY_CHECKED in environ:
        return
    raw = request.query_string
    if b"%" in raw or not raw.isascii():
        try:
            unquote_to_bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidBody("BODY_BAD_PARAMETERS", reason="the query string is not valid UTF-8") from None
    environ[QUERY_CHECKED] = True


def read_body(request: Request, max_bytes: int) -> bytes | None:
    """The body of a POST, checked for type and size; None for other methods. The query string is
    checked first, as read_params does, so that a request fails the same way either way."""
    check_query_string(request)
    if request.method != "POST":
        return None
    check_body_type(request.content_type)
    return raw_body(request, max_bytes)


def read_params(request: Request, max_bytes: int, body: bytes | None = None,
                max_depth: int = DEFAULT_MAX_JSON_DEPTH, version: FhirVersion = FhirVersion.R5) -> list[Param]:
    """Every operation parameter of the request: query string, then the body (POST). `body` is the
    body if read_body() has read it already (the stream can be read only once). A JSON body nested
    deeper than `max_depth` (FHIR_PLUGIN_MAX_JSON_DEPTH) is refused here, where a client's JSON
    enters: everything that reads it later (tx-resources, inline resources, validation, conversion,
    rendering) may then walk it recursively. A form body is flat: names and strings. An XML body
    is read as the FHIR JSON it stands for, with the models of `version` (the endpoint's)."""
    check_query_string(request)
    params = [Param(k, "query", v) for k, v in request.args.items(multi=True) if k not in CONTROL]
    if request.method == "POST":
        mime = check_body_type(request.content_type)
        data = raw_body(request, max_bytes) if body is None else body
        if mime == "application/x-www-form-urlencoded":
            try:
                form = parse_qsl(data.decode("utf-8"), keep_blank_values=True, errors="strict")
            except (UnicodeDecodeError, ValueError):
                raise InvalidBody("BODY_BAD_PARAMETERS", reason="the form body is not valid UTF-8 form data") from None
            params.extend(Param(k, "query", v) for k, v in form if k not in CONTROL)
        elif data.strip():
            params.extend(_parameters(data, mime, max_depth, version))
    return params


# --- typing ------------------------------------------------------------------------------------


def _primitive(param: Param, expected: str) -> Any:
    if param.kind != "query" and param.kind not in _PRIMITIVE_KINDS:
        raise InvalidRequest("PARAM_BAD_TYPE", parameter=param.name, expected=f"a {expected}", expression=param.name)
    value = param.value
    if expected == "boolean":
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise InvalidRequest("PARAM_BAD_VALUE", parameter=param.name, type="boolean", value=repr(value), expression=param.name)
    if not isinstance(value, str) or not value:
        raise InvalidRequest("PARAM_BAD_VALUE", parameter=param.name, type=expected, value=repr(value), expression=param.name)
    if expected in ("uri", "code") and not _CODE.match(value):
        raise InvalidRequest("PARAM_BAD_VALUE", parameter=param.name, type=expected, value=repr(value), expression=param.name)
    if expected == "uri" and " " in value:
        raise InvalidRequest("PARAM_BAD_VALUE", parameter=param.name, type=expected, value=repr(value), expression=param.name)
    if expected == "dateTime" and not _DATETIME.match(value):
        raise InvalidRequest("PARAM_BAD_VALUE", parameter=param.name, type="dateTime", value=repr(value), expression=param.name)
    return value


def _coding(param: Param, raw: Any) -> Coding:
    if not isinstance(raw, dict) or any(
        k in raw and not isinstance(raw[k], str) for k in ("system", "code", "version", "display")
    ):
        raise InvalidRequest("PARAM_BAD_TYPE", parameter=param.name, expected="a Coding (system, code, version, display strings)",
                             expression=param.name)
    return Coding(raw.get("system"), raw.get("code"), raw.get("version"), raw.get("display"))


def _typed(param: Param, expected: str) -> Any:
    if expected == "Coding":
        if param.kind == "query" and isinstance(param.value, str) and "|" in param.value:
            system, _, code = param.value.rpartition("|")  # GET convenience: coding=system|code
            return Coding(system or None, code or None)
        if param.kind != "Coding":
            raise InvalidRequest("PARAM_BAD_TYPE", parameter=param.name, expected="a Coding", expression=param.name)
        return _coding(param, param.value)
    if expected == "CodeableConcept":
        codings = param.value.get("coding") if isinstance(param.value, dict) else None
        if param.kind != "CodeableConcept" or not isinstance(codings, list) or not codings:
            raise InvalidRequest("PARAM_BAD_TYPE", parameter=param.name, expected="a CodeableConcept with at least one coding",
                                 expression=param.name)
        return tuple(_coding(param, c) for c in codings)
    if expected == "resource":
        if param.kind != "resource" or not isinstance(param.value, dict):
            raise InvalidRequest("PARAM_BAD_TYPE", parameter=param.name, expected="a resource", expression=param.name)
        return param.value
    return _primitive(param, expected)


def collect(params: list[Param], spec: dict[str, str], repeating: frozenset[str] = frozenset(),
            aliases: dict[str, str] | None = None) -> dict[str, Any]:
    """Known parameters by internal name, typed; repeats and alias clashes are refused."""
    values: dict[str, Any] = {}
    given_as: dict[str, str] = {}
    for param in params:
        name = aliases.get(param.name, param.name) if aliases else param.name
        if name not in spec:
            continue
        value = _typed(param, spec[name])
        if name in repeating:
            values.setdefault(name, []).append(value)
            continue
        if name in values:
            if given_as[name] == param.name:
                raise InvalidRequest("PARAM_REPEATED", parameter=param.name, expression=param.name)
            raise InvalidRequest("PARAM_EXCLUSIVE", parameters=f"'{given_as[name]}' and '{param.name}'", expression=param.name)
        values[name] = value
        given_as[name] = param.name
    return values


def tx_resources(params: list[Param], limit: int) -> list[dict[str, Any]]:
    """The resources of every `tx-resource` parameter (any operation may carry them), at most
    `limit` of them: each one is validated and compiled, so their number bounds what one request
    can cost (FHIR_PLUGIN_MAX_TX_RESOURCES)."""
    found = [param for param in params if param.name == "tx-resource"]
    if len(found) > limit:
        raise TooCostly("TX_RESOURCE_LIMIT", count=len(found), limit=limit, expression="tx-resource")
    return [_typed(param, "resource") for param in found]


def instance_canonical(instance: CodeSystemEntry | ConceptMapEntry, names: tuple[str, str],
                       given: tuple[str | None, str | None]) -> tuple[str | None, str | None]:
    """Instance level (`/{type}/{id}/$op`): the resource in the path fixes url and version, so
    parameters that name others contradict it."""
    path = f"{'ConceptMap' if isinstance(instance, ConceptMapEntry) else 'CodeSystem'}/{instance.id}"
    for name, mine, own in zip(names, given, (instance.url, instance.version)):
        if mine is not None and mine != own:
            raise InvalidRequest("PARAM_CONFLICT", parameter=name, other=path, value=mine, other_value=own, expression=name)
    return instance.url, instance.version


# --- operations --------------------------------------------------------------------------------

LOOKUP_SPEC = {"system": "uri", "code": "code", "version": "string", "coding": "Coding", "date": "dateTime",
               "displayLanguage": "code", "property": "code", "useSupplement": "uri"}


def lookup_request(params: list[Param], instance: CodeSystemEntry | None = None) -> LookupRequest:
    v = collect(params, LOOKUP_SPEC, frozenset({"property", "useSupplement"}))
    system, version = v.get("system"), v.get("version")
    if instance is not None:
        system, version = instance_canonical(instance, ("system", "version"), (system, version))
    coding = resolve_coding(system, v.get("code"), version, v.get("coding"))
    return LookupRequest(
        system=coding.system, code=coding.code, version=coding.version, coding=v.get("coding"), date=v.get("date"),
        display_language=v.get("displayLanguage"), properties=tuple(v.get("property", ())),
        use_supplements=tuple(v.get("useSupplement", ())),
    )


SUBSUMES_SPEC = {"codeA": "code", "codeB": "code", "system": "uri", "version": "string", "codingA": "Coding",
                 "codingB": "Coding"}


def subsumes_request(params: list[Param], instance: CodeSystemEntry | None = None) -> SubsumesRequest:
    v = collect(params, SUBSUMES_SPEC)
    system, version = v.get("system"), v.get("version")
    if instance is not None:
        system, version = instance_canonical(instance, ("system", "version"), (system, version))
    return SubsumesRequest(v.get("codeA"), v.get("codeB"), system, version, v.get("codingA"), v.get("codingB"))


TRANSLATE_SPEC = {
    "sourceCode": "code", "sourceSystem": "uri", "sourceVersion": "string", "sourceCoding": "Coding",
    "sourceCodeableConcept": "CodeableConcept", "sourceScope": "uri", "targetScope": "uri", "targetSystem": "uri",
    "targetCode": "code", "targetCoding": "Coding", "targetCodeableConcept": "CodeableConcept", "reverse": "boolean",
    "url": "uri", "conceptMap": "resource", "conceptMapVersion": "string",
}


def _one_of(v: dict[str, Any], names: tuple[str, str, str]) -> str | None:
    given = [n for n in names if n in v]
    if len(given) > 1:
        raise InvalidRequest("PARAM_EXCLUSIVE", parameters=", ".join(f"'{n}'" for n in names), expression=given[1])
    return given[0] if given else None


def translate_request(params: list[Param], instance: ConceptMapEntry | None = None,
                      inline: Inline | None = None) -> TranslateRequest:
    """The typed request; its `dialect` says whether the caller spoke R4 (R4-only names)."""
    v = collect(params, TRANSLATE_SPEC, aliases=TRANSLATE_ALIASES)
    source_kind = _one_of(v, ("sourceCode", "sourceCoding", "sourceCodeableConcept"))
    target_kind = _one_of(v, ("targetCode", "targetCoding", "targetCodeableConcept"))
    source: tuple[Coding, ...] = ()
    if source_kind == "sourceCode":
        if "sourceSystem" not in v:
            given = next(p.name for p in params if TRANSLATE_ALIASES.get(p.name) == "sourceCode")
            needed = "system" if given == "code" else "sourceSystem"  # answer in the caller's dialect
            raise InvalidRequest("PARAM_REQUIRES", parameter=given, required=needed, expression=given)
        source = (Coding(v["sourceSystem"], v["sourceCode"], v.get("sourceVersion")),)
    elif source_kind == "sourceCoding":
        source = (resolve_coding(v.get("sourceSystem"), None, v.get("sourceVersion"), v["sourceCoding"],
                                 ("sourceSystem", "sourceCode", "sourceVersion", "sourceCoding")),)
    elif source_kind == "sourceCodeableConcept":
        source = v["sourceCodeableConcept"]
    target: tuple[Coding, ...] = ()
    if target_kind == "targetCode":
        target = (Coding(v.get("targetSystem"), v["targetCode"]),)
    elif target_kind == "targetCoding":
        target = (v["targetCoding"],)
    elif target_kind == "targetCodeableConcept":
        target = v["targetCodeableConcept"]
    url, version = v.get("url"), v.get("conceptMapVersion")
    if instance is not None:
        url, version = instance_canonical(instance, ("url", "conceptMapVersion"), (url, version))
    concept_map = v.get("conceptMap")
    if concept_map is not None:
        if instance is not None:
            raise InvalidRequest("PARAM_EXCLUSIVE", parameters=f"the ConceptMap of the path (ConceptMap/{instance.id}) and "
                                 "'conceptMap'", expression="conceptMap")
        if url:
            raise InvalidRequest("PARAM_EXCLUSIVE", parameters="'url' and 'conceptMap'", expression="conceptMap")
        if concept_map.get("resourceType") != "ConceptMap":
            raise InvalidRequest("PARAM_BAD_TYPE", parameter="conceptMap", expected="a ConceptMap", expression="conceptMap")
        if inline is not None:
            concept_map = inline(concept_map, "parameter 'conceptMap'")
    return TranslateRequest(
        source=source, target=target, target_system=v.get("targetSystem"),
        source_system=v.get("sourceSystem") if source_kind is None else None,
        source_scope=v.get("sourceScope"), target_scope=v.get("targetScope"), url=url,
        concept_map_version=version, concept_map=concept_map, reverse=v.get("reverse", False),
        dialect=translate_dialect(p.name for p in params), source_form=_FORMS.get(source_kind or ""),
        target_form=_FORMS.get(target_kind or ""))


_FORMS = {"sourceCode": "code", "sourceCoding": "coding", "sourceCodeableConcept": "codeableConcept",
          "targetCode": "code", "targetCoding": "coding", "targetCodeableConcept": "codeableConcept"}

