"""Compression over HTTP (web/compression.py), against real servers (`fhir-plugin serve`, with the
nginx in front when it is installed, and gunicorn alone): gzip and deflate answers decoded are the
plain answers, byte for byte, on R4 and R5; Accept-Encoding with its weights (RFC 9110 section
12.5.3); the size threshold; answers kept compressed in the answer cache; request bodies sent
with Content-Encoding give the same answers as plain ones, within FHIR_PLUGIN_MAX_REQUEST_BYTES;
a decompression bomb is a 413, a corrupt stream a 400, an unknown coding a 415.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from helpers import CPT, ICD, ICD_VS, MESSAGE_ID_URL, param, parameters
from live_server import LiveServer, running_server

from fhir_plugin.nginx_front import find_nginx
from fhir_plugin.web.compression import choose_coding, coding_key

TIMEOUT = 60.0
LIMIT = 1_048_576  # FHIR_PLUGIN_MAX_REQUEST_BYTES, the default
LOOKUP = f"CodeSystem/$lookup?system={CPT}&code=97116"
ANSWERS = [  # (path after the endpoint, whether its answer is above the 1 KiB threshold)
    ("CodeSystem/cpt-97116-fragment", True),
    ("CodeSystem/icd-10-cm?_summary=true", True),
    ("ValueSet?_elements=name,compose", True),
    ("ValueSet?_elements=name,title", False),
    (LOOKUP, True),
    (f"ConceptMap/$translate?system={CPT}&code=97116", True),
    (f"ValueSet/$validate-code?url={ICD_VS}&system={ICD}&code=R26.2", False),
    ("$versions", False),
    ("metadata", True),
    ("CodeSystem/nope", False),  # an error too
]


@dataclass
class Raw:
    status: int
    headers: requests.structures.CaseInsensitiveDict
    body: bytes  # as sent, not decoded


def fetch(url: str, accept_encoding: str | None, method: str = "GET", data: bytes | None = None,
          headers: dict[str, str] | None = None) -> Raw:
    """One exchange, the body as it came over the wire. `accept_encoding` None sends no such header."""
    sent: dict[str, str | None] = {"Accept-Encoding": accept_encoding, **(headers or {})}
    with requests.request(method, url, data=data, headers=sent, stream=True, timeout=TIMEOUT) as response:
        return Raw(response.status_code, response.headers, response.raw.read(decode_content=False))


def decoded(raw: Raw) -> bytes:
    coding = raw.headers.get("Content-Encoding")
    if coding == "gzip":
        return gzip.decompress(raw.body)
    if coding == "deflate":
        return zlib.decompress(raw.body)
    assert coding is None, coding
    return raw.body


def outcome(raw: Raw, status: int, message_id: str, text: str) -> None:
    assert raw.status == status, decoded(raw)[:500]
    issue = json.loads(decoded(raw))["issue"][0]
    assert (issue["details"]["text"], issue["extension"]) == (text, [{"url": MESSAGE_ID_URL, "valueString": message_id}])


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with running_server() as live:
        yield live


# --- answers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path, large", ANSWERS)
@pytest.mark.parametrize("base", ["r4", "r5"])
@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_a_compressed_answer_decoded_is_the_plain_answer(server, base, path, large, coding):
    url = f"{server.url}/{base}/{path}"
    plain = fetch(url, None)
    packed = fetch(url, coding)
    assert packed.status == plain.status
    assert (plain.headers.get("Content-Encoding"), plain.headers["Vary"]) == (None, "Accept-Encoding")
    assert packed.headers.get("Content-Encoding") == (coding if large else None)
    assert packed.headers["Vary"] == "Accept-Encoding"
    assert int(packed.headers["Content-Length"]) == len(packed.body)
    assert decoded(packed) == plain.body
    assert (len(plain.body) >= 1024) == large
    if large:
        assert len(packed.body) < len(plain.body)
    if find_nginx() is not None:  # through the nginx in front, which compresses nothing itself
        assert packed.headers["Server"] == "nginx"


def test_the_complete_icd_10_cm_is_sent_gzipped(server):
    plain = fetch(f"{server.r5}/CodeSystem/icd-10-cm", "identity")
    packed = fetch(f"{server.r5}/CodeSystem/icd-10-cm", "gzip, deflate")
    assert len(plain.body) > 19_000_000 and len(packed.body) < 1_500_000
    assert gzip.decompress(packed.body) == plain.body
    again = fetch(f"{server.r5}/CodeSystem/icd-10-cm", "gzip, deflate")  # kept as sent: the same bytes
    assert again.body == packed.body


CHOICES = [  # Accept-Encoding -> the coding of a large answer, of a small one; "406": none is acceptable
    (None, None, None),
    ("", None, None),
    ("gzip", "gzip", None),
    ("x-gzip", "gzip", None),
    ("deflate", "deflate", None),
    ("GZIP;Q=1", "gzip", None),
    ("deflate, gzip", "gzip", None),  # equal weights: ours first
    ("gzip;q=0.5, deflate;q=0.8", "deflate", None),
    ("gzip;q=0", None, None),
    ("gzip;q=0, deflate", "deflate", None),
    ("gzip;q=abc", "gzip", None),  # a malformed weight is ignored
    ("*", "gzip", None),
    ("*;q=0.5, gzip;q=0", "deflate", None),
    ("identity, gzip;q=0.5", None, None),  # identity preferred
    ("gzip;q=0.5, identity;q=0.5", "gzip", None),
    ("br, zstd", None, None),
    ("identity;q=0, gzip", "gzip", "gzip"),  # identity ruled out: even a small answer is compressed
    ("*;q=0, deflate", "deflate", "deflate"),
    ("identity;q=0", "406", "406"),
    ("*;q=0", "406", "406"),
    ("identity;q=0, gzip;q=0, deflate;q=0.000", "406", "406"),
]


@pytest.mark.parametrize("accept_encoding, large, small", CHOICES)
def test_accept_encoding_over_http(server, accept_encoding, large, small):
    for path, expected in (("CodeSystem/cpt-97116-fragment", large), ("$versions", small)):
        raw = fetch(f"{server.r4}/{path}", accept_encoding)
        assert raw.headers["Vary"] == "Accept-Encoding"
        if expected == "406":
            outcome(raw, 406, "ENCODING_NOT_ACCEPTABLE",
                    f"Accept-Encoding '{accept_encoding}' accepts none of identity (no compression), gzip and deflate")
            assert "Content-Encoding" not in raw.headers
            continue
        assert (raw.status, raw.headers.get("Content-Encoding")) == (200, expected)
        assert json.loads(decoded(raw))["resourceType"] in ("CodeSystem", "Parameters")


@pytest.mark.parametrize("accept_encoding, large, small", CHOICES)
def test_choose_coding(accept_encoding, large, small):
    for is_large, expected in ((True, large), (False, small)):
        if expected == "406":
            with pytest.raises(Exception, match="accepts none of") as caught:
                choose_coding(accept_encoding, is_large)
            assert caught.value.status == 406
            assert choose_coding(accept_encoding, is_large, refuse=False) is None
        else:
            assert choose_coding(accept_encoding, is_large) == expected


def test_answers_are_kept_as_sent_for_each_accept_encoding(server):
    url = f"{server.r4}/{LOOKUP}"
    first = fetch(url, "gzip")
    plain = fetch(url, None)
    deflated = fetch(url, "deflate")
    again = fetch(url, "gzip")
    assert (first.headers["Content-Encoding"], deflated.headers["Content-Encoding"]) == ("gzip", "deflate")
    assert "Content-Encoding" not in plain.headers
    assert again.body == first.body and gzip.decompress(again.body) == plain.body == zlib.decompress(deflated.body)


@pytest.fixture(scope="module")
def threshold(tmp_path_factory) -> Iterator[LiveServer]:
    """FHIR_PLUGIN_GZIP_MIN_BYTES=2000, and two value sets whose reads are 1999 and 2000 bytes."""
    folder = tmp_path_factory.mktemp("threshold")
    for size in (1999, 2000):
        resource = {"resourceType": "ValueSet", "id": f"vs-{size}", "url": f"http://example.org/vs-{size}",
                    "status": "active", "description": ""}
        resource["description"] = "x" * (size - len(json.dumps(resource, separators=(",", ":"))))
        (folder / f"vs-{size}.json").write_text(json.dumps(resource), encoding="utf-8")
    with running_server(settings={"FHIR_PLUGIN_CONTENT": str(folder), "FHIR_PLUGIN_GZIP_MIN_BYTES": "2000"}) as live:
        yield live


@pytest.mark.parametrize("base", ["r4", "r5"])
def test_the_threshold(threshold, base):
    below = fetch(f"{threshold.url}/{base}/ValueSet/vs-1999", "gzip")
    at = fetch(f"{threshold.url}/{base}/ValueSet/vs-2000", "gzip")
    assert (len(below.body), below.headers.get("Content-Encoding")) == (1999, None)
    assert (len(gzip.decompress(at.body)), at.headers["Content-Encoding"]) == (2000, "gzip")


# --- request bodies ------------------------------------------------------------------------------

LOOKUP_BODY = json.dumps(parameters(param("system", valueUri=CPT), param("code", valueCode="97116"))).encode()
VALIDATE_BODY = json.dumps(parameters(param("url", valueUri=ICD_VS), param("system", valueUri=ICD),
                                      param("code", valueCode="R26.2"), param("display", valueString="Wrong"))).encode()
TRANSLATE_BODY = json.dumps(parameters(param("sourceSystem", valueUri=CPT), param("sourceCode", valueCode="97116"),
                                       param("targetSystem", valueUri=ICD))).encode()
BODIES = [("CodeSystem/$lookup", LOOKUP_BODY), ("ValueSet/$validate-code", VALIDATE_BODY),
          ("ConceptMap/$translate", TRANSLATE_BODY)]
PACKERS = {
    "gzip": lambda data: gzip.compress(data),
    "x-gzip": lambda data: gzip.compress(data),
    "deflate": zlib.compress,
    "Deflate": lambda data: zlib.compress(data)[2:-4],  # raw deflate, as some clients send it
    "identity": lambda data: data,
    "gzip, identity": lambda data: gzip.compress(data),
}
FHIR = {"Content-Type": "application/fhir+json"}


@pytest.mark.parametrize("path, body", BODIES)
@pytest.mark.parametrize("base", ["r4", "r5"])
@pytest.mark.parametrize("coding", list(PACKERS))
def test_a_compressed_body_gets_the_plain_answer(server, base, path, body, coding):
    url = f"{server.url}/{base}/{path}"
    plain = fetch(url, None, "POST", body, FHIR)
    packed = fetch(url, None, "POST", PACKERS[coding](body), {**FHIR, "Content-Encoding": coding})
    assert (plain.status, packed.status) == (200, 200)
    assert packed.body == plain.body


def test_a_compressed_form_body(server):
    form = f"system={CPT}&code=97116".encode()
    plain = fetch(f"{server.r4}/CodeSystem/$lookup", None, "POST", form,
                  {"Content-Type": "application/x-www-form-urlencoded"})
    packed = fetch(f"{server.r4}/CodeSystem/$lookup", "gzip", "POST", gzip.compress(form),
                   {"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "gzip"})
    assert plain.status == 200 and gzip.decompress(packed.body) == plain.body


def padded(size: int) -> bytes:
    """A $lookup body of exactly `size` bytes (an unknown parameter pads it; operations ignore those)."""
    head = json.dumps(parameters(param("system", valueUri=CPT), param("code", valueCode="97116"),
                                 param("padding", valueString="")), separators=(",", ":")).encode()
    return head.replace(b'"valueString":""', b'"valueString":"' + b"x" * (size - len(head)) + b'"')


def test_a_body_may_inflate_to_the_limit_and_not_beyond(server):
    at, beyond = padded(LIMIT), padded(LIMIT + 1)
    assert (len(at), len(beyond)) == (LIMIT, LIMIT + 1)
    fine = fetch(f"{server.r4}/CodeSystem/$lookup", None, "POST", gzip.compress(at), {**FHIR, "Content-Encoding": "gzip"})
    assert fine.status == 200
    refused = fetch(f"{server.r4}/CodeSystem/$lookup", None, "POST", gzip.compress(beyond),
                    {**FHIR, "Content-Encoding": "gzip"})
    outcome(refused, 413, "BODY_INFLATES_TOO_LARGE",
            f"The request body inflates (gzip) to more than the {LIMIT} bytes this server accepts")


def bad_gzip_reason(data: bytes) -> str:
    try:
        zlib.decompressobj(31).decompress(data)
    except zlib.error as error:
        return f"its compressed data is not valid ({error})"
    raise AssertionError("zlib took it")


GARBAGE = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + bytes(range(256)) * 4
CORRUPT = [
    ("gzip", gzip.compress(LOOKUP_BODY)[:-6], "it ends before its compressed data does"),
    ("gzip", b"", "it ends before its compressed data does"),
    ("gzip", GARBAGE, bad_gzip_reason(GARBAGE)),
    ("gzip", LOOKUP_BODY, bad_gzip_reason(LOOKUP_BODY)),
    ("deflate", zlib.compress(LOOKUP_BODY) + b"more", "data follows the end of its compressed data"),
    ("deflate", zlib.compress(LOOKUP_BODY)[:-1], "it ends before its compressed data does"),
]


@pytest.mark.parametrize("coding, data, reason", CORRUPT)
def test_a_corrupt_body_is_a_400(server, coding, data, reason):
    raw = fetch(f"{server.r5}/CodeSystem/$lookup", None, "POST", data, {**FHIR, "Content-Encoding": coding})
    outcome(raw, 400, "BODY_BAD_CODING", f"The request body is not valid {coding} data (Content-Encoding): {reason}")


@pytest.mark.parametrize("coding", ["br", "zstd", "compress", "gzip, gzip", "deflate, gzip", "gzip;q=1"])
def test_an_unknown_content_encoding_is_a_415_naming_the_known_ones(server, coding):
    raw = fetch(f"{server.r4}/CodeSystem/$lookup", None, "POST", gzip.compress(LOOKUP_BODY),
                {**FHIR, "Content-Encoding": coding})
    outcome(raw, 415, "UNSUPPORTED_CONTENT_ENCODING",
            f"Content-Encoding '{coding}' is not supported; send the body uncompressed, or compressed with gzip or "
            "deflate")
    assert raw.headers["Accept-Encoding"] == "gzip, deflate"


# --- gunicorn alone ------------------------------------------------------------------------------


def test_compression_without_the_nginx_front():
    with running_server(settings={"FHIR_PLUGIN_FRONT": "none"}) as alone:
        plain = fetch(f"{alone.r4}/CodeSystem/cpt-97116-fragment", None)
        packed = fetch(f"{alone.r4}/CodeSystem/cpt-97116-fragment", "gzip")
        assert "Server" not in packed.headers or packed.headers["Server"] != "nginx"
        assert gzip.decompress(packed.body) == plain.body
        answer = fetch(f"{alone.r4}/CodeSystem/$lookup", None, "POST", gzip.compress(LOOKUP_BODY),
                       {**FHIR, "Content-Encoding": "gzip"})
        assert answer.body == fetch(f"{alone.r4}/{LOOKUP}", None).body


def test_the_answer_cache_keys_on_what_accept_encoding_chooses():
    """Wordings that choose the same codings share a key; a refusing header is its own (the 406 quotes it)."""
    assert coding_key(None) is coding_key("") is coding_key("identity") is coding_key("br, zstd") is None
    assert coding_key("gzip") == coding_key("x-gzip, deflate;q=0.5") == ("gzip", None)
    assert coding_key("identity;q=0, gzip") == ("gzip", "gzip")
    assert coding_key("deflate") == ("deflate", None)
    assert coding_key("*;q=0") == ("refused", "*;q=0") != coding_key("identity;q=0") == ("refused", "identity;q=0")
