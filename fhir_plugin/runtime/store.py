"""Content loaded into a running server: files in one directory (FHIR_PLUGIN_LOAD_DIR), served on
top of the content the server started with.

Why a directory and a marker file, not a signal: gunicorn workers (or the processes of any other
WSGI server, or of a host application embedding the plugin) share nothing but the file system.
Every change appends to the marker; each process compares the marker's stat with the one it last
saw (about a microsecond per request) and catches up with the directory when it changed. So
content loaded through one worker is served by every worker from the next request on, and after a
restart.

A load is validated once. The new file is staged, validated and compiled on its own, and checked
against the index of everything served (CanonicalIndex: the start-up content and every loaded
file, the one duplicate check), then moved into place. A failure deletes the staged file and
changes nothing, so the server keeps serving what it had. The files loaded before are not read
again: each process keeps what it read of each file (its compiled entries), and the registry it
serves changes by the entries of the changed file (Registry.changed), so a small load costs about
the small file, however much is loaded (the layer a process serves, and how it changes, is
layer.py; this module is the directory). The compiled entries of each file are also kept on disk,
in `.compiled/<digest>.pickle` (the digest of the file's name and bytes and of this package's
code): a process catching up with a change made by another, or starting, reads those instead of
validating again. Like the compiled-content cache, they are pickles, which run code when read:
the directory must be one only the user running the server can write to (loads cannot write
there: their names cannot start with a dot).

A staging folder (`.incoming-*`) exists only while its process holds the directory's lock: it is
made after the lock is taken and deleted before it is released. A process killed mid-load leaves
its folder behind, but the kernel releases its lock, so whoever holds the lock knows that every
staging folder it sees is stale. Every load deletes them before staging its own, and a process
starting up does too if it can take the lock at once (if it cannot, another process is loading,
and that folder is live). Not an age or a pid: a slow load is not stale, and pids are reused and
mean nothing to another host sharing the directory.
"""

from __future__ import annotations

import dataclasses
import fcntl
import gc
import hashlib
import io
import logging
import os
import pickle
import re
import shutil
import tarfile
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..content.errors import InvalidContent, LoadTooCostly
from ..content.limits import LoadBounds, Limits
from ..content.loader import scan_paths
from ..terminology.errors import TerminologyError
from ..terminology.registry import Registry, compile_entry
from .compiled import code_version
from .errors import InvalidLoadName, UnknownLoad
from .layer import Change, Layer, Loaded, LoadedFile, Stat

log = logging.getLogger(__name__)

