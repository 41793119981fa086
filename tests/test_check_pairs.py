"""Bulk pair checks: reading the file (every malformed shape named by its line), the report and
summary, `fhir-plugin check-pairs` locally and against a live server (the same report)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fhir_plugin.cli import main
from fhir_plugin.errors import InvalidRequest
from fhir_plugin.terminology.pairs import Pair, check_pairs, read_pairs, report_csv, summary
from helpers import CPT, ICD, LOINC
from live_server import LiveServer, running_server

PAIRS = ("cpt,icd10cm\n97116,M62.81\n97116,J45.909\n97116,M6281\n97116,NOPE\n99999,R26.2\n\n")
M6281 = (f"'97116' in '{CPT}' is not mapped to 'M6281' in '{ICD}'; Unknown code 'M6281' in the CodeSystem '{ICD}' "
         f"version '2026-04-01'; Did you mean 'M62.81' ('Muscle weakness (generalized)')? The CodeSystem '{ICD}' "
         "writes its codes with a dot and has no code 'M6281'")
REPORT = [
    "line,source_system,source,target_system,target,status,suggestion,message",
    f"2,{CPT},97116,{ICD},M62.81,supported,,",
    f"3,{CPT},97116,{ICD},J45.909,not mapped,,'97116' in '{CPT}' is not mapped to 'J45.909' in '{ICD}'",
    f"4,{CPT},97116,{ICD},M6281,unknown target,M62.81,{M6281}",
    f"5,{CPT},97116,{ICD},NOPE,unknown target,,'97116' in '{CPT}' is not mapped to 'NOPE' in '{ICD}'; Unknown code "
    f"'NOPE' in the CodeSystem '{ICD}' version '2026-04-01'",
    f"6,{CPT},99999,{ICD},R26.2,not mapped,,\"'99999' in '{CPT}' is not mapped to 'R26.2' in '{ICD}'; Unknown Code "
    f"'99999' in the CodeSystem '{CPT}' version '2026' - note that the code system is labeled as a fragment, so the "
    "code may be valid in some other fragment\"",
]
SUMMARY = "5 pairs: 1 supported, 2 not mapped, 0 unknown source, 2 unknown target"


def test_read_pairs_csv_and_tsv_with_system_columns():
    assert read_pairs("source\ttarget\ttarget_system\nA\tB\t\nC\tD\thttp://loinc.org\n") == [
        Pair(2, CPT, "A", ICD, "B"), Pair(3, CPT, "C", LOINC, "D")]
    assert read_pairs('Source_Code,x,Target_Code\r\n" 97116 ",1,R26.2\r\n') == [Pair(2, CPT, "97116", ICD, "R26.2")]


@pytest.mark.parametrize("text, message", [
    ("", "Line 1 of the pairs file: the first line must be a header naming the source and target columns"),
    ("code,other\n1,2\n", "Line 1 of the pairs file: the header ['code', 'other'] names no source column (source, "
                          "source_code, cpt / target, target_code, icd10cm)"),
    ("cpt,other\n1,2\n", "Line 1 of the pairs file: the header ['cpt', 'other'] names no target column (source, "
                         "source_code, cpt / target, target_code, icd10cm)"),
    ("cpt,icd\n97116,M62.81\n97116,M62.81,x\n", "Line 3 of the pairs file: 3 fields where the header has 2"),
    ("cpt\ticd\n97116\t\n", "Line 2 of the pairs file: no target code"),
    ("cpt,icd\n,R26.2\n", "Line 2 of the pairs file: no source code"),
    ('cpt,icd\n97116,R26.2\n"97116,R26.2\n', "Line 3 of the pairs file: not readable as CSV (unexpected end of data)"),
])
def test_a_malformed_file_is_refused_naming_the_line(text, message):
    with pytest.raises(InvalidRequest) as raised:
        read_pairs(text)
    assert (raised.value.message_id, raised.value.text, raised.value.status) == ("PAIRS_FILE_INVALID", message, 400)


def test_report_and_summary(service):
    seen: list[int] = []
    reports = list(check_pairs(service, read_pairs(PAIRS), seen.append))
    assert report_csv(reports).splitlines() == REPORT
    assert summary(reports) == SUMMARY
    assert seen == [1, 2, 3, 4, 5]


def test_unknown_source_is_reported_before_unknown_target(service):
    [report] = check_pairs(service, read_pairs("source,target,source_system\nA,NOPE,http://loinc.org\n"))
    assert (report.status, report.suggestion) == ("unknown source", "")


def test_command_line_locally(tmp_path, capsys):
    given = tmp_path / "pairs.csv"
    given.write_text(PAIRS)
    assert main(["check-pairs", str(given)]) == 1  # not every pair is supported
    out, err = capsys.readouterr()
    assert out.splitlines() == REPORT
    assert err == SUMMARY + "\n"  # no progress bar: stderr is not a terminal


def test_command_line_writes_the_report_to_a_file(tmp_path, capsys):
    given, report = tmp_path / "pairs.tsv", tmp_path / "report.csv"
    given.write_text("cpt\ticd10cm\n97116\tR26.2\n")
    assert main(["check-pairs", str(given), "--out", str(report)]) == 0
    assert report.read_text().splitlines() == [REPORT[0], f"2,{CPT},97116,{ICD},R26.2,supported,,"]
    assert capsys.readouterr() == ("", "1 pairs: 1 supported, 0 not mapped, 0 unknown source, 0 unknown target\n")


def test_command_line_names_the_malformed_line(tmp_path, capsys):
    given = tmp_path / "pairs.csv"
    given.write_text("cpt,icd10cm\n97116,M62.81\n97116\n")
    assert main(["check-pairs", str(given)]) == 2
    assert capsys.readouterr() == ("", "error (HTTP 400): Line 3 of the pairs file: 1 fields where the header has 2\n")


def test_command_line_with_a_missing_file(tmp_path, capsys):
    assert main(["check-pairs", str(tmp_path / "none.csv")]) == 2
    assert capsys.readouterr().err.startswith(f"error: cannot read {tmp_path / 'none.csv'}: ")


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with running_server() as live:
        yield live


@pytest.mark.parametrize("endpoint", ["r4", "r5"])
def test_command_line_against_a_server_gives_the_same_report(server, tmp_path, capsys, endpoint):
    given = tmp_path / "pairs.csv"
    given.write_text(PAIRS)
    assert main(["check-pairs", str(given), "--server", f"{server.url}/{endpoint}"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == REPORT
    assert err == SUMMARY + "\n"
