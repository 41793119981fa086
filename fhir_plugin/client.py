"""TerminologyClient: a remote FHIR terminology server with the interface of TerminologyService.

The same typed requests go in, the same typed results come out, and the same TerminologyError
subclasses are raised (rebuilt from the OperationOutcome's message id and text, fields included),
so code written against the in-process service runs unchanged against a server. Imports no Flask
and none of the engine's operations: only the rendering package, the models and the errors.

    with TerminologyClient("http://127.0.0.1:8080/r4") as client:
        client.lookup(LookupRequest(system="http://www.ama-assn.org/go/cpt", code="97116")).display
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any
from urllib.parse import quote

import requests

# Every layer's errors, so that an OperationOutcome from the server is rebuilt as the class it came from.
from .content import errors as _content_errors  # noqa: F401
from .render import errors as _wire_errors  # noqa: F401
from .render import parameters as codec
from .runtime import errors as _admin_errors  # noqa: F401
from .terminology.errors import TerminologyError
from .terminology.models import LookupRequest, LookupResult, TranslateRequest, TranslateResult
from .terminology.outcome import REMOTE_ERROR, error_from_outcome

FHIR_JSON = "application/fhir+json"


class ServerUnreachable(TerminologyError):
    """The client could not get an answer from a remote server (refused, DNS, TLS, timeout).

    Raised only by the client, never by the engine or the server. 503 + transient, because the
    same request may well succeed later."""

    status = 503
    issue_code = "transient"
    messages = {"SERVER_UNREACHABLE": "Cannot reach the terminology server at {url}: {reason}"}


# --- typed request -> Parameters ----------------------------------------------------------------


def _add(params: list[dict], name: str, kind: str, value: Any) -> None:
    # An empty string is "not given", as the engine reads it; sending it would turn the engine's
    # "missing code" into the server's "invalid value" and the two sides would word errors apart.
    if value is not None and value != "":
        params.append({"name": name, kind: value})


def _codings(params: list[dict], single: str, several: str, codings: tuple) -> None:
    if len(codings) == 1:
        params.append({"name": single, "valueCoding": codec.coding_dict(codings[0])})
    elif codings:
        params.append({"name": several,
                       "valueCodeableConcept": {"coding": [codec.coding_dict(c) for c in codings]}})


def lookup_request_parameters(request: LookupRequest) -> dict:
    """The Parameters body of a CodeSystem/$lookup request (the names are the same in R4 and R5)."""
    params: list[dict] = []
    _add(params, "system", "valueUri", request.system)
    _add(params, "code", "valueCode", request.code)
    _add(params, "version", "valueString", request.version)
    if request.coding is not None:
        params.append({"name": "coding", "valueCoding": codec.coding_dict(request.coding)})
    _add(params, "date", "valueDateTime", request.date)
    _add(params, "displayLanguage", "valueCode", request.display_language)
    for code in request.properties:
        _add(params, "property", "valueCode", code)
    for supplement in request.use_supplements:
        _add(params, "useSupplement", "valueCanonical", supplement)
    return {"resourceType": "Parameters", "parameter": params}


def translate_request_parameters(request: TranslateRequest) -> dict:
    """The Parameters body of a ConceptMap/$translate request.

    R5 names, except with `reverse`: that flag exists only in R4, and an R4 server reads it only
    beside R4's `coding`/`codeableConcept`, `targetsystem`, `source` and `target`.
    """
    r4 = request.reverse
    params: list[dict] = []
    _codings(params, "coding" if r4 else "sourceCoding", "codeableConcept" if r4 else "sourceCodeableConcept",
             request.source)
    _codings(params, "targetCoding", "targetCodeableConcept", request.target)
    _add(params, "sourceSystem", "valueUri", request.source_system)
    _add(params, "targetsystem" if r4 else "targetSystem", "valueUri", request.target_system)
    _add(params, "source" if r4 else "sourceScope", "valueUri", request.source_scope)
    _add(params, "target" if r4 else "targetScope", "valueUri", request.target_scope)
    _add(params, "url", "valueUri", request.url)
    _add(params, "conceptMapVersion", "valueString", request.concept_map_version)
    if request.concept_map is not None:
        params.append({"name": "conceptMap", "resource": request.concept_map})
    if r4:
        params.append({"name": "reverse", "valueBoolean": True})
    return {"resourceType": "Parameters", "parameter": params}


# --- HTTP answers -> results or errors -----------------------------------------------------------


def _reason(error: requests.RequestException) -> str:
    """The useful end of a requests/urllib3 message, without the connection-pool preamble."""
    cause = error.args[0] if error.args else error
    text = str(getattr(cause, "reason", None) or cause)
    if text.startswith(("HTTPConnection", "HTTPSConnection")):
        text = text.partition(": ")[2] or text
    return text


def _plain_error(text: str, status: int) -> TerminologyError:
    """An error the server did not describe with an OperationOutcome; `status` is what it sent
    (or 502 when a 2xx answer was not what a FHIR server sends)."""
    return TerminologyError(REMOTE_ERROR, text=text, status=status)


def _snippet(body: str) -> str:
    return " ".join(body.split())[:200] or "(empty body)"


def _document(response: requests.Response) -> dict:
    """The JSON object of a 2xx answer, else the matching TerminologyError."""
    with response:
        try:
            document = response.json()
        except ValueError:
            document = None
        if response.ok and isinstance(document, dict):
            return document
        if response.ok:
            # A 2xx that is not JSON: a proxy or some other service answered. 502 says just that.
            raise _plain_error(f"The server answered HTTP {response.status_code} with a body that is not "
                               f"FHIR JSON: {_snippet(response.text)}", 502)
        raise error_from_response(response.status_code, document, response.text)


def error_from_response(status: int, document: Any, body: str) -> TerminologyError:
    """The TerminologyError a non-2xx answer stands for; `.outcome` keeps the OperationOutcome."""
    if isinstance(document, dict) and document.get("resourceType") == "OperationOutcome":
        return error_from_outcome(status, document)
    return _plain_error(f"The server answered HTTP {status} without an OperationOutcome: {_snippet(body)}", status)


class TerminologyClient:
    """A FHIR terminology server at `base_url` (one endpoint, e.g. http://host:8080/r4).

    `session` lets callers bring authentication, TLS settings, proxies or retries; a session the
    client created itself is closed by `close()` (or by leaving the `with` block).
    """

    def __init__(self, base_url: str, *, timeout: float = 10.0, session: requests.Session | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._own_session = session is None
        self.session = session if session is not None else requests.Session()

    def __enter__(self) -> TerminologyClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own_session:
            self.session.close()

    def __repr__(self) -> str:
        return f"TerminologyClient({self.base_url!r})"

    # --- operations ---

    def lookup(self, request: LookupRequest) -> LookupResult:
        """CodeSystem/$lookup (POST). Raises UnknownCodeSystem, UnknownCode, InvalidRequest, ...,
        as TerminologyService.lookup does, and ServerUnreachable."""
        answer = self._request("POST", "CodeSystem/$lookup", lookup_request_parameters(request))
        return codec.lookup_result(self._parameters(answer))

    def translate(self, request: TranslateRequest) -> TranslateResult:
        """ConceptMap/$translate (POST). No mapping is a result with result=False, not an error."""
        answer = self._request("POST", "ConceptMap/$translate", translate_request_parameters(request))
        # The wire format does not carry the mode; it follows from the request, as in the engine.
        return dataclasses.replace(codec.translate_result(self._parameters(answer)), mode=request.mode)

    def read(self, resource_type: str, resource_id: str) -> dict:
        """`GET {type}/{id}`: the resource as the endpoint's FHIR version renders it; NotFound if absent."""
        return self._request("GET", f"{quote(resource_type, safe='')}/{quote(resource_id, safe='')}")

    def metadata(self, mode: str | None = None) -> dict:
        """`GET metadata`: the CapabilityStatement, or with mode="terminology" the TerminologyCapabilities."""
        return self._request("GET", "metadata", params={"mode": mode} if mode else None)

    # --- HTTP ---

    def _parameters(self, answer: dict) -> dict:
        if answer.get("resourceType") != "Parameters":
            found = answer.get("resourceType") or "JSON object without resourceType"
            raise _plain_error(f"The server at {self.base_url} answered with a {found}, not a Parameters resource", 502)
        return answer

    def _request(self, method: str, path: str, body: dict | None = None,
                 params: dict[str, str] | None = None) -> dict:
        """One HTTP exchange: the JSON resource of a 2xx answer, else the matching TerminologyError."""
        headers = {"Accept": FHIR_JSON}
        data = None
        if body is not None:
            headers["Content-Type"] = FHIR_JSON
            data = json.dumps(body).encode()
        try:
            response = self.session.request(method, f"{self.base_url}/{path}", params=params, data=data,
                                            headers=headers, timeout=self.timeout)
        except requests.RequestException as error:
            raise ServerUnreachable("SERVER_UNREACHABLE", url=self.base_url, reason=_reason(error)) from error
        return _document(response)


class ContentAdmin:
    """The admin endpoints of a running fhir_plugin server: load content, list it, unload it.

    `server_url` is the server's root (http://host:8080); a FHIR endpoint under it (/r4, /r5,
    /fhir) is accepted too. `token` is the server's FHIR_PLUGIN_ADMIN_TOKEN. Errors are the same
    TerminologyError subclasses the server raised (InvalidContent for content it refused, ...).
    """

    def __init__(self, server_url: str, token: str, *, timeout: float = 120.0):
        root = server_url.rstrip("/")
        for endpoint in ("/r4", "/r5", "/fhir"):
            root = root.removesuffix(endpoint)
        self.url = f"{root}/admin/content"
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self.timeout = timeout

    def load(self, data: bytes, name: str | None = None) -> dict:
        """Load FHIR JSON, a Bundle, gzipped JSON or a FHIR package; the server's OperationOutcome."""
        return self._request("POST", self.url, data=data, params={"name": name} if name else None)

    def unload(self, name: str) -> dict:
        return self._request("DELETE", f"{self.url}/{quote(name, safe='')}")

    def loaded(self) -> dict:
        return self._request("GET", self.url)

    def _request(self, method: str, url: str, **kwargs: Any) -> dict:
        headers = dict(self.headers, **({"Content-Type": "application/octet-stream"} if "data" in kwargs else {}))
        try:
            response = requests.request(method, url, headers=headers, timeout=self.timeout, **kwargs)
        except requests.RequestException as error:
            raise ServerUnreachable("SERVER_UNREACHABLE", url=url, reason=_reason(error)) from error
        return _document(response)
