"""Start-up time and memory per worker: the default content (the complete ICD-10-CM with FHIR R5 core
and HL7 Terminology from the package cache), the complete ICD-10-CM alone, and the small fragment
content.

Not a test. For each content set, starts `fhir-plugin serve --workers 1` (gunicorn, content loaded
before the fork) with an empty content cache (cold) and again with the cache it left (warm),
measures the time from spawning the process to the first answer of /r4/metadata, and reads the
resident memory (VmRSS) and proportional set size (Pss: shared pages counted once per sharer) of
the master and of its one worker from /proc. Writes bench/results/startup.md.

    .venv/bin/python bench/startup.py [runs]
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from fhir_plugin.config import DEFAULT_PACKAGES  # noqa: E402
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def memory(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of a process, in MiB."""
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmRSS:"))
    pss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
               if line.startswith("Pss:"))
    return rss / 1024, pss / 1024


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def start(content: list[Path], cache_dir: Path, packages: str = "") -> dict:
    port = free_port()
    env = {**os.environ, "FHIR_PLUGIN_CONTENT": os.pathsep.join(map(str, content)),
           "FHIR_PLUGIN_CACHE_DIR": str(cache_dir), "FHIR_PLUGIN_PACKAGES": packages,
           "FHIR_PLUGIN_FRONT": "none"}  # the master's one child is then its worker (no nginx beside it)
    began = time.perf_counter()
    server = subprocess.Popen([str(BIN / "fhir-plugin"), "serve", "--port", str(port), "--workers", "1"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"the server stopped with exit code {server.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/r4/metadata", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.05)
        ready = time.perf_counter() - began
        time.sleep(0.5)  # let the worker settle after its first request
        [worker] = children(server.pid)
        return {"seconds": ready, "worker": memory(worker), "master": memory(server.pid)}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def measure(name: str, content: list[Path], runs: int, packages: str = "") -> dict:
    cold, warm = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as cache_dir:
            cold.append(start(content, Path(cache_dir), packages))
            warm.append(start(content, Path(cache_dir), packages))
    median = lambda rows, f: statistics.median(f(r) for r in rows)  # noqa: E731
    result = {"name": name}
    for label, rows in (("cold", cold), ("warm", warm)):
        result[label] = {"seconds": median(rows, lambda r: r["seconds"]),
                         "worker_rss": median(rows, lambda r: r["worker"][0]),
                         "worker_pss": median(rows, lambda r: r["worker"][1]),
                         "master_rss": median(rows, lambda r: r["master"][0])}
    print(name, result, flush=True)
    return result


def table(default: dict, complete: dict, fragment: dict, runs: int) -> str:
    lines = [
        "# Start-up: the default content, the complete ICD-10-CM alone, the fragment content",
        "",
        f"`fhir-plugin serve --workers 1`, median of {runs} runs per row, measured by `bench/startup.py` on this",
        "machine (2 cores, shared and noisy: read the ratios, not the absolute numbers). *Start* is from",
        "spawning the process to the first answer of `/r4/metadata`. *Cold*: empty content cache;",
        "*warm*: the cache the cold start wrote. RSS counts shared pages in full, PSS shares them among the",
        "processes that map them (master and worker share the content loaded before the fork).",
        "",
        "*Default*: what `make serve` serves, the complete ICD-10-CM with FHIR R5 core 5.0.0 and HL7",
        "Terminology 7.0.1 from the package cache. The ratio is to the fragment content.",
        "",
        "| | default content | complete ICD-10-CM | fragment content | ratio (default) |",
        "|---|---|---|---|---|",
    ]
    for label in ("cold", "warm"):
        for key, title, unit in (("seconds", "start", "s"), ("worker_rss", "worker RSS", "MiB"),
                                 ("worker_pss", "worker PSS", "MiB"), ("master_rss", "master RSS", "MiB")):
            d, a, b = default[label][key], complete[label][key], fragment[label][key]
            lines.append(f"| {label}: {title} | {d:.2f} {unit} | {a:.2f} {unit} | {b:.2f} {unit} | {d / b:.1f}x |")
    lines += ["", "The fragment content is small enough that it is never cached (content under 256 KiB is",
              "validated directly), so its cold and warm starts do the same work."]
    return "\n".join(lines) + "\n"


def main(runs: int = 3) -> None:
    with tempfile.TemporaryDirectory() as fragment_dir:
        subprocess.run([sys.executable, str(ROOT / "tools" / "make_resources.py"), "--fragment-dir", fragment_dir],
                       check=True, stdout=subprocess.DEVNULL)
        fragment = measure("fragment", [Path(fragment_dir)], runs)
    complete = measure("complete", [ROOT / "resources"], runs)
    default = measure("default", [ROOT / "resources"], runs, DEFAULT_PACKAGES)
    out = ROOT / "bench" / "results" / "startup.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table(default, complete, fragment, runs), encoding="utf-8")
    print(out.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
