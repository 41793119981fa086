"""The HL7 terminology test manifest (test-cases.json): which tests run, and with which files.

Rules of the official runner (hl7-tx-tests.md section 3): a suite or test with `mode` runs only
when that mode is enabled (the `metadata` suite has none, so it always runs); `request:<mode>` /
`response:<mode>` replace `request` / `response` when the mode is enabled; `profile` defaults to
parameters-default.json and `http-code` to 2xx. The tests' `version` filter is not applied: the
official runner applies it only when given -test-version, which we have no equivalent of.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..config import load_settings, tx_tests_dir
from .jsontext import load_file

ENV_TESTS = "FHIR_PLUGIN_TX_TESTS"  # the setting that names the suite's folder (config.py)
MANIFEST = "test-cases.json"
DEFAULT_PROFILE = "parameters-default.json"
DEFAULT_MODES = frozenset({"general"})


def default_tests_dir() -> Path:
    """FHIR_PLUGIN_TX_TESTS, else ../shared/tx-tests beside the repository."""
    return tx_tests_dir(load_settings())


@dataclass(frozen=True)
class TestCase:
    """One test of the manifest, with its mode-dependent choices already made."""

    __test__ = False  # not a pytest test class, despite the name

    tests_dir: Path
    suite: str
    name: str
    operation: str
    response: str | None
    request: str | None = None
    setup: tuple[str, ...] = ()
    profile: str = DEFAULT_PROFILE
    http_code: str = "2xx"
    accept_language: str | None = None
    header: tuple[str, str] | None = None
    description: str = ""

    @property
    def id(self) -> str:
        return f"{self.suite}/{self.name}"

    def load(self, relative: str) -> Any:
        """A test file, parsed (numbers as jsontext.Number). Shared and cached: never mutate it."""
        return _load(self.tests_dir, relative)


@lru_cache(maxsize=4096)
def _load(tests_dir: Path, relative: str) -> Any:
    return load_file(tests_dir / relative)


def _enabled(item: dict[str, Any], modes: frozenset[str]) -> bool:
    if any(mode in modes for mode in item.get("modes", [])):
        return True
    return "mode" not in item or item["mode"] in modes


def _choose(test: dict[str, Any], name: str, modes: frozenset[str]) -> str | None:
    # The official runner takes the first enabled mode with a variant, in set order; sorted here so
    # that the choice is at least repeatable (only `flat` has variants in the general suites).
    for mode in sorted(modes):
        if f"{name}:{mode}" in test:
            variant: str = test[f"{name}:{mode}"]
            return variant
    return test.get(name)


def _header(test: dict[str, Any], modes: frozenset[str]) -> tuple[str, str] | None:
    header = test.get("header")
    if not isinstance(header, dict) or not _enabled(header, modes):
        return None
    return header["name"], header["value"]


def load_cases(tests_dir: Path | None = None, modes: Iterable[str] = DEFAULT_MODES,
               filter: str | None = None) -> list[TestCase]:
    """The tests a run with `modes` executes, in manifest order; `filter` keeps the tests whose
    id (suite/test) contains it. Duplicate entries in the manifest are kept, as the runner runs them."""
    tests_dir = Path(tests_dir or default_tests_dir())
    modes = frozenset(modes)
    manifest = load_file(tests_dir / MANIFEST)
    cases = []
    for suite in manifest["suites"]:
        if suite.get("disabled") is True or not _enabled(suite, modes):
            continue
        for test in suite["tests"]:
            if test.get("disabled") is True or not _enabled(test, modes):
                continue
            case = TestCase(
                tests_dir=tests_dir, suite=suite["name"], name=test["name"], operation=test["operation"],
                response=_choose(test, "response", modes), request=_choose(test, "request", modes),
                setup=tuple(suite.get("setup", [])), profile=test.get("profile", DEFAULT_PROFILE),
                http_code=test.get("http-code", "2xx"), accept_language=test.get("Accept-Language"),
                header=_header(test, modes), description=test.get("description", ""),
            )
            if not filter or filter in case.id:
                cases.append(case)
    return cases


def tests_version(tests_dir: Path | None = None) -> str | None:
    """The version of the test set, as the runner reports it (manifest `version`, else history.json)."""
    tests_dir = Path(tests_dir or default_tests_dir())
    version: str | None = load_file(tests_dir / MANIFEST).get("version")
    if version is None and (tests_dir / "history.json").exists():
        versions = load_file(tests_dir / "history.json").get("versions") or [{}]
        version = versions[0].get("version")
    return version
