"""What a cached $lookup costs through the standalone WSGI app, in one process: answered by the
answer cache's front door (web/front.py) or, with the door shut, by Flask and views.handle; each
with the per-request observation (web/observe.py: request id, metrics, access log) taken out, with
the log off and with it on. The variants alternate between timeit rounds (so that load from
elsewhere on the machine falls on every variant alike): microseconds per request, the minimum over
the rounds.
Run: .venv/bin/python bench/observe_cost.py [--multiprocess]"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import timeit
from typing import Any

QUERY = "system=http://www.ama-assn.org/go/cpt&code=97116"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--multiprocess", action="store_true", help="prometheus_client in multiprocess mode")
    args = parser.parse_args()
    if args.multiprocess:  # before prometheus_client is imported
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="observe-cost-")
    import fhir_plugin.app as standalone_module
    import fhir_plugin.web.front as front_module
    from fhir_plugin.web import observe

    standalone: Any = standalone_module  # its functions are swapped below
    front: Any = front_module

    app = standalone.create_app(server=True)
    door = app.front
    settings = app.extensions["fhir_plugin"].settings
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/r4/CodeSystem/$lookup", "QUERY_STRING": QUERY,
               "SERVER_NAME": "localhost", "SERVER_PORT": "8080", "SERVER_PROTOCOL": "HTTP/1.1",
               "wsgi.url_scheme": "http", "REMOTE_ADDR": "127.0.0.1", "HTTP_ACCEPT": "application/fhir+json"}

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        assert status.startswith("200"), status

    def one() -> None:
        body: Any = app.wsgi_app({**environ, "wsgi.input": io.BytesIO(b""), "wsgi.errors": io.StringIO()},
                                 start_response)
        b"".join(body)
        if hasattr(body, "close"):
            body.close()

    real = (standalone.begin, standalone.observed, front.record_hit)
    unobserved = (lambda: None, lambda response, req, app: response, lambda headers, *rest: None)
    devnull = os.open(os.devnull, os.O_WRONLY)
    observe.write_access_lines_to(devnull)

    def variant(door_open: bool, observed: bool, log: str) -> None:
        app.front = door if door_open else None
        standalone.begin, standalone.observed, front.record_hit = real if observed else unobserved
        settings["FHIR_PLUGIN_ACCESS_LOG"] = log

    variants = {f"{where}, {what}": (door_open, observed, log)
                for where, door_open in (("front door", True), ("through Flask", False))
                for what, observed, log in (("without observation", False, "off"), ("log off", True, "off"),
                                            ("log on", True, "on"))}
    one()  # computed once; the measured requests come from the answer cache
    best = {label: float("inf") for label in variants}
    for _ in range(args.rounds):
        for label, chosen in variants.items():
            variant(*chosen)
            best[label] = min(best[label], timeit.timeit(one, number=args.number) / args.number * 1e6)
    mode = "multiprocess" if args.multiprocess else "single process"
    print(f"cached $lookup through the WSGI app, prometheus_client {mode}, min of {args.rounds} x {args.number}:")
    for label, micro in best.items():
        print(f"  {label}: {micro:.1f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
