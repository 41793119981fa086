"""What the per-request observation (web/observe.py: request id, metrics, access log) adds to a
cached $lookup through the WSGI app, measured in one process by taking the hooks out and putting
them back between alternating timeit rounds (so that load from elsewhere on the machine falls on
every variant alike): microseconds per request, the minimum over the rounds.
Run: .venv/bin/python bench/observe_cost.py [--multiprocess]"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import timeit

QUERY = "system=http://www.ama-assn.org/go/cpt&code=97116"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--multiprocess", action="store_true", help="prometheus_client in multiprocess mode")
    args = parser.parse_args()
    if args.multiprocess:  # before prometheus_client is imported
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="observe-cost-")
    from fhir_plugin.app import create_app
    from fhir_plugin.web import observe

    app = create_app(server=True)
    settings = app.extensions["fhir_plugin"].settings
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/r4/CodeSystem/$lookup", "QUERY_STRING": QUERY,
               "SERVER_NAME": "localhost", "SERVER_PORT": "8080", "SERVER_PROTOCOL": "HTTP/1.1",
               "wsgi.url_scheme": "http", "REMOTE_ADDR": "127.0.0.1", "HTTP_ACCEPT": "application/fhir+json"}

    def start_response(status: str, headers: object, exc_info: object = None) -> None:
        assert status.startswith("200"), status

    def one() -> None:
        body = app.wsgi_app({**environ, "wsgi.input": io.BytesIO(b""), "wsgi.errors": io.StringIO()}, start_response)
        b"".join(body)
        body.close()  # type: ignore[attr-defined]

    befores = {name: list(funcs) for name, funcs in app.before_request_funcs.items()}
    afters = {name: list(funcs) for name, funcs in app.after_request_funcs.items()}
    devnull = os.open(os.devnull, os.O_WRONLY)

    def variant(hooks: bool, log: str) -> None:
        for name in befores:
            app.before_request_funcs[name] = [f for f in befores[name] if hooks or f is not observe.begin]
        for name in afters:
            app.after_request_funcs[name] = [f for f in afters[name] if hooks or f is not observe.finish]
        settings["FHIR_PLUGIN_ACCESS_LOG"] = log
        observe.write_access_lines_to(devnull)

    variants = {"without observation": (False, "off"), "metrics, request id, log off": (True, "off"),
                "metrics, request id, log on (to a file descriptor)": (True, "on")}
    one()  # computed once; the measured requests come from the answer cache
    best = {label: float("inf") for label in variants}
    for _ in range(args.rounds):
        for label, (hooks, log) in variants.items():
            variant(hooks, log)
            best[label] = min(best[label], timeit.timeit(one, number=args.number) / args.number * 1e6)
    base = best["without observation"]
    mode = "multiprocess" if args.multiprocess else "single process"
    print(f"cached $lookup through the WSGI app, prometheus_client {mode}, min of {args.rounds} x {args.number}:")
    for label, micro in best.items():
        print(f"  {label}: {micro:.1f} µs (+{micro - base:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
