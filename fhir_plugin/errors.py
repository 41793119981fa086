"""The one error hierarchy, gathered from the layers that raise it. Every failure a caller can cause
is a TerminologyError subclass; import any of them from here.

Answers are not errors: "code not in value set", "wrong display" and "no mapping" are results
(HTTP 200, result=false). Errors are malformed requests, unknown resources, unsupported features.

Status table (decided once; tests/test_http_errors.py pins it):

    class                 HTTP  issue code     when
    InvalidRequest        400   invalid        missing, malformed or contradictory parameters
      InvalidBundle       400   invalid        a body POSTed to a base that is not a batch or transaction
                                               Bundle, or an entry of one that is not a request
      TransactionFailed   4xx   processing     a transaction with an entry that failed, with that entry's
                                               status (400 when the entry could not run)
      InvalidValueSet     400   invalid        a value set that cannot be evaluated (filter without value)
      CircularValueSet    400   processing     a value set that imports itself
      VersionCheckFailed  400   exception      check-system-version refuses the version in use
      TooCostly           400   too-costly     an expansion beyond FHIR_PLUGIN_MAX_EXPANSION, more
                                               tx-resource parameters than FHIR_PLUGIN_MAX_TX_RESOURCES,
                                               a text filter of too many or too long words, a regex
                                               filter too long or too complex, JSON nested deeper than
                                               FHIR_PLUGIN_MAX_JSON_DEPTH, a nested expansion or value
                                               set imports nested too deep,
                                               or a load at run time beyond FHIR_PLUGIN_MAX_LOAD_BYTES,
                                               _RESOURCES or _CONCEPTS (LoadTooCostly)
        OverBudget      400   too-costly     work beyond the request's time budget (FHIR_PLUGIN_TIME_BUDGET_MS)
        BundleTooCostly 400   too-costly     a Bundle of more than FHIR_PLUGIN_MAX_BUNDLE_ENTRIES entries, or
                                               whose answers grow too large
    InvalidContent        422   invalid        content that cannot be loaded (startup, later uploads)
    Unauthorized          401   login          an admin endpoint without the right bearer token
    Forbidden             403   forbidden      an admin endpoint while FHIR_PLUGIN_ADMIN_TOKEN is unset
      CsrfRejected        403   forbidden      the web UI's upload form without its CSRF token
    NotSupported          400   not-supported  a parameter or feature this server does not offer (a
                                               regex filter RE2 cannot run)
      WriteRefused        400   not-supported  an entry of a batch or transaction that would change content
    NotFound              404   not-found      an unknown code system, version, code, map, value set,
                                               supplement, resource id or path
    MethodNotAllowed      405   not-supported  e.g. DELETE on an operation
    NotAcceptable         406   not-supported  the client accepts only a format we cannot produce (Turtle, HTML),
                                               or only content codings we cannot (EncodingNotAcceptable)
    RequestTooLarge       413   too-long       body beyond FHIR_PLUGIN_MAX_REQUEST_BYTES, compressed or
                                               once inflated
    UnsupportedMediaType  415   not-supported  the body is in a format we cannot read (plain text, multipart), or
                                               in a content coding we cannot inflate (UnsupportedContentEncoding)
    LoadStoreUnavailable  503   transient      a load or unload while the database of run-time loads
                                               (FHIR_PLUGIN_LOAD_DATABASE) cannot be reached or holds
                                               another schema version; what is served stays served
    ServerUnreachable     503   transient      (client only) the remote server did not answer

Where each is defined: the engine's in fhir_plugin.terminology.errors, loading content in
fhir_plugin.content.errors, the admin endpoints in fhir_plugin.runtime.errors, the REST wire in
fhir_plugin.render.errors, the client's in fhir_plugin.client. The OperationOutcome of an error,
and the message catalogue, are built by fhir_plugin.terminology.outcome.
"""

from __future__ import annotations

from .client import ServerUnreachable
from .content.errors import InvalidContent, LoadTooCostly
from .render.errors import (BodyTooDeep, BundleTooCostly, EncodingNotAcceptable, InvalidBody, InvalidBundle,
                            InvalidSearch, MethodNotAllowed, NoSuchEndpoint, NotAcceptable, RequestTooLarge,
                            TransactionFailed, UnsupportedContentEncoding, UnsupportedMediaType, WriteRefused)
from .runtime.errors import CsrfRejected, Forbidden, InvalidLoadName, LoadStoreUnavailable, Unauthorized, UnknownLoad
from .terminology.errors import (ANSWER_MESSAGES, CircularValueSet, InvalidDisplayLanguage, InvalidRequest,
                                 InvalidValidateRequest, InvalidValueSet, NotFound, NotSupported, OverBudget,
                                 TerminologyError, TooCostly, UnknownCode, UnknownCodeSystem, UnknownConceptMap,
                                 UnknownSupplement, UnknownValueSet, VersionCheckFailed, error_classes)
from .terminology.outcome import catalogue, error_class_for, error_outcome

# Every class of the hierarchy, and the catalogue: message id -> template (errors and answers).
ERROR_CLASSES: tuple[type[TerminologyError], ...] = tuple(error_classes())
MESSAGES: dict[str, str] = catalogue()
# Message ids that only ever appear in answers (issues and messages of result=false answers).
ANSWER_IDS: frozenset[str] = frozenset(ANSWER_MESSAGES)

__all__ = ["ANSWER_IDS", "ERROR_CLASSES", "MESSAGES", "BodyTooDeep", "BundleTooCostly", "CircularValueSet", "CsrfRejected",
           "EncodingNotAcceptable", "Forbidden", "InvalidBody", "InvalidBundle", "InvalidContent", "InvalidSearch",
           "InvalidDisplayLanguage", "InvalidLoadName", "InvalidRequest", "InvalidValidateRequest",
           "InvalidValueSet", "LoadStoreUnavailable", "LoadTooCostly", "MethodNotAllowed", "NoSuchEndpoint", "NotAcceptable", "NotFound",
           "NotSupported", "OverBudget", "RequestTooLarge", "ServerUnreachable", "TerminologyError", "TooCostly",
           "TransactionFailed",
           "Unauthorized", "UnknownCode", "UnknownCodeSystem", "UnknownConceptMap", "UnknownLoad", "UnknownSupplement",
           "UnknownValueSet",
           "UnsupportedContentEncoding", "UnsupportedMediaType", "VersionCheckFailed", "WriteRefused",
           "error_class_for", "error_outcome"]