SUFFIXES = (".json", ".json.gz", ".tgz")
MARKER = ".generation"
STAGING = ".incoming-"
COMPILED = ".compiled"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


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
        # files this process could not read, so that an unchanged broken file is not read again
        self._failed: dict[str, tuple[Stat, TerminologyError]] = {}

    def marker(self) -> tuple[int, int, int] | None:
        """What identifies the loaded content's current state; None before anything was loaded."""
        try:
            stat = os.stat(self.directory / MARKER)
        except OSError:
            return None
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    def location(self) -> dict[str, Any]:
        """Where loads are kept, for the admin endpoint's listing."""
        return {"directory": str(self.directory)}

    def files(self) -> list[Path]:
        return [path for path, _ in self._listing().values()]

    def _listing(self) -> dict[str, tuple[Path, Stat]]:
        """The loadable files of the directory, in name order, with their stat (one per file)."""
        found: dict[str, tuple[Path, Stat]] = {}
        try:
            with os.scandir(self.directory) as entries:
                for entry in entries:
                    if entry.name.startswith(".") or not entry.name.endswith(SUFFIXES):
                        continue
                    try:
                        if entry.is_file():
                            found[entry.name] = (Path(entry.path), _stat_of(entry.stat()))
                    except OSError:
                        continue  # gone meanwhile
        except OSError:
            return {}
        return dict(sorted(found.items()))

    def build(self, base: Registry, known: Mapping[str, LoadedFile] | None = None) -> Layer:
        """`base` with the directory's files on top, for a start: InvalidContent for the first file
        that cannot be read or conflicts with another or with `base`. `known`: files read before,
        taken as they are if unchanged on disk."""
        layer, problems = self.refreshed(Layer.of(base), known)
        if problems:
            raise next(iter(problems.values()))
        return layer

    def refreshed(self, layer: Layer, known: Mapping[str, LoadedFile] | None = None,
                  override: tuple[str, LoadedFile | None] | None = None) -> tuple[Layer, dict[str, TerminologyError]]:
        """`layer` caught up with the directory, reading only the files that changed, and the
        problems of files that could not be read or taken in (the version before of each, if any,
        stays). `override`: (name, new version or None), a change about to be made, whose
        conflicts are raised."""
        known = layer.files if known is None else known
        listing = self._listing()
        if override is not None:
            listing.pop(override[0], None)
        changes: dict[str, LoadedFile | None] = {}
        problems: dict[str, TerminologyError] = {}
        for name, (path, stat) in listing.items():
            file = known.get(name)
            if file is not None and file.stat == stat:
                if layer.files.get(name) is not file:
                    changes[name] = file
                continue
            failed = self._failed.get(name)
            if failed is not None and failed[0] == stat:
                problems[name] = failed[1]
                continue
            try:
                changes[name] = self._read(name, path, stat)
            except OSError:
                continue  # replaced or removed while it was read: the marker will change again
            except TerminologyError as error:
                self._failed[name] = (stat, error)
                problems[name] = error
        changes.update({name: None for name in layer.files if name not in listing})
        if override is not None:
            changes[override[0]] = override[1]
        layer, conflicts = layer.changed(changes, strict=override[0] if override else None)
        return layer, {**problems, **conflicts}

    def _read(self, name: str, path: Path, stat: Stat | None, bounds: LoadBounds | None = None) -> LoadedFile:
        """The file `name` (at `path`) read: its compiled form from disk when this very file was read
        before, else validated (within `bounds`, if given), compiled, and its compiled form kept."""
        data = path.read_bytes()
        digest = hashlib.sha256(f"{code_version()}\0{name}\0".encode() + data).hexdigest()
        items = self._compiled(digest)
        if items is None:
            try:
                report = scan_paths([path], limits=self.limits, bounds=bounds)
            except (InvalidContent, LoadTooCostly) as error:
                raise _renamed(error, {path: name}) from None
            if stat is not None and _stat_of(os.stat(path)) != stat:
                raise FileNotFoundError(path)  # replaced while it was read: what was read is not `digest`
            items = tuple(Loaded(name, _shown(origin, {path: name})[1], compile_entry(resource))
                          for resource, origin in zip(report.resources, report.origins))
            self._keep(digest, items)
        return LoadedFile(name, digest, stat, items)

    def _compiled(self, digest: str) -> tuple[Loaded, ...] | None:
        collecting = gc.isenabled()
        gc.disable()  # unpickling builds many objects: collections meanwhile would treble its time
        try:
            with open(self.directory / COMPILED / f"{digest}.pickle", "rb") as file:
                items = pickle.load(file)
        except Exception:  # noqa: BLE001 - missing, truncated or foreign: unpickling raises anything
            return None
        finally:
            if collecting:
                gc.enable()
        return items if isinstance(items, tuple) and all(isinstance(i, Loaded) for i in items) else None

    def _keep(self, digest: str, items: tuple[Loaded, ...]) -> None:
        """Write atomically (a reader never sees half of it); a failure only costs a validation."""
        folder = self.directory / COMPILED
        try:
            folder.mkdir(exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".pickle")
            try:
                with os.fdopen(handle, "wb") as file:
                    pickle.dump(items, file, protocol=pickle.HIGHEST_PROTOCOL)
                os.replace(temporary, folder / f"{digest}.pickle")
            finally:
                if os.path.exists(temporary):
                    os.unlink(temporary)
        except (OSError, pickle.PicklingError, RecursionError) as error:
            log.debug("cannot keep the compiled form of %s: %s", digest, error)

    def _stale_compiled(self, layer: Layer) -> list[str]:
        """The compiled forms on disk of files not in `layer` (no longer in the directory)."""
        keep = {f"{file.digest}.pickle" for file in layer.files.values()}
        try:
            with os.scandir(self.directory / COMPILED) as entries:
                return [entry.path for entry in entries if entry.name not in keep]
        except OSError:
            return []

    def _prune(self, layer: Layer) -> None:
        """Delete the compiled forms of files no longer in the directory (the caller holds the lock)."""
        for path in self._stale_compiled(layer):
            try:
                os.unlink(path)
            except OSError:
                pass

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

    def clean(self, layer: Layer | None = None) -> list[str]:
        """For the start of a process: delete the staging folders of loads that did not finish
        (their process was killed) and the compiled forms of files no longer there (of `layer`),
        unless a load is running right now; the names of the staging folders deleted."""
        staging = self._staging_folders()
        if not staging and (layer is None or not self._stale_compiled(layer)):
            return []  # the usual case: no lock taken, nothing written (the directory may be read-only)
        try:
            with self._locked(wait=False) as held:
                if not held:
                    return []
                if layer is not None:
                    self._prune(layer)
                return self._remove_staging()
        except OSError as error:  # a directory this process may read but not write
            if staging:
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

    def add(self, layer: Layer, data: bytes, name: str | None = None) -> Change:
        """Load `data` (FHIR JSON, a Bundle, gzipped JSON or a FHIR package) as the file `name`,
        replacing a file of that name, on top of `layer` (what this process serves)."""
        name = checked_name(name) if name else default_name(data)
        self.bounds.check_bytes(data, name)  # before anything is written, or waits for the lock
        with self._locked():
            self._remove_staging()
            staging = Path(tempfile.mkdtemp(prefix=STAGING, dir=self.directory))
            try:
                staged = staging / name
                staged.write_bytes(data)
                fresh = self._read(name, staged, None, self.bounds)
                layer, problems = self.refreshed(layer, override=(name, fresh))
                target = self.directory / name
                created = not target.exists()
                os.replace(staged, target)
                placed = dataclasses.replace(fresh, stat=_stat_of(os.stat(target)))
                layer = dataclasses.replace(layer, files={**layer.files, name: placed})
                self._failed.pop(name, None)
                marker = self._touch()
                self._prune(layer)
                return Change(layer, name, created, marker, problems)
            finally:
                shutil.rmtree(staging, ignore_errors=True)

    def remove(self, layer: Layer, name: str) -> Change:
        """Unload the file `name`; NotFound if there is none."""
        with self._locked():
            target = self.directory / checked_name(name)
            if not target.is_file():
                raise UnknownLoad("LOADED_NOT_FOUND", name=name)
            layer, problems = self.refreshed(layer, override=(name, None))
            target.unlink()
            self._failed.pop(name, None)
            marker = self._touch()
            self._prune(layer)
            return Change(layer, name, False, marker, problems)

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


def _stat_of(stat: os.stat_result) -> Stat:
    return stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


def _renamed(error: InvalidContent | LoadTooCostly, shown: dict[Path, str]) -> InvalidContent | LoadTooCostly:
    text = error.text
    for path, name in sorted(shown.items(), key=lambda item: -len(str(item[0]))):
        text = text.replace(str(path), name)
    return type(error)(error.message_id, expression=error.expression, text=text, **error.fields)
