"""Bounds on what loading content may cost: no input is trusted to be as small as it looks.

A few kilobytes of gzip can expand to gigabytes (a decompression bomb), so every decompression
here is bounded while it runs, not checked afterwards. The bounds are settings
(FHIR_PLUGIN_MAX_PACKAGE_BYTES, FHIR_PLUGIN_MAX_MEMBER_BYTES); their defaults admit our own package
with the complete ICD-10-CM (one member of about 20 MB uncompressed) with room to spare.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidContent

MiB = 1024 * 1024
DEFAULT_MAX_PACKAGE_BYTES = 256 * MiB
DEFAULT_MAX_MEMBER_BYTES = 128 * MiB
# The core R4 package has about 4,600 files; a tar of millions of empty members is an attack on
# the loader's bookkeeping rather than content.
MAX_MEMBERS = 100_000


@dataclass(frozen=True)
class Limits:
    max_package_bytes: int = DEFAULT_MAX_PACKAGE_BYTES  # all members of one package, uncompressed
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES  # one archive member, or one .json.gz file
    max_members: int = MAX_MEMBERS

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None = None) -> Limits:
        """The limits of `settings` (by default: FHIR_PLUGIN_* from the environment)."""
        if settings is None:
            from ..config import load_settings

            settings = load_settings()
        return cls(int(settings.get("FHIR_PLUGIN_MAX_PACKAGE_BYTES", DEFAULT_MAX_PACKAGE_BYTES)),
                   int(settings.get("FHIR_PLUGIN_MAX_MEMBER_BYTES", DEFAULT_MAX_MEMBER_BYTES)))


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
