"""Content loaded into a running server: files in one directory (FHIR_PLUGIN_LOAD_DIR), served on
top of the content the server started with.

Why a directory and a marker file, not a signal: gunicorn workers (or the processes of any other
WSGI server, or of a host application embedding the plugin) share nothing but the file system.
Every change appends to the marker; each process compares the marker's stat with the one it last
saw (about a microsecond per request) and rebuilds its layer when it changed. So content loaded
through one worker is served by every worker from the next request on, and after a restart.

Loading is all or nothing: a new file is staged and validated together with everything loaded
before it, against the start-up content, and only then moved into place. A failure deletes the
staged file and changes nothing, so the server keeps serving what it had.

A staging folder (`.incoming-*`) exists only while its process holds the directory's lock: it is
made after the lock is taken and deleted before it is released. A process killed mid-load leaves
its folder behind, but the kernel releases its lock, so whoever holds the lock knows that every
staging folder it sees is stale. Every load deletes them before staging its own, and a process
starting up does too if it can take the lock at once (if it cannot, another process is loading,
and that folder is live). Not an age or a pid: a slow load is not stale, and pids are reused and
mean nothing to another host sharing the directory.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import logging
import os
import re
import shutil
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..content.canonicals import CanonicalIndex
from ..content.errors import InvalidContent, LoadTooCostly
from ..content.limits import LoadBounds, Limits
from ..content.loader import scan_paths
from ..terminology.registry import Registry
from .errors import InvalidLoadName, UnknownLoad

log = logging.getLogger(__name__)

SUFFIXES = (".json", ".json.gz", ".tgz")
MARKER = ".generation"
STAGING = ".incoming-"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


STARTUP = "the content the server started with"


@dataclass(frozen=True)
class Loaded:
    """One resource of a loaded file: the file (its name in the directory), where in it, and what it is."""

    file: str
    origin: str
    resource: dict[str, Any]

    @property
    def label(self) -> str:
        """`CodeSystem <url> version <version>`, as the admin endpoint's answers name it."""
        resource = self.resource
        version = resource.get("version")
        return f"{resource['resourceType']} {resource.get('url') or resource.get('id')}" + (
            f" version {version}" if version else "")


@dataclass(frozen=True)
class LoadedFile:
    """A file of the directory as a process read it: every resource in it, in order."""

    name: str
    resources: tuple[Loaded, ...]


@dataclass(frozen=True)
class Layer:
    """The registry a process serves: the start-up content with the loaded files on top, and the
    index of every resource in either (where each is, the one duplicate check)."""

    registry: Registry
    files: tuple[LoadedFile, ...] = ()
    index: CanonicalIndex = field(default_factory=CanonicalIndex)

    def file(self, name: str) -> LoadedFile | None:
        return next((file for file in self.files if file.name == name), None)

    def also_in(self, item: Loaded) -> list[str]:
        """The other files (or the start-up content) that hold the very same resource as `item`: it
        is served once, and unloading one of them leaves it served."""
        return list(dict.fromkeys(_file_of(origin) for origin in self.index.origins_of(item.resource)
                                  if origin != item.origin))

    def state(self, file: LoadedFile) -> str:
        """`loaded`; `duplicate` when every resource of it is held elsewhere too (unloading it changes
        nothing served); `empty` when it holds no CodeSystem, ValueSet or ConceptMap."""
        if not file.resources:
            return "empty"
        return "duplicate" if all(self.also_in(item) for item in file.resources) else "loaded"


@dataclass(frozen=True)
class Change:
    """What a load or an unload did: the new layer, the file's name, whether it is a new file, and
    the marker it left (so that the process that made the change need not rebuild again)."""

    layer: Layer
    name: str
    created: bool
    marker: tuple[int, int, int] | None


def checked_name(name: str) -> str:
    """A plain file name in the directory: no path, no dot file, a loadable suffix."""
    if not _NAME.fullmatch(name) or not name.endswith(SUFFIXES) or ".." in name:
        raise InvalidLoadName("LOADED_NAME_INVALID", name=name, expression="name")
    return name


def default_name(data: bytes) -> str:
    """`loaded-<digest>` with the suffix the bytes call for: a gzipped tar is a package."""
    stem = "loaded-" + hashlib.sha256(data).hexdigest()[:16]
    if data[:2] != b"\x1f\x8b":
        return stem + ".json"
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            archive.next()
        return stem + ".tgz"
    except (tarfile.TarError, OSError, EOFError):
        return stem + ".json.gz"


