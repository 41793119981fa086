"""Installing FHIR packages by name from package registries into the package cache.

A registry speaks the npm registry protocol, as the official FHIR package registry
(packages.fhir.org) and the npm registry both do: `GET {registry}/{name}` lists the versions, each
with `dist.tarball` (where its .tgz is) and a checksum, `dist.integrity` (Subresource Integrity:
`sha512-<base64>`) and/or `dist.shasum` (SHA-1, hex). The registries are asked in order
(FHIR_PLUGIN_PACKAGE_REGISTRIES): one that cannot be reached, or answers with an error status or
with something that is not a package document, is passed over for the next, and not asked again
in the same run, so that an unreachable first registry costs one connect timeout (CONNECT_TIMEOUT)
however many packages are installed. One that answers that it has no such package (404) is passed
over too. The archive is checked against the strongest checksum the registry gives before
anything is unpacked; an archive that fails it is refused, and the next registry is not asked:
a tampered archive is something to see, not to route around.

A package already in the cache is used as it is, with no network at all; so is a dependency. A
package asked for without a version needs a registry to say which is the latest, unless none
answers and some version is installed (then that one).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from urllib.parse import quote

import requests

from ..terminology.registry import version_key
from ..version import __version__
from .errors import PackageUnavailable
from .limits import Limits
from .package_cache import PackageCache, PackageSpec, UnpackProgress, dependencies, skipped
from .package_recipes import build, recipe_for

# Seconds to wait for a registry to accept the connection (an unreachable one fails over after
# this), and between two reads of an answer.
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 30.0
# The largest package document (the version list) read; the npm registry's largest FHIR ones are
# a few hundred kilobytes.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
_ALGORITHMS = {"sha512": hashlib.sha512, "sha384": hashlib.sha384, "sha256": hashlib.sha256}  # strongest first
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Release:
    """One version of a package, as a registry describes it."""

    name: str
    version: str
    tarball: str
    registry: str
    integrity: str | None = None  # "sha512-<base64>" (several, separated by spaces, may be given)
    shasum: str | None = None  # SHA-1, hex


@dataclass(frozen=True)
class InstallEvent:
    """What the installer reports as it goes (InstallDisplay shows it)."""

    # "present" (in the cache already), "registry-failed" (not asked again), "download", "unpack", "installed",
    # "skipped"
    stage: str
    package: str  # NAME#VERSION (or the dependency skipped)
    done: int = 0  # bytes downloaded or unpacked so far
    total: int = 0  # bytes of the archive (0: not known)
    detail: str = ""  # where from, why skipped, the folder installed


InstallCallback = Callable[[InstallEvent], None]


class _Failed(Exception):
    """A registry that failed (unreachable, an error status, not a package document): why, in words."""


class _NotThere(Exception):
    """A registry that answered, without what was asked (404, or not that version)."""


@dataclass
class Registries:
    """The ordered registries of one run, remembering the ones that failed."""

    urls: list[str]
    session: requests.Session = field(default_factory=requests.Session)
    connect_timeout: float = CONNECT_TIMEOUT
    read_timeout: float = READ_TIMEOUT
    failed: dict[str, str] = field(default_factory=dict)  # registry -> why it is not asked again

    def _document(self, registry: str, name: str) -> dict[str, Any]:
        url = f"{registry.rstrip('/')}/{quote(name, safe='@')}"  # a scoped name's / is %2F
        try:
            with self.session.get(url, timeout=(self.connect_timeout, self.read_timeout), stream=True,
                                  headers={"Accept": "application/json", "User-Agent": f"fhir-plugin/{__version__}"}) as answer:
                if answer.status_code == 404:
                    raise _NotThere("no such package")
                if answer.status_code != 200:
                    raise _Failed(f"HTTP {answer.status_code}")
                body = _read_bounded(answer, MAX_DOCUMENT_BYTES)
        except requests.RequestException as error:
            raise _Failed(_connection_problem(error)) from None
        try:
            document = json.loads(body)
        except ValueError:
            raise _Failed("its answer is not JSON") from None
        if not isinstance(document, dict) or not isinstance(document.get("versions"), dict):
            raise _Failed("its answer is not a package document (no versions)")
        return document

    def release(self, spec: PackageSpec, progress: InstallCallback | None = None) -> Release:
        """The version of `spec` the first registry that has it describes."""
        reasons: list[str] = []
        not_there = versions_missing = 0
        for registry in self.urls:
            if registry in self.failed:
                reasons.append(f"{registry}: {self.failed[registry]}")
                continue
            try:
                document = self._document(registry, spec.name)
                return _release(document, spec, registry)
            except _NotThere as error:
                reasons.append(f"{registry}: {error}")
                not_there += 1
                versions_missing += str(error) != "no such package"
            except _Failed as error:
                self.failed[registry] = str(error)
                reasons.append(f"{registry}: {error}")
                if progress is not None:
                    progress(InstallEvent("registry-failed", str(spec), detail=f"{registry}: {error}"))
        message = ("PACKAGE_VERSION_NOT_FOUND" if versions_missing else "PACKAGE_NOT_FOUND" if not_there
                   else "PACKAGE_REGISTRIES_FAILED")
        raise PackageUnavailable(message, package=str(spec), reasons="; ".join(reasons) or "no registry is set")

    def download(self, release: Release, limits: Limits, progress: InstallCallback | None = None) -> bytes:
        """The release's archive, checked against its checksum (PackageUnavailable if it fails)."""
        label = f"{release.name}#{release.version}"
        chunks: list[bytes] = []
        try:
            with self.session.get(release.tarball, timeout=(self.connect_timeout, self.read_timeout), stream=True,
                                  headers={"User-Agent": f"fhir-plugin/{__version__}"}) as answer:
                if answer.status_code != 200:
                    raise PackageUnavailable("PACKAGE_DOWNLOAD_FAILED", package=label, url=release.tarball,
                                             problem=f"HTTP {answer.status_code}")
                total = _length(answer)
                done = 0
                for chunk in answer.iter_content(_CHUNK):
                    done += len(chunk)
                    if done > limits.max_package_bytes:
                        raise PackageUnavailable("PACKAGE_DOWNLOAD_FAILED", package=label, url=release.tarball,
                                                 problem=f"larger than {limits.max_package_bytes} bytes (the limit set "
                                                         "by FHIR_PLUGIN_MAX_PACKAGE_BYTES)")
                    chunks.append(chunk)
                    if progress is not None:
                        progress(InstallEvent("download", label, done, total, release.tarball))
        except requests.RequestException as error:
            raise PackageUnavailable("PACKAGE_DOWNLOAD_FAILED", package=label, url=release.tarball,
                                     problem=_connection_problem(error)) from None
        data = b"".join(chunks)
        verify(data, release)
        return data


