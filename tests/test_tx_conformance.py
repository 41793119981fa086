"""The HL7 terminology test suite (../shared/tx-tests, or $FHIR_PLUGIN_TX_TESTS): every test of
the official runner's default run, on R5 (/r5) and R4 (/r4), through the Flask test client.

Tests the server does not pass yet are strict xfails, with the reason given in
conformance/tx-expected-failures.json. When a test starts passing, its xfail fails: regenerate the
list (it keeps the reasons of tests that still fail) with

    fhir-plugin conformance --app --write-expected-failures conformance/tx-expected-failures.json
"""

from __future__ import annotations

import os
from collections import Counter

import pytest

from fhir_plugin import create_app
from fhir_plugin.fhirversions import FhirVersion
from fhir_plugin.txtests.expected import load_expected_failures
from fhir_plugin.txtests.manifest import MANIFEST, default_tests_dir, load_cases
from fhir_plugin.txtests.runner import Runner
from fhir_plugin.txtests.wire import flask_client_transport

TESTS_DIR = default_tests_dir()
if not (TESTS_DIR / MANIFEST).is_file():
    pytest.skip(f"the HL7 terminology tests are not at {TESTS_DIR} (set FHIR_PLUGIN_TX_TESTS)", allow_module_level=True)

CASES = load_cases(TESTS_DIR)
EXPECTED_FAILURES = load_expected_failures()


def _parameters() -> list:
    parameters = []
    for version in (FhirVersion.R5, FhirVersion.R4):
        seen: Counter[str] = Counter()
        for case in CASES:
            seen[case.id] += 1  # the manifest repeats two tests; the runner runs both
            suffix = f"#{seen[case.id]}" if seen[case.id] > 1 else ""
            reason = EXPECTED_FAILURES[version.value].get(case.id)
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            parameters.append(pytest.param(version, case, id=f"{case.id}{suffix}[{version.value}]", marks=marks))
    return parameters


@pytest.fixture(scope="session")
def tx_runners(default_service) -> dict[FhirVersion, Runner]:
    """One app for the session, serving what `make serve` serves (the bundled content, FHIR core and
    HL7 Terminology: the exclude tests expand core's administrative-gender), one runner per endpoint."""
    with pytest.MonkeyPatch.context() as patch:  # the developer's FHIR_PLUGIN_* must not leak in
        for key in [k for k in os.environ if k.startswith("FHIR_PLUGIN_")]:
            patch.delenv(key)
        client = create_app(service=default_service).test_client()
    return {v: Runner(flask_client_transport(client, f"/{v.value.lower()}"), v) for v in FhirVersion}


@pytest.mark.parametrize(("version", "case"), _parameters())
def test_hl7_terminology(tx_runners, version, case):
    result = tx_runners[version].run_case(case)
    assert result.passed, result.message


def test_the_default_run_is_the_official_runners():
    assert len(CASES) == 597
    assert Counter(c.operation for c in CASES) == {
        "validate-code": 406, "expand": 175, "lookup": 5, "cs-validate-code": 5, "translate": 2,
        "batch-validate": 2, "metadata": 1, "term-caps": 1}
    assert sum(c.http_code == "4xx" for c in CASES) == 52


def test_expected_failures_name_tests_of_the_default_run():
    known = {c.id for c in CASES}
    for version, entries in EXPECTED_FAILURES.items():
        assert set(entries) <= known, f"{version}: no such test {sorted(set(entries) - known)}"
        assert all(isinstance(reason, str) and reason.strip() for reason in entries.values())
