"""Settings: one table of every FHIR_PLUGIN_* setting, read through one function.

`load_settings` takes the defaults, then FHIR_PLUGIN_* environment variables, then an explicit
mapping (a Flask app's config, a test's dict). Nothing needs a config file. Every key is prefixed
FHIR_PLUGIN_ so that the plugin's keys never collide with the host application's when it is
mounted as a Flask extension. No other module reads a FHIR_PLUGIN_* variable (a test checks), and
the README's configuration table lists every row of SETTINGS (a test checks that too).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .fhirversions import FhirVersion

PACKAGE_DIR = Path(__file__).resolve().parent
# The most FHIR_PLUGIN_MAX_JSON_DEPTH may be. The deepest walk of a request's JSON, fhir.resources'
# validation, takes about four stack frames a level (measured: a 100-deep body needs a recursion
# limit of 418, a 200-deep one 818); at 150 that stays well inside Python's default of 1000.
HIGHEST_JSON_DEPTH = 150
# FHIR core terminology of R5 and of R4 (each endpoint prefers its own release: Registry.preferring),
# and HL7 Terminology (THO) in its R5 form: the server is R5 inside and renders R4 on /r4.
# hl7.fhir.r4.core is on the official FHIR registry only: content/package_recipes.py builds R4's
# terminology from the FHIR R4 definitions instead. README "FHIR packages".
DEFAULT_PACKAGES = "hl7.fhir.r5.core#5.0.0 fhir-plugin.r4-core-terminology#4.0.1 hl7.terminology.r5#7.0.1"
DEFAULT_REGISTRIES = "https://packages.fhir.org https://registry.npmjs.org"
# Core packages are chosen in FHIR_PLUGIN_PACKAGES, not pulled in by a dependency (every R4 package
# depends on hl7.fhir.r4.core); the extension packs are StructureDefinitions of extensions.
DEFAULT_SKIP = "hl7.fhir.r4.core hl7.fhir.r4b.core hl7.fhir.r5.core hl7.fhir.r6.core hl7.fhir.uv.extensions*"


@dataclass(frozen=True)
class Setting:
    name: str
    default: str | int
    type: type  # str or int: what an environment variable's text is read as
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("FHIR_PLUGIN_CONTENT", "", str,
            "files, directories, Bundles or FHIR packages to serve INSTEAD of the bundled content, separated by "
            "os.pathsep; empty: the bundled content"),
    Setting("FHIR_PLUGIN_EXTRA_CONTENT", "", str,
            "files, directories, Bundles or FHIR packages to serve BESIDE the content (the bundled content, or "
            "FHIR_PLUGIN_CONTENT), separated by os.pathsep"),
    Setting("FHIR_PLUGIN_PACKAGES", DEFAULT_PACKAGES, str,
            "FHIR packages served beside FHIR_PLUGIN_CONTENT, NAME#VERSION separated by spaces or commas, with their "
            "dependencies, from the package cache (`fhir-plugin install` puts them there); empty or none: no package"),
    Setting("FHIR_PLUGIN_PACKAGE_CACHE", "", str,
            "the FHIR package cache, shared with the other FHIR tools; empty: ~/.fhir/packages"),
    Setting("FHIR_PLUGIN_PACKAGE_REGISTRIES", DEFAULT_REGISTRIES, str,
            "the package registries `fhir-plugin install` asks, in order, separated by spaces"),
    Setting("FHIR_PLUGIN_PACKAGE_SKIP", DEFAULT_SKIP, str,
            "dependencies neither installed nor served (names, * as a wildcard, separated by spaces); the packages "
            "FHIR_PLUGIN_PACKAGES names are never skipped"),
    Setting("FHIR_PLUGIN_DEFAULT_VERSION", "R4", str, "the FHIR version served at /fhir: R4 or R5"),
    Setting("FHIR_PLUGIN_HOST", "127.0.0.1", str, "the address `fhir-plugin serve` listens on"),
    Setting("FHIR_PLUGIN_PORT", 8080, int, "the port `fhir-plugin serve` listens on"),
    Setting("FHIR_PLUGIN_WORKERS", 2, int, "gunicorn worker processes of `fhir-plugin serve`"),
    Setting("FHIR_PLUGIN_FRONT", "auto", str,
            "what `fhir-plugin serve` puts in front of its workers: auto (nginx if installed, else gunicorn alone, "
            "with a warning), nginx (required), none (gunicorn alone, behind a proxy of your own)"),
    Setting("FHIR_PLUGIN_CLIENT_TIMEOUT", 10, int,
            "seconds nginx in front waits for a client: to send the request head, between two reads of its body, "
            "between two writes of the answer, and on an idle kept-alive connection"),
    Setting("FHIR_PLUGIN_WORKER_TIMEOUT", 30, int,
            "seconds a gunicorn worker may spend on one request before it is killed and replaced (a 502 behind "
            "nginx)"),
    Setting("FHIR_PLUGIN_MAX_REQUEST_BYTES", 1_048_576, int,
            "the largest request body accepted (413 beyond it), compressed or once inflated (Content-Encoding)"),
    Setting("FHIR_PLUGIN_GZIP_MIN_BYTES", 1024, int,
            "answers of this many bytes or more are compressed (gzip or deflate) for clients that accept it"),
    Setting("FHIR_PLUGIN_UI_MAX_UPLOAD_BYTES", 524_288, int,
            "the largest file of pairs the web page checks (413 beyond it)"),
    Setting("FHIR_PLUGIN_BASE_URL", "", str,
            "the public base URL for links and CapabilityStatement.implementation; empty: from the request"),
    Setting("FHIR_PLUGIN_MAX_EXPANSION", 10_000, int,
            "the largest $expand answered without paging (count); beyond it, too-costly"),
    Setting("FHIR_PLUGIN_SEARCH_PAGE_SIZE", 100, int,
            "the most resources in one page of a search: the page without _count, and a larger _count is lowered "
            "to it"),
    Setting("FHIR_PLUGIN_MAX_FILTER_WORDS", 40, int,
            "the most words in the text filter of $expand (each is searched for in every member); beyond it, "
            "too-costly"),
    Setting("FHIR_PLUGIN_MAX_FILTER_WORD_LENGTH", 100, int,
            "the most characters in one word of the text filter of $expand; beyond it, too-costly"),
    Setting("FHIR_PLUGIN_MAX_JSON_DEPTH", 100, int,
            "deepest nesting of JSON arrays and objects in a request body (400 too-costly, BODY_TOO_DEEP, beyond it) "
            "or a content file (422 CONTENT_TOO_DEEP), at most 150; a nested $expand shows at most half as many "
            "hierarchy levels"),
    Setting("FHIR_PLUGIN_MAX_TX_RESOURCES", 100, int,
            "the most tx-resource parameters in one request (each is validated and compiled); beyond it, too-costly"),
    Setting("FHIR_PLUGIN_MAX_BUNDLE_ENTRIES", 1000, int,
            "the most entries in one batch or transaction Bundle posted to a FHIR base; beyond it, too-costly"),
    Setting("FHIR_PLUGIN_TIME_BUDGET_MS", 5000, int,
            "the time one request may spend computing, in milliseconds; beyond it, too-costly (0: no budget)"),
    Setting("FHIR_PLUGIN_ANSWER_CACHE", 2048, int,
            "slots of 16 KiB per worker for the answers of reads, $lookup, $translate, $validate-code and $subsumes "
            "kept for identical requests (a slot per 16 KiB of an answer; one over a quarter of them is not kept); "
            "0 turns it off"),
    Setting("FHIR_PLUGIN_TX_RESOURCE_MEMORY", 128, int,
            "memory in MiB per worker for what requests bring (tx-resources, their overlays, what is computed "
            "from them, inline value sets and maps), kept for the next request; beyond it the least recently "
            "used go; 0 keeps none"),
    Setting("FHIR_PLUGIN_MAX_PACKAGE_BYTES", 256 * 1024 * 1024, int,
            "the largest uncompressed size of one FHIR package being loaded (decompression bombs)"),
    Setting("FHIR_PLUGIN_MAX_MEMBER_BYTES", 128 * 1024 * 1024, int,
            "the largest uncompressed size of one package member or one .json.gz file"),
    Setting("FHIR_PLUGIN_MAX_LOAD_BYTES", 16 * 1024 * 1024, int,
            "the largest uncompressed size of one load into a running server (/admin/content); beyond it, too-costly"),
    Setting("FHIR_PLUGIN_MAX_LOAD_RESOURCES", 10_000, int,
            "the most CodeSystems, ValueSets and ConceptMaps in one load into a running server; beyond it, too-costly"),
    Setting("FHIR_PLUGIN_MAX_LOAD_CONCEPTS", 50_000, int,
            "the most concepts in one load into a running server (of code systems, listed in value sets, elements "
            "of concept maps); beyond it, too-costly"),
    Setting("FHIR_PLUGIN_ADMIN_TOKEN", "", str,
            "the bearer token of the admin endpoints (/admin/content); empty: they are off"),
    Setting("FHIR_PLUGIN_LOAD_DIR", "", str,
            "where content loaded at run time is kept; empty: $XDG_DATA_HOME/fhir_plugin/loaded with an admin "
            "token, else none"),
    Setting("FHIR_PLUGIN_LOAD_DATABASE", "", str,
            "a PostgreSQL connection string (libpq: `host=db dbname=fhir user=fhir` or postgresql://...): content "
            "loaded at run time is kept there, shared by every replica, instead of FHIR_PLUGIN_LOAD_DIR; needs "
            "`pip install fhir-plugin[postgres]`"),
    Setting("FHIR_PLUGIN_LOAD_POLL", 5, int,
            "seconds between two reads of the load database's generation by each process, the fallback when a "
            "notification (LISTEN/NOTIFY) is lost, and between two tries while the database cannot be reached"),
    Setting("FHIR_PLUGIN_CACHE_DIR", "", str,
            "where the server caches compiled content; empty: $XDG_CACHE_HOME/fhir_plugin for `fhir-plugin serve` "
            "and `load`, none for an embedding app or the library"),
    Setting("FHIR_PLUGIN_ACCESS_LOG", "on", str,
            "one JSON line per request on the fhir_plugin.access logger: on (no query values), query (with the "
            "query string, cut to 1,024 characters), off"),
    Setting("FHIR_PLUGIN_METRICS", "open", str,
            "who may read /metrics (Prometheus): open (whoever reaches the server), admin (the bearer token "
            "FHIR_PLUGIN_ADMIN_TOKEN), off (404)"),
    Setting("FHIR_PLUGIN_PID_FILE", "", str,
            "where `fhir-plugin serve` writes its process id, which `fhir-plugin reload` reads; empty: "
            "fhir-plugin-<port>.pid in $XDG_RUNTIME_DIR, else fhir-plugin-<uid>-<port>.pid in the temporary directory"),
    Setting("FHIR_PLUGIN_TX_TESTS", "", str,
            "the HL7 terminology test suite folder of `fhir-plugin conformance`; empty: ../shared/tx-tests"),
)
ACCESS_LOG_CHOICES = ("on", "query", "off")
METRICS_CHOICES = ("open", "admin", "off")
DEFAULTS: dict[str, str | int] = {setting.name: setting.default for setting in SETTINGS}
Settings = dict[str, Any]


def load_settings(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults, overlaid by the environment, overlaid by `overrides` (for tests and embedding).
    Raises ValueError, naming the setting, for a value of the wrong type."""
    environ = os.environ if environ is None else environ
    settings: Settings = dict(DEFAULTS)
    for setting in SETTINGS:
        if setting.name in environ:
            settings[setting.name] = environ[setting.name]
    if overrides:
        settings.update({k: v for k, v in overrides.items() if k.startswith("FHIR_PLUGIN_")})
    for setting in SETTINGS:
        if setting.type is int:
            try:
                settings[setting.name] = int(settings[setting.name])
            except (TypeError, ValueError):
                raise ValueError(f"{setting.name} must be an integer, not {settings[setting.name]!r}") from None
    depth = settings["FHIR_PLUGIN_MAX_JSON_DEPTH"]
    if not 1 <= depth <= HIGHEST_JSON_DEPTH:
        # Every walk of a document takes this depth times a few stack frames: much more would let
        # Python's recursion limit, not this setting, stop a deep request (a 500, not a 400).
        raise ValueError(f"FHIR_PLUGIN_MAX_JSON_DEPTH must be between 1 and {HIGHEST_JSON_DEPTH}, not {depth}")
    version = str(settings["FHIR_PLUGIN_DEFAULT_VERSION"]).upper()
    if version not in FhirVersion.__members__:
        raise ValueError(f"FHIR_PLUGIN_DEFAULT_VERSION must be R4 or R5, not {version!r}")
    settings["FHIR_PLUGIN_DEFAULT_VERSION"] = version
    for name, allowed in (("FHIR_PLUGIN_ACCESS_LOG", ACCESS_LOG_CHOICES), ("FHIR_PLUGIN_METRICS", METRICS_CHOICES)):
        chosen = str(settings[name]).lower()
        if chosen not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {settings[name]!r}")
        settings[name] = chosen
    return settings


