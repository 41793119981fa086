"""`make bench`: fhir_plugin's throughput and latency against a hello-world baseline, with wrk.

Starts the server exactly as `make serve` does (`fhir-plugin serve`, same workers) and, in the
same run, a hello-world Flask app under the same gunicorn settings (fhir_plugin.server), then
drives both with wrk at 1 and 8 connections. Most scenarios repeat one request, as a validator
does, and so are answered from the answer cache after the first time; one row cycles through 1000
ICD-10-CM codes with every request distinct, so that the uncached path is measured too. Every
scenario is reported with requests per second, p50 and p99 latency, and its throughput as a ratio
to the baseline measured right before it in this run, because these machines are shared and noisy.
Results go to bench/results/throughput.{md,json} and a PNG chart. Loopback only; every run is
bounded in time.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from fhir_plugin.config import load_settings  # noqa: E402
from fhir_plugin.nginx_front import describe_front  # noqa: E402 - the settings both servers run with
from fhir_plugin.server import WORKER_SETTINGS  # noqa: E402
RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent
CPT, ICD = "http://www.ama-assn.org/go/cpt", "http://hl7.org/fhir/sid/icd-10-cm"
DX_VS = "http://fhir-plugin.org/fhir/ValueSet/icd-10-cm-gait-training-diagnoses"
# HL7 Terminology, one of the default packages (`make bench` installs them as `make serve` does)
ACT_CODE, ACT_ENCOUNTER_VS = ("http://terminology.hl7.org/CodeSystem/v3-ActCode",
                              "http://terminology.hl7.org/ValueSet/v3-ActEncounterCode")


def _parameters(*params: dict) -> dict:
    return {"resourceType": "Parameters", "parameter": list(params)}


def _tx_setup() -> list[dict]:
    """The HL7 suite's largest setup (the `version` suite, 14 resources), if the suite is beside us."""
    tests = Path(os.environ.get("FHIR_PLUGIN_TX_TESTS", ROOT.parent / "shared" / "tx-tests"))
    try:
        manifest = json.loads((tests / "test-cases.json").read_text(encoding="utf-8-sig"))
    except OSError:
        return []
    [suite] = [s for s in manifest["suites"] if s["name"] == "version"]
    return [json.loads((tests / p).read_text(encoding="utf-8-sig")) for p in suite["setup"]]


def icd10cm_codes(count: int = 1000) -> list[str]:
    """`count` codes spread evenly over the complete ICD-10-CM (chapters, blocks and codes)."""
    document = json.loads(gzip.decompress((ROOT / "resources" / "CodeSystem-icd-10-cm.json.gz").read_bytes()))
    codes: list[str] = []
    pending = list(reversed(document["concept"]))
    while pending:
        concept = pending.pop()
        codes.append(concept["code"])
        pending.extend(reversed(concept.get("concept", [])))
    step = len(codes) / count
    return [codes[int(i * step)] for i in range(count)]


def distinct_lookups(codes: list[str]) -> str:
    """A wrk script: GET $lookup of the next code, with a request number that makes every request
    distinct (an unknown parameter, ignored by the operation), so none is an answer-cache hit."""
    listed = ", ".join(f'"{c}"' for c in codes)
    return f"""local codes = {{{listed}}}
local threads, n = 0, 0
function setup(thread) thread:set("id", threads); threads = threads + 1 end
function init(args) n = id * 100000000 end
function request()
  n = n + 1
  return wrk.format("GET", "/r4/CodeSystem/$lookup?system={ICD}&code=" .. codes[n % #codes + 1] .. "&n=" .. n)
end
"""


def validations(codes: list[str]) -> list[dict]:
    """CodeSystem/$validate-code of each code of ICD-10-CM, as the HL7 validator asks (a coding)."""
    return [_parameters({"name": "coding", "valueCoding": {"system": ICD, "code": c}}) for c in codes]


def posted_one_by_one(path: str, bodies: list[dict]) -> str:
    """A wrk script: POST each body to `path` in turn (each an answer-cache hit after its first)."""
    listed = ", ".join(f"[==[{json.dumps(b)}]==]" for b in bodies)
    return f"""local bodies = {{{listed}}}
local n = 0
local headers = {{["Content-Type"] = "application/fhir+json"}}
function request()
  n = n + 1
  return wrk.format("POST", "{path}", headers, bodies[n % #bodies + 1])
end
"""


