"""Content loaded at run time kept in PostgreSQL (FHIR_PLUGIN_LOAD_DATABASE): the store of replicas
on several machines, which share no file system (the directory store needs one with a working
`flock`, which network file systems do not reliably give).

The database holds each loaded file's bytes, under its name, and a generation number that every
load and unload increases in the same transaction. A transaction takes an advisory lock first, so
changes are made one at a time across every replica, as the directory's `flock` makes them; it
checks the change against everything loaded (read inside the lock) and NOTIFYs the new generation,
which PostgreSQL delivers only when the transaction commits.

Each process has one listener thread, started with the process (a thread does not survive
gunicorn's fork: a forked child starts its own at once; psycopg finishes a connection only in the
process that opened it, so a forked copy is harmless). It LISTENs and, on every notification and at
least every FHIR_PLUGIN_LOAD_POLL seconds (the fallback when a notification is lost: a connection
cut and remade), reads the generation and, when it changed, a snapshot: the loads' names and
digests and the bytes of those its process has not read. A request compares that generation in
memory, as the directory store compares the marker's stat, and when it changed catches up from the
snapshot: no database round trip per request, nor to catch up. The files that changed are validated
and compiled (or, when another worker of the same server did it first, read from the compiled forms
kept in a private directory, as the directory store keeps them).

The database going away is not an error of the requests: the content already served stays
served, a load or unload is refused (LoadStoreUnavailable, 503), the listener says so once in the
log and tries again every poll; once back, it bumps what requests compare, so that every process
catches up with whatever was committed meanwhile. A database with another schema version is the
same: logged, loads refused, the content the server has served. Neither stops a start: a replica
that cannot reach the database starts with its start-up content and catches up when it can.
"""

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..content.limits import LoadBounds, Limits
from ..terminology.errors import TerminologyError
from ..terminology.registry import Registry
from .errors import LoadStoreUnavailable, UnknownLoad
from .layer import Change, Layer, LoadedFile
from .pgschema import (CHANNEL, CONNECT_TIMEOUT, Marker, Snapshot, announce, connect, delete, digests, lock, read_meta,
                       rows, shown_conninfo, write)
from .store import MARKER, ContentStore, checked_name, default_name

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