class ContentStore:
    def __init__(self, directory: Path, limits: Limits | None = None, bounds: LoadBounds | None = None):
        """`bounds`: what one load may hold (the files already in the directory are read whatever
        their size: a lowered bound must not stop a start)."""
        self.directory = Path(directory)
        self.limits = limits or Limits()
        self.bounds = bounds or LoadBounds()

    def marker(self) -> tuple[int, int, int] | None:
        """What identifies the loaded content's current state; None before anything was loaded."""
        try:
            stat = os.stat(self.directory / MARKER)
        except OSError:
            return None
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    def files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.iterdir()
                      if p.is_file() and not p.name.startswith(".") and p.name.endswith(SUFFIXES))

    def build(self, base: Registry, files: list[Path] | None = None, shown: dict[Path, str] | None = None,
              bounded: Path | None = None) -> Layer:
        """`base` with `files` (default: the loaded files) on top. Raises InvalidContent, naming the
        file, resource and element, if any is invalid or conflicts with another or with `base`.
        Each file is read on its own, so that a resource that two files hold (or a file and `base`)
        is served once and yet listed under both."""
        files = self.files() if files is None else files
        shown = {**{f: f.name for f in files}, **(shown or {})}
        kept: list[dict[str, Any]] = []
        read: list[LoadedFile] = []
        index = CanonicalIndex.of_registry(base, STARTUP)
        for path in files:
            try:
                report = scan_paths([path], limits=self.limits, bounds=self.bounds if path == bounded else None)
            except (InvalidContent, LoadTooCostly) as error:
                raise _renamed(error, shown) from None
            items = []
            for resource, origin in zip(report.resources, report.origins):
                file, where = _shown(origin, shown)
                if index.add(resource, where):
                    kept.append(resource)
                items.append(Loaded(file, where, resource))
            read.append(LoadedFile(shown[path], tuple(items)))
        return Layer(Registry(kept, parent=base) if kept else base, tuple(read), index)

    @contextmanager
    def _locked(self, wait: bool = True) -> Iterator[bool]:
        """One change at a time, across every process that shares the directory. Yields whether
        the lock is held: always when `wait`, else only if no other process holds it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def clean(self) -> list[str]:
        """Delete the staging folders of loads that did not finish (their process was killed), unless
        a load is running right now; the names of those deleted. For the start of a process."""
        if not self._staging_folders():
            return []  # the usual case: no lock taken, nothing written (the directory may be read-only)
        try:
            with self._locked(wait=False) as held:
                return self._remove_staging() if held else []
        except OSError as error:  # a directory this process may read but not write
            log.warning("cannot clean the staging folders of %s: %s", self.directory, error)
            return []

    def _staging_folders(self) -> list[Path]:
        try:
            return sorted(p for p in self.directory.iterdir() if p.name.startswith(STAGING) and p.is_dir())
        except OSError:
            return []

    def _remove_staging(self) -> list[str]:
        """Delete every staging folder: the caller holds the lock, so none belongs to a live load."""
        stale = self._staging_folders()
        for folder in stale:
            shutil.rmtree(folder, ignore_errors=True)
        if stale:
            log.info("deleted %d staging folder(s) of loads that did not finish: %s", len(stale),
                     ", ".join(folder.name for folder in stale))
        return [folder.name for folder in stale]

    def add(self, base: Registry, data: bytes, name: str | None = None) -> Change:
        """Load `data` (FHIR JSON, a Bundle, gzipped JSON or a FHIR package) as the file `name`,
        replacing a file of that name."""
        name = checked_name(name) if name else default_name(data)
        self.bounds.check_bytes(data, name)  # before anything is written, or waits for the lock
        with self._locked():
            self._remove_staging()
            staging = Path(tempfile.mkdtemp(prefix=STAGING, dir=self.directory))
            try:
                staged = staging / name
                staged.write_bytes(data)
                target = self.directory / name
                others = [f for f in self.files() if f.name != name]
                layer = self.build(base, others + [staged], {staged: name}, bounded=staged)
                created = not target.exists()
                os.replace(staged, target)
                return Change(layer, name, created, self._touch())
            finally:
                shutil.rmtree(staging, ignore_errors=True)

    def remove(self, base: Registry, name: str) -> Change:
        """Unload the file `name`; NotFound if there is none."""
        with self._locked():
            target = self.directory / checked_name(name)
            if not target.is_file():
                raise UnknownLoad("LOADED_NOT_FOUND", name=name)
            layer = self.build(base, [f for f in self.files() if f.name != name])
            target.unlink()
            return Change(layer, name, False, self._touch())

    def _touch(self) -> tuple[int, int, int] | None:
        """Mark a change: one more line in the marker, so that its size grows with every change and
        no two states of it look alike (a replaced file may get the old inode back, and a coarse
        clock the old mtime). Returns the new marker, read while the lock is still held."""
        with open(self.directory / MARKER, "a", encoding="ascii") as file:
            file.write(uuid.uuid4().hex + "\n")
        return self.marker()


def _shown(origin: str, shown: dict[Path, str]) -> tuple[str, str]:
    """(file name, origin) as users know them: the loaded file's name, not the path of the
    directory or of the staging copy."""
    for path, name in shown.items():
        if origin == str(path) or origin.startswith(f"{path} "):
            return name, name + origin[len(str(path)):]
    return origin, origin


def _file_of(origin: str) -> str:
    """The file an origin names (`demo.json entry[2]` -> `demo.json`; loaded names have no spaces)."""
    return origin if origin == STARTUP else origin.split(" ", 1)[0]


def _renamed(error: InvalidContent | LoadTooCostly, shown: dict[Path, str]) -> InvalidContent | LoadTooCostly:
    text = error.text
    for path, name in sorted(shown.items(), key=lambda item: -len(str(item[0]))):
        text = text.replace(str(path), name)
    return type(error)(error.message_id, expression=error.expression, text=text, **error.fields)
