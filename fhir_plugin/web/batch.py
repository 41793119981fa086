"""Batch and transaction Bundles POSTed to a FHIR base (FHIR http.html#transaction).

Every entry is a request of its own (a read, a search or an operation, by GET or POST), answered
by the same view and the same `views.answer` as that request sent alone: the answer cache, the
checks, the errors and the rendering are the single request's, so an entry answers exactly what
the request would alone, and a repeated entry is an answer-cache hit. An entry is not a WSGI round
trip: its request is a WSGI environ made from the Bundle's (its headers, less the body's), routed
by the Bundle's URL adapter, made the current request of the Bundle's own request context for the
time of its view, which is called directly (no context to push, no before/after-request hooks, no
response to iterate). Before any of that, an entry whose answer may be kept is looked up in the
answer cache under the key the front door computes (web/front.py): a kept answer costs no request
object, route match or view. Measured in one process, an entry of a kept $validate-code costs
about 19 µs that way, 73 µs through its view. The answers' JSON bytes are spliced into the response Bundle
(render/bundles.py) without being parsed again; an answer in XML is written from that JSON. The
Bundle itself may come in JSON or XML, read as any body is (params.body_document).

The Bundle is bounded as a whole: its body by FHIR_PLUGIN_MAX_REQUEST_BYTES and the JSON depth
limit, its entries by FHIR_PLUGIN_MAX_BUNDLE_ENTRIES, its answers by MAX_ANSWER_BYTES, and its
time by the request's one time budget (FHIR_PLUGIN_TIME_BUDGET_MS), looked at between entries and
inside each (an entry's own budget never reaches past the Bundle's). Running out of time stops the
whole Bundle with too-costly, as it stops $batch-validate-code.

This server changes no content through FHIR, so an entry that would (PUT, PATCH, DELETE, a POST
that is not an operation) is refused; a Bundle inside a Bundle is refused too.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote, unquote_to_bytes

import orjson
from flask import Flask, Request, Response, current_app, request
from flask.globals import request_ctx
from werkzeug.exceptions import HTTPException

from ..fhirversions import FhirVersion
from ..render import bundles
from ..render.errors import BundleTooCostly, InvalidBundle, TransactionFailed, WriteRefused
from ..render.formats import FHIR_JSON, JSON, XML_TYPES, check_body_type, dumps, response_mimetype, write
from ..terminology.budget import check
from ..terminology.errors import OverBudget, TerminologyError
from ..terminology.outcome import error_outcome, transaction_outcome
from .errors import http_error, terminology_error, unexpected_error
from .front import KEY, SERVICE, answer_key, may_be_kept
from .responses import encoded
from .params import body_document, read_body
from .responses import outcome_response

# The answers of one Bundle's entries together: one read of the complete ICD-10-CM (20 MB) fits,
# a Bundle that asks for it over and over does not.
MAX_ANSWER_BYTES = 32 * 1024 * 1024
IN_BUNDLE = "fhir_plugin.in_bundle"  # in the environ of an entry's request
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")  # Bundle.entry.request.method (http-verb)
_WRITES = {"PUT": "update", "PATCH": "patch", "DELETE": "delete", "POST": "create"}
# Of the Bundle's request, an entry's request keeps everything but what describes the Bundle's body
# and how the Bundle's answer is encoded; its answer is JSON, spliced into the Bundle's.
_NOT_INHERITED = frozenset({"wsgi.input", "CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH",
                            "HTTP_CONTENT_ENCODING", "HTTP_TRANSFER_ENCODING", "HTTP_ACCEPT_ENCODING", "HTTP_ACCEPT",
                            "QUERY_STRING", "PATH_INFO", "REQUEST_METHOD", "RAW_URI", "REQUEST_URI",
                            "werkzeug.request"})
_SAFE = "".join(chr(c) for c in range(33, 127))  # printable ASCII stays as written in a query


@dataclass(frozen=True, slots=True)
class EntryRequest:
    index: int
    method: str
    url: str  # Bundle.entry.request.url, as given
    path_info: str  # the path below the base, as WSGI gives a path (decoded, latin-1)
    query: str
    body: bytes | None


Entry = EntryRequest | TerminologyError  # a request, or why the entry cannot be one


def answer(version: FhirVersion, settings: Mapping[str, Any], public_base: str,
           shared: Mapping[str, Any]) -> Response:
    """The answer to the Bundle (JSON or XML) POSTed in the current request to the `version` base.
    `public_base`: this endpoint's base URL as links name it (FHIR_PLUGIN_BASE_URL); `shared`:
    environ entries every entry's request takes from the Bundle's (the service it is answered with)."""
    if request.environ.get(IN_BUNDLE):  # only a POST to the base gets here, and read_entry refuses it
        raise InvalidBundle("BUNDLE_NESTED", index="?")
    mimetype = response_mimetype(request.args.get("_format"), request.headers.get("Accept"))  # 406 before any work
    data = read_body(request, settings["FHIR_PLUGIN_MAX_REQUEST_BYTES"]) or b""
    document = body_document(data, check_body_type(request.content_type), settings["FHIR_PLUGIN_MAX_JSON_DEPTH"],
                             version)
    kind, raw = read_bundle(document, settings["FHIR_PLUGIN_MAX_BUNDLE_ENTRIES"])
    base = _base(request)
    entries = [read_entry(index, item, (base, public_base)) for index, item in enumerate(raw)]
    transaction = kind == "transaction"
    if transaction:  # all or nothing: an entry that cannot run fails it before any runs
        refused = next((e for e in entries if isinstance(e, TerminologyError)), None)
        if refused is not None:
            return _failed(refused, raw, refused.status, _outcome_bytes(refused))
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]  # flask types the proxy as a Flask
    environ = _inherited(request.environ, shared)
    parts: list[bytes] = []
    total = 0
    for item in entries:
        check()  # the Bundle's one time budget, between entries
        body: bytes | None
        if isinstance(item, TerminologyError):
            status, body = item.status, _outcome_bytes(item)
        else:
            status, body = run(app, environ, base, item, version)
        if transaction and status >= 400:
            return _failed(item, raw, status, body)
        total += len(body or b"")
        if total > MAX_ANSWER_BYTES:
            raise BundleTooCostly("BUNDLE_ANSWER_TOO_LARGE", limit=MAX_ANSWER_BYTES)
        parts.append(bundles.entry(status, body))
    written = bundles.bundle(bundles.TRANSACTION_RESPONSE if transaction else bundles.BATCH_RESPONSE, parts)
    pretty = request.args.get("_pretty") == "true"
    if pretty or mimetype in XML_TYPES:  # the entries' answers are JSON, spliced: read back only for these
        written = write(orjson.loads(written), mimetype, version, pretty)
    return encoded(Response(written, status=200, mimetype=mimetype))


# --- reading the Bundle ------------------------------------------------------------------------


def read_bundle(document: Any, max_entries: int) -> tuple[str, list[Any]]:
    """The type (batch or transaction) and the entries of the body's document (parsed from JSON or
    XML, within the depth limit); refused as a whole if it is not such a Bundle or has too many
    entries."""
    if not isinstance(document, dict) or document.get("resourceType") != "Bundle":
        found = document.get("resourceType") if isinstance(document, dict) else type(document).__name__
        raise InvalidBundle("BUNDLE_NOT_BUNDLE", found=found or "a JSON object without resourceType")
    kind = document.get("type")
    if kind not in ("batch", "transaction"):
        raise InvalidBundle("BUNDLE_BAD_TYPE", found=repr(kind), expression="Bundle.type")
    raw = document.get("entry", [])
    if not isinstance(raw, list):
        raise InvalidBundle("BUNDLE_BAD_ENTRY", index="*", reason="Bundle.entry must be an array",
                            expression="Bundle.entry")
    if len(raw) > max_entries:
        raise BundleTooCostly("BUNDLE_TOO_MANY_ENTRIES", count=len(raw), limit=max_entries, expression="Bundle.entry")
    return str(kind), raw


def read_entry(index: int, raw: Any, bases: tuple[str, ...]) -> Entry:
    """The request of Bundle.entry[index], or the error that answers it instead. `bases`: this
    endpoint's base URLs (as the client addressed it, as links name it), one of which an absolute
    request.url must start with."""
    try:
        return _entry(index, raw, bases)
    except TerminologyError as error:
        return error


def _bad(index: int, reason: str) -> InvalidBundle:
    return InvalidBundle("BUNDLE_BAD_ENTRY", index=index, reason=reason, expression=f"Bundle.entry[{index}]")


def _entry(index: int, raw: Any, bases: tuple[str, ...]) -> EntryRequest:
    if not isinstance(raw, dict):
        raise _bad(index, "an entry must be a JSON object")
    given = raw.get("request")
    if not isinstance(given, dict):
        raise _bad(index, "it has no request (method and url)")
    method, url = given.get("method"), given.get("url")
    if method not in METHODS:
        raise _bad(index, f"request.method must be one of {', '.join(METHODS)}, not {method!r}")
    if not isinstance(url, str):
        raise _bad(index, "request.url must be a string")
    relative = url
    if "://" in url.split("?", 1)[0]:
        base = next((b for b in bases if url == b or url.startswith((b + "/", b + "?"))), None)
        if base is None:
            raise _bad(index, f"request.url '{url}' is not below this endpoint's base, {bases[0]}")
        relative = url[len(base):]
    path, _, query = relative.partition("?")
    path = path.partition("#")[0].lstrip("/")
    resource = raw.get("resource")
    operation = path.rsplit("/", 1)[-1].startswith("$") or path.endswith("/_search")
    if method == "POST" and (not path or (isinstance(resource, dict) and resource.get("resourceType") == "Bundle")):
        raise InvalidBundle("BUNDLE_NESTED", index=index, expression=f"Bundle.entry[{index}]")
    if method in ("PUT", "PATCH", "DELETE") or (method == "POST" and not operation):
        raise WriteRefused("BUNDLE_WRITE_REFUSED", index=index, method=method, url=url, action=_WRITES[method],
                           expression=f"Bundle.entry[{index}]")
    body = None
    if method == "POST" and resource is not None:
        if not isinstance(resource, dict):
            raise _bad(index, "its resource must be a JSON object (a Parameters resource)")
        body = _json_bytes(resource)
    if query and ("_format" in query or "_pretty" in query):  # the Bundle's format is the answer's
        query = "&".join(p for p in query.split("&") if p.partition("=")[0] not in ("_format", "_pretty"))
    if not query.isascii():
        query = quote(query, safe=_SAFE)
    return EntryRequest(index, method, url, unquote_to_bytes(path).decode("latin-1"), query, body)


def _json_bytes(resource: dict[str, Any]) -> bytes:
    """The entry's resource as the body of its request. What orjson will not write (an integer
    beyond 64 bits, an unpaired surrogate) is written as the standard library writes it, so that the
    request is refused or answered as it would be alone."""
    try:
        return orjson.dumps(resource)
    except orjson.JSONEncodeError:
        return json.dumps(resource, separators=(",", ":")).encode()


# --- running the entries -----------------------------------------------------------------------


def _base(req: Request) -> str:
    """This endpoint's base URL as the client addressed it (an absolute request.url names it)."""
    return req.host_url.rstrip("/") + req.script_root + req.path.rstrip("/")


