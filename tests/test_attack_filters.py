"""Filters that cost what they should: the $expand text filter (a limited number of words, of
limited length, matched at one substring test per word and member at most) and regex filters
(RE2: time linear in the value, whatever the pattern).

First the attacks, against a real server (`fhir-plugin serve` with two workers, as `make serve`
runs it): each is answered with its exact status, issue code and message id within
ATTACK_SECONDS, and a $lookup of CPT 97116 sent on another connection meanwhile is answered too.
Before RE2 and the limits, a filter of 10,000 words and a regex `(.|.)*#` over ICD-10-CM each
held a worker until gunicorn killed it (a 500 after 30 s). Then in-process tests of the limits
and of the RE2 semantics.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import re2
import requests
from helpers import CPT, DISPLAY_97116, ICD, MESSAGE_ID_URL, assert_outcome, ok_json, param, parameters
from live_server import LiveServer, running_server

from fhir_plugin import TerminologyService, create_app
from fhir_plugin.client import TerminologyClient
from fhir_plugin.config import load_settings
from fhir_plugin.errors import NotSupported, TooCostly
from fhir_plugin.render.expansion import value_set as rendered
from fhir_plugin.terminology.expand import filter_words
from fhir_plugin.terminology.models import ExpandRequest
from fhir_plugin.terminology.patterns import MAX_PATTERN_LENGTH, MAX_PROGRAM_SIZE, compile_pattern
from fhir_plugin.terminology.registry import Registry

ATTACK_SECONDS = 10.0  # generous: each attack below is answered in well under a second or two
BAD = "http://example.org/fhir/CodeSystem/regex-attack"
A60, A59B = "a" * 60, "a" * 59 + "b"
# 60-character codes, and displays of 40 x's: the inputs on which a backtracking engine explodes
ATTACK_CODE_SYSTEM = {
    "resourceType": "CodeSystem", "id": "regex-attack", "url": BAD, "version": "1", "status": "active",
    "content": "complete", "concept": [
        {"code": A60, "display": "x" * 40},
        {"code": A59B, "display": "x" * 40 + "y"},
        {"code": "a" * 59 + "!", "display": "x" * 39 + "!"}]}


def regex_value_set(system: str, prop: str, pattern: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "ValueSet", "status": "active", **extra, "compose": {"include": [
        {"system": system, "filter": [{"property": prop, "op": "regex", "value": pattern}]}]}}


WHOLE_ICD = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [{"system": ICD}]}}
FILTER_EXPRESSION = "ValueSet.compose.include[0].filter[0].value"


def not_supported_text(pattern: str, reason: str) -> str:
    return (f"The regex filter '{pattern}' cannot be matched by this server (RE2 syntax, without backreferences or "
            f"lookaround): {reason}")


# --- attacks on a real server --------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with running_server(workers=2) as live:
        yield live


def _lookup_97116(server: LiveServer) -> requests.Response:
    return requests.get(f"{server.r4}/CodeSystem/$lookup", params={"system": CPT, "code": "97116"},
                        timeout=ATTACK_SECONDS)


def attack(server: LiveServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST `body` to /r4`path`; meanwhile, on another connection, look up CPT 97116. Both must be
    answered within ATTACK_SECONDS; returns the attack's status and body."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        started = time.monotonic()
        pending = pool.submit(requests.post, f"{server.r4}{path}", json=body, timeout=ATTACK_SECONDS)
        lookup = _lookup_97116(server)
        response = pending.result()
        elapsed = time.monotonic() - started
    assert lookup.status_code == 200
    assert {"name": "display", "valueString": DISPLAY_97116} in lookup.json()["parameter"]
    assert elapsed < ATTACK_SECONDS, elapsed
    log = server.output()
    assert "Traceback" not in log and "WORKER TIMEOUT" not in log
    return {"status": response.status_code, "body": response.json()}


def outcome(message_id: str, issue_code: str, text: str, expression: str) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [{
        "extension": [{"url": MESSAGE_ID_URL, "valueString": message_id}], "severity": "error", "code": issue_code,
        "details": {"text": text}, "expression": [expression]}]}


def expand_body(value_set: dict[str, Any], *more: dict[str, Any]) -> dict[str, Any]:
    return parameters(param("valueSet", resource=value_set), param("tx-resource", resource=ATTACK_CODE_SYSTEM), *more)


@pytest.mark.parametrize("text, count", [
    ("a " * 10_000, 10_000),  # 20 KB: 5.4 s for 1,000 of them before, a killed worker for 10,000
    (" ".join(f"w{n}" for n in range(1_001)), 1_001),
    ("a " * 41, 41),
], ids=["10000-words", "1001-distinct-words", "41-words"])
def test_a_filter_of_too_many_words_is_too_costly(server, text, count):
    answer = attack(server, "/ValueSet/$expand", parameters(param("valueSet", resource=WHOLE_ICD),
                                                            param("filter", valueString=text)))
    assert answer == {"status": 400, "body": outcome(
        "FILTER_TOO_MANY_WORDS", "too-costly", f"The filter has {count} words; this server accepts at most 40",
        "filter")}


@pytest.mark.parametrize("text, length", [
    ("gait " + "a" * 101, 101),
    ("gait " + "b" * 100_000, 100_000),
    ("#" * 101, 101),  # no word at all: the filter is matched as it is, and is that long
], ids=["101", "100000", "no-word-101"])
def test_a_filter_with_an_over_long_word_is_too_costly(server, text, length):
    answer = attack(server, "/ValueSet/$expand", parameters(param("valueSet", resource=WHOLE_ICD),
                                                            param("filter", valueString=text)))
    assert answer == {"status": 400, "body": outcome(
        "FILTER_WORD_TOO_LONG", "too-costly",
        f"The filter has a word of {length} characters; this server accepts at most 100", "filter")}


def test_forty_words_are_answered(server):
    """A whole display pasted as the filter (the longest ICD-10-CM display has 31 words)."""
    text = " ".join(["unspecified"] * 39 + ["gait"])
    answer = attack(server, "/ValueSet/$expand", parameters(param("valueSet", resource=WHOLE_ICD),
                                                            param("filter", valueString=text)))
    assert answer["status"] == 200
    assert answer["body"]["expansion"]["total"] == 1
    assert [c["code"] for c in answer["body"]["expansion"]["contains"]] == ["R26.9"]


def test_a_backtracking_regex_over_the_displays_of_icd_10_cm(server):
    """The request that held a worker for 30 s: RE2 answers it (no display holds a #)."""
    answer = attack(server, "/ValueSet/$expand",
                    parameters(param("valueSet", resource=regex_value_set(ICD, "display", "(.|.)*#"))))
    assert answer["status"] == 200
    assert answer["body"]["expansion"]["total"] == 0


@pytest.mark.parametrize("prop, pattern, matched", [
    ("code", "(a|a)*b", [A59B]),
    ("code", "(a|aa)*b", [A59B]),
    ("display", "(x+x+)+y", [A59B]),
    ("code", "(a+)+", [A60]),
])
def test_backtracking_regexes_on_a_tx_resource_code_system(server, prop, pattern, matched):
    answer = attack(server, "/ValueSet/$expand", expand_body(regex_value_set(BAD, prop, pattern)))
    assert answer["status"] == 200
    assert [c["code"] for c in answer["body"]["expansion"]["contains"]] == matched


def test_a_backtracking_regex_of_a_tx_resource_value_set_in_validate_code(server):
    value_set = regex_value_set(BAD, "code", "(a|aa)*b", url="http://example.org/fhir/ValueSet/regex-attack")
    answer = attack(server, "/ValueSet/$validate-code", parameters(
        param("url", valueUri=value_set["url"]), param("code", valueCode=A60), param("system", valueUri=BAD),
        param("tx-resource", resource=ATTACK_CODE_SYSTEM), param("tx-resource", resource=value_set)))
    assert answer["status"] == 200
    assert answer["body"]["parameter"][0] == {"name": "result", "valueBoolean": False}


@pytest.mark.parametrize("pattern, reason", [
    (r"(a)\1", r"invalid escape sequence: \1"),
    ("(?=a)a*b", "invalid perl operator: (?="),
    ("(?<=a)b", "invalid perl operator: (?<="),
])
def test_a_regex_re2_cannot_run_is_not_supported(server, pattern, reason):
    answer = attack(server, "/ValueSet/$expand", expand_body(regex_value_set(BAD, "code", pattern)))
    assert answer == {"status": 400, "body": outcome("REGEX_NOT_SUPPORTED", "not-supported",
                                                     not_supported_text(pattern, reason), FILTER_EXPRESSION)}


def test_an_over_long_or_too_complex_regex_is_too_costly(server):
    long = attack(server, "/ValueSet/$expand", expand_body(regex_value_set(BAD, "code", "a" * 5_000)))
    assert long == {"status": 400, "body": outcome(
        "REGEX_TOO_LONG", "too-costly", "The regex filter has 5000 characters; this server accepts at most 1000",
        FILTER_EXPRESSION)}
    complex_ = attack(server, "/ValueSet/$expand", expand_body(regex_value_set(BAD, "code", ".{0,200}")))
    assert complex_ == {"status": 400, "body": outcome(
        "REGEX_TOO_COMPLEX", "too-costly",
        "The regex filter '.{0,200}' is too complex to match: 1804 RE2 instructions; this server accepts at most 500",
        FILTER_EXPRESSION)}


def test_the_client_gets_the_errors_the_library_raises(server, service):
    request = ExpandRequest(value_set=WHOLE_ICD, filter="a " * 41)
    with TerminologyClient(server.r5) as client:
        with pytest.raises(TooCostly) as remote:
            client.expand(request)
        with pytest.raises(NotSupported) as remote_regex:
            client.expand(ExpandRequest(value_set=regex_value_set(ICD, "code", r"(a)\1")))
    with pytest.raises(TooCostly) as local:
        service.expand(request)
    assert (remote.value.message_id, remote.value.text) == (local.value.message_id, local.value.text) == (
        "FILTER_TOO_MANY_WORDS", "The filter has 41 words; this server accepts at most 40")
    assert remote_regex.value.message_id == "REGEX_NOT_SUPPORTED"
    assert remote_regex.value.fields == {"pattern": r"(a)\1", "reason": r"invalid escape sequence: \1"}


# --- the text filter's limits, in process --------------------------------------------------------


def test_the_limits_are_settings_with_generous_defaults():
    defaults = load_settings(environ={})
    assert (defaults["FHIR_PLUGIN_MAX_FILTER_WORDS"], defaults["FHIR_PLUGIN_MAX_FILTER_WORD_LENGTH"]) == (40, 100)
    assert ExpandRequest().max_filter_words == 40 and ExpandRequest().max_filter_word_length == 100
    given = load_settings(environ={"FHIR_PLUGIN_MAX_FILTER_WORDS": "3", "FHIR_PLUGIN_MAX_FILTER_WORD_LENGTH": "8"})
    assert (given["FHIR_PLUGIN_MAX_FILTER_WORDS"], given["FHIR_PLUGIN_MAX_FILTER_WORD_LENGTH"]) == (3, 8)


@pytest.fixture
def small_limits(service):
    return create_app({"FHIR_PLUGIN_MAX_FILTER_WORDS": 3, "FHIR_PLUGIN_MAX_FILTER_WORD_LENGTH": 8},
                      service=service).test_client()


@pytest.mark.parametrize("version", ["r4", "r5"])
def test_at_the_limits_a_filter_is_answered_beyond_them_refused(small_limits, version):
    def expand(text: str):
        return small_limits.post(f"/{version}/ValueSet/$expand", json=parameters(
            param("valueSet", resource=WHOLE_ICD), param("filter", valueString=text), param("count", valueInteger=3)))

    answered = ok_json(expand("difficul in walking"), version)["expansion"]
    assert (answered["total"], [c["code"] for c in answered["contains"]]) == (1, ["R26.2"])
    issue = assert_outcome(expand("difficul in walking x"), 400, "too-costly",
                           "The filter has 4 words; this server accepts at most 3", "FILTER_TOO_MANY_WORDS")
    assert issue["expression"] == ["filter"]
    assert_outcome(expand("difficult"), 400, "too-costly",
                   "The filter has a word of 9 characters; this server accepts at most 8", "FILTER_WORD_TOO_LONG")


def test_the_engine_applies_the_limits_of_the_request(service):
    with pytest.raises(TooCostly) as refused:
        service.expand(ExpandRequest(value_set=WHOLE_ICD, filter="gait abnormal", max_filter_words=1))
    assert (refused.value.message_id, refused.value.fields, refused.value.expression) == (
        "FILTER_TOO_MANY_WORDS", {"count": 2, "limit": 1}, "filter")
    with pytest.raises(TooCostly) as long:
        service.expand(ExpandRequest(value_set=WHOLE_ICD, filter="gait", max_filter_word_length=3))
    assert (long.value.message_id, long.value.fields) == ("FILTER_WORD_TOO_LONG", {"length": 4, "limit": 3})


def test_repeated_and_implied_words_are_searched_for_once():
    """Every member examined costs one substring test per word left: 10,000 a's are one word."""
    def searched(text: str) -> list[str]:
        return filter_words(ExpandRequest(filter=text, max_filter_words=100_000))

    assert searched("a " * 10_000) == ["a"]
    assert searched("Dis disease DISEASE d") == ["disease"]  # "dis" and "d" start "disease": implied
    assert searched("gait abnormal ab walk") == ["abnormal", "gait", "walk"]  # longest (most selective) first
    assert searched("🙂") == ["🙂"]  # no word at all: matched as it is


def test_implied_words_do_not_change_the_answer(service):
    def codes(text: str) -> list[str]:
        found = rendered(service.expand(ExpandRequest(value_set=WHOLE_ICD, filter=text, count=400)))["expansion"]
        return [c["code"] for c in found.get("contains", [])]

    assert codes("abnormal gait") == ["R26", "R26.8", "R26.89", "R26.9"]
    assert codes("ab abnorm abnormal gait ga") == codes("abnormal gait") == codes("gait " * 30 + "abnormal")
    assert codes("hemipleg unspec") == codes("unspec hemipleg hemi un")


# --- regex filters: RE2 semantics, in process ---------------------------------------------------

SAMPLES = {"resourceType": "CodeSystem", "url": "http://example.org/fhir/CodeSystem/samples", "version": "1",
           "status": "active", "content": "complete", "concept": [
               {"code": "code", "display": "Code"}, {"code": "code1", "display": "Code one"},
               {"code": "PATH.X", "display": "Path"}, {"code": "MOLPATH", "display": "Molecular"},
               {"code": "123", "display": "Digits"}, {"code": "١٢٣", "display": "Arabic-Indic digits"},
               {"code": "café", "display": "Café"}, {"code": "line\nbreak", "display": "Two lines"}]}


SAMPLE_SERVICE = TerminologyService(Registry([SAMPLES]))


def matched(pattern: str, prop: str = "code") -> list[str]:
    value_set = regex_value_set(SAMPLES["url"], prop, pattern)
    found = rendered(SAMPLE_SERVICE.expand(ExpandRequest(value_set=value_set)))["expansion"]
    return [c["code"] for c in found.get("contains", [])]


@pytest.mark.parametrize("pattern, codes", [
    ("code", ["code"]),  # the whole value: not code1
    ("cod", []),
    ("code(.)*", ["code", "code1"]),
    (r"[^ \t\r\n\f]{4}[0-9]", ["code1"]),  # the HL7 tests' pattern
    (r"^PATH(\..*)?|^MOLPATH(\..*)?", ["PATH.X", "MOLPATH"]),  # anchors inside alternatives (HL7 LOINC test)
    (r"code\Z", ["code"]),  # Python's end of text, read as RE2's \z
    (r"\d+", ["123"]),  # ASCII digits, as in Java
    (r"\pN+", ["123", "١٢٣"]),  # Unicode digits by name
    ("caf.", ["café"]),  # a character, not a byte
    ("(?i)CODE", ["code"]),
    ("line.break", []),  # . is not a newline
    ("(?s)line.break", ["line\nbreak"]),
    ("", []),
])
def test_re2_matches_the_whole_value(pattern, codes):
    assert matched(pattern) == codes


def test_a_property_regex_matches_the_display():
    assert matched("(?i)code.*", "display") == ["code", "code1"]


@pytest.mark.parametrize("pattern, reason", [
    (r"(a)\1", r"invalid escape sequence: \1"),
    ("(?=a)", "invalid perl operator: (?="),
    ("(?<!a)b", "invalid perl operator: (?<!"),
    ("(?>a)", "invalid perl operator: (?>"),
    ("a*+", "bad repetition operator: *+"),
    ("(", "missing ): ("),
    ("a{1001}", "invalid repetition size: {1001}"),
])
def test_what_re2_cannot_run_is_refused_with_its_reason(pattern, reason, capfd):
    with pytest.raises(NotSupported) as refused:
        compile_pattern(pattern, "here")
    error = refused.value
    assert (error.status, error.issue_code, error.message_id, error.expression) == (
        400, "not-supported", "REGEX_NOT_SUPPORTED", "here")
    assert error.text == not_supported_text(pattern, reason)
    assert capfd.readouterr() == ("", "")  # RE2 logs nothing: the client has the reason


def test_the_limits_of_a_pattern():
    assert compile_pattern("[a-z]" * 200).fullmatch("a" * 200)  # 1,000 characters, 204 instructions
    with pytest.raises(TooCostly) as long:
        compile_pattern("a" * (MAX_PATTERN_LENGTH + 1))
    assert (long.value.message_id, long.value.fields) == ("REGEX_TOO_LONG", {"length": 1001, "limit": 1000})
    assert compile_pattern(".{0,40}").fullmatch("x" * 40)  # 364 instructions
    with pytest.raises(TooCostly) as complex_:
        compile_pattern(".{0,60}")
    assert (complex_.value.message_id, complex_.value.fields) == (
        "REGEX_TOO_COMPLEX", {"pattern": ".{0,60}", "size": 544, "limit": MAX_PROGRAM_SIZE})


def test_compiled_patterns_are_not_kept_by_re2():
    """re2's own cache would keep 128 patterns of a client's choice, each with up to 8 MiB of DFA."""
    compile_pattern("(x+x+)+y").fullmatch("x" * 40)
    assert re2._Regexp._make.cache_info().currsize == 0
