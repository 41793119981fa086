"""What the runner sends: requests built as the official runner builds them, the version
detection of its start-up, and two transports (a Flask test client, and `requests`).

A transport is a function `send(method, path, headers, body, query) -> (status, headers, body)`:
`path` is relative to the server's FHIR base (e.g. "/ValueSet/$expand"), `query` a list of
(name, value) pairs, `body` bytes or None. Everything else here is independent of HTTP libraries.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from ..fhirversions import FhirVersion, resource_for
from .jsontext import Number, dumps, loads
from .manifest import TestCase

Send = Callable[[str, str, Mapping[str, str], "bytes | None", Sequence[tuple[str, str]]],
                tuple[int, Mapping[str, str], bytes]]

# operation -> (path, whether it may be a GET when every parameter is primitive); section 4.2
OPERATIONS: dict[str, tuple[str, bool]] = {
    "expand": ("/ValueSet/$expand", False),
    "validate-code": ("/ValueSet/$validate-code", True),
    "cs-validate-code": ("/CodeSystem/$validate-code", True),
    "batch-validate": ("/ValueSet/$batch-validate-code", True),
    "lookup": ("/CodeSystem/$lookup", False),
    "translate": ("/ConceptMap/$translate", False),
    "compare": ("/ValueSet/$compare", False),
}
FHIR_JSON = "application/fhir+json"


class RunAborted(Exception):
    """The server cannot be tested at all (the official runner stops the whole run)."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None = None
    query: tuple[tuple[str, str], ...] = field(default=())


def _media_type(version: FhirVersion) -> str:
    # The runner's R4 client labels its JSON with the FHIR version; the R5 client does not.
    return f"{FHIR_JSON}; fhirVersion=4.0" if version is FhirVersion.R4 else FHIR_JSON


def build_parameters(case: TestCase) -> dict[str, Any]:
    """The R5 Parameters the runner sends: the request's own parameters, one tx-resource per setup
    file (in setup order), then the profile's parameters (section 4.3)."""
    request = case.load(case.request) if case.request else {"resourceType": "Parameters"}
    parameters = list(request.get("parameter", []))
    parameters += [{"name": "tx-resource", "resource": case.load(path)} for path in case.setup]
    parameters += list(case.load(case.profile).get("parameter", []))
    return {**request, "parameter": parameters}


def _primitive(value: Any) -> bool:
    return isinstance(value, (str, bool, int, float, Number))


def _query_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _as_query(parameters: dict[str, Any]) -> list[tuple[str, str]] | None:
    """The parameters as query pairs, or None if any is not a primitive value."""
    pairs = []
    for parameter in parameters.get("parameter", []):
        values = [(k, v) for k, v in parameter.items() if k.startswith("value")]
        if "resource" in parameter or "part" in parameter or len(values) != 1 or not _primitive(values[0][1]):
            return None
        pairs.append((parameter["name"], _query_text(values[0][1])))
    return pairs


def build_request(case: TestCase, version: FhirVersion) -> Request:
    """The HTTP request for a test (not for metadata / term-caps, which use the start-up fetches).
    For an R4 server the Parameters, tx-resources included, are converted to R4 (section 4.5)."""
    if case.operation not in OPERATIONS:
        raise ValueError(f"operation {case.operation!r} is not supported by this runner")
    parameters = build_parameters(case)
    if version is FhirVersion.R4:
        parameters = resource_for(FhirVersion.R4, parameters)
    path, may_get = OPERATIONS[case.operation]
    headers = {"Accept": _media_type(version), "X-Request-Id": f"txTests:{case.id}"}
    if case.accept_language:
        headers["Accept-Language"] = case.accept_language
    if case.header:
        headers[case.header[0]] = case.header[1]
    query = _as_query(parameters) if may_get else None
    if query is not None:
        return Request("GET", path, headers, None, tuple(query))
    headers["Content-Type"] = f"{_media_type(version)};charset=UTF-8"
    return Request("POST", path, headers, dumps(parameters).encode("utf-8"))


def metadata_request(version: FhirVersion, terminology: bool) -> Request:
    query = (("mode", "terminology"),) if terminology else ()
    return Request("GET", "/metadata", {"Accept": _media_type(version)}, None, query)


# --- start-up (section 4.1) ---------------------------------------------------------------------


def _major(version_text: str) -> int | None:
    digits = version_text.strip().split(".", 1)[0]
    return int(digits) if digits.isdigit() else None


def _json_get(send: Send, path: str, query: list[tuple[str, str]]) -> Any:
    status, _, body = send("GET", path, {"Accept": "application/json, application/fhir+json"}, None, query)
    if not 200 <= status < 300:
        raise ValueError(f"HTTP {status}")
    return loads(body)


def detect_version(send: Send) -> FhirVersion:
    """The server's FHIR version, found as the official runner finds it: `$versions` (only a
    `default` parameter with valueString counts), else /metadata fhirVersion, else 4.0."""
    found = None
    # Both look-ups may fail in any way (no such operation, HTML, no connection): the runner
    # tolerates that and falls through, so every exception is deliberately caught here.
    try:
        data = _json_get(send, "/$versions", [("_format", "json"), ("nocache", str(int(time.time() * 1000)))])
        if data.get("resourceType") == "Parameters":
            for parameter in data.get("parameter", []):
                if parameter.get("name") == "default":
                    found = parameter.get("valueString")
        elif "default" in data:
            found = data["default"]
    except Exception:  # noqa: BLE001 - see above
        found = None
    if not isinstance(found, str):
        try:
            found = _json_get(send, "/metadata", [("_format", "json")]).get("fhirVersion")
        except Exception:  # noqa: BLE001 - see above
            found = None
    found = found if isinstance(found, str) else "4.0"
    major = _major(found)
    if major is not None and major >= 5:
        return FhirVersion.R5
    if major == 4:
        return FhirVersion.R4
    raise RunAborted(f"unsupported FHIR version for terminology tests: {found}")


# --- transports ---------------------------------------------------------------------------------


def _query_string(query: Sequence[tuple[str, str]]) -> str:
    return urlencode(list(query), quote_via=quote)


def flask_client_transport(client: Any, prefix: str = "") -> Send:
    """A transport over a Flask test client (anything with Flask's `client.open`), with the FHIR
    base at `prefix` (e.g. "/r5"). Duck-typed, so that this package never imports Flask."""

    def send(method: str, path: str, headers: Mapping[str, str], body: bytes | None,
             query: Sequence[tuple[str, str]]) -> tuple[int, Mapping[str, str], bytes]:
        response = client.open(prefix + path, method=method, headers=dict(headers), data=body,
                               query_string=_query_string(query))
        return response.status_code, dict(response.headers), response.get_data()

    return send



def requests_transport(base_url: str, session: Any = None, timeout: float = 120.0) -> Send:
    """A transport over `requests` to a live server whose FHIR base is `base_url`."""
    import requests

    session = session or requests.Session()
    base = base_url.rstrip("/")

    def send(method: str, path: str, headers: Mapping[str, str], body: bytes | None,
             query: Sequence[tuple[str, str]]) -> tuple[int, Mapping[str, str], bytes]:
        url = base + path + (f"?{_query_string(query)}" if query else "")
        response = session.request(method, url, headers=dict(headers), data=body, timeout=timeout)
        return response.status_code, dict(response.headers), response.content

    return send