def bundled_dir(name: str) -> Path:
    """Where the shipped `resources/` or `conformance/` folder is.

    A source checkout (and an editable install) reads the top-level folder; a wheel carries the
    same files as `fhir_plugin/bundled/<name>`.
    """
    source_tree = PACKAGE_DIR.parent / name
    if source_tree.is_dir():
        return source_tree
    return PACKAGE_DIR / "bundled" / name


def _paths(raw: Any) -> list[Path]:
    if isinstance(raw, (list, tuple)):
        return [Path(str(p)) for p in raw]
    return [Path(p) for p in str(raw or "").split(os.pathsep) if p.strip()]


def base_content_paths(settings: Mapping[str, Any]) -> list[Path]:
    """FHIR_PLUGIN_CONTENT, which replaces the bundled content, or the bundled content."""
    return _paths(settings.get("FHIR_PLUGIN_CONTENT")) or [bundled_dir("resources")]


def extra_content_paths(settings: Mapping[str, Any]) -> list[Path]:
    """FHIR_PLUGIN_EXTRA_CONTENT: served beside the base content, never instead of it."""
    return _paths(settings.get("FHIR_PLUGIN_EXTRA_CONTENT"))


def content_paths(settings: Mapping[str, Any]) -> list[Path]:
    """Everything served at start-up: the base content, then the extra content."""
    return base_content_paths(settings) + extra_content_paths(settings)


