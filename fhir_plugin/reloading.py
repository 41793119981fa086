"""Reloading the content of a running `fhir-plugin serve`: SIGHUP to its master process, or
`fhir-plugin reload`, which finds the master through the pid file the server writes.

What the master does (gunicorn's HUP handling calls `Reloader.run`, see server.py): it loads the
content again from the same sources and settings as at start-up, beside what it serves. If that
fails, nothing changes: the workers go on serving, the reason (the file and what is wrong with it)
is logged and the failure counted. If it succeeds, the master swaps the new content in, collects
the old, and lets gunicorn fork new workers from its new state and retire the old ones with
SIGTERM, on which a sync worker finishes the request it holds, then exits. Requests that arrive
in between wait in the workers' socket's backlog (nginx holds its clients), so none is refused.

Signals: gunicorn queues them and the master handles them one at a time in its loop, so a reload
never runs inside another. Several SIGHUPs taken from the queue in one turn make one reload
(`coalesce`): any number of them sent during a reload make exactly one more after it (the content
may have changed after the running reload read it). During the start-up load, before gunicorn
takes the signal over, a SIGHUP is ignored with a line on stderr instead of ending the process.

The status file beside the pid file (`<pid file>.reload.json`) is how `fhir-plugin reload` learns
that the reload it asked for is done, and how it went.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from flask import Flask

from .extension import reload_content
from .runtime.inventory import Served
from .runtime.metrics import metrics
from .terminology.errors import TerminologyError

log = logging.getLogger("fhir_plugin.reload")
POLL = 0.05  # seconds between two looks at the status file by `fhir-plugin reload`


def status_path(pid_path: Path) -> Path:
    return pid_path.with_name(pid_path.name + ".reload.json")


def _write(path: Path, text: str) -> None:
    """Whole or not at all (a reader never sees half a file); a link planted at `path` is replaced,
    not followed."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def counts_text(served: list[Served]) -> str:
    counts = {kind: sum(1 for entry in served if entry[0] == kind) for kind in ("CodeSystem", "ValueSet", "ConceptMap")}
    return (f"{counts['CodeSystem']} code system(s), {counts['ValueSet']} value set(s), "
            f"{counts['ConceptMap']} concept map(s)")


class Reloader:
    """The master's side: the pid and status files, and the reload itself."""

    def __init__(self, app: Flask, pid_path: Path | None) -> None:
        self.app, self.pid_path = app, pid_path
        self.started = self.finished = 0
        self.pid = os.getpid()

    def announce(self) -> None:
        """Write the pid file (and a status of no reload yet), once the server listens."""
        if self.pid_path is None:
            return
        self.pid = os.getpid()
        try:
            _write(self.pid_path, f"{self.pid}\n")
            self._status(ok=True, message="no reload yet", seconds=0.0)
        except OSError as error:
            log.warning("cannot write the pid file %s (%s): `fhir-plugin reload` will not find this server; "
                        "SIGHUP to process %d still reloads", self.pid_path, error.strerror or error, self.pid)
            self.pid_path = None

    def withdraw(self) -> None:
        """Remove the pid and status files, if they are still this server's (only in the master:
        a worker leaves through the same frames)."""
        if self.pid_path is None or os.getpid() != self.pid:
            return
        try:
            if self.pid_path.read_text().strip() == str(self.pid):
                self.pid_path.unlink()
                status_path(self.pid_path).unlink(missing_ok=True)
        except OSError:
            pass

    def run(self, swap_workers: Callable[[], None]) -> bool:
        """One reload: the content loaded again and, if that worked, `swap_workers` (gunicorn's
        new workers for old). False when the load failed and nothing changed."""
        self.started += 1
        self._status(ok=True, message="reloading", seconds=0.0)
        log.info("reload %d: loading the content again", self.started)
        began = time.perf_counter()
        served: list[Served] | None = None
        why = ""
        collecting = gc.isenabled()
        gc.disable()  # as at start-up: collections during the load would walk every new object
        try:
            served = reload_content(self.app)
        except TerminologyError as error:
            why = error.text
        except Exception as error:  # noqa: BLE001 - whatever a load raises, the master serves on
            why = f"{type(error).__name__}: {error}"
        finally:
            loaded = time.perf_counter() - began
            # The old content was frozen out of the collector's way; what of it is in reference
            # cycles is freed only by a collection of everything, and it must be freed before the
            # fork, or the new workers would carry it.
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            if collecting:
                gc.enable()
        collected = time.perf_counter() - began - loaded
        if served is None:
            seconds = time.perf_counter() - began
            metrics().note_load("reload", seconds, ok=False)
            log.error("reload %d failed after %.2f s; still serving the content loaded before: %s",
                      self.started, seconds, why)
            self._finish(False, why, seconds)
            return False
        swap_workers()
        seconds = time.perf_counter() - began
        metrics().note_load("reload", seconds, ok=True)
        text = counts_text(served)
        log.info("reload %d done in %.2f s (content %.2f s, garbage collection %.2f s, new workers for old "
                 "%.2f s): %s", self.started, seconds, loaded, collected, seconds - loaded - collected, text)
        self._finish(True, text, seconds)
        return True

    def _finish(self, ok: bool, message: str, seconds: float) -> None:
        self.finished = self.started
        self._status(ok=ok, message=message, seconds=seconds)

    def _status(self, *, ok: bool, message: str, seconds: float) -> None:
        if self.pid_path is None:
            return
        try:
            _write(status_path(self.pid_path), json.dumps({
                "pid": self.pid, "started": self.started, "finished": self.finished, "ok": ok,
                "message": message, "seconds": round(seconds, 3)}))
        except OSError as error:
            log.warning("cannot write the reload status %s: %s", status_path(self.pid_path), error.strerror or error)


