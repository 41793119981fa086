"""Building FHIR packages (.tgz) in tests, well-formed and hostile, with tarfile in memory."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

EX = "http://example.org/fhir"
MANIFEST_R4 = {"name": "example.terminology", "version": "1.0.0", "fhirVersions": ["4.0.1"],
               "dependencies": {"hl7.fhir.r4.core": "4.0.1"}}


def code_system(id_: str = "test", url: str = f"{EX}/CodeSystem/test", **extra) -> dict:
    return {"resourceType": "CodeSystem", "id": id_, "url": url, "version": "1", "status": "active",
            "content": "complete", "concept": [{"code": "A", "display": "Alpha"}], **extra}


def r4_map(id_: str = "map") -> dict:
    """An R4 ConceptMap (equivalence, sourceUri): only R4's models accept it."""
    return {"resourceType": "ConceptMap", "id": id_, "url": f"{EX}/ConceptMap/{id_}", "version": "1", "status": "active",
            "sourceUri": f"{EX}/ValueSet/src", "group": [{"source": f"{EX}/CodeSystem/test", "target": f"{EX}/CodeSystem/t",
            "element": [{"code": "A", "target": [{"code": "X", "equivalence": "wider"}]}]}]}


def member(name: str, content: object = None, **attributes) -> tuple[tarfile.TarInfo, bytes | None]:
    """A tar member: `content` (JSON-encoded unless bytes) and TarInfo attributes (type, linkname, size...)."""
    data = content if isinstance(content, bytes) or content is None else json.dumps(content).encode()
    info = tarfile.TarInfo(name)
    info.size = len(data) if data is not None else 0
    for key, value in attributes.items():
        setattr(info, key, value)
    return info, data


def write_tgz(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def write_package(path: Path, resources: dict[str, object], manifest: dict | None = MANIFEST_R4,
                  extra: list | None = None) -> Path:
    """A package with `package/package.json`, an `.index.json` and `resources` ({file name: JSON})."""
    members = [member("package/package.json", manifest)] if manifest is not None else []
    members.append(member("package/.index.json", {"index-version": 2, "files": [
        {"filename": name} for name in resources]}))
    members += [member(f"package/{name}", content) for name, content in resources.items()]
    return write_tgz(path, members + (extra or []))


def tgz_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def package_bytes(name: str, version: str, resources: dict[str, object], dependencies: dict[str, str] | None = None,
                  fhir_version: str = "5.0.0", extra: list | None = None, index: bool = True) -> bytes:
    """A package .tgz named `name`#`version` (its package.json), with `resources` ({file name: JSON})."""
    manifest = {"name": name, "version": version, "fhirVersions": [fhir_version],
                "dependencies": dependencies or {}}
    members = [member("package/package.json", manifest)]
    if index:
        members.append(member("package/.index.json", {"index-version": 2, "files": [
            {"filename": file, "resourceType": content.get("resourceType") if isinstance(content, dict) else None}
            for file, content in resources.items()]}))
    members += [member(f"package/{file}", content) for file, content in resources.items()]
    return tgz_bytes(members + (extra or []))
