"""TerminologyClient: a remote FHIR terminology server with the interface of TerminologyService.

Both implement TerminologyBackend: the same typed requests go in, the same typed results come
out, and the same TerminologyError subclasses are raised (rebuilt from the OperationOutcome's
message id and text, fields included), so code written against the in-process service runs
unchanged against a server. Imports no Flask and none of the engine's operations: only the
request encoders (render/requests.py), the rendering package, fhirversions, the models (with
compile_resource_entry, which builds a ResourceEntry) and the errors.

    with TerminologyClient("http://127.0.0.1:8080/r4") as client:
        client.lookup(LookupRequest(system="http://www.ama-assn.org/go/cpt", code="97116")).display
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import requests

from .render.requests import (batch_request_parameters, expand_request_parameters, lookup_request_parameters,
                              search_query, subsumes_request_parameters, translate_request_parameters,
                              validate_request_parameters)
from .fhirversions import FhirVersion, to_r5, version_of_release
from .render import expansion as expansion_codec
from .render import parameters as codec
from .terminology.compile import compile_resource_entry
from .terminology.entries import ResourceEntry
from .terminology.errors import TerminologyError
from .terminology.identifiers import renamed_in
from .terminology.models import (DEFAULT_MAX_EXPANSION, CodeSystemVersions, Criterion, ExpandRequest, ExpandResult,
                                 LookupRequest, LookupResult, SubsumesRequest, SubsumesResult, TerminologyMetadata,
                                 TranslateRequest, TranslateResult, ValidateCodeRequest, ValidateCodeResult)
from .terminology.outcome import REMOTE_ERROR, error_from_outcome

# Every layer's errors, so that an OperationOutcome from the server is rebuilt as the class it came from.
from .content import errors as _content_errors  # noqa: F401
from .render import errors as _wire_errors  # noqa: F401
from .runtime import errors as _admin_errors  # noqa: F401

FHIR_JSON = "application/fhir+json"
JSON = dict[str, Any]

__all__ = ["ContentAdmin", "ServerUnreachable", "TerminologyClient", "batch_request_parameters", "error_from_response",
           "expand_request_parameters", "lookup_request_parameters", "subsumes_request_parameters",
           "translate_request_parameters", "validate_request_parameters"]


class ServerUnreachable(TerminologyError):
    """The client could not get an answer from a remote server (refused, DNS, TLS, timeout).

    Raised only by the client, never by the engine or the server. 503 + transient, because the
    same request may well succeed later."""

    status = 503
    issue_code = "transient"
    messages = {"SERVER_UNREACHABLE": "Cannot reach the terminology server at {url}: {reason}"}


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


def _document(response: requests.Response) -> JSON:
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


def error_from_response(status: int, document: object, body: str) -> TerminologyError:
    """The TerminologyError a non-2xx answer stands for; `.outcome` keeps the OperationOutcome."""
    if isinstance(document, dict) and document.get("resourceType") == "OperationOutcome":
        return error_from_outcome(status, document)
    return _plain_error(f"The server answered HTTP {status} without an OperationOutcome: {_snippet(body)}", status)


def _dicts(value: object) -> list[JSON]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _metadata(capabilities: JSON) -> TerminologyMetadata:
    """TerminologyCapabilities.codeSystem as TerminologyMetadata: each url with its versions, the
    default first (as the service lists them)."""
    found = []
    for system in _dicts(capabilities.get("codeSystem")):
        versions = sorted(_dicts(system.get("version")), key=lambda v: v.get("isDefault") is not True)
        found.append(CodeSystemVersions(str(system.get("uri")), tuple(str(v.get("code")) for v in versions)))
    return TerminologyMetadata(tuple(found))


def _language(value: str | None) -> dict[str, str]:
    return {"Accept-Language": value} if value else {}


class TerminologyClient:
    """A FHIR terminology server at `base_url` (one endpoint, e.g. http://host:8080/r4).

    Implements TerminologyBackend: the operations POST Parameters bodies (render/requests.py),
    read, search and metadata are GETs. `session` lets callers bring authentication, TLS settings,
    proxies or retries; a session the client created itself is closed by `close()` (or by leaving
    the `with` block).
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
        """CodeSystem/$lookup. Raises UnknownCodeSystem, UnknownCode, InvalidRequest, ...,
        as TerminologyService.lookup does, and ServerUnreachable."""
        answer = self._request("POST", "CodeSystem/$lookup", lookup_request_parameters(request))
        return codec.lookup_result(self._expect(answer, "Parameters"))

    def translate(self, request: TranslateRequest) -> TranslateResult:
        """ConceptMap/$translate. No mapping is a result with result=False, not an error."""
        answer = self._request("POST", "ConceptMap/$translate", translate_request_parameters(request))
        # The wire carries neither the mode nor the dialect; both follow from the request, as in the engine.
        return dataclasses.replace(codec.translate_result(self._expect(answer, "Parameters")), mode=request.mode,
                                   dialect=request.dialect)

    def validate_code(self, request: ValidateCodeRequest) -> ValidateCodeResult:
        """CodeSystem/$validate-code when the request names `code_system_url`, else
        ValueSet/$validate-code; `accept_language` is sent as the Accept-Language header. An
        invalid code is result=False with issues; raises for a malformed request or an unknown
        value set."""
        path = "ValueSet/$validate-code" if request.code_system_url is None else "CodeSystem/$validate-code"
        answer = self._request("POST", path, validate_request_parameters(request),
                               headers=_language(request.accept_language))
        return codec.validate_result(self._expect(answer, "Parameters"))

    def batch_validate(self, requests: Sequence[ValidateCodeRequest | TerminologyError]
                       ) -> list[ValidateCodeResult | TerminologyError]:
        """ValueSet/$batch-validate-code: one result or error per request, in order, as the
        service answers. A request that is an error already is answered by it without asking the
        server; one for a code system (`code_system_url`), which a batch cannot carry, goes to
        CodeSystem/$validate-code on its own. The value set requests share one Accept-Language
        header, so they must agree on `accept_language` (ValueError otherwise)."""
        batched = [r for r in requests if isinstance(r, ValidateCodeRequest) and r.code_system_url is None]
        languages = {r.accept_language for r in batched}
        if len(languages) > 1:
            raise ValueError(f"one batch is sent with one Accept-Language header, not {sorted(map(str, languages))}")
        answers: list[ValidateCodeResult | TerminologyError] = []
        if batched:
            answer = self._request("POST", "ValueSet/$batch-validate-code", batch_request_parameters(batched),
                                   headers=_language(batched[0].accept_language))
            answers = codec.batch_validate_result(self._expect(answer, "Parameters"))
            if len(answers) != len(batched):
                raise _plain_error(f"The server at {self.base_url} answered {len(answers)} validations for "
                                   f"{len(batched)} requests", 502)
        pending = iter(answers)
        results: list[ValidateCodeResult | TerminologyError] = []
        for request in requests:
            if isinstance(request, TerminologyError):
                results.append(request)
            elif request.code_system_url is None:
                results.append(next(pending))
            else:
                try:
                    results.append(self.validate_code(request))
                except ServerUnreachable:
                    raise  # not an answer about this request: the batch fails as a whole, as its POST would
                except TerminologyError as error:
                    results.append(error)
        return results

    def subsumes(self, request: SubsumesRequest) -> SubsumesResult:
        """CodeSystem/$subsumes. The answer carries only the outcome: `system` is the request's (or
        codingA's), `version` the request's (or its codings'), and when it names none, the version
        a $lookup of code A reports, which is the default version the server compared in."""
        answer = self._request("POST", "CodeSystem/$subsumes", subsumes_request_parameters(request))
        parameters = self._expect(answer, "Parameters")
        coding_a, coding_b = request.coding_a, request.coding_b
        system = (coding_a.system if coding_a else None) or request.system or ""
        version = (coding_a.version if coding_a else None) or request.version or (coding_b.version if coding_b else None)
        if version is None:
            code_a = (coding_a.code if coding_a else None) or request.code_a
            version = self.lookup(LookupRequest(system=system, code=code_a)).version
        result = codec.subsumes_result(parameters, system, version)
        # a system named by an alias: the server compared in the code system the alias names
        return dataclasses.replace(result, system=renamed_in(result.issues).get(system, system))

    def expand(self, request: ExpandRequest) -> ExpandResult:
        """ValueSet/$expand. `accept_language` is sent as the Accept-Language header, a
        `max_expansion` other than the default as X-TOO-COSTLY-THRESHOLD (a server applies the
        lower of it and its own limit). Raises UnknownValueSet, UnknownCodeSystem, TooCostly, ..."""
        headers = _language(request.accept_language)
        if request.max_expansion != DEFAULT_MAX_EXPANSION:
            headers["X-TOO-COSTLY-THRESHOLD"] = str(request.max_expansion)
        answer = self._request("POST", "ValueSet/$expand", expand_request_parameters(request), headers=headers)
        # to_r5 restores the R5 elements an R4 answer carries as cross-version extensions (the
        # expansion's properties) and leaves an R5 ValueSet as it is.
        return expansion_codec.expand_result(to_r5(self._expect(answer, "ValueSet")))

    # --- resources ---

    def read(self, resource_type: str, resource_id: str) -> ResourceEntry:
        """`GET {type}/{id}`: the resource (in R5 form, whatever the endpoint's version) and its
        identity; NotFound if absent."""
        return self._entry(self.resource(resource_type, resource_id))

    def search(self, resource_type: str, criteria: Mapping[str, str] | Sequence[Criterion]) -> list[ResourceEntry]:
        """`GET {type}?criteria`: by _id, url (or url|version), version, name, title, status,
        publisher, description; every match in R5 form, the server's pages followed by their
        `next` links. (A server lists a large CodeSystem without its concepts: read it.)"""
        path = quote(resource_type, safe="")
        query: list[tuple[str, str]] = search_query(criteria)
        found: list[ResourceEntry] = []
        while True:
            bundle = self._expect(self._request("GET", path, params=query), "Bundle")
            page = [self._entry(entry["resource"]) for entry in _dicts(bundle.get("entry"))
                    if isinstance(entry.get("resource"), dict)]
            found += page
            following = next((link.get("url") for link in _dicts(bundle.get("link")) if link.get("relation") == "next"),
                             None)
            if not page or not isinstance(following, str):
                return found
            # The query of the next link, on this client's own base: the server's may name another host.
            query = parse_qsl(urlsplit(following).query, keep_blank_values=True)

    def metadata(self) -> TerminologyMetadata:
        """The code systems the server serves, each with its versions (the default first), from
        `GET metadata?mode=terminology`."""
        return _metadata(self._expect(self.capabilities(mode="terminology"), "TerminologyCapabilities"))

    def resource(self, resource_type: str, resource_id: str) -> JSON:
        """`GET {type}/{id}`: the resource as the endpoint's FHIR version renders it; NotFound if absent."""
        return self._request("GET", f"{quote(resource_type, safe='')}/{quote(resource_id, safe='')}")

    def capabilities(self, mode: str | None = None) -> JSON:
        """`GET metadata`: the CapabilityStatement, or with mode="terminology" the TerminologyCapabilities."""
        return self._request("GET", "metadata", params={"mode": mode} if mode else None)

    @cached_property
    def _endpoint_version(self) -> FhirVersion | None:
        """The endpoint's FHIR version, from its CapabilityStatement (asked once, when first needed)."""
        return version_of_release(str(self.capabilities().get("fhirVersion") or ""))

    def _entry(self, resource: JSON) -> ResourceEntry:
        """A resource of the endpoint as a ResourceEntry of its R5 form. to_r5 leaves an R5
        CodeSystem or ValueSet as it is, but the R4 and R5 ConceptMaps differ (equivalence and
        relationship): only an R4 endpoint's ConceptMap is converted."""
        if resource.get("resourceType") != "ConceptMap" or self._endpoint_version is FhirVersion.R4:
            resource = to_r5(resource)
        return compile_resource_entry(resource)

    # --- HTTP ---

    def _expect(self, answer: JSON, resource_type: str) -> JSON:
        if answer.get("resourceType") != resource_type:
            found = answer.get("resourceType") or "JSON object without resourceType"
            raise _plain_error(f"The server at {self.base_url} answered with a {found}, not a {resource_type} "
                               "resource", 502)
        return answer

    def _request(self, method: str, path: str, body: JSON | None = None,
                 params: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
                 headers: Mapping[str, str] | None = None) -> JSON:
        """One HTTP exchange: the JSON resource of a 2xx answer, else the matching TerminologyError."""
        sent = {"Accept": FHIR_JSON, **(headers or {})}
        data = None
        if body is not None:
            sent["Content-Type"] = FHIR_JSON
            data = json.dumps(body).encode()
        try:
            response = self.session.request(method, f"{self.base_url}/{path}", params=params, data=data,
                                            headers=sent, timeout=self.timeout)
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

    def load(self, data: bytes, name: str | None = None) -> JSON:
        """Load FHIR JSON, a Bundle, gzipped JSON or a FHIR package; the server's OperationOutcome."""
        return self._request("POST", self.url, data=data, params={"name": name} if name else None)

    def unload(self, name: str) -> JSON:
        return self._request("DELETE", f"{self.url}/{quote(name, safe='')}")

    def loaded(self) -> JSON:
        return self._request("GET", self.url)

    def _request(self, method: str, url: str, data: bytes | None = None,
                 params: Mapping[str, str] | None = None) -> JSON:
        headers = dict(self.headers, **({"Content-Type": "application/octet-stream"} if data is not None else {}))
        try:
            response = requests.request(method, url, headers=headers, timeout=self.timeout, data=data, params=params)
        except requests.RequestException as error:
            raise ServerUnreachable("SERVER_UNREACHABLE", url=url, reason=_reason(error)) from error
        return _document(response)