def banner_line(reloader: Reloader, port: int) -> str:
    """How to reload this server, for its start-up banner."""
    where = f" (pid file {reloader.pid_path})" if reloader.pid_path else ""
    return f"  reload: SIGHUP to process {os.getpid()}, or fhir-plugin reload --port {port}{where}"


def coalesce(signals: list[int]) -> list[int]:
    """The signals gunicorn's master took from its queue in one turn, with one SIGHUP for many."""
    hups = signals.count(signal.SIGHUP)
    if hups <= 1:
        return signals
    log.info("%d reload signals at once (sent together, or during a reload): one reload for them", hups)
    first = signals.index(signal.SIGHUP)
    return [sig for index, sig in enumerate(signals) if sig != signal.SIGHUP or index == first]


def ignore_reloads_while_starting() -> None:
    """SIGHUP's default action ends the process: before gunicorn's master takes it over, say it was
    ignored instead."""
    def ignored(signum: int, frame: FrameType | None) -> None:
        os.write(2, b"fhir-plugin: a reload signal during the start is ignored: the content is being loaded\n")

    try:
        signal.signal(signal.SIGHUP, ignored)
    except ValueError:  # not the main thread (`serve` called in-process): gunicorn would refuse to run there too
        pass


# --- `fhir-plugin reload` --------------------------------------------------------------------------


class NoServer(Exception):
    """No running server could be found from the pid file (the message says why)."""


def find_server(pid_path: Path) -> int:
    """The process id of the `fhir-plugin serve` that wrote `pid_path`, checked: the file is the
    user's own, the process runs and (where /proc tells) is fhir-plugin, so that a stale file never
    sends SIGHUP to a process that took the id since."""
    try:
        text, owner = pid_path.read_text(), pid_path.stat().st_uid
    except FileNotFoundError:
        raise NoServer(f"{pid_path} does not exist: no `fhir-plugin serve` is running with this port "
                       f"(give its --port, or the FHIR_PLUGIN_PID_FILE it was started with)") from None
    except OSError as error:
        raise NoServer(f"{pid_path} cannot be read: {error.strerror or error}") from None
    if owner != os.getuid():
        raise NoServer(f"{pid_path} belongs to another user")
    try:
        pid = int(text.strip())
    except ValueError:
        raise NoServer(f"{pid_path} does not hold a process id") from None
    try:
        if pid <= 1:
            raise ProcessLookupError
        os.kill(pid, 0)
    except ProcessLookupError:
        raise NoServer(f"the process {pid} named in {pid_path} is not running (the server was killed?)") from None
    except PermissionError:
        raise NoServer(f"the process {pid} named in {pid_path} is another user's") from None
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return pid  # no /proc (not Linux): the owner and the running process are what can be checked
    if b"fhir_plugin" not in command and b"fhir-plugin" not in command:
        raise NoServer(f"the process {pid} named in {pid_path} is not fhir-plugin serve")
    return pid


def read_status(pid_path: Path, pid: int) -> dict[str, Any]:
    """The server's reload status; none yet (or another process's) reads as no reload at all."""
    try:
        status = json.loads(status_path(pid_path).read_text())
        if isinstance(status, dict) and status.get("pid") == pid:
            return status
    except (OSError, ValueError):
        pass
    return {"pid": pid, "started": 0, "finished": 0, "ok": True, "message": "", "seconds": 0.0}


def request_reload(pid_path: Path, timeout: float) -> tuple[int, str]:
    """Send SIGHUP to the server of `pid_path`, and wait up to `timeout` seconds (0: not at all)
    for the reload that takes it into account: (exit status, what to print). Raises NoServer."""
    pid = find_server(pid_path)
    before = read_status(pid_path, pid)
    # A reload running now may have read the content before it changed: wait for the one after it.
    wanted = int(before["started"] if before["started"] > before["finished"] else before["finished"]) + 1
    os.kill(pid, signal.SIGHUP)
    if timeout <= 0:
        return 0, f"reload asked of the server (pid {pid})"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(POLL)
        status = read_status(pid_path, pid)
        if int(status["finished"]) >= wanted:
            if status["ok"]:
                return 0, f"reloaded in {status['seconds']:.2f} s (pid {pid}): {status['message']}"
            return 1, (f"reload failed (pid {pid}); the server still serves the content loaded before: "
                       f"{status['message']}")
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return 2, f"the server (pid {pid}) stopped before the reload was done"
    return 2, f"the reload is not done after {timeout:g} s; it goes on (the server's log tells its end)"
