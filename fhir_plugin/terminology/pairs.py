"""Checking a table of (source code, target code) pairs: is each pairing mapped, and if not, why.

The file is CSV, or TSV when its header line holds a tab. The header names the columns: a source
code column (`source`, `source_code`, `sourceCode`, `cpt`) and a target code column (`target`,
`target_code`, `targetCode`, `icd10cm`, `icd-10-cm`, `icd`), and optionally `source_system` and
`target_system` (otherwise the defaults: CPT to ICD-10-CM). A malformed line stops the check with
the line named: a half-read table is no report.

Each pair is one pairing $translate (the same request a person can send), so a backend over HTTP
gives the same report as the in-process one. Its status:
- supported: result=true;
- unknown source / unknown target: an error issue (a code its code system does not hold, an
  unknown code system) on that side; the source side is reported when both are wrong;
- not mapped: anything else (a code outside a fragment, like our CPT, is not called unknown).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from .backend import TerminologyBackend
from .entries import Coding
from .errors import InvalidRequest
from .models import TranslateRequest, TranslateResult

CPT = "http://www.ama-assn.org/go/cpt"
ICD_10_CM = "http://hl7.org/fhir/sid/icd-10-cm"
STATUSES = ("supported", "not mapped", "unknown source", "unknown target")
_SOURCE_NAMES = {"source", "source_code", "sourcecode", "cpt"}
_TARGET_NAMES = {"target", "target_code", "targetcode", "icd10cm", "icd-10-cm", "icd"}
REPORT_COLUMNS = ("line", "source_system", "source", "target_system", "target", "status", "suggestion", "message")


@dataclass(frozen=True, slots=True)
class Pair:
    line: int
    source_system: str
    source: str
    target_system: str
    target: str


@dataclass(frozen=True, slots=True)
class PairReport:
    pair: Pair
    status: str
    suggestion: str  # the dotted code a code without its dot stands for, if any
    message: str


def _bad(line: int, problem: str) -> InvalidRequest:
    return InvalidRequest("PAIRS_FILE_INVALID", line=str(line), problem=problem)


def read_pairs(text: str, source_system: str = CPT, target_system: str = ICD_10_CM) -> list[Pair]:
    """The pairs of a CSV or TSV text; InvalidRequest naming the line if one is malformed."""
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise _bad(1, "the first line must be a header naming the source and target columns")
    dialect = "excel-tab" if "\t" in lines[0] else "excel"
    try:
        rows = list(csv.reader(lines, dialect=dialect, strict=True))
    except csv.Error as error:
        raise _bad(len(lines), f"not readable as {'TSV' if dialect == 'excel-tab' else 'CSV'} ({error})") from None
    header = [name.strip().lower() for name in rows[0]]
    source = next((i for i, name in enumerate(header) if name in _SOURCE_NAMES), None)
    target = next((i for i, name in enumerate(header) if name in _TARGET_NAMES), None)
    if source is None or target is None:
        raise _bad(1, f"the header {rows[0]!r} names no {'source' if source is None else 'target'} column "
                      "(source, source_code, cpt / target, target_code, icd10cm)")
    systems = (header.index("source_system") if "source_system" in header else None,
               header.index("target_system") if "target_system" in header else None)
    pairs = []
    for number, row in enumerate(rows[1:], start=2):
        if not row or not any(cell.strip() for cell in row):
            continue  # a blank line (a trailing newline) says nothing
        if len(row) != len(header):
            raise _bad(number, f"{len(row)} fields where the header has {len(header)}")
        codes = row[source].strip(), row[target].strip()
        if not all(codes):
            raise _bad(number, f"no {'source' if not codes[0] else 'target'} code")
        given = [row[i].strip() if i is not None else "" for i in systems]
        pairs.append(Pair(number, given[0] or source_system, codes[0], given[1] or target_system, codes[1]))
    return pairs


def pair_request(pair: Pair) -> TranslateRequest:
    return TranslateRequest(source=(Coding(pair.source_system, pair.source),),
                            target=(Coding(pair.target_system, pair.target),), source_form="code", target_form="code")


def classify(pair: Pair, result: TranslateResult) -> PairReport:
    """The report row of one pair's $translate answer."""
    if result.result:
        return PairReport(pair, "supported", "", "")
    wrong = [i for i in result.issues if i.severity in ("error", "fatal")]
    status = "not mapped"
    if any(not (i.expression or "").startswith("target") for i in wrong):
        status = "unknown source"
    elif wrong:
        status = "unknown target"
    hint = next((i.text for i in result.issues if i.message_id == "TRANSLATE_CODE_WITHOUT_DOT"), "")
    suggestion = hint.split("'", 2)[1] if hint else ""
    return PairReport(pair, status, suggestion, result.message or "")


def check_pairs(backend: TerminologyBackend, pairs: Iterable[Pair],
                progress: Callable[[int], None] | None = None) -> Iterator[PairReport]:
    """Each pair's report, in order; `progress(n)` after each."""
    for done, pair in enumerate(pairs, start=1):
        yield classify(pair, backend.translate(pair_request(pair)))
        if progress is not None:
            progress(done)


def report_csv(reports: Iterable[PairReport]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    for r in reports:
        p = r.pair
        writer.writerow((p.line, p.source_system, p.source, p.target_system, p.target, r.status, r.suggestion,
                         r.message))
    return out.getvalue()


def summary(reports: Iterable[PairReport]) -> str:
    counts = Counter(r.status for r in reports)
    total = sum(counts.values())
    return f"{total} pairs: " + ", ".join(f"{counts[status]} {status}" for status in STATUSES)