def _inherited(environ: Mapping[str, Any], shared: Mapping[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in environ.items() if k not in _NOT_INHERITED and not k.startswith("fhir_plugin.")}
    kept.update(shared)
    kept["HTTP_ACCEPT"] = FHIR_JSON
    kept["PATH_INFO"] = environ.get("PATH_INFO", "").rstrip("/")  # the base; an entry's path goes below it
    kept[IN_BUNDLE] = True
    return kept


@contextmanager
def _as_request(sub: Request) -> Iterator[None]:
    """`sub` as the current request (flask.request) for the duration. The Bundle's request context
    is reused, with its app context, URL adapter and session: an entry costs no context of its own,
    and no teardown or before/after-request hook runs for it (they ran for the Bundle)."""
    context = request_ctx._get_current_object()  # type: ignore[attr-defined]  # flask types the proxy as its object
    outer = context.request
    context.request = sub
    try:
        yield
    finally:
        context.request = outer


def run(app: Flask, inherited: Mapping[str, Any], base: str, entry: EntryRequest,
        version: FhirVersion) -> tuple[int, bytes | None]:
    """Answer one entry through the app's own view for its path: (status, the answer's JSON bytes,
    or None when there is none to include, as for HEAD)."""
    environ = dict(inherited)
    environ["REQUEST_METHOD"] = entry.method
    path = environ["PATH_INFO"] = f"{inherited['PATH_INFO']}/{entry.path_info}"
    environ["QUERY_STRING"] = entry.query
    body = entry.body or b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    if entry.body is not None:
        environ["CONTENT_TYPE"] = FHIR_JSON
    answers = app.extensions["fhir_plugin"].runtime.answers
    if answers.size and may_be_kept(path):
        # As the front door looks (web/front.py): a kept answer is the entry's without a request
        # object, a route match or a view (about a tenth of an entry's cost); on a miss the key
        # stays in the environ for views.answer, which counts the miss and keeps the answer.
        key = environ[KEY] = answer_key(environ, environ[SERVICE].registry.token, version, entry.body)
        kept = answers.find(key)
        if kept is not None:
            return _answered(entry, kept.status, kept.content_type.partition(";")[0].strip(), kept.body)
    blueprint = request.blueprint
    adapter = request_ctx.url_adapter  # the Bundle's: the same host and script root
    sub = app.request_class(environ)
    with _as_request(sub):
        try:
            rule, args = adapter.match(path, entry.method, return_rule=True)  # type: ignore[union-attr]  # bound
            sub.url_rule, sub.view_args = rule, dict(args)
            if sub.blueprint != blueprint:  # cannot be: the path is below the base; all the same, never elsewhere
                raise InvalidBundle("BUNDLE_BAD_ENTRY", index=entry.index,
                                    reason=f"request.url '{entry.url}' is not below {base}")
            # every view of the plugin's blueprints answers with a Response (views.handle)
            response = cast(Response, app.view_functions[rule.endpoint](**args))
        except OverBudget:
            raise  # the Bundle's budget is spent: the Bundle stops as a whole
        except TerminologyError as error:
            response = terminology_error(error)
        except HTTPException as error:
            response = http_error(error)
        except Exception as error:  # noqa: BLE001 - a bug answers this entry with a 500, logged, not the Bundle
            response = unexpected_error(error)
    return _answered(entry, response.status_code, response.mimetype or "", response.get_data())


def _answered(entry: EntryRequest, status: int, mimetype: str, data: bytes) -> tuple[int, bytes | None]:
    if entry.method == "HEAD" or mimetype not in (FHIR_JSON, JSON) or not data.startswith(b"{"):
        return status, None
    return status, data


def _outcome_bytes(error: TerminologyError) -> bytes:
    return dumps(error_outcome(error), False)


def _failed(entry: Entry, raw: list[Any], status: int, body: bytes | None) -> Response:
    """The one OperationOutcome of a failed transaction: which entry failed, then its own issues."""
    index = entry.fields.get("index", "?") if isinstance(entry, TerminologyError) else entry.index
    given = raw[index].get("request") if isinstance(index, int) and isinstance(raw[index], dict) else None
    method = given.get("method") if isinstance(given, dict) else None
    url = given.get("url") if isinstance(given, dict) else None
    error = TransactionFailed("TRANSACTION_FAILED", status=status, index=index, method=method, url=url,
                              answered=bundles.status_line(status), expression=f"Bundle.entry[{index}]")
    own = orjson.loads(body) if body else {}
    return outcome_response(request, transaction_outcome(error, own if isinstance(own, dict) else {}), status)