def batch_bundle(path: str, bodies: list[dict]) -> dict:
    """A batch Bundle of the same requests, one entry each."""
    return {"resourceType": "Bundle", "type": "batch",
            "entry": [{"request": {"method": "POST", "url": path}, "resource": b} for b in bodies]}


BATCH_SIZE = 20
BATCH_ROW = f"batch Bundle of {BATCH_SIZE} $validate-code, per entry"
# Rows whose request holds several: their req/s and latencies are per entry (a Bundle's / entries).
PER_REQUEST = {BATCH_ROW: BATCH_SIZE}


def per_entry(result: dict, entries: int) -> dict:
    if entries == 1:
        return result
    return {**result, "rps": result["rps"] * entries, "p50_ms": result["p50_ms"] / entries,
            "p99_ms": result["p99_ms"] / entries}


def scenarios() -> list[tuple[str, str, str, dict | str | None]]:
    """(name, method, path, Parameters body for POST, or a wrk Lua script that makes the requests or
    sets their headers)."""
    expand_isa = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [
        {"system": ICD, "filter": [{"property": "concept", "op": "is-a", "value": "M62"}]}]}}
    found = [
        ("$lookup CPT 97116", "GET", f"/r4/CodeSystem/$lookup?system={CPT}&code=97116", None),
        ("$lookup ICD-10-CM M62.81", "GET", f"/r4/CodeSystem/$lookup?system={ICD}&code=M62.81", None),
        ("$lookup CPT 97116 in XML", "GET", f"/r4/CodeSystem/$lookup?system={CPT}&code=97116&_format=xml", None),
        ("$lookup ICD-10-CM, 1000 codes, uncached", "GET", "/r4/CodeSystem/$lookup",
         distinct_lookups(icd10cm_codes())),
        ("$translate forward", "GET", f"/r4/ConceptMap/$translate?system={CPT}&code=97116&targetsystem={ICD}", None),
        ("$translate reverse", "GET", f"/r5/ConceptMap/$translate?targetSystem={ICD}&targetCode=R26.2", None),
        ("$translate pairing check", "GET",
         f"/r5/ConceptMap/$translate?sourceSystem={CPT}&sourceCode=97116&targetSystem={ICD}&targetCode=R26.2", None),
        ("ValueSet/$validate-code", "GET", f"/r4/ValueSet/$validate-code?url={DX_VS}&system={ICD}&code=R26.2", None),
        ("$lookup THO v3-ActCode AMB", "GET", f"/r4/CodeSystem/$lookup?system={ACT_CODE}&code=AMB", None),
        ("ValueSet/$validate-code THO v3-ActEncounterCode AMB", "GET",
         f"/r4/ValueSet/$validate-code?url={ACT_ENCOUNTER_VS}&system={ACT_CODE}&code=AMB", None),
        ("$expand ICD-10-CM is-a, filter, page", "POST", "/r4/ValueSet/$expand",
         _parameters({"name": "valueSet", "resource": expand_isa}, {"name": "filter", "valueString": "weakness"},
                     {"name": "count", "valueInteger": 10}, {"name": "offset", "valueInteger": 0})),
        # the web UI (issue 13): a page and a type-ahead answer, at least half of $lookup's throughput
        ("UI concept page M62.81", "GET", "/ui/CodeSystem/icd-10-cm/concept/M62.81", None),
        ("UI type-ahead 'gait'", "GET", "/ui/CodeSystem/icd-10-cm/suggest?q=gait", None),
    ]
    # Reads of ICD-10-CM by a client that takes gzip: the summary (2.6 KB, 1 KB sent) and the
    # whole (20 MB of JSON, 1.2 MB sent). Both are kept in the answer cache as sent.
    gzip_reads = 'wrk.headers["Accept-Encoding"] = "gzip"\n'
    found += [
        ("read ICD-10-CM _summary=true, gzip", "GET", "/r4/CodeSystem/icd-10-cm?_summary=true", gzip_reads),
        ("read ICD-10-CM whole, gzip", "GET", "/r4/CodeSystem/icd-10-cm", gzip_reads),
    ]
    batch = validations(icd10cm_codes(BATCH_SIZE))
    found.append((f"CodeSystem/$validate-code, {BATCH_SIZE} codes one by one", "POST", "/r4/CodeSystem/$validate-code",
                  posted_one_by_one("/r4/CodeSystem/$validate-code", batch)))
    found.append((BATCH_ROW, "POST", "/r4", batch_bundle("CodeSystem/$validate-code", batch)))
    setup = _tx_setup()
    if setup:
        found.append(("$validate-code with 14 tx-resources", "POST", "/r5/ValueSet/$validate-code", _parameters(
            {"name": "url", "valueUri": "http://hl7.org/fhir/test/ValueSet/version-all-1"},
            {"name": "code", "valueCode": "code1"},
            {"name": "system", "valueUri": "http://hl7.org/fhir/test/CodeSystem/version"},
            *({"name": "tx-resource", "resource": r} for r in setup))))
    return found


