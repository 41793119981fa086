"""The FHIR package cache, `~/.fhir/packages/NAME#VERSION/`, shared with the other FHIR tools.

Each installed package is its archive unpacked: `NAME#VERSION/package/package.json`, the resources,
and `.index.json` (written here when the package lacks one: the copies of the core and HL7
Terminology packages on the npm registry have none, and the loader reads only what the index
lists as terminology). A package appears there whole or not at all: it is unpacked into a staging
folder beside the others (`.staging-*`) and renamed into place, one atomic step, so that a failed
or killed install leaves nothing that looks installed, and a package already there is never
touched. The archive is checked as packages.py checks one it loads: no absolute path, no `..`, no
link or device, nothing outside `package/`, no member twice, within the size limits.

Which packages a server serves (`served_packages`) is worked out from the cache alone, with no
network: the packages named in FHIR_PLUGIN_PACKAGES and the dependencies their package.json names,
but for those FHIR_PLUGIN_PACKAGE_SKIP names (package_install.py installs the same set).
"""

from __future__ import annotations

import fnmatch
import gzip
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..terminology.registry import version_key
from .errors import InvalidContent, PackageUnavailable
from .limits import BoundedReader, Limits
from .packages import checked_member_name, index_entry, is_package_dir

# npm package names (FHIR's are lower-case and dotted: hl7.fhir.us.core) and versions (1.0.0-ballot)
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,213}$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_-]{0,127}$")
STAGING_PREFIX = ".staging-"
STALE_STAGING_SECONDS = 24 * 3600  # an install takes seconds; a folder this old was left by a killed one


@dataclass(frozen=True)
class PackageSpec:
    """A package as asked for: NAME, NAME#VERSION (NAME@VERSION too, npm's way). A version may end
    in `x` parts (`5.0.x`: the highest 5.0 release); none means the latest."""

    name: str
    version: str | None = None

    @classmethod
    def parse(cls, text: str) -> PackageSpec:
        name, separator, version = text.strip().replace("@", "#", 1).partition("#")
        if not _NAME.match(name) or (separator and not _VERSION.match(version)):
            raise PackageUnavailable("PACKAGE_SPEC_INVALID", spec=text)
        return cls(name, version or None)

    def __str__(self) -> str:
        return f"{self.name}#{self.version}" if self.version else self.name

    def fixed(self) -> bool:
        """Names one version exactly (not latest, not a wildcard)."""
        return self.version is not None and not any(part in ("x", "X", "*") for part in self.version.split("."))

    def accepts(self, version: str) -> bool:
        if self.version is None or self.version == "latest":
            return True
        wanted, given = self.version.split("."), version.split(".")
        if not any(part in ("x", "X", "*") for part in wanted):
            return version == self.version
        return len(given) >= len(wanted) and all(w in ("x", "X", "*") or w == g for w, g in zip(wanted, given))

    def best(self, versions: Iterable[str]) -> str | None:
        """The highest of `versions` this spec accepts."""
        return max((v for v in versions if self.accepts(v)), key=version_key, default=None)


def parse_specs(text: str) -> list[PackageSpec]:
    """The packages of a setting: specs separated by spaces or commas; empty or `none`: none."""
    parts = [part for part in re.split(r"[\s,]+", text.strip()) if part]
    return [] if parts in ([], ["none"]) else [PackageSpec.parse(part) for part in parts]


