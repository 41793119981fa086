"""Reading a FHIR NPM package (.tgz) without trusting it.

The archive is read as a stream, in memory, one member at a time; nothing is ever extracted to
disk, so no member name can write anywhere. Still, a member whose name is absolute or climbs out
with `..`, a link or device, or anything outside `package/` is refused: such an archive was not
made by a package tool, and whoever loads it should know. Sizes are bounded while decompressing
(limits.py), so a bomb is refused after reading at most the limit, not after filling memory.

Layout (https://confluence.hl7.org/display/FHIR/NPM+Package+Specification): `package/package.json`
(the manifest: name, version, fhirVersions), `package/.index.json`, the resources as JSON files
directly in `package/`; subfolders (example/, other/, openapi/, xml/ ...) hold examples and
documentation, which are not terminology content and are passed over.

A package installed in the package cache (`~/.fhir/packages/NAME#VERSION/`, package_cache.py) is
that layout unpacked: `read_package_dir` reads it, and only the files its `.index.json` lists as
terminology (or Bundles): the core packages are four-fifths StructureDefinitions by size.
"""

from __future__ import annotations

import gzip
import json
import re
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..fhirversions import FhirVersion, version_of_release
from .errors import InvalidContent
from .limits import BoundedReader, DepthError, Limits, parse_json

PACKAGE_SUFFIXES = (".tgz", ".tar.gz")
# What the loader takes from content (loader.py); a package's other resources are passed over.
LOADABLE_TYPES = ("CodeSystem", "ValueSet", "ConceptMap", "NamingSystem")
# What an installed package's index must list for a file to be read: a Bundle may hold any of them.
_READ_FROM_INDEX = frozenset((*LOADABLE_TYPES, "Bundle"))


@dataclass
class Package:
    origin: str  # the archive's path, as given
    manifest: dict[str, Any]
    prefer: FhirVersion | None  # from fhirVersions; None: the loader's usual order
    documents: list[tuple[object, str]] = field(default_factory=list)  # (parsed JSON, origin)
    passed_over: list[str] = field(default_factory=list)  # members not loaded (examples, docs)


def is_package(path: Path) -> bool:
    return path.name.endswith(PACKAGE_SUFFIXES)


def is_package_dir(path: Path) -> bool:
    """A folder holding an unpacked package: `package/package.json` (the package cache's NAME#VERSION/)."""
    return (path / "package" / "package.json").is_file()


def member_origin(archive: str, member: str) -> str:
    return f"{archive} ({member})"


def _refuse(archive: str, name: str, why: str) -> InvalidContent:
    return InvalidContent("PACKAGE_MEMBER_REFUSED", origin=archive, member=name, problem=why)


def checked_member_name(archive: str, member: tarfile.TarInfo) -> str:
    """The member's path inside the archive, once it is known to be a safe one."""
    name = member.name
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise _refuse(archive, name, "an absolute path")
    if ".." in re.split(r"[/\\]", name):
        raise _refuse(archive, name, "a path that climbs out with '..'")
    if member.issym() or member.islnk():
        raise _refuse(archive, name, f"a {'symbolic' if member.issym() else 'hard'} link to '{member.linkname}'")
    if not (member.isreg() or member.isdir()) or member.issparse():
        raise _refuse(archive, name, "not a regular file or directory (a device, fifo or sparse file)")
    name = str(PurePosixPath(name))  # "./package//x.json" -> "package/x.json"
    if name != "package" and not name.startswith("package/"):
        raise _refuse(archive, name, "outside the package/ folder")
    return name


def _fhir_version(archive: str, manifest: dict[str, Any]) -> FhirVersion | None:
    """The version the manifest declares: fhirVersions, else the core package it depends on."""
    declared = manifest.get("fhirVersions") or manifest.get("fhir-version-list") or []
    if isinstance(declared, str):
        declared = [declared]
    for release in declared if isinstance(declared, list) else []:
        version = version_of_release(str(release))
        if version is not None:
            return version
    if declared:
        raise InvalidContent("PACKAGE_INVALID", origin=archive, problem=f"FHIR version {', '.join(map(str, declared))} is not "
                             "supported (R4 4.0.x, R4B 4.3.x or R5 5.0.x)")
    given = manifest.get("dependencies")
    dependencies = given if isinstance(given, dict) else {}
    for version in FhirVersion:
        if version.core_package in dependencies:
            return version
    return None


def _json(raw: bytes, origin: str, max_depth: int) -> object:
    try:
        return parse_json(raw.decode("utf-8-sig"), max_depth)
    except DepthError as error:
        raise InvalidContent("CONTENT_TOO_DEEP", origin=origin, limit=error.limit) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidContent("CONTENT_NOT_JSON", origin=origin, reason=error) from None


