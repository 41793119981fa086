"""Building a FHIR NPM package (.tgz) of our resources, for R4 or R5, for other servers to load.

Layout and manifest follow the NPM Package Specification
(https://confluence.hl7.org/display/FHIR/NPM+Package+Specification): everything under `package/`,
`package/package.json` with `fhirVersions` and the core package as dependency, `package/.index.json`
(index-version 2) listing every resource file, one `<Type>-<id>.json` per resource. Its type is
"Conformance": a set of conformance resources that is not an implementation guide.

The archive is reproducible: the same resources give the same bytes (sorted members, fixed times
and owners, gzip header without name or time), so a rebuilt package can be compared by checksum.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..version import __version__
from ..fhirversions import FhirVersion, portable_concept_map, resource_for
from .loader import read_paths

# npm's own fixed timestamp for reproducible tarballs (1985-10-26T08:15:00Z); 0 upsets some tools.
MTIME = 499162500
# The elements .index.json v2 carries, when the resource has them.
INDEX_ELEMENTS = ("resourceType", "id", "url", "version", "kind", "type", "supplements", "content")


def package_name(version: FhirVersion) -> str:
    return f"fhir-plugin.terminology.{version.value.lower()}"


def manifest(version: FhirVersion) -> dict[str, Any]:
    fhir_version, core = version.release, version.core_package
    return {
        "name": package_name(version),
        "version": __version__,
        "type": "Conformance",
        "title": f"fhir_plugin terminology ({version.value})",
        "description": "CodeSystems, ValueSets and ConceptMaps of fhir_plugin: CPT 97116 (gait training) and "
                       "its associated ICD-10-CM diagnoses, with the mapping between them. CPT content is "
                       "copyright the American Medical Association (see each resource's copyright).",
        "author": "fhir_plugin project",
        "license": "Apache-2.0",
        "canonical": "http://fhir-plugin.org/fhir",
        "fhirVersions": [fhir_version],
        "dependencies": {core: fhir_version},
    }


def _filename(resource: dict[str, Any]) -> str:
    return f"{resource['resourceType']}-{resource['id']}.json"


def _for_package(version: FhirVersion, resource: dict[str, Any]) -> dict[str, Any]:
    """`resource` rendered for `version`; an R5 ConceptMap's group versions out of its canonicals,
    where other servers look for a plain URL (fhirversions.portable_concept_map)."""
    if version is FhirVersion.R5 and resource.get("resourceType") == "ConceptMap":
        return portable_concept_map(resource)
    return resource_for(version, resource)


def package_files(version: FhirVersion, resources: Iterable[dict[str, Any]]) -> dict[str, bytes]:
    """{member name: bytes} of the package of `resources` (validated R5 dicts), rendered for `version`."""
    rendered = sorted((_for_package(version, r) for r in resources), key=_filename)
    index = {"index-version": 2, "files": [
        {"filename": _filename(r), **{k: r[k] for k in INDEX_ELEMENTS if k in r}} for r in rendered]}
    # The two metadata files are indented for people reading them; the resources are compact,
    # since the complete ICD-10-CM would more than double in size (20 MB -> 53 MB) indented.
    files = {name: (json.dumps(content, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
             for name, content in (("package/package.json", manifest(version)), ("package/.index.json", index))}
    files.update({f"package/{_filename(r)}": json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
                  for r in rendered})
    return files


def _tar_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(files[name]), MTIME, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(files[name]))
    return buffer.getvalue()


@dataclass(frozen=True)
class BuiltPackage:
    path: Path
    members: dict[str, int]  # member name -> uncompressed size


def build_package(version: FhirVersion, out_dir: Path, paths: Iterable[Path] | None = None) -> BuiltPackage:
    """Write `<name>-<version>.tgz` into `out_dir` from the resources in `paths` (default: the
    shipped resources/). The resources are validated on the way, as a load would."""
    from ..config import bundled_dir

    files = package_files(version, read_paths(list(paths) if paths else [bundled_dir("resources")]))
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{package_name(version)}-{__version__}.tgz"
    compressed = io.BytesIO()
    # filename="" and mtime=0 keep the gzip header free of anything that changes between builds
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, compresslevel=9, mtime=0) as gz:
        gz.write(_tar_bytes(files))
    target.write_bytes(compressed.getvalue())
    return BuiltPackage(target, {name: len(data) for name, data in sorted(files.items())})
