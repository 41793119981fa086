"""Bounds on what loading content may cost: no input is trusted to be as small as it looks.

A few kilobytes of gzip can expand to gigabytes (a decompression bomb), so every decompression
here is bounded while it runs, not checked afterwards. The bounds are settings
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
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidContent

MiB = 1024 * 1024
DEFAULT_MAX_PACKAGE_BYTES = 256 * MiB
DEFAULT_MAX_MEMBER_BYTES = 128 * MiB
DEFAULT_MAX_JSON_DEPTH = 100
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


def gunzip(raw: bytes, limit: int, origin: str) -> bytes:
    """`raw` gunzipped, refusing (not truncating) anything that expands beyond `limit` bytes."""
    try:
        # GzipFile reads in chunks and handles multi-member files; read(limit + 1) never holds
        # more than limit + 1 bytes, however far the input would expand.
        data = gzip.GzipFile(fileobj=io.BytesIO(raw)).read(limit + 1)
    except (OSError, EOFError, zlib.error) as error:
        raise InvalidContent("CONTENT_NOT_JSON", origin=origin, reason=f"not a valid gzip file ({error})") from None
    if len(data) > limit:
        raise InvalidContent("CONTENT_TOO_LARGE", origin=origin, limit=limit, setting="FHIR_PLUGIN_MAX_MEMBER_BYTES")
    return data


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