class DatabaseStore(ContentStore):
    def __init__(self, conninfo: str, limits: Limits | None = None, bounds: LoadBounds | None = None,
                 poll: float = 5.0):
        """`conninfo`: a libpq connection string or URI. The compiled forms of what is read are kept in
        a private temporary directory, shared by the workers forked from this process."""
        if importlib.util.find_spec("psycopg") is None:
            raise ValueError("FHIR_PLUGIN_LOAD_DATABASE needs psycopg 3: pip install 'fhir-plugin[postgres]'")
        scratch = Path(tempfile.mkdtemp(prefix="fhir-plugin-loads-"))
        super().__init__(scratch, limits, bounds)
        self.conninfo = conninfo
        self.where = shown_conninfo(conninfo)
        self.poll = max(float(poll), 0.1)
        self.problem: str | None = None  # why the database cannot be used right now (logged once)
        self._generation: Marker | None = None
        self._snapshot: Snapshot | None = None  # what the database held at `_generation`
        self._installing = threading.Lock()
        self._noting = threading.Lock()
        self._nudges = 0
        self._local_read = 0  # the size of this server's marker file when this process last read the database
        self._retry = False  # a catch-up failed: nudge once the database answers again
        self._names: list[str] = []
        self._digests: dict[str, tuple[str, LoadedFile]] = {}  # name -> (digest of its bytes, as read)
        self._failed_rows: dict[str, tuple[str, TerminologyError]] = {}
        self._listener: threading.Thread | None = None
        self._stop = threading.Event()
        atexit.register(_remove_scratch, scratch, os.getpid())
        own = weakref.ref(self)

        def forked() -> None:
            store = own()
            if store is not None:
                store._forked()

        os.register_at_fork(after_in_child=forked)

    # --- what requests compare --------------------------------------------------------------

    def marker(self) -> Marker | None:
        """The generation the listener last read (None before it read one), plus the size of this
        server's own marker file: one `stat`, no database round trip. That file grows with every
        change made by a worker of this server, so that its other workers serve a load from their
        next request, as with a directory, without waiting for the notification."""
        if self._listener is None:
            self._listen()
        generation = self._generation
        return None if generation is None else (generation[0], generation[1], generation[2] + self._local())

    def _local(self) -> int:
        try:
            return os.stat(self.directory / MARKER).st_size
        except OSError:
            return 0

    def _told_locally(self, marker: Marker) -> Marker:
        """Tell this server's other workers of a change this one committed (see `marker`)."""
        try:
            with open(self.directory / MARKER, "a", encoding="ascii") as file:
                file.write("changed\n")
                file.flush()
                self._local_read = file.tell()
        except OSError as error:  # the change is committed all the same: the others learn it by NOTIFY
            log.warning("cannot tell this server's other workers of a change at once: %s", error)
        return marker[0], marker[1], marker[2] + self._local_read

    def files(self) -> list[Path]:
        return [Path(name) for name in self._names]

    def location(self) -> dict[str, Any]:
        found: dict[str, Any] = {"directory": None, "database": self.where}
        if self.problem:
            found["databaseProblem"] = self.problem
        return found

    def close(self) -> None:
        """Stop this process's listener (tests; a server's processes just exit)."""
        self._stop.set()
        if self._listener is not None and self._listener is not threading.current_thread():
            self._listener.join(self.poll + CONNECT_TIMEOUT + 1)

    def _forked(self) -> None:
        self._listener = None
        self._stop = threading.Event()
        # the listener thread that may have held these is not in this process
        self._installing, self._noting = threading.Lock(), threading.Lock()
        # A worker may be forked long after its master read the database (gunicorn replaces workers):
        # its first request catches up from the table, whatever the master saw. Its listener starts
        # now, not on that request: if the database goes away before it, the worker still has the
        # snapshot of everything committed until then.
        self._generation = (-1, -1, -1)
        self._listen()

    def _listen(self) -> None:
        self._listener = threading.Thread(target=self._run, name="fhir-plugin-load-listener", daemon=True)
        self._listener.start()

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with self._connect(autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self._read_generation(connection)
                    self._available()
                    while not self._stop.is_set():
                        for _ in connection.notifies(timeout=self.poll, stop_after=1):
                            pass
                        self._read_generation(connection)
            except (psycopg.Error, LoadStoreUnavailable) as error:
                self._unavailable(error)
            except Exception as error:  # noqa: BLE001 - a listener that died would leave its process behind for good
                log.exception("the listener of %s failed; trying again", self.where)
                self._unavailable(error)
            self._stop.wait(self.poll)

    def _read_generation(self, connection: psycopg.Connection[Any]) -> None:
        """Read the generation and, when it changed, what requests will need to catch up: the names
        and digests of the loads, and the bytes of those this process has not read, in one snapshot
        (so that a request catches up without the database, even one that went away since)."""
        with connection.transaction():
            connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            meta = self._meta(connection)
            if self._retry:
                self._retry = False
                self._nudges += 1
            marker = (meta.get("epoch", 0), meta.get("generation", 0), self._nudges)
            snapshot = self._snapshot
            if snapshot is None or snapshot.marker[:2] != marker[:2]:
                listing = digests(connection) if meta else {}
                held = dict(self._digests)
                wanted = [name for name, digest in listing.items() if held.get(name, ("",))[0] != digest]
                data = {name: (digest, data) for name, digest, data in rows(connection, wanted)}
                snapshot = Snapshot(marker, listing, data)
            else:
                snapshot = dataclasses.replace(snapshot, marker=marker)
        self._install(snapshot)

    def _install(self, snapshot: Snapshot) -> None:
        """Serve from `snapshot` on, unless a newer one is there already: a listener's read may
        end after this process's own change was committed and installed."""
        with self._installing:
            current = self._snapshot
            if current is not None and current.marker[0] == snapshot.marker[0] and \
                    current.marker[1] > snapshot.marker[1]:
                return
            self._snapshot = snapshot
            self._generation = snapshot.marker

    # --- the database -----------------------------------------------------------------------

    def _connect(self, autocommit: bool = False) -> psycopg.Connection[Any]:
        return connect(self.conninfo, autocommit)

    def _meta(self, connection: psycopg.Connection[Any], create: bool = False) -> dict[str, int]:
        return read_meta(connection, self.where, create)

    def _unavailable(self, error: Exception) -> LoadStoreUnavailable:
        """Note that the database cannot be used (logged once per distinct reason) and the error a
        load or unload answers with."""
        if isinstance(error, LoadStoreUnavailable):
            problem, refused = error.text, error
        else:
            reason = " ".join(str(error).split()).rstrip(".") or type(error).__name__
            problem = f"the database of content loaded at run time ({self.where}) cannot be used: {reason}"
            refused = LoadStoreUnavailable("LOAD_DATABASE_UNREACHABLE", where=self.where)
        with self._noting:  # the start and the listener may fail at once: one line for both
            if problem != self.problem:
                log.error("%s; serving what was loaded before, trying again every %g s", problem, self.poll)
            self.problem = problem
            self._retry = True
        return refused

    def _available(self) -> None:
        if self.problem is not None:
            log.warning("the database of content loaded at run time (%s) answers again: catching up", self.where)
            self.problem = None

    # --- reading and changing ---------------------------------------------------------------

    def build(self, base: Registry, known: Mapping[str, LoadedFile] | None = None) -> Layer:
        """`base` with what the database holds; the start-up content alone (and a line in the log)
        when the database cannot be reached: the replica catches up once it can. Unlike a directory,
        a row that cannot be served (loaded by another version of this code) does not stop the
        start: every replica reads the same rows, so stopping would stop them all, again and again."""
        import psycopg

        try:
            with self._connect() as connection:
                self._meta(connection, create=True)
                connection.commit()
        except (psycopg.Error, LoadStoreUnavailable) as error:
            self._unavailable(error)
            snapshot = self._snapshot  # a reload (Runtime.serve) while the database is away: what it had
            if snapshot is None:
                return Layer.of(base)
            return self._caught_up(Layer.of(base), dict(snapshot.listing), known, None, snapshot.rows)[0]
        layer, problems = self.refreshed(Layer.of(base), known)
        for name, problem in problems.items():
            log.error("content loaded at run time cannot be served: %s: %s", name, problem.text)
        return layer

    def refreshed(self, layer: Layer, known: Mapping[str, LoadedFile] | None = None,
                  override: tuple[str, LoadedFile | None] | None = None) -> tuple[Layer, dict[str, TerminologyError]]:
        """As ContentStore.refreshed: from the listener's snapshot when it is of the generation
        requests compare (no round trip), else from the database; when that cannot be reached,
        from the last snapshot, or `layer` as it is."""
        import psycopg

        snapshot, local = self._snapshot, self._local()
        # a change by another worker of this server (`local` grew) may be newer than the snapshot
        if override is None and snapshot is not None and snapshot.marker == self._generation and \
                local == self._local_read:
            return self._caught_up(layer, dict(snapshot.listing), known, None, snapshot.rows)
        try:
            with self._connect() as connection:
                listing = digests(connection) if self._meta(connection) else {}
                caught_up = self._caught_up(layer, listing, known, override, lambda names: rows(connection, names))
            self._local_read = local
            return caught_up
        except (psycopg.Error, LoadStoreUnavailable) as error:
            self._unavailable(error)
            if snapshot is not None and override is None:
                return self._caught_up(layer, dict(snapshot.listing), known, None, snapshot.rows)
            return layer, {}

    def _caught_up(self, layer: Layer, listing: dict[str, str], known: Mapping[str, LoadedFile] | None,
                   override: tuple[str, LoadedFile | None] | None,
                   rows: Callable[[list[str]], Iterable[tuple[str, str, bytes]]],
                   ) -> tuple[Layer, dict[str, TerminologyError]]:
        """`layer` with the files of `listing` (name -> digest, what the database holds), reading
        the bytes of those that changed only (`rows`: name, digest, bytes of the names asked for)."""
        known = layer.files if known is None else known
        if override is not None:
            listing.pop(override[0], None)
        changes: dict[str, LoadedFile | None] = {}
        problems: dict[str, TerminologyError] = {}
        wanted: list[str] = []
        for name, digest in listing.items():
            file, kept = known.get(name), self._digests.get(name)
            if file is not None and kept == (digest, file):
                if layer.files.get(name) is not file:
                    changes[name] = file
                continue
            failed = self._failed_rows.get(name)
            if failed is not None and failed[0] == digest:
                problems[name] = failed[1]
                continue
            wanted.append(name)
        if wanted:
            for name, digest, data in rows(wanted):
                try:
                    changes[name] = self._compiled_file(name, data, digest)
                except TerminologyError as error:
                    self._failed_rows[name] = (digest, error)
                    problems[name] = error
        changes.update({name: None for name in layer.files if name not in listing})
        if override is not None:
            changes[override[0]] = override[1]
        layer, conflicts = layer.changed(changes, strict=override[0] if override else None)
        self._names = sorted({*listing, *([override[0]] if override and override[1] else [])})
        return layer, {**problems, **conflicts}

    def _compiled_file(self, name: str, data: bytes, digest: str, bounds: LoadBounds | None = None) -> LoadedFile:
        """The file `name` of bytes `data` validated and compiled (or its compiled form read back)."""
        folder = Path(tempfile.mkdtemp(prefix=".incoming-", dir=self.directory))
        try:
            path = folder / name
            path.write_bytes(data)
            file = self._read(name, path, None, bounds)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        self._digests[name] = (digest, file)
        return file

    def add(self, layer: Layer, data: bytes, name: str | None = None) -> Change:
        """Load `data` as `name`: validated here first, then written, checked against everything
        loaded and announced in one transaction; LoadStoreUnavailable if the database cannot be used."""
        import psycopg

        name = checked_name(name) if name else default_name(data)
        self.bounds.check_bytes(data, name)
        digest = hashlib.sha256(data).hexdigest()
        fresh = self._compiled_file(name, data, digest, self.bounds)  # no lock is held while validating
        try:
            with self._connect() as connection:
                self._meta(connection, create=True)
                with connection.transaction():
                    lock(connection)
                    listing = digests(connection)
                    layer, problems = self._caught_up(layer, dict(listing), None, (name, fresh),
                                                      lambda names: rows(connection, names))
                    created = write(connection, name, digest, data)
                    marker = (*announce(connection), self._nudges)
        except (psycopg.Error, LoadStoreUnavailable) as error:
            raise self._unavailable(error) from None
        self._digests[name] = (digest, fresh)
        self._install(Snapshot(marker, {**listing, name: digest}, {}))
        marker = self._told_locally(marker)
        self._failed_rows.pop(name, None)
        return Change(layer, name, created, marker, problems)

    def remove(self, layer: Layer, name: str) -> Change:
        import psycopg

        checked_name(name)
        try:
            with self._connect() as connection:
                self._meta(connection, create=True)
                with connection.transaction():
                    lock(connection)
                    listing = digests(connection)
                    if name not in listing:
                        raise UnknownLoad("LOADED_NOT_FOUND", name=name)
                    layer, problems = self._caught_up(layer, dict(listing), None, (name, None),
                                                      lambda names: rows(connection, names))
                    delete(connection, name)
                    marker = (*announce(connection), self._nudges)
        except (psycopg.Error, LoadStoreUnavailable) as error:
            raise self._unavailable(error) from None
        self._digests.pop(name, None)
        self._install(Snapshot(marker, {key: value for key, value in listing.items() if key != name}, {}))
        marker = self._told_locally(marker)
        self._failed_rows.pop(name, None)
        return Change(layer, name, False, marker, problems)

    def clean(self, layer: Layer | None = None) -> list[str]:
        return []  # nothing is staged in the database: a transaction that did not finish left nothing


def _remove_scratch(scratch: Path, pid: int) -> None:
    if os.getpid() == pid:  # workers forked from the process that made it exit first
        shutil.rmtree(scratch, ignore_errors=True)
