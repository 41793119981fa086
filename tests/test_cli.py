"""The `fhir-plugin` command: printed answers, --json, exit codes, --server, and `serve` (the live
server these tests talk to is started with `python -m fhir_plugin serve`)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests
from live_server import clean_environ, free_port, live_server  # noqa: F401  (a fixture)

from fhir_plugin import __version__
from fhir_plugin.cli import main
from fhir_plugin.config import bundled_dir

CPT = "http://www.ama-assn.org/go/cpt"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
MAP = "http://fhir-plugin.org/fhir/ConceptMap/cpt-97116-to-icd-10-cm|1.0.0"
D_97116 = "Therapeutic procedure, 1 or more areas, each 15 minutes; gait training (includes stair climbing)"

LOOKUP_97116 = [
    "name: CPT",
    f"system: {CPT}",
    "version: 2026",
    "code: 97116",
    f"display: {D_97116}",
    "definition: A therapy session focused on teaching someone to walk or move better, including practising "
    "steps on stairs. Working with a therapist to improve walking ability: better balance and stair climbing. "
    "Each unit is 15 minutes. It does not cover other therapy or rehabilitation exercises unrelated to walking "
    "or moving.",
    "designations:",
    "  Gait Training (Synonym, en)",
    "  Walking Therapy (Synonym, en)",
    "  Mobility Training (Synonym, en)",
    "  Walking practice session (Operating-room schedule name, en)",
    "  Agreement to perform walking and stair practice (Surgical consent form name, en)",
    "properties:",
    "  modifier = false",
    "  modified = false",
    "  kind = code",
    "  work-rvu = 0.45",
    "  unit-minutes = 15",
    "  inactive = false",
]
LOOKUP_M62_81 = [
    "name: ICD10CM",
    f"system: {ICD}",
    "version: 2026-04-01",
    "code: M62.81",
    "display: Muscle weakness (generalized)",
    "properties:",
    "  parent = M62.8 (Other specified disorders of muscle)",
    "  notSelectable = false",
    "  excludes1 = muscle weakness in sarcopenia (M62.84)",
    "  inactive = false",
]
MATCH_R26_2 = f'match: related-to {ICD}#R26.2 "Difficulty in walking, not elsewhere classified" from map {MAP}'
FORWARD = [
    "result: true",
    f'match: related-to {ICD}#M62.81 "Muscle weakness (generalized)" from map {MAP}',
    MATCH_R26_2,
    f'match: related-to {ICD}#G81.90 "Hemiplegia, unspecified affecting unspecified side" from map {MAP}',
]
PAIR = ["--system", CPT, "--code", "97116", "--target-system", ICD]


@pytest.fixture(autouse=True)
def no_settings_from_the_environment(monkeypatch):
    for key in ("CONTENT", "DEFAULT_VERSION", "HOST", "PORT", "WORKERS", "MAX_REQUEST_BYTES", "BASE_URL"):
        monkeypatch.delenv(f"FHIR_PLUGIN_{key}", raising=False)


def run(capsys, *argv: str) -> tuple[int, list[str], str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def server_answer(endpoint: str, operation: str, parameters: list[dict]) -> dict:
    response = requests.post(f"{endpoint}/{operation}", json={"resourceType": "Parameters", "parameter": parameters},
                             headers={"Content-Type": "application/fhir+json"}, timeout=10)
    with response:
        assert response.status_code == 200
        return response.json()


# --- lookup -------------------------------------------------------------------------------------


def test_lookup_prints_the_concept(capsys):
    assert run(capsys, "lookup", CPT, "97116") == (0, LOOKUP_97116, "")


def test_lookup_prints_parent_with_its_description(capsys):
    assert run(capsys, "lookup", ICD, "M62.81") == (0, LOOKUP_M62_81, "")


def test_lookup_property_filter(capsys):
    code, lines, _ = run(capsys, "lookup", ICD, "M62.81", "--property", "parent", "--property", "inactive")
    assert (code, lines[-3:]) == (0, ["properties:", "  parent = M62.8 (Other specified disorders of muscle)",
                                      "  inactive = false"])


@pytest.mark.parametrize("version", ["R4", "r5"])
def test_lookup_json_is_what_the_server_sends(capsys, live_server, version):  # noqa: F811
    code, lines, err = run(capsys, "lookup", CPT, "97116", "--json", "--fhir-version", version)
    endpoint = live_server.r4 if version == "R4" else live_server.r5
    expected = server_answer(endpoint, "CodeSystem/$lookup",
                             [{"name": "system", "valueUri": CPT}, {"name": "code", "valueCode": "97116"}])
    assert (code, err) == (0, "")
    assert json.loads("\n".join(lines)) == expected
    assert {"name": "property", "part": [{"name": "code", "valueCode": "work-rvu"},
                                         {"name": "value", "valueDecimal": 0.45}]} in expected["parameter"]


def test_lookup_unknown_code_is_exit_2_with_one_line(capsys):
    assert run(capsys, "lookup", CPT, "99999") == (2, [], (
        "error (HTTP 404): Unknown Code '99999' in the CodeSystem 'http://www.ama-assn.org/go/cpt' version "
        "'2026' - note that the code system is labeled as a fragment, so the code may be valid in some other "
        "fragment\n"))


def test_lookup_reads_content_from_fhir_plugin_content(capsys, monkeypatch, tmp_path):
    # only an ICD-10-CM: the small fragment tools/make_resources.py can still write (quick to load)
    subprocess.run([sys.executable, str(bundled_dir("resources").parent / "tools" / "make_resources.py"),
                    "--fragment-dir", str(tmp_path)], check=True, capture_output=True)
    monkeypatch.setenv("FHIR_PLUGIN_CONTENT", str(tmp_path / "CodeSystem-icd-10-cm-fragment.json"))
    assert run(capsys, "lookup", ICD, "M62.81")[:2] == (0, LOOKUP_M62_81)
    assert run(capsys, "lookup", CPT, "97116") == (2, [], (
        "error (HTTP 404): A definition for CodeSystem 'http://www.ama-assn.org/go/cpt' could not be found, so "
        "the code cannot be looked up\n"))


def test_bad_setting_is_exit_2_without_traceback(capsys, monkeypatch):
    monkeypatch.setenv("FHIR_PLUGIN_PORT", "eighty")
    assert run(capsys, "lookup", CPT, "97116") == (2, [], "error: FHIR_PLUGIN_PORT must be an integer, not 'eighty'\n")


def test_usage_error_is_exit_2(capsys):
    code, lines, err = run(capsys, "lookup", CPT)
    assert (code, lines) == (2, [])
    assert err.endswith("fhir-plugin lookup: error: the following arguments are required: code\n")


def test_help_is_exit_0(capsys):
    code, lines, _ = run(capsys, "--help")
    assert code == 0
    assert lines[0].startswith("usage: fhir-plugin ")


# --- translate -----------------------------------------------------------------------------------


def test_translate_forward(capsys):
    assert run(capsys, "translate", "--system", CPT, "--code", "97116") == (0, FORWARD, "")


def test_translate_pair_check_is_true_for_r26_2(capsys):
    assert run(capsys, "translate", *PAIR, "--target-code", "R26.2") == (0, ["result: true", MATCH_R26_2], "")


def test_translate_pair_check_is_false_for_j45_909_with_exit_1(capsys):
    assert run(capsys, "translate", *PAIR, "--target-code", "J45.909") == (1, [
        "result: false",
        f"message: '97116' in '{CPT}' is not mapped to 'J45.909' in '{ICD}'",
    ], "")


def test_translate_r5_reverse_shows_the_source(capsys):
    assert run(capsys, "translate", "--target-system", ICD, "--target-code", "R26.2") == (0, [
        "result: true",
        f'match: related-to {ICD}#R26.2 "Difficulty in walking, not elsewhere classified" '
        f'(source {CPT}#97116 "{D_97116}") from map {MAP}',
    ], "")


def test_translate_r4_reverse(capsys):
    assert run(capsys, "translate", "--system", ICD, "--code", "R26.2", "--reverse") == (0, [
        "result: true", f'match: related-to {CPT}#97116 "{D_97116}" from map {MAP}'], "")


def test_translate_without_a_concept_is_exit_2(capsys):
    code, lines, err = run(capsys, "translate", "--target-system", ICD)
    assert (code, lines) == (2, [])
    assert err.startswith("error (HTTP 400): One (and only one) of code, coding, codeableConcept (R4) or ")


def test_translate_unknown_map_is_exit_2(capsys):
    assert run(capsys, "translate", "--system", CPT, "--code", "97116", "--url", "http://example.org/none") == (
        2, [], "error (HTTP 404): Unable to find ConceptMap 'http://example.org/none'\n")


def test_translate_json_is_what_the_server_sends(capsys, live_server):  # noqa: F811
    code, lines, _ = run(capsys, "translate", "--system", CPT, "--code", "97116", "--json", "--fhir-version", "R4")
    expected = server_answer(live_server.r4, "ConceptMap/$translate",
                             [{"name": "sourceCoding", "valueCoding": {"system": CPT, "code": "97116"}}])
    assert code == 0
    assert json.loads("\n".join(lines)) == expected
    assert expected["parameter"][1]["part"][0] == {"name": "equivalence", "valueCode": "relatedto"}


def test_translate_reverse_json_speaks_r4(capsys, live_server):  # noqa: F811
    code, lines, _ = run(capsys, "translate", "--system", ICD, "--code", "R26.2", "--reverse", "--json",
                         "--fhir-version", "R4")
    expected = server_answer(live_server.r4, "ConceptMap/$translate", [
        {"name": "system", "valueUri": ICD}, {"name": "code", "valueCode": "R26.2"},
        {"name": "reverse", "valueBoolean": True}])
    assert code == 0
    assert json.loads("\n".join(lines)) == expected
    assert {"name": "source", "valueUri": MAP} in expected["parameter"][1]["part"]


def test_translate_false_json_is_exit_1(capsys):
    code, lines, _ = run(capsys, "translate", *PAIR, "--target-code", "J45.909", "--json")
    assert code == 1
    assert json.loads("\n".join(lines)) == {"resourceType": "Parameters", "parameter": [
        {"name": "result", "valueBoolean": False},
        {"name": "message", "valueString": f"'97116' in '{CPT}' is not mapped to 'J45.909' in '{ICD}'"}]}


# --- --server -----------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["r4", "r5"])
def test_lookup_against_the_server_prints_the_same(capsys, live_server, endpoint):  # noqa: F811
    assert run(capsys, "lookup", CPT, "97116", "--server", f"{live_server.url}/{endpoint}") == (0, LOOKUP_97116, "")


def test_translate_pair_against_the_server(capsys, live_server):  # noqa: F811
    server = ["--server", live_server.r5]
    assert run(capsys, "translate", *PAIR, "--target-code", "R26.2", *server) == (0, ["result: true", MATCH_R26_2], "")
    assert run(capsys, "translate", *PAIR, "--target-code", "J45.909", *server)[0] == 1


def test_server_errors_are_exit_2(capsys, live_server):  # noqa: F811
    assert run(capsys, "lookup", CPT, "99999", "--server", live_server.r4) == (2, [], (
        "error (HTTP 404): Unknown Code '99999' in the CodeSystem 'http://www.ama-assn.org/go/cpt' version "
        "'2026' - note that the code system is labeled as a fragment, so the code may be valid in some other "
        "fragment\n"))


def test_unreachable_server_is_exit_2(capsys):
    base = f"http://127.0.0.1:{free_port()}/r4"
    assert run(capsys, "lookup", CPT, "97116", "--server", base) == (2, [], (
        f"error (HTTP 503): Cannot reach the terminology server at {base}: Failed to establish a new "
        "connection: [Errno 111] Connection refused\n"))


# --- the installed command ------------------------------------------------------------------------


def test_python_dash_m_fhir_plugin_lookup():
    done = subprocess.run([sys.executable, "-m", "fhir_plugin", "lookup", CPT, "97116"], capture_output=True,
                          text=True, env=clean_environ(), timeout=60)
    assert (done.returncode, done.stdout.splitlines(), done.stderr) == (0, LOOKUP_97116, "")


def test_serve_printed_its_endpoints(live_server):  # noqa: F811
    lines = live_server.output().splitlines()
    lines = lines[next(n for n, line in enumerate(lines) if " serving on " in line):]  # after the load's progress
    base = live_server.url
    assert lines[:4] == [
        f"fhir-plugin {__version__} serving on {base} with 1 worker(s)",
        f"  R4: {base}/r4",
        f"  R5: {base}/r5",
        f"  R4 (default): {base}/fhir",
    ]
    with requests.get(f"{base}/fhir/metadata", timeout=10) as response:
        assert (response.status_code, response.json()["fhirVersion"]) == (200, "4.0.1")


# --- validate-code, expand, subsumes ---------------------------------------------------------------------
# An in-process run loads the content (about 3 s from the compiled-content cache), a run with --server
# does not: most cases run against the live server, a few in-process, and test_backend.py shows that
# both give the same results.

ICD_VS = "http://fhir-plugin.org/fhir/ValueSet/icd-10-cm-gait-training-diagnoses"
CPT_VS = "http://fhir-plugin.org/fhir/ValueSet/cpt-gait-training"
R26_2 = "Difficulty in walking, not elsewhere classified"
IN_ICD_VS = ["--valueset", ICD_VS, "--system", ICD]
VALID_R26_2 = ["result: true", "code: R26.2", f"system: {ICD}", "version: 2026-04-01", f"display: {R26_2}"]
WRONG_WALKING = (f"Wrong Display Name 'Walking problems' for {ICD}#R26.2. Valid display is '{R26_2}' (en) (for the "
                 "language(s) '--')")
WRONG_R26_2 = ["result: false", "code: R26.2", f"system: {ICD}", "version: 2026-04-01", f"display: {R26_2}",
               f"message: {WRONG_WALKING}", f"issue: error invalid-display at display: {WRONG_WALKING}"]
NOT_IN_VS = f"The provided code '{ICD}#J45.909' was not found in the value set '{ICD_VS}|1.0.0'"
UNKNOWN_R26_99 = f"Unknown code 'R26.99' in the CodeSystem '{ICD}' version '2026-04-01'"
NO_VS = "error (HTTP 404): A definition for the value Set 'http://example.org/none' could not be found\n"


@pytest.fixture(params=["r4", "r5"])
def server(request, live_server):  # noqa: F811
    return ["--server", f"{live_server.url}/{request.param}"]


def test_validate_code_in_a_value_set(capsys):
    assert run(capsys, "validate-code", *IN_ICD_VS, "--code", "R26.2") == (0, VALID_R26_2, "")


def test_validate_code_wrong_display_is_exit_1_with_the_issue(capsys):
    assert run(capsys, "validate-code", *IN_ICD_VS, "--code", "R26.2", "--display", "Walking problems") == (
        1, WRONG_R26_2, "")


def test_validate_code_in_the_code_system(capsys):
    assert run(capsys, "validate-code", "--system", CPT, "--code", "97116", "--version", "2026",
               "--display", "Walking Therapy") == (0, [
        "result: true", "code: 97116", f"system: {CPT}", "version: 2026", f"display: {D_97116}"], "")


def test_validate_code_needs_a_value_set_or_a_code_system(capsys):
    assert run(capsys, "validate-code", "--code", "R26.2") == (
        2, [], "error: give --valueset URL, or --system URL to check the code in that code system\n")


def test_validate_code_against_the_server(capsys, server):
    assert run(capsys, "validate-code", *IN_ICD_VS, "--code", "R26.2", *server) == (0, VALID_R26_2, "")
    assert run(capsys, "validate-code", *IN_ICD_VS, "--code", "R26.2", "--display", "Walking problems",
               *server) == (1, WRONG_R26_2, "")
    assert run(capsys, "validate-code", *IN_ICD_VS, "--code", "J45.909", *server) == (1, [
        "result: false", "code: J45.909", f"system: {ICD}", "version: 2026-04-01",
        "display: Unspecified asthma, uncomplicated", f"message: {NOT_IN_VS}",
        f"issue: error not-in-vs at code: {NOT_IN_VS}"], "")
    assert run(capsys, "validate-code", "--system", ICD, "--code", "R26.99", *server) == (1, [
        "result: false", "code: R26.99", f"system: {ICD}", "version: 2026-04-01", f"message: {UNKNOWN_R26_99}",
        f"issue: error invalid-code at code: {UNKNOWN_R26_99}"], "")
    assert run(capsys, "validate-code", "--valueset", "http://example.org/none", "--system", ICD, "--code", "R26.2",
               *server) == (2, [], NO_VS)


def test_validate_code_json_is_what_the_server_sends(capsys, live_server):  # noqa: F811
    code, lines, _ = run(capsys, "validate-code", *IN_ICD_VS, "--code", "J45.909", "--json", "--fhir-version", "R4",
                         "--server", live_server.r4)
    expected = server_answer(live_server.r4, "ValueSet/$validate-code", [
        {"name": "url", "valueUri": ICD_VS}, {"name": "system", "valueUri": ICD},
        {"name": "code", "valueCode": "J45.909"}])
    assert code == 1
    assert json.loads("\n".join(lines)) == expected
    assert expected["parameter"][0] == {"name": "result", "valueBoolean": False}


EXPAND_ICD_VS = [
    "total: 3",
    f'{ICD}#M62.81 "Muscle weakness (generalized)"',
    f'{ICD}#R26.2 "{R26_2}"',
    f'{ICD}#G81.90 "Hemiplegia, unspecified affecting unspecified side"',
]
EXPAND_CPT_DESIGNATIONS = [
    "total: 1",
    f'{CPT}#97116 "{D_97116}"',
    "    designation: Gait Training (Synonym, en)",
    "    designation: Walking Therapy (Synonym, en)",
    "    designation: Mobility Training (Synonym, en)",
    "    designation: Walking practice session (Operating-room schedule name, en)",
    "    designation: Agreement to perform walking and stair practice (Surgical consent form name, en)",
]
M62_8 = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [
    {"system": ICD, "filter": [{"property": "concept", "op": "is-a", "value": "M62.8"}]}]}}
EXPAND_M62_8 = [
    "total: 10",
    f'{ICD}#M62.8 "Other specified disorders of muscle"',
    f'  {ICD}#M62.81 "Muscle weakness (generalized)"',
    f'  {ICD}#M62.82 "Rhabdomyolysis"',
    f'  {ICD}#M62.83 "Muscle spasm"',
    f'    {ICD}#M62.830 "Muscle spasm of back"',
    f'    {ICD}#M62.831 "Muscle spasm of calf"',
    f'    {ICD}#M62.838 "Other muscle spasm"',
    f'  {ICD}#M62.84 "Sarcopenia"',
    f'  {ICD}#M62.85 "Dysfunction of the multifidus muscles, lumbar region"',
    f'  {ICD}#M62.89 "Other specified disorders of muscle"',
]


@pytest.fixture
def m62_8_file(tmp_path):
    path = tmp_path / "ValueSet-m62-8.json"
    path.write_text(json.dumps(M62_8), encoding="utf-8")
    return str(path)


def test_expand_a_value_set_url(capsys):
    assert run(capsys, "expand", "--url", ICD_VS) == (0, EXPAND_ICD_VS, "")


def test_expand_a_value_set_file_indents_nested_codes(capsys, m62_8_file):
    assert run(capsys, "expand", "--valueset-file", m62_8_file) == (0, EXPAND_M62_8, "")


def test_expand_refuses_a_file_that_is_not_a_value_set(capsys, tmp_path):
    path = tmp_path / "cs.json"
    path.write_text('{"resourceType": "CodeSystem"}', encoding="utf-8")
    assert run(capsys, "expand", "--valueset-file", str(path)) == (
        2, [], "error (HTTP 400): Parameter 'valueSet' must be given as a ValueSet\n")
    missing = tmp_path / "none.json"
    assert run(capsys, "expand", "--valueset-file", str(missing)) == (
        2, [], f"error: {missing}: [Errno 2] No such file or directory: '{missing}'\n")


def test_expand_needs_one_value_set(capsys, m62_8_file):
    message = "error: give one of --url URL and --valueset-file FILE\n"
    assert run(capsys, "expand") == (2, [], message)
    assert run(capsys, "expand", "--url", ICD_VS, "--valueset-file", m62_8_file) == (2, [], message)


def test_expand_against_the_server(capsys, server, m62_8_file):
    assert run(capsys, "expand", "--url", ICD_VS, *server) == (0, EXPAND_ICD_VS, "")
    assert run(capsys, "expand", "--valueset-file", m62_8_file, *server) == (0, EXPAND_M62_8, "")
    assert run(capsys, "expand", "--valueset-file", m62_8_file, "--filter", "weak", *server) == (
        0, ["total: 1", f'{ICD}#M62.81 "Muscle weakness (generalized)"'], "")
    assert run(capsys, "expand", "--url", CPT_VS, "--include-designations", *server) == (
        0, EXPAND_CPT_DESIGNATIONS, "")
    assert run(capsys, "expand", "--url", ICD_VS, "--offset", "1", "--count", "1", *server) == (
        0, ["total: 3", "offset: 1", f'{ICD}#R26.2 "{R26_2}"'], "")
    assert run(capsys, "expand", "--url", "http://example.org/none", *server) == (2, [], NO_VS)


def test_expand_json_is_what_the_server_sends(capsys, live_server):  # noqa: F811
    code, lines, _ = run(capsys, "expand", "--url", ICD_VS, "--json", "--fhir-version", "R4", "--server",
                         live_server.r5)
    printed = json.loads("\n".join(lines))
    expected = server_answer(live_server.r4, "ValueSet/$expand", [{"name": "url", "valueUri": ICD_VS}])
    for answer in (printed, expected):  # new in every expansion
        assert answer["expansion"].pop("identifier").startswith("urn:uuid:")
        assert answer["expansion"].pop("timestamp")
    assert code == 0
    assert printed == expected
    assert [c["code"] for c in expected["expansion"]["contains"]] == ["M62.81", "R26.2", "G81.90"]


def test_subsumes_prints_the_outcome(capsys):
    assert run(capsys, "subsumes", ICD, "M62", "M62.81") == (0, ["outcome: subsumes"], "")


def test_subsumes_json(capsys):
    code, lines, _ = run(capsys, "subsumes", ICD, "M62.81", "M62", "--json")
    assert (code, json.loads("\n".join(lines))) == (0, {"resourceType": "Parameters", "parameter": [
        {"name": "outcome", "valueCode": "subsumed-by"}]})


def test_subsumes_against_the_server(capsys, server):
    for code_a, code_b, outcome in (("M62", "M62.81", "subsumes"), ("M62.81", "M62", "subsumed-by"),
                                    ("R26.2", "M62.81", "not-subsumed"), ("M62.81", "M62.81", "equivalent")):
        assert run(capsys, "subsumes", ICD, code_a, code_b, *server) == (0, [f"outcome: {outcome}"], "")
    assert run(capsys, "subsumes", ICD, "M62", "M62.99", "--version", "2026-04-01", *server) == (
        2, [], f"error (HTTP 404): Unable to find code 'M62.99' in {ICD} version 2026-04-01\n")
    assert run(capsys, "subsumes", "http://example.org/none", "1", "2", *server) == (2, [], (
        "error (HTTP 404): A definition for CodeSystem 'http://example.org/none' could not be found, so the code "
        "cannot be looked up\n"))