# --- processes -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(command: list[str], port: int, probe: str, env: dict | None = None) -> subprocess.Popen:
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{probe}", timeout=2) as answer:
                if answer.status == 200:
                    return process
        except OSError:
            time.sleep(0.2)
    stop(process)
    raise SystemExit(f"bench: {' '.join(command)} did not answer on port {port} within 120 s")


def stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)


def ensure_wrk() -> str:
    """wrk from Debian's packages, installed if missing (this machine and CI run as root)."""
    found = shutil.which("wrk")
    if found:
        return found
    if shutil.which("apt-get") and os.geteuid() == 0:
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        if subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], **quiet).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], **quiet)
            subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], **quiet)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("bench: wrk is needed (Debian: apt-get install wrk)")
    return found


# --- wrk -----------------------------------------------------------------------------------------

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def wrk(binary: str, url: str, connections: int, seconds: int, body: dict | str | None, workdir: Path) -> dict:
    command = [binary, "-t", str(min(connections, 2)), "-c", str(connections), "-d", f"{seconds}s", "--latency"]
    if isinstance(body, str):  # a Lua script that makes the requests
        script = workdir / f"script-{abs(hash(body))}.lua"
        script.write_text(body)
        command += ["-s", str(script)]
    elif body is not None:
        payload = workdir / f"body-{abs(hash(url))}.json"
        payload.write_text(json.dumps(body))
        script = workdir / f"post-{abs(hash(url))}.lua"
        script.write_text(
            'wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "application/fhir+json"\n'
            f'local f = io.open("{payload}", "rb"); wrk.body = f:read("*all"); f:close()\n')
        command += ["-s", str(script)]
    output = subprocess.run(command + [url], capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1])  # type: ignore[index]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", output)[1])  # type: ignore[index]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", output)[1])  # type: ignore[index]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "non_2xx": int(errors[1]) if errors else 0,
            "socket_errors": socket_errors[1].strip() if socket_errors else ""}


# --- report --------------------------------------------------------------------------------------


def report(rows: list[dict], baseline: dict[int, dict], meta: dict) -> str:
    lines = [f"# Throughput and latency ({meta['date']})", "",
             f"Server: `fhir-plugin serve`, {meta['workers']} {meta['worker_settings']}, {meta['front']}; baseline: a "
             "hello-world Flask "
             f"app under the same gunicorn settings. wrk, {meta['seconds']} s per cell, loopback, "
             f"{meta['cpus']} CPUs. Ratio = requests/s divided by the baseline's at the same connection count, "
             f"measured right before that cell; each row is the median of {meta['rounds']} such pairs, and spread "
             "is the largest minus the smallest of their ratios (the baseline rows are the average of every "
             "baseline cell). Every "
             "row but the uncached one repeats one request, so after the first it is an answer-cache hit. The batch "
             f"row counts entries: its req/s are entries/s and its latencies a Bundle's divided by {BATCH_SIZE}, to "
             f"compare with the {BATCH_SIZE} codes sent one by one.", "",
             "| scenario | conns | req/s | p50 ms | p99 ms | ratio to baseline | spread | non-2xx |",
             "|---|---|---|---|---|---|---|---|"]
    for c, b in sorted(baseline.items()):
        lines.append(f"| baseline hello-world | {c} | {b['rps']:.0f} | {b['p50_ms']:.2f} | {b['p99_ms']:.2f} | 1.00 | | "
                     f"{b['non_2xx']} |")
    for row in rows:
        lines.append(f"| {row['scenario']} | {row['connections']} | {row['rps']:.0f} | {row['p50_ms']:.2f} | "
                     f"{row['p99_ms']:.2f} | {row['ratio']:.2f} | {row['spread']:.2f} | {row['non_2xx']} |")
    return "\n".join(lines) + "\n"


