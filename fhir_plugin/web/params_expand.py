"""ValueSet/$expand parameters -> ExpandRequest.

R4 and R5 use the same names. `context`/`contextDirection` (expansion in the context of a
resource element) are refused as not supported rather than silently ignored. `count` and
`offset` are integers (valueInteger, or digits in a query string). The Accept-Language header
stands in for `displayLanguage` when that is absent.
"""

from __future__ import annotations


from typing import Any

from ..terminology.errors import InvalidRequest, NotSupported
from ..terminology.models import ExpandRequest
from .params import Inline, Param, collect

EXPAND_SPEC = {
    "url": "uri", "valueSet": "resource", "valueSetVersion": "string", "filter": "string", "date": "dateTime",
    "includeDesignations": "boolean", "designation": "string", "includeDefinition": "boolean",
    "activeOnly": "boolean", "excludeNested": "boolean", "excludeNotForUI": "boolean",
    "excludePostCoordinated": "boolean", "displayLanguage": "string", "exclude-system": "uri",
    "system-version": "uri", "check-system-version": "uri", "force-system-version": "uri", "property": "string",
    "useSupplement": "uri", "default-valueset-version": "uri",
}
REPEATING = frozenset({"designation", "exclude-system", "system-version", "check-system-version",
                       "force-system-version", "property", "useSupplement", "default-valueset-version"})
_INTEGERS = ("offset", "count")
_UNSUPPORTED = ("context", "contextDirection")


_INTEGER_MAX = 2_147_483_647  # FHIR integer is 32-bit: a larger count or offset cannot be echoed in the answer


def _integer(param: Param) -> int:
    value = param.value
    # ASCII digits only ("²".isdigit() is true but int() refuses it), and few enough for int()'s digit limit
    if param.kind == "query" and isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        value = int(value)
    if param.kind not in ("query", "Integer", "UnsignedInt", "PositiveInt") or isinstance(value, bool) \
            or not isinstance(value, int) or not 0 <= value <= _INTEGER_MAX:
        raise InvalidRequest("PARAM_BAD_VALUE", parameter=param.name, type="integer", value=repr(param.value), expression=param.name)
    return value


def expand_request(params: list[Param], instance: dict[str, Any] | None = None, accept_language: str | None = None,
                   max_expansion: int | None = None, inline: Inline | None = None,
                   filter_limits: tuple[int, int] | None = None, max_nesting: int | None = None) -> ExpandRequest:
    """The typed request. `instance` is the ValueSet of `ValueSet/{id}/$expand`; `max_expansion`
    and `max_nesting` are the server's limits (the engine's defaults when None), `filter_limits`
    the most words in the text filter and the most characters in one of them."""
    for param in params:
        if param.name in _UNSUPPORTED:
            raise NotSupported("PARAM_NOT_SUPPORTED", parameter=param.name, reason="expansion in a context is not supported",
                               expression=param.name)
    integers: dict[str, int] = {}
    for param in params:
        if param.name in _INTEGERS:
            if param.name in integers:
                raise InvalidRequest("PARAM_REPEATED", parameter=param.name, expression=param.name)
            integers[param.name] = _integer(param)
    v = collect(params, EXPAND_SPEC, REPEATING)
    value_set = v.get("valueSet")
    if value_set is not None and value_set.get("resourceType") != "ValueSet":
        raise InvalidRequest("PARAM_BAD_TYPE", parameter="valueSet", expected="a ValueSet", expression="valueSet")
    if value_set is not None and inline is not None:
        value_set = inline(value_set, "parameter 'valueSet'")
    if instance is not None:
        if value_set is not None:
            raise InvalidRequest("PARAM_EXCLUSIVE", parameters="the ValueSet of the path and 'valueSet'", expression="valueSet")
        given = v.get("url")
        if given and given.partition("|")[0] != instance.get("url"):
            raise InvalidRequest("PARAM_CONFLICT", parameter="url", other="the ValueSet of the path", value=given, other_value=instance.get("url"),
                                 expression="url")
        value_set = instance
    # The server's limits go in with the rest: a dataclasses.replace per limit costs more than the
    # rest of this function.
    limits: dict[str, int] = {}
    if max_expansion is not None:
        limits["max_expansion"] = max_expansion
    if filter_limits is not None:
        limits["max_filter_words"], limits["max_filter_word_length"] = filter_limits
    if max_nesting is not None:
        limits["max_nesting"] = max_nesting
    return ExpandRequest(
        url=v.get("url"), value_set=value_set, value_set_version=v.get("valueSetVersion"),
        filter=v.get("filter"), date=v.get("date"), offset=integers.get("offset"), count=integers.get("count"),
        include_designations=v.get("includeDesignations"), designations=tuple(v.get("designation", ())),
        include_definition=v.get("includeDefinition"), active_only=v.get("activeOnly"),
        exclude_nested=v.get("excludeNested"), exclude_not_for_ui=v.get("excludeNotForUI"),
        exclude_post_coordinated=v.get("excludePostCoordinated"), display_language=v.get("displayLanguage"),
        accept_language=(accept_language or "").strip() or None,
        exclude_systems=tuple(v.get("exclude-system", ())), system_versions=tuple(v.get("system-version", ())),
        check_system_versions=tuple(v.get("check-system-version", ())),
        force_system_versions=tuple(v.get("force-system-version", ())),
        properties=tuple(v.get("property", ())), use_supplements=tuple(v.get("useSupplement", ())),
        default_value_set_versions=tuple(v.get("default-valueset-version", ())), **limits,
    )


def max_nesting(max_json_depth: int) -> int:
    """The deepest hierarchy a nested expansion may show: each level is an array and an object of
    JSON, so an answer nests about as deep as FHIR_PLUGIN_MAX_JSON_DEPTH lets a request nest."""
    return max(1, max_json_depth // 2)


def too_costly_threshold(configured: int, header: str | None) -> int:
    """FHIR_PLUGIN_MAX_EXPANSION, lowered (never raised) by a client's X-TOO-COSTLY-THRESHOLD."""
    try:
        asked = int(header) if header else None
    except ValueError:
        asked = None  # a malformed header is ignored; the server's own limit still applies
    return min(configured, asked) if asked and asked > 0 else configured
