"""Errors of the FHIR REST wire, before any operation runs: the method, the path, the media types
and the body of a request."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..terminology.errors import InvalidRequest, NotFound, NotSupported, TerminologyError, TooCostly


class InvalidBody(InvalidRequest):
    """A body, query string or `_format` that cannot be read as a FHIR request."""

    messages = {
        "BODY_NOT_JSON": "The request body is not valid JSON: {reason}",
        "BODY_BAD_CODING": "The request body is not valid {coding} data (Content-Encoding): {reason}",
        "BODY_NOT_PARAMETERS": "The request body must be a FHIR Parameters resource, not {found}",
        "BODY_BAD_PARAMETERS": "The Parameters resource is malformed: {reason}",
        "BAD_FORMAT": "Unsupported _format '{format}': use json, application/json, application/fhir+json, xml, "
                      "application/xml, text/xml or application/fhir+xml",
        "BODY_NOT_XML": "The request body is not well-formed XML: {reason}",
        "BODY_XML_DOCTYPE": "The request body has a DOCTYPE: FHIR XML has none, and this server reads no DTD or "
                            "entity declarations",
        "BODY_NOT_FHIR_XML": "The request body is not FHIR XML: {reason}",
    }


class BodyTooDeep(TooCostly):
    """A body nested deeper than FHIR_PLUGIN_MAX_JSON_DEPTH: refused before anything walks it."""

    messages = {"BODY_TOO_DEEP": "The request body nests JSON arrays and objects deeper than the {limit} levels this "
                                 "server accepts",
                "BODY_XML_TOO_DEEP": "The request body nests its XML elements too deep: as FHIR JSON it would nest "
                                     "arrays and objects deeper than the {limit} levels this server accepts"}


class NoSuchEndpoint(NotFound):
    """A path that names nothing. Where the path differs from one that exists only by case, the
    message names that one (FHIR paths are case-sensitive)."""

    messages = {
        "NO_SUCH_PATH": "There is no FHIR endpoint at {path}",
        "NO_SUCH_PATH_CASE": "There is no FHIR endpoint at {path}; paths are case-sensitive: did you mean "
                             "{suggestion}?",
        "NO_SUCH_PATH_BASES": "There is no FHIR endpoint at {path}; the FHIR bases here are {bases}",
        "NO_SUCH_OPERATION": "This server has no operation {operation} on {resource_type}",
        "NO_SUCH_OPERATION_CASE": "This server has no operation {operation} on {resource_type}; paths are "
                                  "case-sensitive: did you mean {suggestion}?",
        "BASE_NOT_READABLE": "{path} is the base of a FHIR {version} endpoint, not something to read: its "
                             "CapabilityStatement is GET {metadata}, and a batch or transaction Bundle is POSTed here",
    }


class MethodNotAllowed(TerminologyError):
    """A method the path does not take; `allow` lists those it takes (the answer's Allow header)."""

    status = 405
    issue_code = "not-supported"
    messages = {"METHOD_NOT_ALLOWED": "Method {method} is not allowed on {path}"}

    def __init__(self, message_id: str, /, *, allow: Sequence[str] = (), **kwargs: Any):
        super().__init__(message_id, **kwargs)
        self.allow = tuple(allow)


class InvalidBundle(InvalidBody):
    """A Bundle POSTed to a FHIR base that is not a batch or transaction this server can read, or one
    of its entries that is not (which spoils only that entry of a batch)."""

    messages = {
        "BUNDLE_NOT_BUNDLE": "The body POSTed to a FHIR base must be a Bundle of type batch or transaction, not "
                             "{found}",
        "BUNDLE_BAD_TYPE": "A Bundle POSTed to a FHIR base must be of type batch or transaction, not {found}",
        "BUNDLE_BAD_ENTRY": "Bundle.entry[{index}] is not a request this server can read: {reason}",
        "BUNDLE_NESTED": "Bundle.entry[{index}] posts a Bundle; a Bundle inside a Bundle is not processed",
    }


class BundleTooCostly(TooCostly):
    """A Bundle with more entries than FHIR_PLUGIN_MAX_BUNDLE_ENTRIES, or whose answers together
    grow beyond what one answer may hold."""

    messages = {
        "BUNDLE_TOO_MANY_ENTRIES": "The Bundle has {count} entries; this server answers at most {limit} in one Bundle",
        "BUNDLE_ANSWER_TOO_LARGE": "The answers to the Bundle's entries come to more than {limit} bytes; send fewer "
                                   "or smaller requests in one Bundle",
    }


class WriteRefused(NotSupported):
    """An entry of a batch or transaction that would change content: this server serves its content
    read-only through FHIR (content is loaded with /admin/content or at start-up)."""

    messages = {
        "BUNDLE_WRITE_REFUSED": "Bundle.entry[{index}] ({method} {url}) would {action} content, which this server "
                                "does not do through FHIR: a batch or transaction may hold reads, searches and "
                                "operations only",
    }


class TransactionFailed(InvalidRequest):
    """A transaction with an entry that failed: nothing of it is answered (FHIR http.html#transaction).
    Its status is the failing entry's; the failing entry's own issues follow this one."""

    issue_code = "processing"
    messages = {
        "TRANSACTION_FAILED": "The transaction failed at Bundle.entry[{index}] ({method} {url}), which answered "
                              "{answered}; a transaction is answered whole or not at all",
    }


class NotAcceptable(TerminologyError):
    status = 406
    issue_code = "not-supported"
    messages = {"NOT_ACCEPTABLE": "Cannot produce '{accept}': this server produces FHIR JSON (application/fhir+json, "
                                  "application/json) and FHIR XML (application/fhir+xml, application/xml, text/xml)"}


class RequestTooLarge(TerminologyError):
    status = 413
    issue_code = "too-long"
    messages = {"BODY_TOO_LARGE": "The request body is larger than the {limit} bytes this server accepts",
                "BODY_INFLATES_TOO_LARGE": "The request body inflates ({coding}) to more than the {limit} bytes this "
                                           "server accepts"}


class UnsupportedMediaType(TerminologyError):
    status = 415
    issue_code = "not-supported"
    messages = {"UNSUPPORTED_MEDIA_TYPE": "Content-Type '{content_type}' is not supported; send application/fhir+json, "
                                          "application/json, application/fhir+xml, application/xml, text/xml or "
                                          "application/x-www-form-urlencoded"}


class UnsupportedContentEncoding(UnsupportedMediaType):
    """A request body in a content coding we cannot read. RFC 9110 section 15.5.16: the answer names
    the codings that would have been accepted, in an Accept-Encoding header."""

    headers = (("Accept-Encoding", "gzip, deflate"),)
    messages = {"UNSUPPORTED_CONTENT_ENCODING": "Content-Encoding '{encoding}' is not supported; send the body "
                                                "uncompressed, or compressed with gzip or deflate"}


class EncodingNotAcceptable(NotAcceptable):
    """Accept-Encoding rules out every coding we can answer in, identity (no compression) included."""

    messages = {"ENCODING_NOT_ACCEPTABLE": "Accept-Encoding '{accept_encoding}' accepts none of identity (no "
                                           "compression), gzip and deflate"}


class InvalidSearch(InvalidRequest):
    """The parameters that shape the answer of a read or a search (_summary, _elements, _count,
    _offset) when they cannot be applied."""

    messages = {
        "SUMMARY_BAD_VALUE": "Parameter '_summary' must be one of true, text, data, count or false, not '{value}'",
        "SUMMARY_COUNT_ON_READ": "_summary=count asks for the number of matches of a search; a read has none",
        "ELEMENT_UNKNOWN": "Unknown element '{element}' in _elements for {resource_type} (Prefer: handling=strict)",
        "PAGE_BAD_VALUE": "Parameter '{parameter}' must be a whole number, 0 or more, not '{value}'",
    }
