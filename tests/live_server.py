"""A real `fhir-plugin serve` (gunicorn, one worker unless asked for more) in a subprocess, for tests
that need HTTP over a socket: the client, `--server` and load tests. Import the `live_server` fixture into a test module
(`from live_server import live_server`); each module that does gets its own server.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

START_TIMEOUT = 120.0  # seconds; a start takes about one with the content cache warm, 20-40 without it
STOP_TIMEOUT = 15.0


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it; it is free again once we close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_environ() -> dict[str, str]:
    """The environment without FHIR_PLUGIN_* settings, so the server serves the bundled content, and
    without the default packages (FHIR core, THO): the tests about them ask for them."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("FHIR_PLUGIN_")}, "FHIR_PLUGIN_PACKAGES": ""}


@dataclass
class LiveServer:
    url: str  # http://127.0.0.1:<port>, without an endpoint
    port: int
    log: IO[bytes]
    pid: int = 0  # the server process: gunicorn's master (its workers are its children)

    @property
    def r4(self) -> str:
        return f"{self.url}/r4"

    @property
    def r5(self) -> str:
        return f"{self.url}/r5"

    def output(self, access: bool = False) -> str:
        """What the server printed so far (stdout and stderr), without the access log's JSON lines
        (one per request, by design) unless `access`: what tests of a bounded log measure."""
        self.log.seek(0)
        text = self.log.read().decode("utf-8", "replace")
        if access:
            return text
        return "".join(line for line in text.splitlines(keepends=True) if not line.startswith('{"time":'))

    def access_lines(self) -> list[dict[str, Any]]:
        """The access log so far, one dict per request (web/observe.py)."""
        return [json.loads(line) for line in self.output(access=True).splitlines() if line.startswith('{"time":')]


def _wait_until_ready(process: subprocess.Popen, server: LiveServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{server.output()}")
        try:
            with urllib.request.urlopen(f"{server.r4}/metadata", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass  # not listening yet
        time.sleep(0.1)
    raise RuntimeError(f"the server did not answer /r4/metadata within {START_TIMEOUT} s:\n{server.output()}")


@contextmanager
def running_server(workers: int = 1, make_serve: bool = False,
                   settings: Mapping[str, str] | None = None) -> Iterator[LiveServer]:
    """Start `python -m fhir_plugin serve` on a free port, wait for it, stop it afterwards.
    `settings`: FHIR_PLUGIN_* variables to start it with (small budgets for attack tests).

    `make_serve`: start it the way `make serve` does instead, `.venv/bin/fhir-plugin serve`,
    with the port and the number of workers in FHIR_PLUGIN_PORT and FHIR_PLUGIN_WORKERS.
    """
    port = free_port()
    environ = {**clean_environ(), **(settings or {})}
    if make_serve:
        command = [str(Path(sys.executable).with_name("fhir-plugin")), "serve"]
        environ.update(FHIR_PLUGIN_PORT=str(port), FHIR_PLUGIN_WORKERS=str(workers))
    else:
        command = [sys.executable, "-m", "fhir_plugin", "serve", "--host", "127.0.0.1", "--port", str(port),
                   "--workers", str(workers)]
    with tempfile.TemporaryFile() as log:
        server = LiveServer(f"http://127.0.0.1:{port}", port, log)
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environ)
        server.pid = process.pid
        try:
            _wait_until_ready(process, server)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def live_server() -> Iterator[LiveServer]:
    with running_server() as server:
        yield server


@contextmanager
def serving_app(app) -> Iterator[str]:
    """Serve a Flask app (a host app that mounts the plugin) over HTTP on a free port, in a thread
    of this process, with werkzeug's server; yields its URL."""
    import threading

    from werkzeug.serving import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args: object, **kwargs: object) -> None:
            pass  # a test's hundreds of requests are not worth a line each

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(STOP_TIMEOUT)
