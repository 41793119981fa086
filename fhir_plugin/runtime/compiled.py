"""An on-disk cache of loaded content: the validated and compiled Registry, pickled.

Validating the complete ICD-10-CM (98,466 concepts) with the fhir.resources models and compiling
it takes seconds on every start; unpickling the result takes a fraction of that. An entry is keyed
by a hash of everything the result depends on: the bytes (and relative names) of every content
file, this package's source code, and the versions of Python and fhir.resources. Changed content
or code therefore never reads a stale entry; it writes a new one. An installed package (a folder of
the package cache, tens of megabytes of StructureDefinitions beside the terminology) counts by the
name, size and modification time of each file in its package/ folder instead of their bytes:
installs write a package whole (package_cache.py), so a changed one has new times, and the key of
the default content (FHIR core, THO) costs a few milliseconds, not a read of 130 MB.

The cache is an optimisation only: an entry that cannot be read (missing, truncated, corrupt,
from another build) or written (read-only or full disk) is skipped, and the content is loaded
the normal way. Entries are pickles, which run code when read: the directory must be one only
the user running the server can write to, as the default per-user cache directory is.
Gunicorn workers share the loaded registry through preload (loaded once before the fork), so
the cache is read once per server start, not once per worker. Nothing is written unless a caller
names a directory (the server does: FHIR_PLUGIN_CACHE_DIR, see config.py).
"""

from __future__ import annotations

import gc
import hashlib
import os
import pickle
import sys
import tempfile
from collections.abc import Callable, Sequence
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TypeVar

from ..content.packages import is_package_dir
from ..terminology.caching import CacheStats

T = TypeVar("T")
_PACKAGE_DIR = Path(__file__).resolve().parent.parent
KEEP_ENTRIES = 8
MIN_CACHED_BYTES = 256 * 1024


@cache
def code_version() -> str:
    """A digest of this package's source and the versions that shape the compiled result: a
    changed compiler must not read entries that an older one wrote."""
    digest = hashlib.sha256(sys.version.encode())
    try:
        digest.update(version("fhir.resources").encode())
    except PackageNotFoundError:
        pass
    for file in sorted(_PACKAGE_DIR.rglob("*.py")):
        digest.update(file.relative_to(_PACKAGE_DIR).as_posix().encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def content_key(paths: Sequence[Path]) -> str:
    """The cache key of loading `paths`: every file under them, by relative name and bytes."""
    digest = hashlib.sha256(code_version().encode())
    for index, path in enumerate(Path(p) for p in paths):
        if is_package_dir(path):
            for file in sorted((path / "package").iterdir()):
                stat = file.stat()
                digest.update(f"{index}\0{file.name}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
            continue
        files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
        for file in files:
            name = file.relative_to(path).as_posix() if path.is_dir() else file.name
            data = file.read_bytes()
            digest.update(f"{index}\0{name}\0{len(data)}\0".encode() + data)
    return digest.hexdigest()


def _size(paths: Sequence[Path]) -> int:
    return sum(f.stat().st_size for p in map(Path, paths)
               for f in ((p / "package").iterdir() if is_package_dir(p) else p.rglob("*") if p.is_dir() else [p])
               if f.is_file())


class CompiledContentCache:
    """The entries in `directory`; `hits`, `misses` and `writes` count what this process did with
    them, so that a load served from the cache can be told from one that was not without timing it."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.hits = self.misses = self.writes = 0

    @property
    def stats(self) -> CacheStats:
        try:
            entries = list(self.directory.glob("content-*.pickle"))
            size = sum(entry.stat().st_size for entry in entries)
        except OSError:
            entries, size = [], 0
        return CacheStats("compiled-content", len(entries), size, KEEP_ENTRIES, self.hits, self.misses)

    def cached(self, paths: Sequence[Path], load: Callable[[], T]) -> T:
        """`load()`, or what an earlier `load()` of the same content returned, read from the directory.
        Content under MIN_CACHED_BYTES is loaded directly: validating it costs about what reading an
        entry does, and its entries would only push the large ones out of the cache."""
        try:
            if _size(paths) < MIN_CACHED_BYTES:
                return load()
            entry = self.directory / f"content-{content_key(paths)}.pickle"
        except OSError:
            return load()  # a path that cannot be read: let the loader report it properly
        collecting = gc.isenabled()
        gc.disable()  # unpickling builds ~1M objects: collections during it would treble its time
        try:
            with open(entry, "rb") as file:
                result: T = pickle.load(file)
            self.hits += 1
            os.utime(entry)  # recently used: the last to be pruned
            return result
        except Exception:  # noqa: BLE001 - missing, corrupt, truncated or foreign entry: unpickling raises anything
            pass
        finally:
            if collecting:
                gc.enable()
        self.misses += 1
        result = load()
        if self._write(entry, result):
            self.writes += 1
        return result

    @staticmethod
    def _write(entry: Path, result: object) -> bool:
        """Write atomically (a reader never sees half an entry); a failure only loses the cache."""
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=entry.parent, prefix=".tmp-", suffix=".pickle")
            try:
                with os.fdopen(handle, "wb") as file:
                    pickle.dump(result, file, protocol=pickle.HIGHEST_PROTOCOL)
                os.replace(temporary, entry)
                _prune(entry.parent)
                return True
            finally:
                if os.path.exists(temporary):
                    os.unlink(temporary)
        except (OSError, pickle.PicklingError, RecursionError):
            return False


def _prune(directory: Path) -> None:
    """Delete all but the KEEP_ENTRIES most recently used entries: every change of content or code
    writes a new one, and the complete ICD-10-CM makes each about 25 MB."""
    entries = sorted(directory.glob("content-*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[KEEP_ENTRIES:]:
        old.unlink(missing_ok=True)
