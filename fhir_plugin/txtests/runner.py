"""Running the HL7 terminology tests against one FHIR endpoint, through any transport.

    results = run(send, FhirVersion.R5)              # the default run: modes {"general"}
    print(summary_table(results)); print(totals_line(results))

`Runner.run_case` runs one test, so pytest can parametrise over the cases with one Runner per
endpoint. As in the official runner, /metadata and /metadata?mode=terminology are fetched once
(`start`); a run stops with RunAborted if either fails.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..fhirversions import FhirVersion
from .compare import Verdict, check_metadata, check_response, pretty
from .jsontext import dumps, loads
from .manifest import DEFAULT_MODES, TestCase, load_cases
from .wire import Request, RunAborted, Send, build_request, metadata_request

METADATA_OPERATIONS = ("metadata", "term-caps")


@dataclass
class Result:
    id: str
    suite: str
    name: str
    version: FhirVersion
    passed: bool
    message: str | None = None
    warnings: list[str] = field(default_factory=list)
    status: int | None = None
    response_file: str | None = None
    expected: Any = None  # kept for failures and warnings: the expected file, as parsed
    actual: Any = None  # ... and the actual response as compared (R5, scrubbed, sorted)


class Runner:
    """The tests of one endpoint: `send` reaches it, `version` is its FHIR version."""

    def __init__(self, send: Send, version: FhirVersion | str, modes: Iterable[str] = DEFAULT_MODES):
        self.send = send
        self.version = FhirVersion(version)
        self.modes = frozenset(modes)
        self._metadata: dict[str, Any] = {}  # operation -> resource, or the text of why not

    def start(self) -> None:
        """Fetch the CapabilityStatement and TerminologyCapabilities; both must work."""
        for operation in METADATA_OPERATIONS:
            resource = self._fetch_metadata(operation)
            if isinstance(resource, str):
                raise RunAborted(resource)

    def _fetch_metadata(self, operation: str) -> Any:
        if operation not in self._metadata:
            request = metadata_request(self.version, terminology=operation == "term-caps")
            what = "GET /metadata" + ("?mode=terminology" if request.query else "")
            try:
                status, _, body = self.send(request.method, request.path, request.headers, None, request.query)
                resource = loads(body) if 200 <= status < 300 else f"{what} answered HTTP {status}"
            except ValueError:
                resource = f"{what} did not answer JSON"
            except OSError as error:  # no connection: requests' errors are OSErrors
                resource = f"{what} failed: {error}"
            self._metadata[operation] = resource
        return self._metadata[operation]

    def run_case(self, case: TestCase) -> Result:
        status, expected = None, None
        try:
            if case.response is None:
                raise ValueError("the test names no response file")
            expected = case.load(case.response)
            if case.operation in METADATA_OPERATIONS:
                resource = self._fetch_metadata(case.operation)
                verdict = Verdict(resource) if isinstance(resource, str) else \
                    check_metadata(case.operation, expected, resource, self.version, self.modes)
            else:
                request = build_request(case, self.version)
                status, body = self._send(request)
                verdict = check_response(case.operation, case.http_code, expected, status, body,
                                         self.version, self.modes)
        except _TransportError as error:
            verdict = Verdict(str(error))
        except (OSError, ValueError) as error:  # a missing or broken test file, an unknown operation
            verdict = Verdict(f"test error: {error}")
        except Exception as error:  # noqa: BLE001
            # As in the official runner, anything else (an answer too odd to scrub, say) fails this
            # test only, and says so, instead of stopping the run.
            verdict = Verdict(f"runner error: {type(error).__name__}: {error}")
        keep = verdict.message is not None or bool(verdict.warnings)
        return Result(
            id=case.id, suite=case.suite, name=case.name, version=self.version,
            passed=verdict.message is None, message=verdict.message, warnings=verdict.warnings,
            status=status, response_file=case.response,
            expected=expected if keep else None, actual=verdict.actual if keep else None)

    def _send(self, request: Request) -> tuple[int, bytes]:
        try:
            status, _, body = self.send(request.method, request.path, request.headers, request.body, request.query)
        except OSError as error:  # connection refused, timeout (requests' errors are OSErrors)
            raise _TransportError(f"{request.method} {request.path} failed: {error}") from error
        return status, body


class _TransportError(OSError):
    pass


def run(send: Send, version: FhirVersion | str, modes: Iterable[str] = DEFAULT_MODES,
        filter: str | None = None, tests_dir: Path | None = None) -> list[Result]:
    """Every test of a run with `modes` (and `filter`), in manifest order."""
    runner = Runner(send, version, modes)
    runner.start()
    return [runner.run_case(case) for case in load_cases(tests_dir, runner.modes, filter)]


# --- reporting ------------------------------------------------------------------------------------


def suite_counts(results: Iterable[Result]) -> dict[str, tuple[int, int]]:
    """suite -> (passed, total), in the order the suites ran."""
    counts: dict[str, tuple[int, int]] = {}
    for result in results:
        passed, total = counts.get(result.suite, (0, 0))
        counts[result.suite] = (passed + result.passed, total + 1)
    return counts


def summary_table(results: list[Result]) -> str:
    """Per-suite pass counts, as a plain-text table."""
    counts = suite_counts(results)
    width = max([len("suite"), *(len(s) for s in counts)])
    lines = [f"{'suite':<{width}}  passed  failed  total"]
    for suite, (passed, total) in counts.items():
        lines.append(f"{suite:<{width}}  {passed:>6}  {total - passed:>6}  {total:>5}")
    return "\n".join(lines)


def totals_line(results: list[Result]) -> str:
    """`N passed, M failed`: the line CI reads."""
    passed = sum(r.passed for r in results)
    return f"{passed} passed, {len(results) - passed} failed"


def write_outputs(results: Iterable[Result], output_dir: Path) -> None:
    """Like the official runner's -output: expected/<file> and actual/<file> (R5, scrubbed, sorted)
    for every failed test or test with warnings, and test-results.json for all."""
    output_dir = Path(output_dir)
    summary = []
    for result in results:
        for side in ("expected", "actual"):
            target = output_dir / side / (result.response_file or f"{result.id}.json")
            if target.is_file():
                target.unlink()  # a stale file from an earlier run would mislead
            value = result.expected if side == "expected" else result.actual
            if value is not None and (not result.passed or result.warnings):
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(pretty(value) + "\n", encoding="utf-8")
        entry: dict[str, Any] = {"id": result.id, "version": result.version.value,
                                 "status": "pass" if result.passed else "fail"}
        if result.message:
            entry["message"] = result.message
        if result.warnings:
            entry["warnings"] = result.warnings
        summary.append(entry)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "test-results.json").write_text(dumps({"tests": summary}, indent=2) + "\n", encoding="utf-8")