def skipped(name: str, patterns: Iterable[str]) -> bool:
    """Whether a dependency is left out: its name matches one of `patterns` (`*` wildcards)."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def dependencies(manifest: dict[str, Any]) -> list[PackageSpec]:
    """The dependencies package.json names (a dict of name -> version; anything else: none)."""
    given = manifest.get("dependencies")
    found = []
    for name, version in (given.items() if isinstance(given, dict) else ()):
        try:
            found.append(PackageSpec.parse(f"{name}#{version}" if isinstance(version, str) and version else name))
        except PackageUnavailable:
            continue  # a dependency we cannot even name (a URL, a range): not one a terminology server fetches
    return found


# --- the cache -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnpackProgress:
    done: int  # compressed bytes of the archive read so far
    total: int


class PackageCache:
    """The folder of installed packages (FHIR_PLUGIN_PACKAGE_CACHE, default ~/.fhir/packages)."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def folder(self, name: str, version: str) -> Path:
        return self.directory / f"{name}#{version}"

    def versions(self, name: str) -> list[str]:
        """The versions of `name` installed here."""
        try:
            found = [p.name.partition("#")[2] for p in self.directory.glob(f"{glob_escape(name)}#*")]
        except OSError:
            return []
        return [v for v in found if v and is_package_dir(self.folder(name, v))]

    def installed(self, spec: PackageSpec) -> str | None:
        """The version of `spec` installed here (the highest that fits), or None."""
        if spec.fixed():
            assert spec.version is not None
            return spec.version if is_package_dir(self.folder(spec.name, spec.version)) else None
        return spec.best(self.versions(spec.name))

    def manifest(self, name: str, version: str) -> dict[str, Any]:
        path = self.folder(name, version) / "package" / "package.json"
        try:
            document = json.loads(path.read_bytes())
        except (OSError, ValueError) as error:
            raise InvalidContent("PACKAGE_INVALID", origin=str(path), problem=f"cannot read it ({error})") from None
        if not isinstance(document, dict):
            raise InvalidContent("PACKAGE_INVALID", origin=str(path), problem="not a JSON object")
        return document

    def install(self, name: str, version: str, archive: bytes, limits: Limits,
                progress: Callable[[UnpackProgress], None] | None = None) -> Path:
        """Unpack `archive` (a package .tgz, already verified) as NAME#VERSION, atomically. A package
        already there stays as it is. Raises InvalidContent (nothing is left behind) for an unsafe or
        malformed archive, or one whose package.json is another package."""
        target = self.folder(name, version)
        if is_package_dir(target):
            return target
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._remove_stale_staging()
            staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{name}#{version}-", dir=self.directory))
            staging.chmod(0o755)  # as other tools' packages: the cache is read by every FHIR tool of the user
        except OSError as error:
            raise PackageUnavailable("PACKAGE_CACHE_FAILED", cache=str(self.directory), problem=error) from None
        try:
            origin = f"{name}#{version}"
            _unpack(archive, staging, origin, limits, progress)
            _check_manifest(staging, origin, name, version)
            _write_index(staging, limits)
            try:
                os.rename(staging, target)
            except OSError:
                if not is_package_dir(target):  # another install put it there meanwhile: that one stands
                    raise
        except OSError as error:
            raise PackageUnavailable("PACKAGE_CACHE_FAILED", cache=str(self.directory), problem=error) from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def _remove_stale_staging(self) -> None:
        now = time.time()
        for folder in self.directory.glob(f"{STAGING_PREFIX}*"):
            try:
                if now - folder.stat().st_mtime > STALE_STAGING_SECONDS:
                    shutil.rmtree(folder, ignore_errors=True)
            except OSError:
                continue


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


