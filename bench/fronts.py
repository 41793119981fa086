"""A/B of what `fhir-plugin serve` puts in front of its workers (FHIR_PLUGIN_FRONT), cell by cell.

`make bench` measures one front; comparing two of its runs on a shared machine compares two
moments as much as two fronts. Here both fronts run side by side (fhir_plugin and the hello-world
baseline under each, four servers), and for every scenario of `make bench` and every round the
cells alternate: baseline then fhir_plugin under one front, the same under the other, the order
swapped each round. Reported: each front's mean ratio to its own baseline over the rounds, and the
difference. Results go to bench/results/fronts.md. Loopback only; every run is bounded in time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402 - bench/run.py: its scenarios, processes and wrk

FRONTS = ("none", "auto")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=2, help="wrk duration per cell (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="cells per scenario and front (default 3)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", help="only the scenarios whose name contains this")
    args = parser.parse_args()
    binary = bench.ensure_wrk()
    servers: dict[str, tuple[int, int]] = {}
    processes = []
    try:
        for front in FRONTS:
            env = {k: v for k, v in os.environ.items() if not k.startswith("FHIR_PLUGIN_")}
            env["FHIR_PLUGIN_FRONT"] = front
            app_port, base_port = bench.free_port(), bench.free_port()
            processes.append(bench.start([str(bench.BIN / "fhir-plugin"), "serve", "--port", str(app_port),
                                          "--workers", str(args.workers)], app_port, "/r4/metadata", env))
            processes.append(bench.start(
                [sys.executable, "-c", "import sys; sys.path.insert(0, 'bench'); from baseline_app import app; "
                 f"from fhir_plugin.server import run_gunicorn; run_gunicorn(app, '127.0.0.1', {base_port}, "
                 f"{args.workers})"], base_port, "/hello", env))
            servers[front] = (app_port, base_port)
        lines = [f"# FHIR_PLUGIN_FRONT none (gunicorn alone) and auto (nginx in front), side by side "
                 f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", "",
                 f"{args.rounds} rounds of {args.seconds} s cells, alternating; ratio = fhir_plugin's requests/s "
                 f"over its own front's baseline in the cell before. {os.cpu_count()} CPUs, load average "
                 f"{os.getloadavg()[0]:.1f} at the start.", "",
                 "| scenario | conns | none: ratio (spread) | nginx: ratio (spread) | nginx - none | "
                 "baseline req/s none, nginx | p99 ms none, nginx |", "|---|---|---|---|---|---|---|"]
        print("\n".join(lines), flush=True)
        with tempfile.TemporaryDirectory() as work:
            workdir = Path(work)
            for name, method, path, body in bench.scenarios():
                if args.only and args.only not in name:
                    continue
                for connections in (1, 8):
                    ratios: dict[str, list[float]] = {f: [] for f in FRONTS}
                    bases: dict[str, list[float]] = {f: [] for f in FRONTS}
                    p99: dict[str, list[float]] = {f: [] for f in FRONTS}
                    for round_ in range(args.rounds):
                        for front in (FRONTS if round_ % 2 == 0 else FRONTS[::-1]):
                            app_port, base_port = servers[front]
                            before = bench.wrk(binary, f"http://127.0.0.1:{base_port}/hello", connections,
                                               args.seconds, None, workdir)
                            result = bench.wrk(binary, f"http://127.0.0.1:{app_port}{path}", connections,
                                               args.seconds, body, workdir)
                            ratios[front].append(result["rps"] / before["rps"])
                            bases[front].append(before["rps"])
                            p99[front].append(result["p99_ms"])
                    mean = {f: statistics.mean(ratios[f]) for f in FRONTS}
                    spread = {f: max(ratios[f]) - min(ratios[f]) for f in FRONTS}
                    line = (f"| {name} | {connections} | {mean['none']:.2f} ({spread['none']:.2f}) | "
                            f"{mean['auto']:.2f} ({spread['auto']:.2f}) | {mean['auto'] - mean['none']:+.2f} | "
                            f"{statistics.mean(bases['none']):.0f}, {statistics.mean(bases['auto']):.0f} | "
                            f"{statistics.median(p99['none']):.2f}, {statistics.median(p99['auto']):.2f} |")
                    lines.append(line)
                    print(line, flush=True)
    finally:
        for process in processes:
            bench.stop(process)
    bench.RESULTS.mkdir(parents=True, exist_ok=True)
    if not args.only:
        (bench.RESULTS / "fronts.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
