"""The `fhir-plugin` command: serve, the HL7 conformance runner, and the dispatch to the other
commands: the operations ($lookup, $translate, $validate-code, $expand, $subsumes) are in
cli_operations.py, the content commands in cli_content.py, check-pairs in cli_pairs.py, reload in
cli_reload.py.

Exit codes: 0 the operation succeeded (for translate and validate-code: result true); 1 translate
or validate-code answered result=false; 2 an error (a TerminologyError, a bad setting or bad
usage), printed as one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from . import cli_content, cli_operations, cli_pairs, cli_reload
from .fhirversions import FhirVersion
from .terminology.errors import TerminologyError
from .version import __version__

# --- serve -----------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    import os
    import shutil
    import tempfile

    from .config import MULTIPROCESS_VARIABLE, metrics_directory, use_metrics_directory
    from .nginx_front import describe_front
    from .runtime.metrics import prepare_directory
    from .startup import port_problem

    host = args.host or settings["FHIR_PLUGIN_HOST"]
    port = settings["FHIR_PLUGIN_PORT"] if args.port is None else args.port
    workers = settings["FHIR_PLUGIN_WORKERS"] if args.workers is None else args.workers
    front = describe_front(settings)  # a bad FHIR_PLUGIN_FRONT stops the start before the content loads
    problem = port_problem(host, port)  # before the content: a taken port is said at once, not after a load
    if problem:
        print(f"fhir-plugin: {problem}", file=sys.stderr)
        return 1
    # Before anything imports prometheus_client, which chooses multiprocess mode when imported.
    private = tempfile.mkdtemp(prefix="fhir-plugin-metrics-")
    given = metrics_directory()
    try:
        use_metrics_directory(prepare_directory(private))
    except OSError as error:
        shutil.rmtree(private, ignore_errors=True)
        use_metrics_directory(given)
        print(f"fhir-plugin: the metrics directory ({MULTIPROCESS_VARIABLE}) cannot be written: {error}",
              file=sys.stderr)
        return 1
    master = os.getpid()
    try:
        return _serve_with(host, port, workers, front, settings)
    finally:
        # A worker leaves through these frames too (gunicorn ends it with SystemExit): only the
        # master removes the directory the other workers still write to.
        if os.getpid() == master:
            shutil.rmtree(private, ignore_errors=True)
            use_metrics_directory(given)  # as it was (a caller running `serve` in-process, a test)


def _serve_with(host: str, port: int, workers: int, front: str, settings: dict[str, Any]) -> int:
    from .app import create_app
    from .content.progress import TerminalProgress
    from .config import content_paths
    from .config import pid_file
    from .extension import STARTUP
    from .reloading import Reloader, banner_line, ignore_reloads_while_starting
    from .server import run_gunicorn
    from .startup import banner, configure_logging

    ignore_reloads_while_starting()
    print(f"fhir-plugin: loading {', '.join(str(p) for p in content_paths(settings))}", file=sys.stderr, flush=True)
    # Loaded here, before gunicorn forks, so that bad content stops the start with a one-line message.
    # The collector stays off until run_gunicorn freezes the content: the first collection after a
    # warm start would walk every object just read from the content cache (0.8 s with FHIR core and
    # THO, measured) only to find them all alive.
    import gc

    gc.disable()
    try:
        app = create_app(server=True, progress=TerminalProgress())
    except ValueError as error:  # a setting that cannot be served with (psycopg missing for the load database)
        print(f"fhir-plugin: {error}", file=sys.stderr)
        return 2
    configure_logging()  # once the start cannot fail for the content: the process is the server's now
    base = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    reloader = Reloader(app, pid_file(settings, port))
    print("\n".join([*banner(base, workers, __version__, settings, front, app.extensions[STARTUP]),
                     banner_line(reloader, port)]), flush=True)
    run_gunicorn(app, host, port, workers, settings, reloader)
    return 0


def _conformance(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    """The HL7 terminology tests (fhir_plugin.txtests) against --server, or in-process with --app."""
    from .txtests import command

    app = None
    if args.app:
        from .app import create_app

        app = create_app()
    return command.main(args, app)


# --- the command line ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fhir-plugin", description="FHIR terminology service (R4 and R5)")
    parser.add_argument("--version", action="version", version=f"fhir-plugin {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the server (gunicorn); defaults from FHIR_PLUGIN_*")
    serve.add_argument("--host", help="address to listen on (FHIR_PLUGIN_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (FHIR_PLUGIN_PORT, default 8080)")
    serve.add_argument("--workers", type=int, help="worker processes (FHIR_PLUGIN_WORKERS, default 2)")

    cli_operations.add_parsers(commands)

    conformance = commands.add_parser(
        "conformance", help="run the HL7 terminology tests (tx-ecosystem suite) against a server",
        description="Runs the HL7 terminology test suite as the official runner (TxTester) does; prints "
                    "per-suite counts and 'N passed, M failed'. Exit code 0 if all passed, 1 otherwise.")
    target = conformance.add_mutually_exclusive_group(required=True)
    target.add_argument("--server", metavar="URL", help="FHIR base of a live server, e.g. http://127.0.0.1:8080/r4")
    target.add_argument("--app", action="store_true",
                        help="this project's app, in-process: R5 on /r5 and R4 on /r4 (FHIR_PLUGIN_CONTENT applies)")
    conformance.add_argument("--fhir-version", choices=[v.value for v in FhirVersion], type=str.upper,
                             help="the server's FHIR version (default: detected as the official runner does)")
    conformance.add_argument("--mode", default="general", metavar="MODES",
                             help="comma-separated test modes; general is always on unless !general (default general)")
    conformance.add_argument("--filter", metavar="TEXT", help="only tests whose suite/test id contains TEXT")
    conformance.add_argument("--output", metavar="DIR", help="write expected/ and actual/ JSON of failed tests here")
    conformance.add_argument("--tests", metavar="PATH",
                             help="the test folder (or its test-cases.json); default FHIR_PLUGIN_TX_TESTS or ../shared/tx-tests")
    conformance.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                             help="with --server: seconds to wait for each answer (default 120)")
    conformance.add_argument("--write-expected-failures", metavar="FILE",
                             help="update this expected-failures list (e.g. conformance/tx-expected-failures.json) from the run")
    conformance.add_argument("-v", "--verbose", action="store_true", help="list every failed test with its first difference")
    cli_content.add_parsers(commands)
    cli_pairs.add_parser(commands)
    cli_reload.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `fhir-plugin` and `python -m fhir_plugin`; returns the exit code."""
    from .config import load_settings

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help, --version and usage errors: argparse has printed them
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        settings = load_settings()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    handlers = {"serve": _serve, **cli_operations.HANDLERS, "conformance": _conformance, **cli_content.HANDLERS,
                **cli_pairs.HANDLERS, **cli_reload.HANDLERS}
    handler = handlers[args.command]
    try:
        return handler(args, settings)
    except TerminologyError as error:
        print(f"error (HTTP {error.status}): {error.text}", file=sys.stderr)
        return 2