def _user_dir(environ: Mapping[str, str] | None, variable: str, fallback: str) -> Path:
    environ = os.environ if environ is None else environ
    return Path(environ.get(variable) or str(Path.home() / fallback)) / "fhir_plugin"


def load_dir(settings: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Path | None:
    """The directory of content loaded at run time, or None when run-time loading is off."""
    if settings.get("FHIR_PLUGIN_LOAD_DIR"):
        return Path(settings["FHIR_PLUGIN_LOAD_DIR"])
    if not settings.get("FHIR_PLUGIN_ADMIN_TOKEN"):
        return None
    return _user_dir(environ, "XDG_DATA_HOME", ".local/share") / "loaded"


def cache_dir(settings: Mapping[str, Any], *, server: bool, environ: Mapping[str, str] | None = None) -> Path | None:
    """Where compiled content is cached: FHIR_PLUGIN_CACHE_DIR; without it, the user's cache
    directory for the server and the command line (`server`), and nowhere for the library."""
    if settings.get("FHIR_PLUGIN_CACHE_DIR"):
        return Path(settings["FHIR_PLUGIN_CACHE_DIR"])
    return _user_dir(environ, "XDG_CACHE_HOME", ".cache") if server else None


def pid_file(settings: Mapping[str, Any], port: int, environ: Mapping[str, str] | None = None) -> Path:
    """Where the server listening on `port` writes its process id: FHIR_PLUGIN_PID_FILE, else a
    name with the port (servers on several ports have one each) in the user's runtime directory, or
    with the user id too in the shared temporary directory."""
    if settings.get("FHIR_PLUGIN_PID_FILE"):
        return Path(settings["FHIR_PLUGIN_PID_FILE"])
    environ = os.environ if environ is None else environ
    if environ.get("XDG_RUNTIME_DIR"):
        return Path(environ["XDG_RUNTIME_DIR"]) / f"fhir-plugin-{port}.pid"
    import tempfile

    return Path(tempfile.gettempdir()) / f"fhir-plugin-{os.getuid()}-{port}.pid"


def package_cache_dir(settings: Mapping[str, Any]) -> Path:
    """The FHIR package cache: FHIR_PLUGIN_PACKAGE_CACHE, else ~/.fhir/packages (where the HL7
    validator, SUSHI and the IG publisher keep theirs)."""
    if settings.get("FHIR_PLUGIN_PACKAGE_CACHE"):
        return Path(settings["FHIR_PLUGIN_PACKAGE_CACHE"])
    return Path.home() / ".fhir" / "packages"


def tx_tests_dir(settings: Mapping[str, Any]) -> Path:
    """The HL7 terminology test suite: FHIR_PLUGIN_TX_TESTS, or ../shared/tx-tests beside the checkout."""
    if settings.get("FHIR_PLUGIN_TX_TESTS"):
        return Path(settings["FHIR_PLUGIN_TX_TESTS"])
    return PACKAGE_DIR.parent.parent / "shared" / "tx-tests"


# prometheus_client's own variable, not a setting of ours: with it set when the library is first
# imported, metrics are kept in files in that directory, one per process, and added up by a scrape.
MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def metrics_directory(environ: Mapping[str, str] | None = None) -> str | None:
    """PROMETHEUS_MULTIPROC_DIR, or None: metrics of this process only."""
    environ = os.environ if environ is None else environ
    return environ.get(MULTIPROCESS_VARIABLE) or None


def use_metrics_directory(directory: str | None) -> None:
    """Set PROMETHEUS_MULTIPROC_DIR for this process and the workers it forks (the server, before
    anything imports prometheus_client); None unsets it."""
    if directory is None:
        os.environ.pop(MULTIPROCESS_VARIABLE, None)
    else:
        os.environ[MULTIPROCESS_VARIABLE] = directory
