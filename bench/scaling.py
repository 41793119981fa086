"""`make bench-scaling`: how cost grows with content. Not a test.

Generates synthetic CodeSystems of 100, 10,000 and 100,000 concepts (invented codes and displays,
a four-level hierarchy, designations and properties; `content: complete`, valid R5) and a
ValueSet including each whole system, into a temporary directory. For each size it

- starts `fhir-plugin serve --workers 1` with an empty content cache (cold) and again with the
  cache that start wrote (warm), and reads the start-up time and the RSS/PSS of the master and its
  worker from /proc (bench/startup.py's `start`);
- starts the server as `make serve` does (`fhir-plugin serve`, FHIR_PLUGIN_CONTENT /
  FHIR_PLUGIN_PORT / FHIR_PLUGIN_CACHE_DIR, default workers) and times single requests over HTTP
  on loopback, one at a time, with varied codes: $lookup, CodeSystem $validate-code, ValueSet
  $validate-code, $expand of an is-a filter on a top-level concept (count 10) and $expand of the
  whole system with a text filter (count 10). p50 and p99 over up to a few hundred requests per
  operation (fewer when the operation is slow: each is bounded in time).

The hello-world baseline (bench/baseline_app.py under the same gunicorn settings, bench/run.py)
is timed by the same client in the same run, before and after the sizes, so latencies are also
given as ratios to it. Results: bench/results/scaling.{md,json,png}.

    .venv/bin/python bench/scaling.py [--sizes 100,10000,100000] [--requests 300] [--seconds 10]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (bench/run.py: start/stop/free_port, the baseline command)
import startup  # noqa: E402  (bench/startup.py: cold/warm start and /proc memory)

ROOT = run.ROOT
RESULTS = run.RESULTS
BIN = run.BIN
SYSTEM = "http://example.org/fhir/CodeSystem/synthetic-scaling"
VALUE_SET = "http://example.org/fhir/ValueSet/synthetic-scaling-all"
TOP_LEVEL = 10
SEED = 20261128
OPERATIONS = ("$lookup", "CodeSystem $validate-code", "ValueSet $validate-code",
              "$expand is-a top-level, count 10", "$expand all, text filter, count 10")

# --- synthetic content ---------------------------------------------------------------------------

_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "gl", "kr", "pl",
           "st", "tr", "vr")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ou")
_CODAS = ("", "", "n", "l", "r", "s", "x", "m")
_SUFFIXES = ("ic", "al", "ous", "ine", "ar", "ent")


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    """Invented words, plainly not terms of any real code system."""
    words: set[str] = set()
    while len(words) < size:
        syllables = rng.choice((2, 2, 3))
        words.add("".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables)))
    return sorted(words)


def _fanout(n: int) -> int:
    """The smallest branching factor b with TOP_LEVEL * (1 + b + b^2 + b^3) >= n: four levels."""
    b = 1
    while TOP_LEVEL * (1 + b + b * b + b ** 3) < n:
        b += 1
    return b


def code_system(n: int, rng: random.Random) -> tuple[dict, dict]:
    """(CodeSystem, facts for the requests: codes with displays, top-level codes, display words)."""
    nouns, adjectives = _vocabulary(rng, 400), _vocabulary(rng, 200)
    adjectives = [a + rng.choice(_SUFFIXES) for a in adjectives]
    b = _fanout(n)
    sizes = [TOP_LEVEL, TOP_LEVEL * b, TOP_LEVEL * b * b]
    sizes.append(n - sum(sizes))
    if sizes[3] < 0:  # tiny n: fewer levels
        raise SystemExit(f"scaling: {n} concepts is too few for a four-level hierarchy")
    levels: list[list[dict]] = []
    all_concepts: list[dict] = []
    for depth, count in enumerate(sizes):
        parents = levels[-1] if levels else []
        level = []
        for index in range(count):
            parent = parents[index % len(parents)] if parents else None  # round-robin: even subtrees
            if parent is None:
                code = chr(ord("A") + index)
            else:
                parent.setdefault("concept", [])
                code = f"{parent['code']}.{len(parent['concept']) + 1:02d}"
            head, qualifier, site = rng.choice(adjectives), rng.choice(nouns), rng.choice(nouns)
            display = f"{head.capitalize()} {qualifier} of the {site}"
            concept: dict = {"code": code, "display": display}
            if parent is not None:
                parent["concept"].append(concept)
            concept["designation"] = [{
                "language": "en", "use": {"system": "http://snomed.info/sct", "code": "900000000000013009",
                                          "display": "Synonym"},
                "value": f"{site.capitalize()} {qualifier}, {head} ({rng.choice(nouns)})"}]
            properties = [{"code": "notSelectable", "valueBoolean": depth < 2},
                          {"code": "rank", "valueInteger": rng.randint(1, 1000)}]
            if rng.random() < 0.1:
                properties.append({"code": "note", "valueString": f"Invented note: see also {rng.choice(nouns)}"})
            inactive = depth == 3 and rng.random() < 0.02
            if inactive:
                properties.append({"code": "inactive", "valueBoolean": True})
            concept["property"] = properties
            level.append(concept)
            all_concepts.append({"code": code, "display": display, "inactive": inactive, "depth": depth})
        levels.append(level)
    resource = {
        "resourceType": "CodeSystem", "id": f"synthetic-scaling-{n}", "url": SYSTEM, "version": str(n),
        "name": "SyntheticScaling", "title": f"Synthetic code system of {n} concepts (benchmark)",
        "status": "active", "experimental": True, "date": "2026-11-28", "publisher": "fhir_plugin bench/scaling.py",
        "description": "Invented codes and displays for measuring how cost grows with content. Not a real code system.",
        "caseSensitive": True, "hierarchyMeaning": "is-a", "content": "complete", "count": n,
        "filter": [{"code": "concept", "operator": ["is-a", "descendent-of", "is-not-a", "child-of"],
                    "value": "a code of this system"}],
        "property": [
            {"code": "notSelectable", "uri": "http://hl7.org/fhir/concept-properties#notSelectable",
             "type": "boolean", "description": "Groups (the top two levels)"},
            {"code": "inactive", "uri": "http://hl7.org/fhir/concept-properties#inactive", "type": "boolean",
             "description": "Retired concepts"},
            {"code": "rank", "type": "integer", "description": "An invented number"},
            {"code": "note", "type": "string", "description": "An invented note"},
        ],
        "concept": levels[0],
    }
    words = sorted({w.lower() for c in all_concepts for w in c["display"].split() if len(w) > 3})
    facts = {"concepts": all_concepts, "top": [c["code"] for c in levels[0]], "words": words, "levels": sizes}
    return resource, facts


def value_set() -> dict:
    return {"resourceType": "ValueSet", "id": "synthetic-scaling-all", "url": VALUE_SET, "version": "1",
            "name": "SyntheticScalingAll", "status": "active", "experimental": True,
            "compose": {"include": [{"system": SYSTEM}]}}


def write_content(n: int, directory: Path) -> dict:
    resource, facts = code_system(n, random.Random(SEED + n))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "CodeSystem-synthetic.json").write_text(json.dumps(resource, separators=(",", ":")))
    (directory / "ValueSet-synthetic-all.json").write_text(json.dumps(value_set()))
    facts["bytes"] = sum(f.stat().st_size for f in directory.iterdir())
    return facts


# --- requests ------------------------------------------------------------------------------------


def _expand_body(include: dict, **params: object) -> dict:
    vs = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [include]}}
    parts: list[dict] = [{"name": "valueSet", "resource": vs}]
    parts += [{"name": k, ("valueInteger" if isinstance(v, int) else "valueString"): v} for k, v in params.items()]
    return {"resourceType": "Parameters", "parameter": parts}


def _expand_post(include: dict, **params: object) -> bytes:
    return json.dumps(_expand_body(include, **params)).encode()


def request_mix(facts: dict, rng: random.Random, count: int) -> dict[str, list[tuple[str, str, bytes | None]]]:
    """Per operation, `count` requests (method, path, encoded body) over varied codes."""
    def draw(population: list) -> list:
        """`count` items, none repeated before every item has been drawn: a per-worker cache of
        rendered answers (FHIR_PLUGIN_ANSWER_CACHE) then answers only what the content forces to repeat."""
        drawn: list = []
        while len(drawn) < count:
            drawn += rng.sample(population, min(len(population), count - len(drawn)))
        return drawn

    picks = draw([c for c in facts["concepts"] if not c["inactive"]])
    words = draw(facts["words"])
    tops = facts["top"]
    return {
        "$lookup": [("GET", f"/r4/CodeSystem/$lookup?system={SYSTEM}&code={quote(c['code'])}", None) for c in picks],
        "CodeSystem $validate-code": [
            ("GET", f"/r4/CodeSystem/$validate-code?url={SYSTEM}&code={quote(c['code'])}"
                    f"&display={quote(c['display'])}", None) for c in picks],
        "ValueSet $validate-code": [
            ("GET", f"/r4/ValueSet/$validate-code?url={VALUE_SET}&system={SYSTEM}&code={quote(c['code'])}", None)
            for c in picks],
        "$expand is-a top-level, count 10": [
            ("POST", "/r4/ValueSet/$expand", _expand_post(
                {"system": SYSTEM, "filter": [{"property": "concept", "op": "is-a", "value": tops[i % len(tops)]}]},
                count=10)) for i in range(count)],
        "$expand all, text filter, count 10": [
            ("GET", f"/r4/ValueSet/$expand?url={VALUE_SET}&filter={quote(w)}&count=10", None) for w in words],
    }


def _check(operation: str, answer: dict) -> None:
    """The answer is the one asked for, not an error that happens to be fast."""
    if operation.startswith("$expand"):
        assert answer["expansion"]["total"] > 0 and answer["expansion"].get("contains"), answer
    elif operation.endswith("$validate-code"):
        result = next(p["valueBoolean"] for p in answer["parameter"] if p["name"] == "result")
        assert result is True, answer
    elif operation == "$lookup":
        assert any(p["name"] == "display" for p in answer["parameter"]), answer


_JSON = {"Content-Type": "application/fhir+json"}


def call(port: int, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
    """One request on a fresh connection (gunicorn's sync workers close every connection anyway);
    http.client rather than requests: about 1 ms less client time per request, so that the
    client's own cost does not hide the server's."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=_JSON if body is not None else {})
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def time_requests(port: int, mix: list[tuple[str, str, bytes | None]], operation: str, max_seconds: float,
                  warmup: int = 4) -> dict:
    """Each request timed on its own (connect, send, answer, read); bounded by count and time."""
    for method, path, body in mix[-warmup:]:  # first requests of each worker: imports, caches
        status, content = call(port, method, path, body)
        if status != 200:
            raise SystemExit(f"scaling: {operation} {path} answered {status}: {content[:300]!r}")
        _check(operation, json.loads(content))
    times: list[float] = []
    deadline = time.perf_counter() + max_seconds
    for method, path, body in mix:
        began = time.perf_counter()
        status, content = call(port, method, path, body)
        times.append((time.perf_counter() - began) * 1000)
        if status != 200:
            raise SystemExit(f"scaling: {operation} {path} answered {status}: {content[:300]!r}")
        if len(times) <= 20:
            _check(operation, json.loads(content))
        if time.perf_counter() > deadline and len(times) >= 20:
            break
    ordered = sorted(times)
    p99_index = min(len(ordered) - 1, max(0, round(0.99 * len(ordered)) - 1))
    return {"n": len(times), "p50_ms": statistics.median(ordered), "p99_ms": ordered[p99_index],
            "mean_ms": statistics.fmean(ordered)}


def baseline_latency(port: int, count: int) -> dict:
    mix: list[tuple[str, str, bytes | None]] = [("GET", "/hello", None)] * count
    return time_requests(port, mix, "baseline", max_seconds=30)


# --- one size ------------------------------------------------------------------------------------


def _start(content: Path, cache: Path, retries: list[str], cold: bool) -> dict:
    """bench/startup.py's start, tried again once (and reported) when the measurement is not what
    it should be: the worker it reads was gone (seen once on this shared machine), or a warm start
    wrote a new cache entry instead of reading the one the cold start wrote (fhir_plugin's source
    is part of the cache key: someone edited it in between)."""
    for attempt in (1, 2):
        if cold:
            shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(exist_ok=True)
        entries = set(cache.glob("content-*.pickle"))
        try:
            result = startup.start([content], cache)
        except (StopIteration, ValueError, RuntimeError, OSError) as error:
            what = f"{'cold' if cold else 'warm'} start, attempt {attempt}: {type(error).__name__} {error}"
        else:
            if cold or not entries or set(cache.glob("content-*.pickle")) <= entries:
                return result
            what = f"warm start, attempt {attempt}: missed the cache (fhir_plugin's code changed since the cold start)"
            if attempt == 2:
                retries.append(what + "; kept")
                return result
        print(f"scaling: {what}", flush=True)
        retries.append(what)
        if attempt == 2:
            raise SystemExit(f"scaling: {what}")
    raise AssertionError("unreachable")


def measure_size(n: int, work: Path, env: dict, count: int, seconds: float, workers: int) -> dict:
    content = work / f"content-{n}"
    began = time.perf_counter()
    facts = write_content(n, content)
    print(f"{n:>7} concepts: levels {facts['levels']}, {facts['bytes'] / 1e6:.1f} MB of JSON "
          f"({time.perf_counter() - began:.1f} s to generate)", flush=True)
    cache = work / f"cache-{n}"
    retries: list[str] = []
    cold = _start(content, cache, retries, cold=True)
    warm = _start(content, cache, retries, cold=False)
    print(f"{n:>7} concepts: start cold {cold['seconds']:.2f} s, warm {warm['seconds']:.2f} s; worker RSS "
          f"{warm['worker'][0]:.0f} MiB PSS {warm['worker'][1]:.0f} MiB, master RSS {warm['master'][0]:.0f} MiB",
          flush=True)

    port = run.free_port()
    server_env = {**env, "FHIR_PLUGIN_CONTENT": str(content), "FHIR_PLUGIN_PORT": str(port),
                  "FHIR_PLUGIN_CACHE_DIR": str(cache), "FHIR_PLUGIN_WORKERS": str(workers)}
    server = run.start([str(BIN / "fhir-plugin"), "serve"], port, "/r4/metadata", server_env)
    latency: dict[str, dict] = {}
    try:
        mixes = request_mix(facts, random.Random(SEED * 7 + n), count)
        for operation in OPERATIONS:
            latency[operation] = time_requests(port, mixes[operation], operation, seconds)
            row = latency[operation]
            print(f"{n:>7} concepts: {operation:36} n={row['n']:3}  p50 {row['p50_ms']:8.2f} ms  "
                  f"p99 {row['p99_ms']:8.2f} ms", flush=True)
        after = [startup.memory(pid) for pid in startup.children(server.pid)]
    finally:
        run.stop(server)
    return {
        "concepts": n, "levels": facts["levels"], "content_bytes": facts["bytes"],
        "start": {label: {"seconds": r["seconds"], "master_rss": r["master"][0], "master_pss": r["master"][1],
                          "worker_rss": r["worker"][0], "worker_pss": r["worker"][1]}
                  for label, r in (("cold", cold), ("warm", warm))},
        "latency": latency,
        "workers_after_requests_rss": [m[0] for m in after],
        "start_retries": retries,
    }


# --- report --------------------------------------------------------------------------------------


def _machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.machine())
    return f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, {platform.system()}"


