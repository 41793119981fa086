"""Settings: defaults, then FHIR_PLUGIN_* environment variables, then an explicit mapping.

Nothing needs a config file. Every key is prefixed FHIR_PLUGIN_ so that the plugin's keys never
collide with the host application's when it is mounted as a Flask extension.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent


def bundled_dir(name: str) -> Path:
    """Where the shipped `resources/` or `conformance/` folder is.

    A source checkout (and an editable install) reads the top-level folder; a wheel carries the
    same files as `fhir_plugin/bundled/<name>`.
    """
    source_tree = PACKAGE_DIR.parent / name
    if source_tree.is_dir():
        return source_tree
    return PACKAGE_DIR / "bundled" / name


DEFAULTS: dict[str, Any] = {
    # os.pathsep-separated files or directories of FHIR JSON; empty means the bundled content.
    "FHIR_PLUGIN_CONTENT": "",
    # FHIR version served at /fhir: "R4" or "R5".
    "FHIR_PLUGIN_DEFAULT_VERSION": "R4",
    "FHIR_PLUGIN_HOST": "127.0.0.1",
    "FHIR_PLUGIN_PORT": 8080,
    "FHIR_PLUGIN_WORKERS": 2,
    # Largest request body accepted, in bytes (413 beyond it).
    "FHIR_PLUGIN_MAX_REQUEST_BYTES": 1_048_576,
    # Public base URL used in Bundle links and CapabilityStatement.implementation; empty = from the request.
    "FHIR_PLUGIN_BASE_URL": "",
    # Largest $expand answered without paging (count); beyond it, a too-costly OperationOutcome.
    "FHIR_PLUGIN_MAX_EXPANSION": 10_000,
    # Most tx-resource parameters in one request (the HL7 test suite sends at most 21); beyond it,
    # a too-costly OperationOutcome, since each one is validated and compiled.
    "FHIR_PLUGIN_MAX_TX_RESOURCES": 100,
    # Rendered answers of $lookup, $translate, $validate-code and $subsumes kept per worker for
    # identical requests (LRU, answers up to 16 KB each, so at most 32 MB); 0 turns it off.
    "FHIR_PLUGIN_ANSWER_CACHE": 2048,
    # Loading content: a FHIR package's total uncompressed size, and one archive member's (or one
    # .json.gz file's); beyond them the content is refused (decompression bombs).
    "FHIR_PLUGIN_MAX_PACKAGE_BYTES": 256 * 1024 * 1024,
    "FHIR_PLUGIN_MAX_MEMBER_BYTES": 128 * 1024 * 1024,
    # The admin endpoints (/admin/content: load content into the running server) need this bearer
    # token; empty (the default) turns them off, so nothing can change what the server serves.
    "FHIR_PLUGIN_ADMIN_TOKEN": "",
    # Where content loaded at run time is kept (and read again at start-up); empty means
    # $XDG_DATA_HOME/fhir_plugin/loaded when FHIR_PLUGIN_ADMIN_TOKEN is set, and none otherwise.
    "FHIR_PLUGIN_LOAD_DIR": "",
}

_INT_KEYS = {"FHIR_PLUGIN_PORT", "FHIR_PLUGIN_WORKERS", "FHIR_PLUGIN_MAX_REQUEST_BYTES", "FHIR_PLUGIN_MAX_EXPANSION",
             "FHIR_PLUGIN_MAX_PACKAGE_BYTES", "FHIR_PLUGIN_MAX_MEMBER_BYTES", "FHIR_PLUGIN_MAX_TX_RESOURCES",
             "FHIR_PLUGIN_ANSWER_CACHE"}


def load_settings(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Defaults, overlaid by the environment, overlaid by `overrides` (for tests and embedding)."""
    environ = os.environ if environ is None else environ
    settings = dict(DEFAULTS)
    for key in DEFAULTS:
        if key in environ:
            settings[key] = environ[key]
    if overrides:
        settings.update({k: v for k, v in overrides.items() if k.startswith("FHIR_PLUGIN_")})
    for key in _INT_KEYS:
        try:
            settings[key] = int(settings[key])
        except (TypeError, ValueError):
            raise ValueError(f"{key} must be an integer, not {settings[key]!r}") from None
    version = str(settings["FHIR_PLUGIN_DEFAULT_VERSION"]).upper()
    if version not in ("R4", "R5"):
        raise ValueError(f"FHIR_PLUGIN_DEFAULT_VERSION must be R4 or R5, not {version!r}")
    settings["FHIR_PLUGIN_DEFAULT_VERSION"] = version
    return settings


def content_paths(settings: Mapping[str, Any]) -> list[Path]:
    raw = settings.get("FHIR_PLUGIN_CONTENT") or ""
    if isinstance(raw, (list, tuple)):
        parts = [str(p) for p in raw]
    else:
        parts = [p for p in str(raw).split(os.pathsep) if p.strip()]
    return [Path(p) for p in parts] if parts else [bundled_dir("resources")]


def load_dir(settings: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Path | None:
    """The directory of content loaded at run time, or None when run-time loading is off."""
    if settings.get("FHIR_PLUGIN_LOAD_DIR"):
        return Path(settings["FHIR_PLUGIN_LOAD_DIR"])
    if not settings.get("FHIR_PLUGIN_ADMIN_TOKEN"):
        return None
    environ = os.environ if environ is None else environ
    data_home = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "fhir_plugin" / "loaded"
