"""The query of a read or a search -> what to search for (terminology.search criteria) and how to
answer (render: the subset of _summary and _elements, the page of _count and _offset).

FHIR's search syntax (search.html): `name:modifier=value`; a value of comma-separated alternatives
(`\\,` is a comma inside a value); a parameter given twice must hold twice; a parameter with an
empty value is ignored (the result parameters too). `Prefer: handling=strict` (search.html#errors)
makes an unknown parameter, a modifier a parameter does not have here, or an unknown element in
_elements a 400; lenient handling (the default) leaves them out, and the self link of the Bundle
shows what was applied.
A read takes _summary and _elements and ignores anything else, as the operations do.
"""

from __future__ import annotations

import re

from werkzeug.datastructures import MultiDict

from ..fhirversions import FhirVersion
from ..render.errors import InvalidSearch
from ..render.resources import Page
from ..render.subset import SUMMARY_VALUES, Subset, element_names
from ..terminology.errors import InvalidRequest
from ..terminology.models import Criterion
from ..terminology.search import SEARCH_PARAMETERS, supports
from .params import CONTROL

SEARCH_PARAMS = tuple(SEARCH_PARAMETERS)  # in the CapabilityStatement's order
RESULT_PARAMS = frozenset({"_summary", "_elements", "_count", "_offset"})
_COMMA = re.compile(r"(?<!\\),")
_WHOLE_NUMBER = re.compile(r"^[0-9]+$")


def strict_handling(prefer: str | None) -> bool:
    """Whether a Prefer header asks for `handling=strict`."""
    return "handling=strict" in (prefer or "").replace(" ", "")


def _alternatives(value: str) -> tuple[str, ...]:
    return tuple(v.replace("\\,", ",") for v in _COMMA.split(value) if v)


def _escaped(value: str) -> str:
    return value.replace(",", "\\,")


def _result_params(args: MultiDict[str, str]) -> dict[str, str]:
    """_summary, _elements, _count and _offset, each at most once; an empty one is not given."""
    found: dict[str, str] = {}
    for key in RESULT_PARAMS:
        values = [value for value in args.getlist(key) if value]
        if len(values) > 1:
            raise InvalidRequest("PARAM_REPEATED", parameter=key, expression=key)
        if values:
            found[key] = values[0]
    return found


def _subset(given: dict[str, str], resource_type: str, version: FhirVersion, strict: bool,
            read: bool) -> tuple[Subset | None, list[tuple[str, str]]]:
    """The subset _summary or _elements ask for, and those parameters as applied (for the links)."""
    summary = given.get("_summary")
    if summary is not None and summary not in SUMMARY_VALUES:
        raise InvalidSearch("SUMMARY_BAD_VALUE", value=summary, expression="_summary")
    if summary == "count" and read:
        raise InvalidSearch("SUMMARY_COUNT_ON_READ", expression="_summary")
    raw_elements = given.get("_elements")
    if raw_elements is not None and summary not in (None, "false"):
        raise InvalidRequest("PARAM_EXCLUSIVE", parameters="'_summary' and '_elements'", expression="_elements")
    if summary in ("true", "text", "data"):
        return Subset(summary=summary), [("_summary", summary)]
    if summary == "count":
        return None, [("_summary", "count")]
    if not raw_elements:
        return None, []
    known, unknown = element_names(version, resource_type, (n.strip() for n in raw_elements.split(",") if n.strip()))
    if unknown and strict and not read:
        raise InvalidSearch("ELEMENT_UNKNOWN", element=unknown[0], resource_type=resource_type, expression="_elements")
    if not known:  # nothing that applies is left: the resource is not cut
        return None, []
    return Subset(elements=known), [("_elements", ",".join(known))]


def read_subset(args: MultiDict[str, str], resource_type: str, version: FhirVersion) -> Subset | None:
    """What a read is cut to: _summary (true, text, data; false is the whole resource) or
    _elements (unknown element names are ignored)."""
    return _subset(_result_params(args), resource_type, version, strict=False, read=True)[0]


def _whole_number(given: dict[str, str], name: str) -> int | None:
    value = given.get(name)
    if value is None:
        return None
    try:
        if _WHOLE_NUMBER.match(value):
            return int(value)
    except ValueError:  # more digits than Python reads (4,300)
        pass
    raise InvalidSearch("PAGE_BAD_VALUE", parameter=name, value=value, expression=name)


def search_request(args: MultiDict[str, str], resource_type: str, version: FhirVersion, strict: bool,
                   page_size: int) -> tuple[list[Criterion], Page]:
    """The criteria of a search, and the page to answer with. `page_size` is the most matches a
    page holds (FHIR_PLUGIN_SEARCH_PAGE_SIZE): the page without _count, and a larger _count is
    lowered to it."""
    criteria: list[Criterion] = []
    for key, value in args.items(multi=True):
        if key in CONTROL or key in RESULT_PARAMS:
            continue
        name, colon, modifier = key.partition(":")
        if not supports(name, modifier if colon else None):
            if strict and name not in SEARCH_PARAMETERS:
                raise InvalidRequest("SEARCH_PARAM_UNKNOWN", parameter=key, resource_type=resource_type, expression=key)
            if strict:
                raise InvalidRequest("SEARCH_MODIFIER_UNSUPPORTED", parameter=name, modifier=modifier,
                                     resource_type=resource_type, expression=key)
            continue
        values = _alternatives(value)
        if values:
            criteria.append(Criterion(name, values, modifier if colon else None))
    given = _result_params(args)
    subset, shaping = _subset(given, resource_type, version, strict, read=False)
    count, offset = _whole_number(given, "_count"), _whole_number(given, "_offset")
    order = list(SEARCH_PARAMETERS)
    applied = [(c.name + (f":{c.modifier}" if c.modifier else ""), ",".join(_escaped(v) for v in c.values))
               for c in sorted(criteria, key=lambda c: order.index(c.name))]
    applied += shaping + [(key, args[key]) for key in sorted(CONTROL) if key in args]
    if given.get("_summary") == "count":
        return criteria, Page(tuple(applied), 0, count_only=True)
    if count == 0:
        return criteria, Page(tuple(applied + [("_count", "0")]), 0, count_only=True)
    size = max(1, page_size)
    return criteria, Page(tuple(applied), size if count is None else min(count, size), offset or 0,
                          count_given=count is not None, subset=subset)
