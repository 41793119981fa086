"""The production server: gunicorn's sync workers, behind an nginx that `fhir-plugin serve` starts.

One function, `run_gunicorn`, so that the benchmark's hello-world baseline runs under exactly the
same front, server and worker settings as fhir_plugin itself.

Workers are gunicorn's sync workers: one request at a time each, and the connection closed after
every response. Threaded workers (gthread) with keep-alive were measured against them (`make
bench` conditions, 2 CPUs, 8 connections, $lookup): more requests per second at the peak, but a
p99 of 3-5 ms instead of 2 ms, because a worker's threads wait for one another (one runs Python at
a time), and now and then a third of the throughput, when the long-lived connections landed mostly
on one worker. Sync workers spread every request over the workers and keep the tail short.

A sync worker reads its client with no timeout of its own, so on its own two idle sockets stop a
two-worker server until gunicorn's worker timeout (30 s) kills the workers, and clients that
reconnect, send their headers a byte a second or never read a large answer keep it stopped. So
by default (FHIR_PLUGIN_FRONT=auto) nginx listens on the address and port, and gunicorn on a
Unix socket in a private temporary directory: nginx holds any number of slow or idle clients in
its event loop, times them out (FHIR_PLUGIN_CLIENT_TIMEOUT: the request head, each pause in the
body, each pause while the client reads, an idle kept-alive connection), reads a request whole
before it hands it to a worker, and takes a worker's answer at once (spooling a large one to disk)
so that the worker is free whatever the client does. Clients may keep their connections to nginx
open; nginx opens one Unix-socket connection per request to the workers, as the sync workers
want. Measured against the alternatives (the README's "Slow clients" section has the figures):
gthread held the attacks we ran, but a thread stays with a client sending its headers slowly
(enough of them starve it); gevent workers held them all, but (by design, not measured) a client
that never reads keeps its whole answer in the worker's memory, and gevent patches the standard
library after the content is loaded; granian (its own Rust I/O loop) was starved by two clients
sending a body at a byte a second. nginx held every attack, spools large answers to disk, and is
what deploy/ puts in front in production anyway.

nginx is a Debian package, not a Python one. Without it (FHIR_PLUGIN_FRONT=auto), `fhir-plugin
serve` says so, with the command that installs it, and serves with gunicorn alone, as before;
FHIR_PLUGIN_FRONT=nginx refuses to start without it; FHIR_PLUGIN_FRONT=none is gunicorn alone on
purpose, for a server behind a reverse proxy of its own (deploy/nginx.conf, deploy/README).

FHIR_PLUGIN_WORKER_TIMEOUT (gunicorn's `timeout`, 30 s): a worker that has not reported back for
that long (one request running that long) is killed and replaced; nginx answers that request with
a 502 OperationOutcome.

Whatever refuses a request before the app sees it answers with an OperationOutcome: gunicorn's
refusals through `write_outcome_error`, nginx's through the error pages written with its
configuration (`nginx_outcomes`).

The front itself (which one, nginx's configuration and its process) is nginx_front.py.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .nginx_front import NginxFront, choose_front

if TYPE_CHECKING:
    from .reloading import Reloader

WORKER_SETTINGS = "gunicorn sync workers (one connection per request)"  # for the benchmark report


def write_outcome_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's answer to a request it refuses before the app sees it (a request line over 4094
    bytes: 414, headers over its limits: 431, a malformed request line: 400), as an
    OperationOutcome instead of gunicorn's HTML page, so that a FHIR client can read it. The
    parameters are those of gunicorn.util.write_error, which this replaces."""
    import json

    from gunicorn import util

    from .terminology.outcome import http_outcome

    body = json.dumps(http_outcome(status_int, f"{reason}: {mesg}" if mesg else reason)).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/fhir+json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1")
    util.write_nonblock(sock, head + body)


# --- gunicorn -------------------------------------------------------------------------------------