def _read_bounded(answer: requests.Response, limit: int) -> bytes:
    chunks, size = [], 0
    for chunk in answer.iter_content(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise _Failed(f"its answer is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _length(answer: requests.Response) -> int:
    try:
        return max(0, int(answer.headers.get("Content-Length", "0")))
    except ValueError:
        return 0


def _connection_problem(error: requests.RequestException) -> str:
    if isinstance(error, requests.ConnectTimeout):
        return "unreachable (no connection within the connect timeout)"
    if isinstance(error, requests.ConnectionError):
        return "unreachable (connection failed)"
    if isinstance(error, requests.Timeout):
        return "too slow (no data within the read timeout)"
    return f"the request failed ({type(error).__name__})"


def _release(document: dict[str, Any], spec: PackageSpec, registry: str) -> Release:
    versions: dict[str, Any] = document["versions"]
    tags = document.get("dist-tags")
    latest = tags.get("latest") if isinstance(tags, dict) else None
    if spec.version in (None, "latest") and isinstance(latest, str) and latest in versions:
        chosen: str | None = latest
    else:
        chosen = spec.best(versions)
    if chosen is None:
        known = sorted(versions, key=version_key)[-8:]
        raise _NotThere(f"no version {spec.version} (it has {', '.join(known) or 'none'})")
    entry = versions[chosen]
    dist = entry.get("dist") if isinstance(entry, dict) else None
    tarball = dist.get("tarball") if isinstance(dist, dict) else None
    if not isinstance(tarball, str) or not tarball.startswith(("https://", "http://")):
        raise _Failed(f"its answer gives {spec.name}#{chosen} no tarball URL")
    assert isinstance(dist, dict)
    integrity, shasum = dist.get("integrity"), dist.get("shasum")
    return Release(spec.name, chosen, tarball, registry, integrity if isinstance(integrity, str) else None,
                   shasum if isinstance(shasum, str) else None)


def verify(data: bytes, release: Release) -> None:
    """PackageUnavailable (PACKAGE_INTEGRITY_FAILED) unless `data` has the strongest checksum the
    registry gave: an SRI `integrity` of SHA-512, -384 or -256, else the SHA-1 `shasum`. A release
    with neither is taken unchecked (HTTPS is then the only guard; the install says so)."""
    label = f"{release.name}#{release.version}"
    given = [part.partition("-") for part in (release.integrity or "").split()]
    usable = [(a, value) for a, _, value in given if a in _ALGORITHMS]
    if usable:
        algorithm, expected = min(usable, key=lambda pair: list(_ALGORITHMS).index(pair[0]))
        actual = base64.b64encode(_ALGORITHMS[algorithm](data).digest()).decode()
    elif release.shasum:
        algorithm, expected, actual = "sha1", release.shasum.lower(), hashlib.sha1(data).hexdigest()
    else:
        return
    if actual != expected:
        raise PackageUnavailable("PACKAGE_INTEGRITY_FAILED", package=label, url=release.tarball, algorithm=algorithm,
                                 actual=actual, expected=expected)


def checked(release: Release) -> bool:
    return bool(release.shasum) or any(part.partition("-")[0] in _ALGORITHMS for part in (release.integrity or "").split())


# --- installing with dependencies ---------------------------------------------------------------


@dataclass
class InstallReport:
    installed: list[str] = field(default_factory=list)  # NAME#VERSION, downloaded now
    present: list[str] = field(default_factory=list)  # NAME#VERSION, in the cache already
    skipped: list[str] = field(default_factory=list)  # dependencies left out (FHIR_PLUGIN_PACKAGE_SKIP)
    unchecked: list[str] = field(default_factory=list)  # installed without a checksum to check


def install(specs: Iterable[PackageSpec], cache: PackageCache, registries: Registries, *, skip: Iterable[str] = (),
            with_dependencies: bool = True, limits: Limits | None = None,
            progress: InstallCallback | None = None) -> InstallReport:
    """Install `specs` and (unless not `with_dependencies`) the dependencies their package.json
    names, but those `skip` matches, each package once (the first version asked for). The first
    failure stops the run (PackageUnavailable, InvalidContent); what was installed before it stays,
    and nothing of the failing package is left in the cache."""
    limits = limits or Limits.from_settings()
    patterns = list(skip)
    report = InstallReport()
    wanted = list(specs)
    named = {spec.name for spec in wanted}
    pending: list[tuple[PackageSpec, bool]] = [(spec, False) for spec in wanted]
    done: set[str] = set()
    while pending:
        spec, dependency = pending.pop(0)
        if spec.name in done:
            continue
        if dependency and (skipped(spec.name, patterns) or spec.name in named):
            if spec.name not in named and str(spec) not in report.skipped:
                report.skipped.append(str(spec))
                if progress is not None:
                    progress(InstallEvent("skipped", str(spec), detail="FHIR_PLUGIN_PACKAGE_SKIP"))
            continue
        done.add(spec.name)
        version = _install_one(spec, cache, registries, limits, report, progress)
        if with_dependencies:
            pending.extend((d, True) for d in dependencies(cache.manifest(spec.name, version)))
    return report


def _install_one(spec: PackageSpec, cache: PackageCache, registries: Registries, limits: Limits,
                 report: InstallReport, progress: InstallCallback | None) -> str:
    recipe = recipe_for(spec.name, spec.version)
    if recipe is not None:  # built here from another package (package_recipes.py)
        spec = PackageSpec(recipe.name, recipe.version)
        if cache.installed(spec) is None:
            source = registries.release(PackageSpec(recipe.source, recipe.source_version), progress)
            data = registries.download(source, limits, progress)
            label = f"{recipe.name}#{recipe.version}"
            folder = cache.install(recipe.name, recipe.version, build(recipe, data, limits), limits)
            report.installed.append(label)
            if progress is not None:
                progress(InstallEvent("installed", label, len(data), len(data),
                                      f"{folder} (built from {recipe.source}#{recipe.source_version})"))
            return recipe.version
    version = cache.installed(spec) if spec.fixed() else None
    if version is None:
        try:
            release = registries.release(spec, progress)
        except PackageUnavailable:
            version = cache.installed(spec)  # no registry says which is latest: an installed one will do
            if version is None or spec.fixed():
                raise
            release = None
        if release is not None:
            version = release.version
            if cache.installed(PackageSpec(spec.name, version)) is None:
                data = registries.download(release, limits, progress)
                label = f"{spec.name}#{version}"

                def unpacking(event: UnpackProgress) -> None:
                    if progress is not None:
                        progress(InstallEvent("unpack", label, event.done, event.total))

                folder = cache.install(spec.name, version, data, limits, unpacking)
                report.installed.append(label)
                if not checked(release):
                    report.unchecked.append(label)
                if progress is not None:
                    progress(InstallEvent("installed", label, len(data), len(data), str(folder)))
                return version
    assert version is not None
    report.present.append(f"{spec.name}#{version}")
    if progress is not None:
        progress(InstallEvent("present", f"{spec.name}#{version}", detail=str(cache.folder(spec.name, version))))
    return version
