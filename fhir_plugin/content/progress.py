"""Progress of a load: events the loader reports to a callback, and a terminal display of them.

The library only calls `progress(event)` when the caller passed one; it never writes to a
terminal itself. `TerminalProgress` is the command line's callback: on a terminal it redraws one
line in place, otherwise (a log, CI) it writes one plain line per file, so logs stay readable.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TextIO


@dataclass(frozen=True)
class LoadProgress:
    stage: str  # "reading" a file, "read" (it is read and validated), "compiling", "done"
    path: str = ""
    size: int = 0  # bytes of this file on disk
    resources: int = 0  # loaded from this file ("read"), or in all ("compiling", "done")
    # resources passed over in this file, (type, count) by type: a package's StructureDefinitions, ...
    skipped: tuple[tuple[str, int], ...] = ()
    files_done: int = 0
    files_total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0


ProgressCallback = Callable[[LoadProgress], None]


def skipped_text(skipped: Iterable[tuple[str, int]]) -> str:
    """`3 StructureDefinition, 1 ImplementationGuide`"""
    return ", ".join(f"{count} {rtype}" for rtype, count in skipped)


def human_size(size: int) -> str:
    amount: float = size
    for unit in ("B", "KB", "MB"):
        if amount < 1024 or unit == "MB":
            return f"{amount} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount} B"  # unreachable; keeps type checkers content


class TerminalProgress:
    """Writes load progress to `stream` (stderr by default)."""

    WIDTH = 24

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last = 0

    def __call__(self, event: LoadProgress) -> None:
        line = self._tty_line(event) if self.tty else self._plain_line(event)
        if line is None:
            return
        if self.tty:
            # \r and padding redraw the line in place; the last event ends it
            self.stream.write("\r" + line.ljust(self._last))
            self._last = len(line)
            if event.stage == "done":
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def _bar(self, event: LoadProgress) -> str:
        share = event.bytes_done / event.bytes_total if event.bytes_total else 1.0
        filled = int(share * self.WIDTH)
        return f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {int(share * 100):3d}%"

    def _tty_line(self, event: LoadProgress) -> str | None:
        count = f"{event.files_done}/{event.files_total} files"
        if event.stage == "reading":
            return f"{self._bar(event)} {count}, reading {event.path} ({human_size(event.size)})"
        if event.stage == "read":
            return f"{self._bar(event)} {count}"
        if event.stage == "compiling":
            return f"{self._bar(event)} compiling {event.resources} resources"
        return f"{self._bar(event)} {event.resources} resources loaded"

    @staticmethod
    def _plain_line(event: LoadProgress) -> str | None:
        if event.stage == "read":
            skipped = f", passed over {skipped_text(event.skipped)}" if event.skipped else ""
            return (f"[{event.files_done}/{event.files_total}] {event.path} ({human_size(event.size)}): "
                    f"{event.resources} resource{'' if event.resources == 1 else 's'}{skipped}")
        if event.stage == "compiling":
            return f"compiling {event.resources} resources"
        return None  # "reading" would double every line; "done" is the caller's summary


class LogProgress:
    """Load progress as log records (logger `fhir_plugin.content`, INFO), the same plain lines as
    TerminalProgress writes off a terminal: what an embedding app gets instead of printing."""

    def __init__(self, logger: logging.Logger | None = None):
        self.logger = logger or logging.getLogger("fhir_plugin.content")

    def __call__(self, event: LoadProgress) -> None:
        line = TerminalProgress._plain_line(event)
        if line is not None:
            self.logger.info("%s", line)


class InstallDisplay:
    """Writes `fhir-plugin install`'s progress (package_install.InstallEvent) to `stream` (stderr by
    default): on a terminal a bar redrawn in place while a package downloads and unpacks, then one
    line per package; otherwise (a log, CI) only the lines."""

    WIDTH = 24
    LINES = {"present": "{package}: in the package cache already ({detail})",
             "installed": "{package}: installed ({size}) in {detail}",
             "skipped": "{package}: dependency skipped ({detail})",
             "registry-failed": "{detail}: asking the next registry"}

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._drawn = 0  # the length of the bar on the terminal's line, 0: none
        self._announced = False

    def __call__(self, event: Any) -> None:
        if event.stage in ("download", "unpack"):
            if self.tty:
                share = event.done / event.total if event.total else 0.0
                filled = int(share * self.WIDTH)
                amount = f"{human_size(event.done)} of {human_size(event.total)}" if event.total else human_size(event.done)
                verb = "downloading" if event.stage == "download" else "unpacking"
                line = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {int(share * 100):3d}% {verb} {event.package} ({amount})"
                self.stream.write("\r" + line.ljust(self._drawn))
                self._drawn = len(line)
            elif not self._announced:
                self.stream.write(f"downloading {event.package} from {event.detail}\n")
                self._announced = True
        else:
            text = self.LINES.get(event.stage, "{package}").format(package=event.package, detail=event.detail,
                                                                   size=human_size(event.total))
            self.stream.write(("\r" + text.ljust(self._drawn) if self._drawn else text) + "\n")
            self._drawn, self._announced = 0, False
        self.stream.flush()