def run_gunicorn(app: Any, host: str, port: int, workers: int, settings: Mapping[str, Any] | None = None,
                 reloader: Reloader | None = None) -> None:
    """Serve `app` until interrupted, behind nginx unless FHIR_PLUGIN_FRONT says otherwise. The
    app is built before the fork (preload), so every worker shares the one loaded index
    copy-on-write. `settings`: FHIR_PLUGIN_FRONT, _CLIENT_TIMEOUT, _WORKER_TIMEOUT and
    _MAX_REQUEST_BYTES (the environment's, or the defaults, when not given). `reloader`: what
    SIGHUP does first (reloading.py); without it, only gunicorn's own new workers for old."""
    import gc

    from gunicorn import util
    from gunicorn.arbiter import Arbiter

    from .config import load_settings
    from .config import metrics_directory
    from .runtime.metrics import worker_exited

    given: Mapping[str, Any] = load_settings() if settings is None else settings
    nginx, warning = choose_front(given)
    if warning:
        print(f"fhir-plugin: {warning}", file=sys.stderr, flush=True)
    front = NginxFront(nginx, host, port, given) if nginx else None

    # The content lives as long as the process: moving its objects (about a million with the
    # complete ICD-10-CM) out of the collector's generations keeps every later collection from
    # walking them (which made a large $expand three times slower) and keeps forked workers from
    # writing to, and so copying, the pages they share with the master.
    gc.freeze()
    gc.enable()  # `fhir-plugin serve` turned it off while the content loaded
    from gunicorn.app.base import BaseApplication

    # gunicorn has no hook for these pages; this process runs only our server, so replacing its
    # writer here changes nothing else (the workers fork from this process and inherit it).
    util.write_error = write_outcome_error

    def stop_front() -> None:
        if reloader is not None:
            reloader.withdraw()
        if front is not None:
            front.stop()

    class FrontArbiter(Arbiter):
        """gunicorn's master, which also starts, watches and stops the nginx in front."""

        def start(self) -> None:
            super().start()
            if front is not None:
                try:
                    front.start()
                except RuntimeError as failed:
                    self.stop()  # first: it removes the workers' socket from the front's directory
                    front.stop()
                    raise SystemExit(f"fhir-plugin: {failed}") from None
            if reloader is not None:
                reloader.announce()

        def handle_hup(self) -> None:
            # The content first, in this process; gunicorn's reload (new workers forked from this
            # state, the old ones stopped gracefully) only if it loaded.
            if reloader is None:
                super().handle_hup()
            else:
                reloader.run(super().handle_hup)

        def wait_for_signals(self, timeout: float | None = 1.0) -> list[int]:
            signals: list[int] = super().wait_for_signals(timeout)
            if reloader is None:
                return signals
            from .reloading import coalesce

            return coalesce(signals)

        def manage_workers(self) -> None:
            if front is not None:
                front.check()
            super().manage_workers()

    class Server(BaseApplication):
        def load_config(self) -> None:
            bind = f"unix:{front.socket_path}" if front is not None else f"{host}:{port}"
            options = {"bind": bind, "workers": workers, "preload_app": True,
                       "timeout": int(given["FHIR_PLUGIN_WORKER_TIMEOUT"]),
                       # gunicorn >= 25.1 opens a control socket at one fixed path per user, so two
                       # servers on one machine would take it from each other; we do not use it.
                       "control_socket_disable": True}
            options["on_exit"] = lambda arbiter: stop_front()
            if metrics_directory() is not None:  # a dead worker's live gauges stop counting
                options["child_exit"] = lambda arbiter, worker: worker_exited(worker.pid)
            for key, value in options.items():
                if key in self.cfg.settings:  # control_socket_disable is unknown before 25.1
                    self.cfg.set(key, value)

        def load(self) -> Any:
            return app

        def run(self) -> None:
            FrontArbiter(self).run()

    try:
        Server().run()
    finally:
        stop_front()
