"""`fhir-plugin conformance`: the HL7 terminology tests against a live server (`--server URL`,
over requests) or against this project's app in-process (`--app`, through its Flask test client;
cli.py builds the app, so that this package never imports Flask).

Output: a per-suite table for each endpoint, then the line `N passed, M failed` (CI reads it).
Exit code 0 if every test passed (or the expected-failures list was written), 1 if any failed,
2 if the run could not happen (no tests, server unusable).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..fhirversions import FhirVersion
from .expected import load_expected_failures, regenerate, write_expected_failures
from .manifest import MANIFEST, default_tests_dir, tests_version
from .runner import Result, run, summary_table, totals_line, write_outputs
from .wire import RunAborted, Send, detect_version, flask_client_transport, requests_transport


def parse_modes(text: str | None) -> frozenset[str]:
    """As the official CLI: `general` is always on unless `!general` is given; others are added."""
    modes = {"general"}
    for mode in (text or "").split(","):
        mode = mode.strip()
        if mode.startswith("!"):
            modes.discard(mode[1:])
        elif mode:
            modes.add(mode)
    return frozenset(modes)


def _tests_dir(given: str | None) -> Path:
    path = Path(given) if given else default_tests_dir()
    return path.parent if path.is_file() else path


def _targets(args: argparse.Namespace, app: Any) -> list[tuple[str, FhirVersion, Send]]:
    """(label, version, transport) of each endpoint to test."""
    if app is not None:
        client = app.test_client()
        versions = [FhirVersion(args.fhir_version)] if args.fhir_version else [FhirVersion.R5, FhirVersion.R4]
        return [(f"app /{v.value.lower()}", v, flask_client_transport(client, f"/{v.value.lower()}")) for v in versions]
    send = requests_transport(args.server, timeout=args.timeout)
    version = FhirVersion(args.fhir_version) if args.fhir_version else detect_version(send)
    return [(args.server, version, send)]


def main(args: argparse.Namespace, app: Any = None) -> int:
    tests_dir = _tests_dir(args.tests)
    if not (tests_dir / MANIFEST).is_file():
        print(f"error: no {MANIFEST} in {tests_dir} (use --tests or FHIR_PLUGIN_TX_TESTS)", file=sys.stderr)
        return 2
    modes = parse_modes(args.mode)
    results: dict[str, list[Result]] = {}
    try:
        for label, version, send in _targets(args, app):
            results[version.value] = run(send, version, modes, args.filter, tests_dir)
            print(f"{label}: FHIR {version.release}, modes {'+'.join(sorted(modes))}, "
                  f"tests v{tests_version(tests_dir)}")
            print(summary_table(results[version.value]) + "\n")
            if args.verbose:
                for result in results[version.value]:
                    if not result.passed:
                        print(f"FAIL {result.id} [{version.value}]: {result.message}")
    except RunAborted as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.output:
        for version_name, version_results in results.items():
            target = Path(args.output) / version_name.lower() if len(results) > 1 else Path(args.output)
            write_outputs(version_results, target)
    if args.write_expected_failures:
        path = Path(args.write_expected_failures)
        updated = regenerate(load_expected_failures(path), results, complete=not args.filter)
        write_expected_failures(path, updated)
        print(f"wrote {path}: " + ", ".join(f"{len(updated[v])} {v}" for v in ("R5", "R4")) + " expected failures")
    everything = [r for version_results in results.values() for r in version_results]
    print(totals_line(everything))
    return 0 if args.write_expected_failures or all(r.passed for r in everything) else 1
