"""What the web UI's answers cost against a cached $lookup, through the WSGI app in one process
(no server): a cached `$lookup` of CPT 97116, the concept pages of ICD-10-CM M62.81 and CPT 97116,
and the type-ahead request ui.js sends (GET .../suggest?q=..., Accept: application/json), each asked
again and again (the steady state `make bench` measures), and, with --fresh, new type-ahead texts
and new concept pages each time (what a person browsing makes). Variants alternate between timeit
rounds, so that load from elsewhere on the shared machine falls on all alike: microseconds per
request, the minimum over the rounds. The issue's target: a page and a type-ahead at most 2x the
cached $lookup (half its throughput).
Run: .venv/bin/python bench/ui_cost.py [--number N] [--rounds R] [--fresh]"""

from __future__ import annotations

import argparse
import io
import random
import sys
import timeit
from collections.abc import Callable, Iterator
from urllib.parse import quote

CPT = "http://www.ama-assn.org/go/cpt"
REQUESTS = {
    "cached $lookup CPT 97116": ("/r4/CodeSystem/$lookup", f"system={CPT}&code=97116", "application/fhir+json"),
    "concept page ICD-10-CM M62.81": ("/ui/CodeSystem/icd-10-cm/concept/M62.81", "", "text/html"),
    "concept page CPT 97116": ("/ui/CodeSystem/cpt-97116-fragment/concept/97116", "", "text/html"),
    "type-ahead ICD-10-CM 'gait'": ("/ui/CodeSystem/icd-10-cm/suggest", "q=gait", "application/json"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--fresh", action="store_true", help="also new type-ahead texts and concept pages")
    args = parser.parse_args()
    from fhir_plugin.app import create_app

    app = create_app(server=True)
    base = {"REQUEST_METHOD": "GET", "SERVER_NAME": "localhost", "SERVER_PORT": "8080",
            "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http", "REMOTE_ADDR": "127.0.0.1"}

    def start_response(status: str, headers: object, exc_info: object = None) -> None:
        assert status.startswith("200"), status

    def call(path: str, query: str, accept: str) -> None:
        environ = {**base, "PATH_INFO": path, "QUERY_STRING": query, "HTTP_ACCEPT": accept,
                   "wsgi.input": io.BytesIO(b""), "wsgi.errors": io.StringIO()}
        body = app.wsgi_app(environ, start_response)
        b"".join(body)
        close = getattr(body, "close", None)
        if close is not None:
            close()

    variants: dict[str, Callable[[], None]] = {}
    for label, (path, query, accept) in REQUESTS.items():
        variants[label] = lambda path=path, query=query, accept=accept: call(path, query, accept)
    if args.fresh:
        service = app.extensions["fhir_plugin"].service
        icd = service.code_system_by_id("icd-10-cm")
        codes: Iterator[str] = iter(list(icd.concepts) * 2)
        # prefixes (3 to 6 letters) of the words of ICD-10-CM's displays, each asked once, in a
        # fixed shuffled order: what people type, never the same twice
        prefixes = sorted({word.casefold()[:n] for concept in icd.concepts.values() for word in (concept.display or "").split()
                           if word.isalpha() for n in range(3, min(len(word), 6) + 1)})
        random.Random(13).shuffle(prefixes)
        fresh_texts = iter(prefixes)
        variants["type-ahead ICD-10-CM, a new text each time"] = lambda: call(
            "/ui/CodeSystem/icd-10-cm/suggest", f"q={quote(next(fresh_texts))}", "application/json")
        variants["concept page ICD-10-CM, a new code each time"] = lambda: call(
            f"/ui/CodeSystem/icd-10-cm/concept/{next(codes)}", "", "text/html")
    for one in variants.values():
        one()  # the first request of each computes what the next ones may reuse
    best = {label: float("inf") for label in variants}
    for _ in range(args.rounds):
        for label, one in variants.items():
            best[label] = min(best[label], timeit.timeit(one, number=args.number) / args.number * 1e6)
    lookup = best["cached $lookup CPT 97116"]
    print(f"through the WSGI app in one process, min of {args.rounds} rounds x {args.number}:")
    for label, micro in best.items():
        print(f"  {label}: {micro:,.1f} µs ({micro / lookup:.2f}x the cached $lookup)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