def read_package(path: Path, limits: Limits) -> Package:
    """Every resource document of the package at `path`, parsed; raises InvalidContent for
    anything unsafe or malformed (the whole package is refused, never part of it)."""
    archive = str(path)
    documents: list[tuple[object, str]] = []
    passed_over: list[str] = []
    manifest: object = None
    seen: set[str] = set()
    total = 0
    try:
        with path.open("rb") as raw:
            stream = BoundedReader(gzip.GzipFile(fileobj=raw), limits.max_package_bytes, archive)
            with tarfile.open(fileobj=stream, mode="r|") as tar:  # a stream: members in order, no seeking
                for count, member in enumerate(tar, start=1):
                    if count > limits.max_members:
                        raise InvalidContent("PACKAGE_INVALID", origin=archive, problem=f"more than {limits.max_members} members")
                    name = checked_member_name(archive, member)
                    if member.isdir():
                        continue
                    if name in seen:  # tar lets a later member silently replace an earlier one
                        raise _refuse(archive, name, "it appears twice in the archive")
                    seen.add(name)
                    if member.size > limits.max_member_bytes:
                        raise InvalidContent("CONTENT_TOO_LARGE", origin=member_origin(archive, name),
                                             limit=limits.max_member_bytes, setting="FHIR_PLUGIN_MAX_MEMBER_BYTES")
                    total += member.size
                    if total > limits.max_package_bytes:
                        raise InvalidContent("CONTENT_TOO_LARGE", origin=archive, limit=limits.max_package_bytes,
                                             setting="FHIR_PLUGIN_MAX_PACKAGE_BYTES")
                    inner = name.removeprefix("package/")
                    # .index.db: the SQLite index recent package tools add; metadata, like .index.json
                    if "/" in inner or inner == ".index.db":
                        passed_over.append(name)
                        continue
                    origin = member_origin(archive, name)
                    if not inner.endswith(".json"):
                        raise _refuse(archive, name, "not a JSON file")
                    extracted = tar.extractfile(member)
                    document = _json(extracted.read() if extracted else b"", origin, limits.max_json_depth)
                    if inner == "package.json":
                        manifest = document
                    elif inner != ".index.json":
                        documents.append((document, origin))
    except (OSError, EOFError, zlib.error, tarfile.TarError) as error:
        raise InvalidContent("PACKAGE_INVALID", origin=archive, problem=f"not a gzip-compressed tar archive ({error})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("name"), str):
        raise InvalidContent("PACKAGE_INVALID", origin=archive, problem="package/package.json is missing or has no name")
    return Package(archive, manifest, _fhir_version(archive, manifest), documents, passed_over)


def _index_entries(folder: Path, origin: str, max_depth: int) -> list[dict[str, Any]] | None:
    """The `files` of `folder/.index.json` when it is usable (else None: every file is read)."""
    index = folder / ".index.json"
    if not index.is_file() or index.is_symlink():
        return None
    try:
        document = _json(index.read_bytes(), member_origin(origin, "package/.index.json"), max_depth)
    except InvalidContent:
        return None  # a broken index is no worse than none: the files themselves are read
    files = document.get("files") if isinstance(document, dict) else None
    if not isinstance(files, list) or not all(isinstance(f, dict) and isinstance(f.get("filename"), str) for f in files):
        return None
    return files


def _plain_file(folder: Path, name: str, origin: str) -> Path:
    """`folder/name`, once it is known to be a regular file directly in `folder` (not a link)."""
    if "/" in name or "\\" in name or name in ("", ".", ".."):
        raise _refuse(origin, f"package/{name}", "a name that is not a file of package/")
    path = folder / name
    if path.is_symlink() or not path.is_file():
        raise _refuse(origin, f"package/{name}", "not a regular file (a link, a folder or missing)")
    return path


def read_package_dir(path: Path, limits: Limits) -> Package:
    """The resource documents of the unpacked package in `path` (a folder holding package/), parsed.
    With a usable `.index.json`, only the files it lists as CodeSystem, ValueSet, ConceptMap,
    NamingSystem or Bundle are read, the others are passed over unread; without one, every JSON file
    directly in package/. Links are refused, as in an archive."""
    origin, folder = str(path), path / "package"
    manifest = _json(_plain_file(folder, "package.json", origin).read_bytes(), member_origin(origin, "package/package.json"),
                     limits.max_json_depth)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("name"), str):
        raise InvalidContent("PACKAGE_INVALID", origin=origin, problem="package/package.json has no name")
    entries = _index_entries(folder, origin, limits.max_json_depth)
    if entries is None:
        names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".json")
                       and p.name not in ("package.json", ".index.json"))
        passed_over: list[str] = []
    else:
        names = sorted({e["filename"] for e in entries if e.get("resourceType") in _READ_FROM_INDEX})
        passed_over = sorted(f"package/{e['filename']}" for e in entries if e.get("resourceType") not in _READ_FROM_INDEX)
    documents: list[tuple[object, str]] = []
    total = 0
    for name in names:
        file = _plain_file(folder, name, origin)
        where = member_origin(origin, f"package/{name}")
        size = file.stat().st_size
        total += size
        if size > limits.max_member_bytes:
            raise InvalidContent("CONTENT_TOO_LARGE", origin=where, limit=limits.max_member_bytes,
                                 setting="FHIR_PLUGIN_MAX_MEMBER_BYTES")
        if total > limits.max_package_bytes:
            raise InvalidContent("CONTENT_TOO_LARGE", origin=origin, limit=limits.max_package_bytes,
                                 setting="FHIR_PLUGIN_MAX_PACKAGE_BYTES")
        documents.append((_json(file.read_bytes(), where, limits.max_json_depth), where))
    return Package(origin, manifest, _fhir_version(origin, manifest), documents, passed_over)


def index_entry(filename: str, document: object) -> dict[str, Any] | None:
    """The `.index.json` entry (index-version 2) of a resource file, None for JSON that is no resource."""
    if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
        return None
    entry: dict[str, Any] = {"filename": filename, "resourceType": document["resourceType"]}
    for key in ("id", "url", "version", "kind", "type", "supplements", "content"):
        if isinstance(document.get(key), str):
            entry[key] = document[key]
    return entry
