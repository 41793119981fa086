"""The production WSGI server: gunicorn, run in-process with the settings `make serve` uses.

One function so that the benchmark's hello-world baseline runs under exactly the same server
and worker settings as fhir_plugin itself.

Workers are gunicorn's sync workers, which close the connection after every response. Threaded
workers (gthread) with keep-alive were measured against them (`make bench` conditions, 2 CPUs, 8
connections, $lookup): more requests per second at the peak, but a p99 of 3-5 ms instead of 2 ms,
because a worker's threads wait for one another (one runs Python at a time), and now and then a
third of the throughput, when the long-lived connections landed mostly on one worker. Sync
workers spread every request over the workers and keep the tail short. Clients that want to keep
their connections open (and anything facing the internet) belong behind a reverse proxy such as
nginx, which keeps them open and buffers slow clients; gunicorn's documentation recommends the
same for sync workers.
"""

from __future__ import annotations

import socket
from typing import Any


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


def run_gunicorn(app: Any, host: str, port: int, workers: int) -> None:
    """Serve `app` until interrupted. The app is built before the fork (preload), so every worker
    shares the one loaded index copy-on-write."""
    import gc

    from gunicorn import util

    # The content lives as long as the process: moving its objects (about a million with the
    # complete ICD-10-CM) out of the collector's generations keeps every later collection from
    # walking them (which made a large $expand three times slower) and keeps forked workers from
    # writing to, and so copying, the pages they share with the master.
    gc.freeze()
    from gunicorn.app.base import BaseApplication

    # gunicorn has no hook for these pages; this process runs only our server, so replacing its
    # writer here changes nothing else (the workers fork from this process and inherit it).
    util.write_error = write_outcome_error

    class Server(BaseApplication):
        def load_config(self) -> None:
            options = {"bind": f"{host}:{port}", "workers": workers, "preload_app": True,
                       # gunicorn >= 25.1 opens a control socket at one fixed path per user, so two
                       # servers on one machine would take it from each other; we do not use it.
                       "control_socket_disable": True}
            for key, value in options.items():
                if key in self.cfg.settings:  # control_socket_disable is unknown before 25.1
                    self.cfg.set(key, value)

        def load(self) -> Any:
            return app

    Server().run()
