"""Content codings (RFC 9110 section 8.4): answers compressed with gzip or deflate for clients that
accept them, and request bodies sent compressed, inflated within the request's size limit.

Answers: Accept-Encoding is read with its weights (section 12.5.3): a coding with q=0 is refused,
`*` stands for any coding not named, identity (no compression) is acceptable unless `identity;q=0`
or `*;q=0` rule it out. An answer of FHIR_PLUGIN_GZIP_MIN_BYTES or more is compressed with the
acceptable coding of the highest weight (gzip first on a tie), unless the client weighs identity
higher; a smaller one only when identity is ruled out; and when nothing is acceptable, the answer
is a 406. Every answer carries `Vary: Accept-Encoding`: its bytes may depend on that header.

The compression is zlib's, at level 6 (LEVEL, below), written here rather than with Flask-Compress:
that extension chooses gzip for `gzip;q=0` (a weight of 0 is read as a preference, not a refusal),
registers itself on the whole host application and its config, keeps compressed answers in an
unbounded dict when given a cache, and needs brotli and zstandard besides; what it would save is
the twenty lines of choose_coding. Compressed answers are kept like any other: the answer cache
(runtime/answers.py) keys on Accept-Encoding and keeps the bytes as sent.

Compression belongs to the app, not to nginx: the app serves embedded in another Flask app and
behind FHIR_PLUGIN_FRONT=none as well, and only the app knows which answers are worth keeping
compressed. nginx passes Accept-Encoding and Content-Encoding through as they are, and its own
gzip is off (server.nginx_config, deploy/nginx.conf), so nothing is compressed twice.

Request bodies: `Content-Encoding: gzip` (or x-gzip) or `deflate` is inflated by
content.limits.inflate, the decompression-bomb guard content loading uses, to at most
FHIR_PLUGIN_MAX_REQUEST_BYTES (413 beyond it; the compressed body is bounded by the same limit
before it is read); a corrupt stream is a 400, any other coding a 415.
"""

from __future__ import annotations

import zlib
from functools import lru_cache

from flask import Request, Response

from ..content.limits import InflateError, inflate
from ..render.errors import EncodingNotAcceptable, InvalidBody, RequestTooLarge, UnsupportedContentEncoding

CODINGS = ("gzip", "deflate")  # what answers may be compressed with, in our order of preference
# zlib's default. Measured on the 2-core development machine: the complete ICD-10-CM read (20 MB
# of JSON) takes 0.05 s at level 1 (to 1.50 MB), 0.13 s at 6 (1.18 MB), 0.40 s at 9 (1.12 MB);
# the 3 KB $lookup of 97116 26 us at 1 (837 bytes), 37 us at 6 (781). Level 6 sends a fifth less
# than level 1, and its cost is paid once per answer: answers are kept as sent (runtime/answers.py).
LEVEL = 6
DEFAULT_MIN_BYTES = 1024
_ALIASES = {"x-gzip": "gzip"}  # RFC 9110 section 8.4.1.3


