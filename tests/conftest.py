"""Fixtures shared by every test module: the bundled content loaded once, an app and a client.

The helpers (assert_outcome, validate, the content constants) live in tests/helpers.py.
"""

from __future__ import annotations

import os

import pytest

from fhir_plugin import TerminologyService, create_app


@pytest.fixture(autouse=True)
def _no_fhir_plugin_environment(monkeypatch):
    """FHIR_PLUGIN_* variables of the developer's shell must not change what the tests see."""
    for key in list(os.environ):
        if key.startswith("FHIR_PLUGIN_"):
            monkeypatch.delenv(key)


@pytest.fixture(scope="session")
def service() -> TerminologyService:
    """The bundled content, loaded and validated once per test session."""
    return TerminologyService.from_paths()


@pytest.fixture
def app(service):
    return create_app(service=service)


@pytest.fixture
def client(app):
    return app.test_client()
