"""Fixtures shared by every test module: the bundled content loaded once, an app and a client.

The helpers (assert_outcome, validate, the content constants) live in tests/helpers.py.
"""

from __future__ import annotations

import os

import pytest

from fhir_plugin import TerminologyService, create_app, load_service
from fhir_plugin.config import load_settings
from fhir_plugin.content.errors import PackageUnavailable
from fhir_plugin.runtime.build import configured_paths


@pytest.fixture(scope="session")
def content_cache_dir(tmp_path_factory):
    """One content cache for the session (not the user's): the complete ICD-10-CM is validated
    once per session, and later loads of the bundled content read the cache."""
    return tmp_path_factory.mktemp("content-cache")


@pytest.fixture(autouse=True)
def _no_fhir_plugin_environment(monkeypatch, content_cache_dir):
    """FHIR_PLUGIN_* variables of the developer's shell must not change what the tests see."""
    for key in list(os.environ):
        if key.startswith("FHIR_PLUGIN_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("FHIR_PLUGIN_CACHE_DIR", str(content_cache_dir))
    # the default packages (FHIR core, THO) only where a test asks for them: tests/default_content.py
    monkeypatch.setenv("FHIR_PLUGIN_PACKAGES", "")


@pytest.fixture(scope="session")
def service(content_cache_dir) -> TerminologyService:
    """The bundled content, loaded and validated once per test session."""
    return load_service(cache=content_cache_dir)


@pytest.fixture(scope="session")
def default_service(content_cache_dir) -> TerminologyService:
    """What `make serve` serves: the bundled content with the default packages (FHIR R5 core and HL7
    Terminology) from the package cache, which `make test` installs first; loaded once per session
    (the first load of a session validates them, about 15 s; later ones read the content cache)."""
    settings = load_settings(environ={"HOME": os.environ.get("HOME", "")})  # the defaults, whatever the shell sets
    try:
        paths = configured_paths(settings)
    except PackageUnavailable as error:
        pytest.fail(f"{error.text}. `make test` installs them before the tests run.")
    return load_service(paths, cache=content_cache_dir)


@pytest.fixture
def app(service):
    return create_app(service=service)


@pytest.fixture
def client(app):
    return app.test_client()