def _weights(accept_encoding: str) -> dict[str, float]:
    """coding -> weight, from an Accept-Encoding value. A malformed weight is ignored, as if the
    coding had none (as render.formats reads Accept); a coding named twice keeps its highest."""
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, *params = item.split(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        coding = _ALIASES.get(coding, coding)
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    given = float(value)
                except ValueError:
                    continue
                if given == given:  # not NaN
                    quality = min(max(given, 0.0), 1.0)
        weights[coding] = max(quality, weights.get(coding, 0.0))
    return weights


def choose_coding(accept_encoding: str | None, large: bool, refuse: bool = True) -> str | None:
    """The coding to send an answer in: gzip, deflate, or None (identity). `large`: the answer is
    worth compressing. Without an Accept-Encoding header, nothing is compressed. When the client
    accepts neither identity nor our codings, EncodingNotAcceptable (406) unless `refuse` is false
    (for an error answer, which is sent as it is)."""
    if accept_encoding is None:
        return None
    weights = _weights(accept_encoding)
    star = weights.get("*")
    quality = {coding: weights.get(coding, 0.0 if star is None else star) for coding in CODINGS}
    best = max(CODINGS, key=lambda coding: quality[coding])
    identity = weights.get("identity", 1.0 if star is None else star)
    if quality[best] > 0 and (identity <= 0 or large and ("identity" not in weights or quality[best] >= identity)):
        return best
    if identity > 0 or not refuse:
        return None
    raise EncodingNotAcceptable("ENCODING_NOT_ACCEPTABLE", accept_encoding=accept_encoding)


@lru_cache(maxsize=256)  # bounded: a client may send a new header every time
def coding_key(accept_encoding: str | None) -> tuple[str | None, ...] | None:
    """What an answer's bytes depend on in `accept_encoding`, for the answer cache's key: the coding
    of a large answer and of a small one. Headers that differ only in their wording (`identity`,
    none, `gzip;q=0`) share their answers, as a batch entry (which has none) and the same request
    sent alone by a client that says `identity` do. A header that refuses every coding we have is
    its own key: the 406 quotes it."""
    if not accept_encoding:
        return None
    try:
        choose_coding(accept_encoding, True)
    except EncodingNotAcceptable:
        return ("refused", accept_encoding)
    key = (choose_coding(accept_encoding, True, refuse=False), choose_coding(accept_encoding, False, refuse=False))
    return None if key == (None, None) else key


def compress(data: bytes, coding: str) -> bytes:
    """`data` as gzip (a header without name or time, so that equal answers are equal bytes) or as
    deflate (the zlib format, as RFC 9110 section 8.4.1.2 defines it)."""
    return zlib.compress(data, LEVEL, wbits=31 if coding == "gzip" else 15)


def encode(response: Response, accept_encoding: str | None, min_bytes: int, refuse: bool = True) -> Response:
    """`response`, compressed if the client accepts it and it is worth it (see the module), with
    `Vary: Accept-Encoding`. A streamed or already encoded response is left as it is."""
    if response.is_streamed or response.direct_passthrough or "Content-Encoding" in response.headers:
        return response
    vary = response.headers.get("Vary")
    response.headers["Vary"] = f"{vary}, Accept-Encoding" if vary else "Accept-Encoding"
    if not accept_encoding:
        return response
    body = response.get_data()
    large = len(body) >= min_bytes
    if not large and "q=0" not in accept_encoding.replace(" ", "").lower():
        return response  # identity is acceptable, and a small answer is sent as it is: no need to read more
    coding = choose_coding(accept_encoding, large, refuse)
    if coding is not None:
        response.set_data(compress(body, coding))
        response.headers["Content-Encoding"] = coding
    return response


def body_coding(request: Request) -> str | None:
    """The content coding of the request's body (gzip or deflate), None for none (or identity);
    UnsupportedContentEncoding (415) for any other, or for more than one."""
    given = request.headers.get("Content-Encoding")
    if not given:
        return None
    codings = [_ALIASES.get(c, c) for c in (part.strip().lower() for part in given.split(",")) if c and c != "identity"]
    if not codings:
        return None
    if len(codings) == 1 and codings[0] in CODINGS:
        return codings[0]
    raise UnsupportedContentEncoding("UNSUPPORTED_CONTENT_ENCODING", encoding=given)


def inflate_body(data: bytes, coding: str, limit: int) -> bytes:
    """A body sent in `coding`, inflated to at most `limit` bytes: 413 beyond, 400 if corrupt."""
    try:
        return inflate(data, coding, limit)
    except InflateError as error:
        if error.too_large:
            raise RequestTooLarge("BODY_INFLATES_TOO_LARGE", coding=coding, limit=limit) from None
        raise InvalidBody("BODY_BAD_CODING", coding=coding, reason=error.reason) from None
