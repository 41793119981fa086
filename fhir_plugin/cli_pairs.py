"""`fhir-plugin check-pairs FILE`: is each (source, target) pair of a CSV/TSV file mapped?

Locally (the bundled content, or FHIR_PLUGIN_CONTENT) the engine runs in-process; with --server
each pair is one pairing $translate over one HTTP session (kept-alive connection): this server has
no FHIR batch Bundle endpoint yet, so there is no batch path to use. The report (CSV) goes to
--out or stdout, the summary line and the progress bar to stderr.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from .terminology.backend import TerminologyBackend
from .terminology.pairs import CPT, ICD_10_CM, check_pairs, read_pairs, report_csv, summary


class Progress:
    """A one-line progress bar on a terminal (nothing when stderr is a file or a pipe)."""

    WIDTH = 30

    def __init__(self, total: int, stream: TextIO, shown: bool) -> None:
        self.total, self.stream, self.shown = max(total, 1), stream, shown
        self.last = -1

    def __call__(self, done: int) -> None:
        filled = done * self.WIDTH // self.total
        if not self.shown or (filled == self.last and done != self.total):
            return
        self.last = filled
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{self.total} pairs")
        if done == self.total:
            self.stream.write("\n")
        self.stream.flush()


def _backend(args: argparse.Namespace, settings: dict[str, Any], run: Any) -> Any:
    if args.server:
        from .client import TerminologyClient

        with TerminologyClient(args.server, timeout=args.timeout) as client:
            return run(client)
    from .config import cache_dir, content_paths
    from .runtime.build import load_service

    return run(load_service(content_paths(settings), cache=cache_dir(settings, server=True)))


def _check_pairs(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    try:
        with open(args.file, encoding="utf-8-sig", newline="") as given:
            text = given.read()
    except (OSError, UnicodeDecodeError) as error:
        print(f"error: cannot read {args.file}: {error}", file=sys.stderr)
        return 2
    pairs = read_pairs(text, args.source_system, args.target_system)  # a malformed line: TerminologyError, exit 2
    progress = Progress(len(pairs), sys.stderr, sys.stderr.isatty() and not args.no_progress)

    def run(backend: TerminologyBackend) -> list[Any]:
        return list(check_pairs(backend, pairs, progress))

    reports = _backend(args, settings, run)
    report = report_csv(reports)
    if args.out:
        with open(args.out, "w", encoding="utf-8", newline="") as out:
            out.write(report)
    else:
        sys.stdout.write(report)
    print(summary(reports), file=sys.stderr)
    return 0 if all(r.status == "supported" for r in reports) else 1


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "check-pairs", help="check a CSV/TSV file of (source, target) code pairs: supported, not mapped, unknown codes")
    parser.add_argument("file", help="CSV or TSV with a header naming a source column (source, source_code, cpt) "
                                     "and a target column (target, target_code, icd10cm)")
    parser.add_argument("--out", metavar="FILE", help="write the report CSV here (default: stdout)")
    parser.add_argument("--source-system", default=CPT, metavar="URL",
                        help=f"the source codes' system when the file has no source_system column (default {CPT})")
    parser.add_argument("--target-system", default=ICD_10_CM, metavar="URL",
                        help=f"the target codes' system when the file has no target_system column (default {ICD_10_CM})")
    parser.add_argument("--server", metavar="URL", help="a FHIR endpoint (e.g. http://127.0.0.1:8080/r4); default: "
                                                        "in-process, with FHIR_PLUGIN_CONTENT or the bundled content")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="with --server: seconds to wait for each answer (default 10)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on a terminal")


HANDLERS = {"check-pairs": _check_pairs}
