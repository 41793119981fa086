"""Prometheus metrics (the official client library, prometheus_client), correct across gunicorn's
workers through its multiprocess mode.

prometheus_client chooses between one process and many when it is first imported: with
PROMETHEUS_MULTIPROC_DIR set (`fhir-plugin serve` sets it to a private directory before anything
imports the library) every process writes its values to files there and a scrape adds them up;
without it (an embedding app, the tests' in-process apps), the values live in this process. So
the library is imported here on first use, never at module import.

What a request costs: one counter and one histogram child, found in a dict by their labels (the
`labels()` call costs more than the write), and three small writes. Cache figures are not counted
per request: a worker copies `Runtime.cache_stats()` into gauges at most once a second (and before
it answers a scrape), so they are at most about a second old for a worker that keeps working, and
as old as its last request for one that went idle. Label values come from a fixed set (the route,
not the path; the status; R4/R5), so no client can make a series per request.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from typing import Any

from ..config import metrics_directory
from ..terminology.caching import CacheStats

CACHE_INTERVAL = 1.0  # seconds between two copies of a worker's cache figures
# Latencies of a terminology server: most cached answers well under a millisecond, a large
# expansion seconds (the time budget is 5 s by default).
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Every metric of the process, made once (prometheus_client refuses a name twice)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.multiprocess = metrics_directory() is not None
        self.requests = Counter("fhir_plugin_requests", "HTTP requests answered, by operation, FHIR version, "
                                "status and answer cache (hit, miss, or none for an operation not cached)",
                                ["operation", "fhir_version", "status", "cache"])
        self.latency = Histogram("fhir_plugin_request_duration_seconds", "time from the request's start in the "
                                 "app to its answer, by operation", ["operation"], buckets=BUCKETS)
        live = {"multiprocess_mode": "livesum"}  # the sum over the workers alive now
        self.cache = {figure: Gauge(f"fhir_plugin_cache_{figure}", f"{figure} of each cache (Runtime.cache_stats), "
                                    "summed over the workers", ["cache"], **live)  # type: ignore[arg-type]
                      for figure in ("entries", "size", "maxsize", "hits", "misses", "evictions")}
        # Written by the process that loads the start-up content (the master, before the fork), and
        # again by it on a reload.
        self.content = Gauge("fhir_plugin_content", "content served (from start-up or the last reload; 0: no "
                             "longer served): one series per resource, its "
                             "size as value (concepts of a code system, includes of a value set, mapped elements "
                             "of a concept map)", ["type", "url", "version"],
                             multiprocess_mode="max")
        self.loads = Counter("fhir_plugin_content_loads", "content loads: startup, reload (SIGHUP), load and "
                             "unload (run time), by result", ["kind", "result"])
        self.load_seconds = Histogram("fhir_plugin_content_load_seconds", "duration of content loads, by kind",
                                      ["kind"], buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
        self._served: set[tuple[str, str, str]] = set()
        self._children: dict[tuple[str, str, str, str], Any] = {}
        self._latency: dict[str, Any] = {}
        self._caches_at = 0.0
        self._lock = threading.Lock()

    def request(self, operation: str, fhir_version: str, status: int, cache: str, seconds: float) -> None:
        key = (operation, fhir_version, str(status), cache)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.requests.labels(*key)
        child.inc()
        timer = self._latency.get(operation)
        if timer is None:
            timer = self._latency[operation] = self.latency.labels(operation)
        timer.observe(seconds)

    def caches_due(self, now: float) -> bool:
        return now >= self._caches_at

    def note_caches(self, stats: Iterable[CacheStats], now: float | None = None) -> None:
        with self._lock:
            self._caches_at = (time.monotonic() if now is None else now) + CACHE_INTERVAL
            for each in stats:
                if each.name == "compiled-content":  # on disk, the same in every process: a sum would lie
                    continue
                for figure, gauge in self.cache.items():
                    gauge.labels(each.name).set(getattr(each, figure))

    def note_content(self, served: Iterable[tuple[str, str, str, int]]) -> None:
        """The content served now. After a reload, a resource no longer served stays as a series of
        value 0: multiprocess files cannot forget a series."""
        now: set[tuple[str, str, str]] = set()
        for resource_type, url, version, size in served:
            self.content.labels(resource_type, url, version).set(size)
            now.add((resource_type, url, version))
        for gone in self._served - now:
            self.content.labels(*gone).set(0)
        self._served = now

    def note_load(self, kind: str, seconds: float, ok: bool) -> None:
        self.loads.labels(kind, "ok" if ok else "failed").inc()
        self.load_seconds.labels(kind).observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        """The text a scrape reads: every process's values added up in multiprocess mode."""
        from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

        if not self.multiprocess:
            return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST


_made: Metrics | None = None
_making = threading.Lock()


def metrics() -> Metrics:
    """The process's metrics, made on first use."""
    global _made
    if _made is None:
        with _making:
            if _made is None:
                _made = Metrics()
    return _made


def prepare_directory(private: str) -> str:
    """The multiprocess directory of a server: PROMETHEUS_MULTIPROC_DIR if set (its value files
    from an earlier run removed: their counts are not this run's), else `private`. Raises OSError
    when it cannot be written."""
    directory = metrics_directory() or private
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.remove(os.path.join(directory, name))
    probe = os.path.join(directory, ".fhir-plugin-probe")
    with open(probe, "w"):
        pass
    os.remove(probe)
    return directory


def worker_exited(pid: int) -> None:
    """gunicorn's child_exit hook, in the master: a dead worker's live gauges stop counting."""
    if metrics_directory() is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