def chart(rows: list[dict], baseline: dict[int, dict], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    names = sorted({r["scenario"] for r in rows}, key=[r["scenario"] for r in rows].index)
    figure, axis = plt.subplots(figsize=(10, 5))
    width = 0.4
    for offset, connections in ((-width / 2, 1), (width / 2, 8)):
        ratios = [next(r["ratio"] for r in rows if r["scenario"] == n and r["connections"] == connections)
                  for n in names]
        axis.barh([i + offset for i in range(len(names))], ratios, height=width, label=f"{connections} conn")
    axis.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    axis.set_yticks(range(len(names)), names)
    axis.invert_yaxis()
    axis.set_xlabel("throughput / hello-world baseline (same run)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=2, help="wrk duration per cell (default 2)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="baseline/server cell pairs per row, the median ratio reported (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers, for both servers (default 2)")
    parser.add_argument("--front", choices=("auto", "nginx", "none"), default="auto",
                        help="FHIR_PLUGIN_FRONT, for both servers (default auto, as `make serve`)")
    parser.add_argument("--only", metavar="REGEX", help="run only the scenarios whose name matches (for A/B runs)")
    args = parser.parse_args()
    binary = ensure_wrk()
    server_port, baseline_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIR_PLUGIN_")}
    env["FHIR_PLUGIN_FRONT"] = args.front
    server = start([str(BIN / "fhir-plugin"), "serve", "--port", str(server_port), "--workers", str(args.workers)],
                   server_port, "/r4/metadata", env)
    baseline_cmd = [sys.executable, "-c", "import sys; sys.path.insert(0, 'bench'); from baseline_app import app; "
                    f"from fhir_plugin.server import run_gunicorn; run_gunicorn(app, '127.0.0.1', {baseline_port}, "
                    f"{args.workers})"]
    base = start(baseline_cmd, baseline_port, "/hello", env)
    rows: list[dict] = []
    samples: dict[int, list[dict]] = {1: [], 8: []}
    try:
        with tempfile.TemporaryDirectory() as work:
            workdir = Path(work)
            for name, method, path, body in scenarios():
                if args.only and not re.search(args.only, name):
                    continue
                # untimed: the first request of a scenario fills the answer cache
                wrk(binary, f"http://127.0.0.1:{server_port}{path}", 1, 1, body, workdir)
                for connections in (1, 8):
                    # Each round is a baseline cell and then the server's: on a shared machine the load
                    # changes from second to second, so a ratio is only fair against a baseline of the
                    # same moment; the row is the round with the median ratio, and the spread of the
                    # rounds' ratios says how far to trust it.
                    rounds = []
                    for _ in range(args.rounds):
                        before = wrk(binary, f"http://127.0.0.1:{baseline_port}/hello", connections, args.seconds,
                                     None, workdir)
                        samples[connections].append(before)
                        result = per_entry(wrk(binary, f"http://127.0.0.1:{server_port}{path}", connections,
                                               args.seconds, body, workdir), PER_REQUEST.get(name, 1))
                        rounds.append({**result, "baseline_rps": before["rps"], "ratio": result["rps"] / before["rps"]})
                    ratios = sorted(r["ratio"] for r in rounds)
                    middle = next(r for r in rounds if r["ratio"] == ratios[len(ratios) // 2])
                    rows.append({"scenario": name, "connections": connections, **middle,
                                 "spread": ratios[-1] - ratios[0]})
                    print(f"{name:40} {connections} conn: {middle['rps']:8.0f} req/s  p50 {middle['p50_ms']:.2f} ms"
                          f"  p99 {middle['p99_ms']:.2f} ms  ratio {middle['ratio']:.2f} "
                          f"(spread {rows[-1]['spread']:.2f})", flush=True)
    finally:
        stop(server)
        stop(base)
    baseline = {c: {k: sum(s[k] for s in runs) / len(runs) for k in ("rps", "p50_ms", "p99_ms", "non_2xx")}
                for c, runs in samples.items()}
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "workers": args.workers,
            "worker_settings": WORKER_SETTINGS, "front": describe_front(load_settings(environ=env)),
            "seconds": args.seconds, "rounds": args.rounds, "cpus": os.cpu_count()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "throughput.json").write_text(json.dumps({"meta": meta, "baseline": baseline, "rows": rows}, indent=2))
    table = report(rows, baseline, meta)
    (RESULTS / "throughput.md").write_text(table)
    drawn = chart(rows, baseline, RESULTS / "throughput.png")
    print(table)
    print("chart: bench/results/throughput.png" if drawn else "chart: skipped (matplotlib not installed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
