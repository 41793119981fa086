"""The list of HL7 tests the server does not pass yet: conformance/tx-expected-failures.json.

    {"R5": {"suite/test": "reason", ...}, "R4": {...}}

pytest marks these tests strict xfail, so an entry whose test passes fails the run until the list
is regenerated (`fhir-plugin conformance --app --write-expected-failures FILE`). Regenerating keeps
the reason of every test that still fails (hand-written reasons survive), drops the tests that
pass, and describes new failures by their first difference.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..config import bundled_dir
from .runner import Result

MAX_REASON = 160


def default_path() -> Path:
    return bundled_dir("conformance") / "tx-expected-failures.json"


def load_expected_failures(path: Path | None = None) -> dict[str, dict[str, str]]:
    """version ("R4"/"R5") -> test id -> reason; empty when the file does not exist."""
    path = Path(path or default_path())
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return {version: dict(data.get(version, {})) for version in ("R5", "R4")}


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON else text[:MAX_REASON - 3] + "..."


def reason_for(result: Result) -> str:
    """A short, specific reason: for an HTTP error the server did not mean to give, what the server
    said (e.g. `HTTP 405: Method POST is not allowed on /r5/ValueSet/$expand`); otherwise the first
    difference."""
    actual = result.actual
    if (result.status is not None and not 200 <= result.status < 300 and result.message
            and result.message.startswith("HTTP status:") and isinstance(actual, dict)
            and actual.get("resourceType") == "OperationOutcome"):
        issues = [i for i in actual.get("issue", []) if isinstance(i, dict)]
        said = next((i.get("details", {}).get("text") or i.get("diagnostics") for i in issues), None)
        if said:
            return _shorten(f"HTTP {result.status}: {said}")
    return _shorten(result.message or "failed")


def regenerate(existing: Mapping[str, Mapping[str, str]], results: Mapping[str, Iterable[Result]],
               complete: bool = True) -> dict[str, dict[str, str]]:
    """The new list: for each version that ran (a key of `results`), its failures, with the
    existing reason where there is one. After a partial run (`complete` false: a --filter), the
    tests that did not run keep their entries; after a complete one, entries of tests that no
    longer exist go."""
    updated = {version: dict(entries) for version, entries in existing.items()}
    for version, version_results in results.items():
        version_results = list(version_results)
        ran = {r.id for r in version_results}
        old = existing.get(version, {})
        entries = {} if complete else {test: reason for test, reason in old.items() if test not in ran}
        for result in version_results:
            if not result.passed:
                entries[result.id] = old.get(result.id) or reason_for(result)
        updated[version] = dict(sorted(entries.items()))
    return updated


def write_expected_failures(path: Path, data: Mapping[str, Mapping[str, str]]) -> None:
    ordered = {version: dict(sorted(data.get(version, {}).items())) for version in ("R5", "R4")}
    Path(path).write_text(json.dumps(ordered, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
