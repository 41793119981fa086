"""Memory of the workers under requests that each bring new tx-resources (the hardening issue's attack).

Starts the server as `make serve` does (`fhir-plugin serve`, 2 workers, default settings unless
given with --set NAME=VALUE), then POSTs `$expand` of an inline ValueSet that includes all of
ICD-10-CM (`filter=weak`, `count=10`), each request with one CodeSystem tx-resource under a new
url: a tiny one (`--variant small`, a request of 501 bytes) or one of 10,000 concepts
(`--variant large`, 879 KB). Prints the resident memory (VmRSS) of each worker, children of
the gunicorn master, at the start and after every `--step` requests, and the distinct totals
answered (14 every time, if all is well). Stops early if a worker grows past `--cap` MiB, so
that a run cannot take the machine's memory.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
VALUE_SET = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [{"system": ICD}]}}


def code_system(number: int, concepts: int) -> dict:
    return {"resourceType": "CodeSystem", "url": f"http://example.org/attack/{number}", "status": "active",
            "content": "complete",
            "concept": [{"code": f"C{i:05d}", "display": f"Concept {i} of a large code system sent as a tx-resource"}
                        for i in range(concepts)]}


def body(number: int, concepts: int) -> bytes:
    return json.dumps({"resourceType": "Parameters", "parameter": [
        {"name": "valueSet", "resource": VALUE_SET}, {"name": "filter", "valueString": "weak"},
        {"name": "count", "valueInteger": 10},
        {"name": "tx-resource", "resource": code_system(number, concepts)}]}, separators=(",", ":")).encode()


def workers(master: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == master:
                found.append(int(entry))
    return sorted(found)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmRSS for {pid}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=("small", "large"), default="small")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--step", type=int, default=150)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cap", type=float, default=4096, help="stop when a worker exceeds this many MiB")
    parser.add_argument("--set", action="append", default=[], help="a setting NAME=VALUE for the server")
    args = parser.parse_args()
    concepts = 1 if args.variant == "small" else 10_000
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIR_PLUGIN_")}
    env.update(item.split("=", 1) for item in args.set)
    server = subprocess.Popen([str(BIN / "fhir-plugin"), "serve", "--port", str(port), "--workers",
                               str(args.workers)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/r4"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/metadata", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start")
                time.sleep(0.2)
        while len(workers(server.pid)) < args.workers:
            time.sleep(0.1)
        pids = workers(server.pid)
        print(f"variant {args.variant}: request body {len(body(0, concepts))} bytes; settings {args.set or 'default'}")
        start = {pid: rss_mib(pid) for pid in pids}
        print(f"{0:5d} requests: " + "  ".join(f"{rss:7.1f}" for rss in start.values())
              + f"   total {sum(start.values()):7.1f} MiB", flush=True)
        totals: set[int] = set()
        began = time.monotonic()
        for number in range(1, args.requests + 1):
            request = urllib.request.Request(f"{url}/ValueSet/$expand", data=body(number, concepts),
                                             headers={"Content-Type": "application/fhir+json"})
            with urllib.request.urlopen(request, timeout=120) as response:
                totals.add(json.loads(response.read())["expansion"]["total"])
            if number % args.step == 0 or number == args.requests:
                now = {pid: rss_mib(pid) for pid in pids}
                grown = sum(now.values()) - sum(start.values())
                print(f"{number:5d} requests: " + "  ".join(f"{rss:7.1f}" for rss in now.values())
                      + f"   total {sum(now.values()):7.1f} MiB, grown {grown:7.1f} MiB"
                      f"   ({(time.monotonic() - began) / number * 1000:.0f} ms a request)", flush=True)
            if max(rss_mib(pid) for pid in pids) > args.cap:
                print(f"stopped after {number} requests: a worker is past {args.cap} MiB")
                break
        print(f"totals answered: {sorted(totals)}")
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