def _code() -> str:
    """Which fhir_plugin the servers run: the one this process imports (the working tree, or what
    PYTHONPATH puts first), with its commit when it is a git checkout."""
    import subprocess

    import fhir_plugin

    where = Path(fhir_plugin.__file__).resolve().parent
    try:
        git = ["git", "-C", str(where)]
        commit = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(git + ["status", "--porcelain", "--", "."], capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"fhir_plugin from {where}"
    return f"fhir_plugin at commit {commit}" + (" with uncommitted changes" if dirty else "")


def _n(n: int) -> str:
    return f"{n:,}"


def report(rows: list[dict], baseline: dict, meta: dict) -> str:
    sizes = " | ".join(_n(r["concepts"]) for r in rows)
    rule = "|---|" + "---|" * len(rows)
    lines = [
        f"# How cost grows with content ({meta['date']})", "",
        f"Synthetic CodeSystems of {', '.join(_n(r['concepts']) for r in rows)} concepts (invented codes, four "
        "levels, a designation and 2-4 properties per concept) and a ValueSet including the whole system, served "
        f"by `fhir-plugin serve` ({meta['workers']} gunicorn sync workers) on loopback; measured by "
        f"`bench/scaling.py`. Code: {meta['code']}.", "",
        f"Machine: {meta['machine']}; load average {meta['load_before']} before, {meta['load_after']} after. "
        "The machine is shared (other benchmarks may run at the same time): the figures are noisy, read the "
        "growth between columns and the ratios rather than absolute values. Measured once.", "",
        "Rerun: `make bench-scaling` (or `.venv/bin/python bench/scaling.py`; `--sizes`, `--requests`, `--seconds`).",
        "",
        "## Latency", "",
        "One request at a time over a fresh `http.client` connection (gunicorn's sync workers close every "
        "connection), timed from connecting to the last byte of the answer; varied codes, filter words and top-level "
        f"concepts. Up to {meta['requests']} requests per cell after 4 warm-up requests, fewer when a cell reaches "
        f"{meta['seconds']:g} s (n is given; with fewer than 100 requests p99 is the slowest). Ratio: p50 over the "
        f"hello-world baseline's p50 in this run ({baseline['p50_ms']:.2f} ms, p99 {baseline['p99_ms']:.2f} ms; "
        "bench/baseline_app.py under the same gunicorn settings, timed by the same client before and after the "
        "sizes, averaged).", "",
        f"| p50 ms (p99 ms) [ratio to baseline p50] | {sizes} |", rule,
    ]
    for operation in OPERATIONS:
        cells = []
        for r in rows:
            cell = r["latency"][operation]
            cells.append(f"{cell['p50_ms']:.2f} ({cell['p99_ms']:.2f}) [{cell['p50_ms'] / baseline['p50_ms']:.1f}x]"
                         f" n={cell['n']}")
        lines.append(f"| {operation} | " + " | ".join(cells) + " |")
    lines += [
        "", "## Start-up and memory", "",
        "`fhir-plugin serve --workers 1` (bench/startup.py): *start* is from spawning the process to the first "
        "answer of `/r4/metadata`. *Cold*: empty content cache; *warm*: the cache the cold start wrote "
        "(content under 256 KiB is never cached, so at the smallest size cold and warm do the same work). "
        "RSS counts shared pages in full; PSS divides them among the processes that map them (master and worker "
        "share the content loaded before the fork).", "",
        f"| | {sizes} |", rule,
        "| content (JSON) | " + " | ".join(f"{r['content_bytes'] / 1e6:.2f} MB" for r in rows) + " |",
    ]
    for label in ("cold", "warm"):
        for key, title, unit, fmt in (("seconds", "start", "s", "{:.2f}"), ("master_rss", "master RSS", "MiB", "{:.0f}"),
                                      ("master_pss", "master PSS", "MiB", "{:.0f}"),
                                      ("worker_rss", "worker RSS", "MiB", "{:.0f}"),
                                      ("worker_pss", "worker PSS", "MiB", "{:.0f}")):
            lines.append(f"| {label}: {title} | " + " | ".join(
                f"{fmt.format(r['start'][label][key])} {unit}" for r in rows) + " |")
    lines.append("| worker RSS after the latency requests | " + " | ".join(
        " / ".join(f"{m:.0f}" for m in r["workers_after_requests_rss"]) + " MiB" for r in rows) + " |")
    retried = [f"{_n(r['concepts'])}: {w}" for r in rows for w in r["start_retries"]]
    if retried:
        lines += ["", "Start-up measurements tried again: " + "; ".join(retried) + "."]
    lines += ["", "Chart: `bench/results/scaling.png`; raw figures: `bench/results/scaling.json`."]
    return "\n".join(lines) + "\n"


def chart(rows: list[dict], baseline: dict, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    sizes = [r["concepts"] for r in rows]
    figure, (lat, start, mem) = plt.subplots(1, 3, figsize=(16, 5))
    for operation in OPERATIONS:
        lat.plot(sizes, [r["latency"][operation]["p50_ms"] for r in rows], marker="o", label=operation)
    lat.axhline(baseline["p50_ms"], color="grey", linestyle="--", linewidth=1, label="hello-world baseline")
    lat.set_yscale("log")
    lat.set_ylabel("p50 latency, ms (log)")
    lat.set_title("Latency per request")
    lat.legend(fontsize=7)
    for label in ("cold", "warm"):
        start.plot(sizes, [r["start"][label]["seconds"] for r in rows], marker="o", label=f"{label} start")
    start.set_ylabel("seconds to first /r4/metadata answer (log)")
    start.set_title("Start-up (1 worker)")
    start.legend(fontsize=8)
    for (key, title), color in zip((("master_rss", "master RSS"), ("worker_rss", "worker RSS"),
                                    ("worker_pss", "worker PSS")), ("tab:blue", "tab:orange", "tab:green")):
        for label, style in (("cold", "-"), ("warm", ":")):
            mem.plot(sizes, [r["start"][label][key] for r in rows], linestyle=style, marker="o", color=color,
                     label=f"{title} ({label})")
    mem.set_ylabel("MiB (log)")
    mem.set_title("Memory after start (1 worker)")
    mem.legend(fontsize=7)
    for axis in (lat, start, mem):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("concepts in the code system (log)")
        axis.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,10000,100000", help="concept counts (default 100,10000,100000)")
    parser.add_argument("--requests", type=int, default=300, help="most requests per cell (default 300)")
    parser.add_argument("--seconds", type=float, default=10, help="time bound per cell (default 10)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers for the latency servers (default 2)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory (default bench/results)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    began = time.perf_counter()
    load_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    # the generated content alone: not the default packages (FHIR core, THO) `make serve` adds
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FHIR_PLUGIN_")}, "FHIR_PLUGIN_PACKAGES": ""}
    baseline_port = run.free_port()
    baseline_cmd = [sys.executable, "-c", "import sys; sys.path.insert(0, 'bench'); from baseline_app import app; "
                    f"from fhir_plugin.server import run_gunicorn; run_gunicorn(app, '127.0.0.1', {baseline_port}, "
                    f"{args.workers})"]
    base = run.start(baseline_cmd, baseline_port, "/hello", env)
    rows: list[dict] = []
    samples: list[dict] = []
    try:
        samples.append(baseline_latency(baseline_port, args.requests))
        print(f"baseline hello-world: p50 {samples[0]['p50_ms']:.2f} ms  p99 {samples[0]['p99_ms']:.2f} ms", flush=True)
        with tempfile.TemporaryDirectory(prefix="fhir-plugin-scaling-") as work:
            # One unrecorded start first: the first start after a while also pays for reading the
            # Python packages from disk, which is not a cost of the content.
            write_content(min(sizes), Path(work) / "prime")
            startup.start([Path(work) / "prime"], Path(work) / "prime-cache")
            for n in sizes:
                rows.append(measure_size(n, Path(work), env, args.requests, args.seconds, args.workers))
        samples.append(baseline_latency(baseline_port, args.requests))
        print(f"baseline hello-world: p50 {samples[1]['p50_ms']:.2f} ms  p99 {samples[1]['p99_ms']:.2f} ms", flush=True)
    finally:
        run.stop(base)
    baseline = {k: statistics.fmean(s[k] for s in samples) for k in ("p50_ms", "p99_ms", "mean_ms")}
    baseline["samples"] = samples
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": _machine(), "code": _code(),
            "load_before": load_before, "load_after": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
            "workers": args.workers, "requests": args.requests, "seconds": args.seconds,
            "elapsed_seconds": round(time.perf_counter() - began, 1)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scaling.json").write_text(json.dumps({"meta": meta, "baseline": baseline, "rows": rows}, indent=2))
    table = report(rows, baseline, meta)
    (args.out / "scaling.md").write_text(table)
    drawn = chart(rows, baseline, args.out / "scaling.png")
    print(table)
    print(f"chart: {args.out / 'scaling.png'}" if drawn else "chart: skipped (matplotlib not installed)")
    print(f"elapsed: {meta['elapsed_seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
