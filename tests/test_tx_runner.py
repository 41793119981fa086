"""The HL7 test runner (fhir_plugin.txtests) around the comparator: manifest, requests, version
detection, running, reporting, the expected-failures list and `fhir-plugin conformance`, on a
small hand-made test folder (the real suite runs in test_tx_conformance.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from live_server import live_server  # noqa: F401  (a fixture)

from fhir_plugin.cli import main
from fhir_plugin.fhirversions import EXT_FILTER_OP, FhirVersion
from fhir_plugin.txtests.expected import load_expected_failures, reason_for, regenerate
from fhir_plugin.txtests.jsontext import loads
from fhir_plugin.txtests.manifest import ENV_TESTS, default_tests_dir, load_cases
from fhir_plugin.txtests.runner import Result, Runner, run, summary_table, totals_line, write_outputs
from fhir_plugin.txtests.wire import RunAborted, build_request, detect_version

CS = {"resourceType": "CodeSystem", "url": "http://example.org/cs", "version": "1", "status": "active",
      "content": "complete", "concept": [{"code": "a", "display": "A"}]}
VS = {"resourceType": "ValueSet", "url": "http://example.org/vs", "status": "active", "compose": {"include": [
    {"system": "http://example.org/cs", "filter": [{"property": "concept", "op": "child-of", "value": "a"}]}]}}
LOOKUP_RESPONSE = {"resourceType": "Parameters", "parameter": [
    {"name": "display", "valueString": "A"}, {"name": "name", "valueString": "$string$"}]}
OUTCOME = {"resourceType": "OperationOutcome", "issue": [
    {"severity": "error", "code": "not-found", "details": {"text": "Unknown code 'zz'"}}]}

MANIFEST = {"suites": [
    {"name": "metadata", "setup": [], "tests": [
        {"name": "metadata", "operation": "metadata", "response": "capstmt.json"},
        {"name": "term-caps", "operation": "term-caps", "response": "capterms.json"}]},
    {"name": "basic", "mode": "general", "setup": ["cs.json", "vs.json"], "tests": [
        {"name": "lookup-ok", "operation": "lookup", "request": "lookup.json", "response": "lookup-response.json"},
        {"name": "lookup-bad", "operation": "lookup", "request": "lookup-bad.json", "response": "outcome.json",
         "http-code": "4xx"},
        {"name": "validate", "operation": "validate-code", "request": "validate.json", "response": "validate-response.json",
         "response:flat": "validate-flat.json", "Accept-Language": "de,*", "profile": "profile.json",
         "header": {"name": "X-Test", "value": "1"}},
        {"name": "tx-only", "mode": "tx.fhir.org", "operation": "lookup", "request": "lookup.json", "response": "x.json"},
        {"name": "off", "disabled": True, "operation": "lookup", "request": "lookup.json", "response": "x.json"},
        {"name": "flat-header", "operation": "lookup", "request": "lookup.json", "response": "lookup-response.json",
         "header": {"name": "X-Flat", "value": "yes", "mode": "flat"}}]},
    {"name": "gated", "mode": "snomed", "setup": [], "tests": [
        {"name": "sct", "operation": "lookup", "request": "lookup.json", "response": "x.json"}]},
]}
FILES = {
    "capstmt.json": {"resourceType": "CapabilityStatement", "fhirVersion": "$version$"},
    "capterms.json": {"resourceType": "TerminologyCapabilities"},
    "cs.json": CS, "vs.json": VS,
    "lookup.json": {"resourceType": "Parameters", "parameter": [
        {"name": "system", "valueUri": "http://example.org/cs"}, {"name": "code", "valueCode": "a"}]},
    "lookup-bad.json": {"resourceType": "Parameters", "parameter": [
        {"name": "system", "valueUri": "http://example.org/cs"}, {"name": "code", "valueCode": "zz"}]},
    "lookup-response.json": LOOKUP_RESPONSE,
    "outcome.json": OUTCOME,
    "validate.json": {"resourceType": "Parameters", "parameter": [
        {"name": "url", "valueUri": "http://example.org/vs"}, {"name": "code", "valueCode": "a"},
        {"name": "count", "valueInteger": 10}, {"name": "abstract", "valueBoolean": False}]},
    "validate-response.json": {"resourceType": "Parameters", "parameter": [{"name": "result", "valueBoolean": True}]},
    "validate-flat.json": {"resourceType": "Parameters", "parameter": [{"name": "result", "valueBoolean": False}]},
    "profile.json": {"resourceType": "Parameters", "parameter": [
        {"name": "check-system-version", "valueCanonical": "http://example.org/cs|1"}]},
    "parameters-default.json": {"resourceType": "Parameters", "parameter": [
        {"name": "uuid", "valueUuid": "urn:uuid:8acdbfdc-e9d2-11ed-a05b-0242ac120003"}]},
}


@pytest.fixture
def tests_dir(tmp_path) -> Path:
    # a UTF-8 BOM at the start, as 54 of the real files have
    (tmp_path / "test-cases.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(MANIFEST).encode())
    for name, content in FILES.items():
        (tmp_path / name).write_text(json.dumps(content), encoding="utf-8")
    return tmp_path


def _case(tests_dir, name, modes=("general",)):
    return next(c for c in load_cases(tests_dir, modes) if c.name == name)


# --- manifest -------------------------------------------------------------------------------------


def test_cases_of_the_default_run(tests_dir):
    ids = [c.id for c in load_cases(tests_dir)]
    assert ids == ["metadata/metadata", "metadata/term-caps", "basic/lookup-ok", "basic/lookup-bad",
                   "basic/validate", "basic/flat-header"]


def test_modes_enable_suites_tests_variants_and_headers(tests_dir):
    ids = [c.id for c in load_cases(tests_dir, {"general", "tx.fhir.org", "snomed"})]
    assert "basic/tx-only" in ids and "gated/sct" in ids and "basic/off" not in ids
    assert [c.id for c in load_cases(tests_dir, {"tx.fhir.org"})] == ["metadata/metadata", "metadata/term-caps"]
    assert _case(tests_dir, "validate").response == "validate-response.json"
    assert _case(tests_dir, "validate", {"general", "flat"}).response == "validate-flat.json"
    assert _case(tests_dir, "flat-header").header is None
    assert _case(tests_dir, "flat-header", {"general", "flat"}).header == ("X-Flat", "yes")


def test_case_defaults_and_options(tests_dir):
    lookup, validate = _case(tests_dir, "lookup-ok"), _case(tests_dir, "validate")
    assert (lookup.profile, lookup.http_code, lookup.accept_language, lookup.header) == \
        ("parameters-default.json", "2xx", None, None)
    assert (validate.profile, validate.accept_language, validate.header) == ("profile.json", "de,*", ("X-Test", "1"))
    assert _case(tests_dir, "lookup-bad").http_code == "4xx"
    assert lookup.setup == ("cs.json", "vs.json")


def test_filter_matches_the_test_id(tests_dir):
    assert [c.id for c in load_cases(tests_dir, filter="basic/lookup")] == ["basic/lookup-ok", "basic/lookup-bad"]


def test_tests_dir_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_TESTS, str(tmp_path))
    assert default_tests_dir() == tmp_path
    monkeypatch.delenv(ENV_TESTS)
    assert default_tests_dir() == Path(__file__).resolve().parents[2] / "shared" / "tx-tests"


# --- requests -------------------------------------------------------------------------------------


def test_post_request_with_setup_and_profile(tests_dir):
    request = build_request(_case(tests_dir, "lookup-ok"), FhirVersion.R5)
    assert (request.method, request.path, request.query) == ("POST", "/CodeSystem/$lookup", ())
    assert request.headers == {"Accept": "application/fhir+json", "X-Request-Id": "txTests:basic/lookup-ok",
                               "Content-Type": "application/fhir+json;charset=UTF-8"}
    body = json.loads(request.body)
    assert [p["name"] for p in body["parameter"]] == ["system", "code", "tx-resource", "tx-resource", "uuid"]
    assert [p["resource"]["resourceType"] for p in body["parameter"][2:4]] == ["CodeSystem", "ValueSet"]
    assert body["parameter"][3]["resource"] == VS


def test_r4_requests_are_converted(tests_dir):
    request = build_request(_case(tests_dir, "lookup-ok"), FhirVersion.R4)
    assert request.headers["Accept"] == "application/fhir+json; fhirVersion=4.0"
    assert request.headers["Content-Type"] == "application/fhir+json; fhirVersion=4.0;charset=UTF-8"
    value_set = json.loads(request.body)["parameter"][3]["resource"]
    assert value_set["compose"]["include"][0]["filter"][0] == {
        "property": "concept", "_op": {"extension": [{"url": EXT_FILTER_OP, "valueCode": "child-of"}]}, "value": "a"}


def test_validate_code_with_only_primitive_parameters_is_a_get(tests_dir):
    case = _case(tests_dir, "validate")
    primitive_only = type(case)(**{**case.__dict__, "setup": ()})
    request = build_request(primitive_only, FhirVersion.R5)
    assert (request.method, request.path, request.body) == ("GET", "/ValueSet/$validate-code", None)
    assert request.query == (("url", "http://example.org/vs"), ("code", "a"), ("count", "10"), ("abstract", "false"),
                             ("check-system-version", "http://example.org/cs|1"))
    assert request.headers == {"Accept": "application/fhir+json", "X-Request-Id": "txTests:basic/validate",
                               "Accept-Language": "de,*", "X-Test": "1"}
    assert build_request(case, FhirVersion.R5).method == "POST"  # tx-resources are not primitive


# --- version detection ----------------------------------------------------------------------------


def fake_server(answers: dict):
    """A transport answering GET/POST by path from `answers` (path -> (status, JSON) or callable)."""
    calls = []

    def send(method, path, headers, body, query):
        calls.append((method, path, dict(query)))
        answer = answers.get(path, (404, OUTCOME))
        if callable(answer):
            answer = answer(method, headers, body, dict(query))
        status, content = answer
        return status, {}, content if isinstance(content, bytes) else json.dumps(content).encode()

    send.calls = calls
    return send


@pytest.mark.parametrize(("answers", "version"), [
    ({"/$versions": (200, {"resourceType": "Parameters", "parameter": [{"name": "default", "valueString": "5.0.0"}]})},
     FhirVersion.R5),
    ({"/$versions": (200, {"default": "5.0"})}, FhirVersion.R5),
    # a valueCode is not read: the runner falls back to /metadata
    ({"/$versions": (200, {"resourceType": "Parameters", "parameter": [{"name": "default", "valueCode": "5.0"}]}),
      "/metadata": (200, {"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1"})}, FhirVersion.R4),
    ({"/metadata": (200, {"resourceType": "CapabilityStatement", "fhirVersion": "5.0.0"})}, FhirVersion.R5),
    ({"/$versions": (200, b"<html>"), "/metadata": (500, b"")}, FhirVersion.R4),  # nothing works: 4.0
])
def test_version_detection(answers, version):
    assert detect_version(fake_server(answers)) is version


def test_version_detection_refuses_old_servers():
    with pytest.raises(RunAborted, match="3.0.2"):
        detect_version(fake_server({"/metadata": (200, {"resourceType": "CapabilityStatement", "fhirVersion": "3.0.2"})}))


# --- running --------------------------------------------------------------------------------------

METADATA = {"/metadata": lambda method, headers, body, query: (200, (
    {"resourceType": "TerminologyCapabilities"} if query.get("mode") == "terminology"
    else {"resourceType": "CapabilityStatement", "fhirVersion": "5.0.0"}))}


def test_run_against_a_fake_server(tests_dir):
    def lookup(method, headers, body, query):
        code = next(p["valueCode"] for p in json.loads(body)["parameter"] if p["name"] == "code")
        if code == "a":
            return 200, {"resourceType": "Parameters", "meta": {"versionId": "1"}, "parameter": [
                {"name": "name", "valueString": "Example"}, {"name": "display", "valueString": "A"}]}
        return 404, {"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "not-found", "details": {"text": "Unknown code 'zz'"}, "diagnostics": "x"}]}

    send = fake_server({**METADATA, "/CodeSystem/$lookup": lookup})
    results = run(send, "R5", tests_dir=tests_dir)
    verdicts = {r.id: (r.passed, r.message) for r in results}
    assert verdicts == {
        "metadata/metadata": (True, None), "metadata/term-caps": (True, None),
        "basic/lookup-ok": (True, None), "basic/lookup-bad": (True, None),
        "basic/validate": (False, 'HTTP status: expected 2xx, got 404; first difference: resourceType: '
                                  'expected "Parameters", got "OperationOutcome"'),
        "basic/flat-header": (True, None)}
    failed = results[4]
    assert failed.expected == loads(json.dumps(FILES["validate-response.json"]))
    assert failed.actual == loads(json.dumps(OUTCOME)) and failed.status == 404
    assert results[0].expected is None and results[0].actual is None  # kept only for failures
    assert totals_line(results) == "5 passed, 1 failed"
    assert summary_table(results) == ("suite     passed  failed  total\n"
                                      "metadata       2       0      2\n"
                                      "basic          3       1      4")


def test_a_server_without_metadata_aborts_the_run(tests_dir):
    with pytest.raises(RunAborted, match="GET /metadata answered HTTP 500"):
        run(fake_server({"/metadata": (500, b"")}), "R5", tests_dir=tests_dir)


def test_a_transport_failure_fails_only_its_test(tests_dir):
    def refuse(*args):
        raise ConnectionError("refused")

    runner = Runner(fake_server({**METADATA, "/CodeSystem/$lookup": refuse}), FhirVersion.R5)
    result = runner.run_case(_case(tests_dir, "lookup-ok"))
    assert (result.passed, result.message) == (False, "POST /CodeSystem/$lookup failed: refused")
    assert runner.run_case(_case(tests_dir, "metadata")).passed


def test_an_unexpected_error_fails_only_its_test(tests_dir):
    def broken(*args):
        raise RuntimeError("boom")

    runner = Runner(fake_server({**METADATA, "/CodeSystem/$lookup": broken}), FhirVersion.R5)
    result = runner.run_case(_case(tests_dir, "lookup-ok"))
    assert (result.passed, result.message) == (False, "runner error: RuntimeError: boom")


def test_a_test_without_a_response_file_fails_only_itself(tests_dir):
    runner = Runner(fake_server(METADATA), FhirVersion.R5)
    result = runner.run_case(replace(_case(tests_dir, "lookup-ok"), response=None))
    assert (result.passed, result.message, result.response_file) == (
        False, "test error: the test names no response file", None)


def test_write_outputs(tests_dir, tmp_path):
    results = run(fake_server(METADATA), "R5", tests_dir=tests_dir)
    out = tmp_path / "out"
    (out / "expected").mkdir(parents=True)
    (out / "expected" / "capstmt.json").write_text("stale")
    write_outputs(results, out)
    # the fake answers every lookup with OUTCOME: only lookup-bad passes besides the metadata
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.json")) == [
        "actual/lookup-response.json", "actual/validate-response.json",
        "expected/lookup-response.json", "expected/validate-response.json", "test-results.json"]
    summary = json.loads((out / "test-results.json").read_text())["tests"]
    assert summary[0] == {"id": "metadata/metadata", "version": "R5", "status": "pass"}
    assert summary[2]["status"] == "fail" and summary[2]["message"].startswith("HTTP status: expected 2xx, got 404")
    assert summary[3] == {"id": "basic/lookup-bad", "version": "R5", "status": "pass"}
    assert json.loads((out / "expected" / "lookup-response.json").read_text()) == LOOKUP_RESPONSE
    assert json.loads((out / "actual" / "lookup-response.json").read_text()) == OUTCOME


# --- the expected-failures list -------------------------------------------------------------------


def _result(test_id, passed, message=None, status=200, actual=None):
    suite, name = test_id.split("/")
    return Result(test_id, suite, name, FhirVersion.R5, passed, message, status=status, actual=actual)


def test_reason_for_a_failure():
    not_there = {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "not-supported", "details": {"text": "Method POST is not allowed on /r5/ValueSet/$expand"}}]}
    assert reason_for(_result("a/b", False, "HTTP status: expected 2xx, got 405; first difference: x", 405, not_there)) == \
        "HTTP 405: Method POST is not allowed on /r5/ValueSet/$expand"
    assert reason_for(_result("a/b", False, "expansion.total: expected 7, got 5")) == "expansion.total: expected 7, got 5"
    assert len(reason_for(_result("a/b", False, "x" * 500))) == 160


def test_regenerate_keeps_reasons_of_tests_that_still_fail():
    existing = {"R5": {"s/still": "hand-written", "s/fixed": "old", "s/gone": "renamed test"}, "R4": {"s/r4": "kept"}}
    results = [_result("s/still", False, "new diff"), _result("s/fixed", True), _result("s/new", False, "a: expected 1, got 2")]
    assert regenerate(existing, {"R5": results}) == {
        "R5": {"s/new": "a: expected 1, got 2", "s/still": "hand-written"}, "R4": {"s/r4": "kept"}}
    # after a filtered run, entries of the tests that did not run stay
    assert regenerate(existing, {"R5": results}, complete=False)["R5"] == {
        "s/gone": "renamed test", "s/new": "a: expected 1, got 2", "s/still": "hand-written"}


# --- fhir-plugin conformance ----------------------------------------------------------------------


def test_conformance_command_on_the_app(tests_dir, tmp_path, capsys):
    assert main(["conformance", "--app", "--tests", str(tests_dir)]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "4 passed, 8 failed"
    assert "app /r5: FHIR 5.0.0, modes general" in out and "app /r4: FHIR 4.0.1, modes general" in out
    assert "metadata       2       0      2" in out

    listing = tmp_path / "failures.json"
    listing.write_text(json.dumps({"R5": {"basic/lookup-ok": "hand-written"}, "R4": {}}))
    assert main(["conformance", "--app", "--fhir-version", "r5", "--tests", str(tests_dir / "test-cases.json"),
                 "--write-expected-failures", str(listing), "--output", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-2:] == ["wrote " + str(listing) + ": 4 R5, 0 R4 expected failures", "2 passed, 4 failed"]
    failures = load_expected_failures(listing)
    assert failures["R5"]["basic/lookup-ok"] == "hand-written"
    assert set(failures["R5"]) == {"basic/lookup-ok", "basic/lookup-bad", "basic/validate", "basic/flat-header"}
    assert (tmp_path / "out" / "actual" / "validate-response.json").is_file()


def test_conformance_command_against_a_live_server(tests_dir, live_server, capsys):  # noqa: F811
    for endpoint, release in ((live_server.r5, "5.0.0"), (live_server.r4, "4.0.1")):
        assert main(["conformance", "--server", endpoint, "--tests", str(tests_dir), "--filter", "metadata/"]) == 0
        out = capsys.readouterr().out
        assert f"{endpoint}: FHIR {release}" in out  # detected from /metadata
        assert out.splitlines()[-1] == "2 passed, 0 failed"


def test_conformance_command_without_a_server_is_exit_2(tests_dir, capsys):
    assert main(["conformance", "--server", "http://127.0.0.1:9/r4", "--tests", str(tests_dir)]) == 2
    assert capsys.readouterr().err.startswith("error: GET /metadata failed")


def test_conformance_command_without_tests_is_exit_2(tmp_path, capsys):
    assert main(["conformance", "--app", "--tests", str(tmp_path)]) == 2
    assert "no test-cases.json" in capsys.readouterr().err