class _Counted(io.RawIOBase):
    """The archive's bytes, counting how far the unpacking has read (for the progress bar)."""

    def __init__(self, data: bytes, progress: Callable[[UnpackProgress], None] | None):
        self._inner, self._progress, self._last = io.BytesIO(data), progress, 0
        self.total = len(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._inner.readinto(buffer)
        position = self._inner.tell()
        if self._progress is not None and (position - self._last >= 1 << 20 or position == self.total):
            self._last = position
            self._progress(UnpackProgress(position, self.total))
        return count


def _unpack(archive: bytes, staging: Path, origin: str, limits: Limits,
            progress: Callable[[UnpackProgress], None] | None) -> None:
    """Every member of `archive` written under `staging`, each checked before anything is written."""
    seen: set[str] = set()
    total = 0
    try:
        stream = BoundedReader(gzip.GzipFile(fileobj=_Counted(archive, progress)), limits.max_package_bytes, origin)
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for count, member in enumerate(tar, start=1):
                if count > limits.max_members:
                    raise InvalidContent("PACKAGE_INVALID", origin=origin, problem=f"more than {limits.max_members} members")
                name = checked_member_name(origin, member)
                path = staging.joinpath(*PurePosixPath(name).parts)
                if member.isdir():
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                if name in seen:
                    raise InvalidContent("PACKAGE_MEMBER_REFUSED", origin=origin, member=name,
                                         problem="it appears twice in the archive")
                seen.add(name)
                total += member.size
                if member.size > limits.max_member_bytes or total > limits.max_package_bytes:
                    raise InvalidContent("CONTENT_TOO_LARGE", origin=f"{origin} ({name})", limit=limits.max_member_bytes
                                         if member.size > limits.max_member_bytes else limits.max_package_bytes,
                                         setting="FHIR_PLUGIN_MAX_MEMBER_BYTES" if member.size > limits.max_member_bytes
                                         else "FHIR_PLUGIN_MAX_PACKAGE_BYTES")
                path.parent.mkdir(parents=True, exist_ok=True)
                extracted = tar.extractfile(member)
                with open(path, "xb") as file:  # x: a name the archive already wrote (through case folding) fails
                    if extracted is not None:
                        shutil.copyfileobj(extracted, file)
    except (EOFError, zlib.error, tarfile.TarError, gzip.BadGzipFile) as error:
        raise InvalidContent("PACKAGE_INVALID", origin=origin, problem=f"not a gzip-compressed tar archive ({error})") from None


def _check_manifest(staging: Path, origin: str, name: str, version: str) -> None:
    """The archive is the package asked for: its package.json names it."""
    path = staging / "package" / "package.json"
    try:
        manifest = json.loads(path.read_bytes())
    except (OSError, ValueError):
        raise InvalidContent("PACKAGE_INVALID", origin=origin, problem="package/package.json is missing or not JSON") from None
    given = (manifest.get("name"), manifest.get("version")) if isinstance(manifest, dict) else (None, None)
    if given != (name, version):
        raise InvalidContent("PACKAGE_INVALID", origin=origin,
                             problem=f"its package.json names {given[0]}#{given[1]}, not the package asked for")


def _write_index(staging: Path, limits: Limits) -> None:
    """`package/.index.json` (index-version 2) when the package has none: the loader reads only
    what it lists as terminology, instead of every StructureDefinition."""
    folder = staging / "package"
    index = folder / ".index.json"
    if index.exists():
        return
    entries = []
    for file in sorted(folder.iterdir()):
        if not file.name.endswith(".json") or file.name in ("package.json", ".index.json") or not file.is_file():
            continue
        try:
            entry = index_entry(file.name, json.loads(file.read_bytes()))
        except (ValueError, RecursionError):
            continue  # not JSON: the loader refuses it when it reads the package, naming the file
        if entry is not None:
            entries.append(entry)
    index.write_text(json.dumps({"index-version": 2, "files": entries}, indent=1), encoding="utf-8")


# --- what a server serves, from the cache alone -------------------------------------------------


def served_packages(specs: list[PackageSpec], cache: PackageCache, skip: Iterable[str]) -> list[Path]:
    """The folders of `specs` and of their dependencies (but those `skip` names), in the cache, in
    that order; one version of each package: the one `specs` name, else the first a dependency
    asks for (a registry is never asked: without a version, the highest installed). PackageUnavailable
    (PACKAGE_NOT_INSTALLED) names the first that is not there."""
    patterns = list(skip)
    chosen: dict[str, str] = {}
    pending: list[tuple[PackageSpec, str | None]] = [(spec, None) for spec in specs]
    named = {spec.name for spec in specs}
    while pending:
        spec, needed_by = pending.pop(0)
        if spec.name in chosen or (needed_by is not None and (spec.name in named or skipped(spec.name, patterns))):
            continue
        version = cache.installed(spec)
        if version is None:
            raise PackageUnavailable("PACKAGE_NOT_INSTALLED", package=str(spec), cache=str(cache.directory),
                                     needed=f" (needed by {needed_by})" if needed_by else "")
        chosen[spec.name] = version
        pending.extend((dependency, f"{spec.name}#{version}") for dependency in dependencies(cache.manifest(spec.name, version)))
    return [cache.folder(name, version) for name, version in chosen.items()]
