"""Bounds on what loading content may cost: no input is trusted to be as small as it looks.

A few kilobytes of gzip can expand to gigabytes (a decompression bomb), so every decompression
here is bounded while it runs, not checked afterwards (`inflate`, also used for request bodies
sent with a Content-Encoding). The bounds are settings
(FHIR_PLUGIN_MAX_PACKAGE_BYTES, FHIR_PLUGIN_MAX_MEMBER_BYTES); their defaults admit our own package
with the complete ICD-10-CM (one member of about 20 MB uncompressed) with room to spare.

A few kilobytes of JSON can nest a thousand levels deep, and much of the code that reads a
resource (validation, conversion between FHIR versions, rendering) walks it recursively, a few
stack frames a level: so every parsed document, a request body as well as a content file, is
measured without recursion (`deeper_than`) before anything else walks it, against
FHIR_PLUGIN_MAX_JSON_DEPTH. The default, 100, is over four times what the deepest content here
needs (the complete ICD-10-CM nests 18 levels, 22 inside a Parameters body; the HL7 terminology
tests at most 12), and a CodeSystem nesting its concepts 40 levels deep, each with designations,
still fits in a request body; the walks then need a recursion limit of about 420 (four frames a
level, measured), far below Python's 1000.

A load into a running server has tighter bounds (LoadBounds: FHIR_PLUGIN_MAX_LOAD_BYTES,
_RESOURCES, _CONCEPTS), checked before anything is validated: it is validated inside a request,
in a worker with a 30-second timeout. Measured on a 2-core machine: validating and compiling costs
about 0.15 ms per small resource and 30-200 us per concept (2 s for 100,000 plain concepts, 19 s
for the complete ICD-10-CM's 98,466 with their properties and designations). The defaults keep a
load to a few seconds; larger content belongs in FHIR_PLUGIN_CONTENT, which is read at start-up.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidContent, LoadTooCostly

MiB = 1024 * 1024
DEFAULT_MAX_PACKAGE_BYTES = 256 * MiB
DEFAULT_MAX_MEMBER_BYTES = 128 * MiB
DEFAULT_MAX_JSON_DEPTH = 100
DEFAULT_MAX_LOAD_BYTES = 16 * MiB
DEFAULT_MAX_LOAD_RESOURCES = 10_000
DEFAULT_MAX_LOAD_CONCEPTS = 50_000
# The core R4 package has about 4,600 files; a tar of millions of empty members is an attack on
# the loader's bookkeeping rather than content.
MAX_MEMBERS = 100_000


@dataclass(frozen=True)
class Limits:
    max_package_bytes: int = DEFAULT_MAX_PACKAGE_BYTES  # all members of one package, uncompressed
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES  # one archive member, or one .json.gz file
    max_members: int = MAX_MEMBERS
    max_json_depth: int = DEFAULT_MAX_JSON_DEPTH  # one JSON document (file, archive member, body)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None = None) -> Limits:
        """The limits of `settings` (by default: FHIR_PLUGIN_* from the environment)."""
        if settings is None:
            from ..config import load_settings

            settings = load_settings()
        return cls(int(settings.get("FHIR_PLUGIN_MAX_PACKAGE_BYTES", DEFAULT_MAX_PACKAGE_BYTES)),
                   int(settings.get("FHIR_PLUGIN_MAX_MEMBER_BYTES", DEFAULT_MAX_MEMBER_BYTES)),
                   max_json_depth=int(settings.get("FHIR_PLUGIN_MAX_JSON_DEPTH", DEFAULT_MAX_JSON_DEPTH)))


def deeper_than(document: object, limit: int) -> bool:
    """Whether `document` (parsed JSON) nests arrays and objects more than `limit` levels deep: `[]`
    and `{}` are one level, a scalar none. Measured level by level, never recursively, so that it is
    safe on any input; it stops at the first level beyond `limit`."""
    level = [document] if isinstance(document, (dict, list)) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        level = [value for node in level for value in (node.values() if isinstance(node, dict) else node)
                 if isinstance(value, (dict, list))]
    return False


def parse_json(text: str | bytes, limit: int) -> object:
    """`json.loads(text)`, refusing (ValueError from json, or DepthError) a document nested deeper
    than `limit` levels. The standard library's parser stops at Python's recursion limit, about a
    thousand levels, with a RecursionError: that is a document too deep as well."""
    try:
        document = json.loads(text)
    except RecursionError:
        raise DepthError(limit) from None
    if deeper_than(document, limit):
        raise DepthError(limit)
    return document


class DepthError(ValueError):
    """A JSON document nested deeper than `limit` levels; each reader turns it into its own error."""

    def __init__(self, limit: int):
        super().__init__(f"nested more than {limit} levels deep")
        self.limit = limit


@dataclass(frozen=True)
class LoadBounds:
    """What one load into a running server may hold: uncompressed bytes, resources (CodeSystem,
    ValueSet, ConceptMap) and concepts (of code systems at any depth, listed in value sets, elements
    of concept maps)."""

    max_bytes: int = DEFAULT_MAX_LOAD_BYTES
    max_resources: int = DEFAULT_MAX_LOAD_RESOURCES
    max_concepts: int = DEFAULT_MAX_LOAD_CONCEPTS

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> LoadBounds:
        return cls(int(settings.get("FHIR_PLUGIN_MAX_LOAD_BYTES", DEFAULT_MAX_LOAD_BYTES)),
                   int(settings.get("FHIR_PLUGIN_MAX_LOAD_RESOURCES", DEFAULT_MAX_LOAD_RESOURCES)),
                   int(settings.get("FHIR_PLUGIN_MAX_LOAD_CONCEPTS", DEFAULT_MAX_LOAD_CONCEPTS)))

    def check_size(self, size: int, origin: str) -> None:
        """Refuse a body of `size` bytes (before it is read, from its Content-Length)."""
        if size > self.max_bytes:
            raise LoadTooCostly("LOAD_TOO_COSTLY", origin=origin, count=size, unit="bytes", limit=self.max_bytes,
                                setting="FHIR_PLUGIN_MAX_LOAD_BYTES")

    def check_bytes(self, data: bytes, origin: str) -> None:
        """Refuse `data` if it, or what it expands to (gzip, a package), is beyond max_bytes. A
        gzip is inflated at most that far, and what it inflates to is counted, not kept."""
        self.check_size(len(data), origin)
        if data[:2] == b"\x1f\x8b" and _inflated_size(data, self.max_bytes) > self.max_bytes:
            raise LoadTooCostly("LOAD_TOO_LARGE", origin=origin, limit=self.max_bytes,
                                setting="FHIR_PLUGIN_MAX_LOAD_BYTES")

    def check_count(self, resources: int, concepts: int, origin: str) -> None:
        if resources > self.max_resources:
            raise LoadTooCostly("LOAD_TOO_COSTLY", origin=origin, count=resources, unit="resources",
                                limit=self.max_resources, setting="FHIR_PLUGIN_MAX_LOAD_RESOURCES")
        if concepts > self.max_concepts:
            raise LoadTooCostly("LOAD_TOO_COSTLY", origin=origin, count=concepts, unit="concepts",
                                limit=self.max_concepts, setting="FHIR_PLUGIN_MAX_LOAD_CONCEPTS")


def _inflated_size(data: bytes, stop: int) -> int:
    """How many bytes gzipped `data` inflates to, counted up to just beyond `stop`. Data that is
    not valid gzip ends the count: the reader refuses it with its own message."""
    total = 0
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            while total <= stop:
                chunk = stream.read(1 << 20)
                if not chunk:
                    break
                total += len(chunk)
    except (OSError, EOFError, zlib.error):
        pass
    return total


class InflateError(ValueError):
    """Compressed data that is not valid, or (`too_large`) that inflates beyond its limit; each
    reader (a content file, a request body) turns it into its own error."""

    def __init__(self, reason: str, too_large: bool = False):
        super().__init__(reason)
        self.reason, self.too_large = reason, too_large


def _is_zlib(data: bytes) -> bool:
    """Whether `data` starts with a zlib header (RFC 1950): deflate, and a check over two bytes."""
    return len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


def inflate(raw: bytes, coding: str, limit: int) -> bytes:
    """`raw` decompressed from `coding` (`gzip`, members one after another as gzip allows; or
    `deflate`, the zlib format, or raw deflate as some clients send it), refusing rather than
    truncating anything that inflates beyond `limit` bytes: zlib is asked for at most limit + 1
    bytes, so no more is ever held, however far the input would expand (a decompression bomb)."""
    wbits = 31 if coding == "gzip" else 15 if _is_zlib(raw) else -15
    out = bytearray()
    rest = raw
    try:
        while True:
            stream = zlib.decompressobj(wbits)
            out += stream.decompress(rest, limit + 1 - len(out))
            if len(out) > limit:
                raise InflateError(f"it inflates to more than {limit} bytes", too_large=True)
            if not stream.eof:
                raise InflateError("it ends before its compressed data does")
            rest = stream.unused_data.lstrip(b"\0") if coding == "gzip" else stream.unused_data
            if not rest:
                return bytes(out)
            if coding != "gzip":
                raise InflateError("data follows the end of its compressed data")
    except zlib.error as error:
        raise InflateError(f"its compressed data is not valid ({error})") from None


def gunzip(raw: bytes, limit: int, origin: str) -> bytes:
    """`raw` gunzipped, refusing (not truncating) anything that expands beyond `limit` bytes."""
    try:
        return inflate(raw, "gzip", limit)
    except InflateError as error:
        if error.too_large:
            raise InvalidContent("CONTENT_TOO_LARGE", origin=origin, limit=limit,
                                 setting="FHIR_PLUGIN_MAX_MEMBER_BYTES") from None
        raise InvalidContent("CONTENT_NOT_JSON", origin=origin, reason=f"not a valid gzip file ({error})") from None


class BoundedReader(io.RawIOBase):
    """A read-only stream that refuses to deliver more than `limit` bytes of `inner`.

    Put between gzip and tarfile, it bounds everything tarfile decompresses, including the parts
    no member size accounts for (pax headers, long names, padding)."""

    def __init__(self, inner: io.BufferedIOBase, limit: int, origin: str):
        self._inner, self._limit, self._origin, self.count = inner, limit, origin, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        wanted = self._limit - self.count + 1 if size is None or size < 0 else min(size, self._limit - self.count + 1)
        data = self._inner.read(wanted)
        self.count += len(data)
        if self.count > self._limit:
            raise InvalidContent("CONTENT_TOO_LARGE", origin=self._origin, limit=self._limit, setting="FHIR_PLUGIN_MAX_PACKAGE_BYTES")
        return data
