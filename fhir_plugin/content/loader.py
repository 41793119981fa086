"""Read FHIR JSON content, validate it once with fhir.resources, and hand R5 dicts to the registry.

Each resource is validated against the R5 models; if that fails and the R4B models accept it, it
is an R4 resource and is converted to R5 (fhirversions.to_r5). A resource neither accepts is
refused with a message naming the file, the resource and the first offending element. Loading is
all-or-nothing: the caller builds a new registry only when every file loaded.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from typing import Any
from pathlib import Path

from pydantic import ValidationError

from ..fhirversions import FhirVersion, looks_like_r4, model_class, to_r5
from ..terminology.errors import InvalidContent
from .codes import binding_errors

LOADABLE_TYPES = ("CodeSystem", "ValueSet", "ConceptMap")


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    location = ".".join(str(p) for p in first.get("loc", ()) if p != "__root__") or "(resource)"
    return f"{location}: {first.get('msg')}"


def _validate(resource: dict, version: FhirVersion, origin: str, label: str) -> None:
    model_class(version, resource["resourceType"]).model_validate(resource)
    for problem in binding_errors(resource, r4=version is FhirVersion.R4):
        raise InvalidContent("CONTENT_INVALID", origin, label, version.value, problem)


def load_resource(resource: dict, origin: str = "(inline)", prefer: FhirVersion = FhirVersion.R5,
                  lenient: bool = False) -> dict:
    """One validated resource, as an R5 dict. `prefer` is the version tried first: the endpoint's,
    for resources that arrive in a request. `lenient` (for tx-resource) lets through a resource
    whose only faults are missing required elements: it is used for one request, and the engine
    reports the gap where it matters (a filter without a value), as the reference server does,
    instead of refusing a whole request over a resource it may not even touch."""
    resource = _validated(resource, origin, prefer, lenient)
    if resource["resourceType"] == "CodeSystem" and not resource.get("url"):
        # FHIR allows it (url is 0..1), but codes are looked up by system url: it could never be used.
        raise InvalidContent("CONTENT_NO_URL", origin, f"CodeSystem/{resource.get('id') or '?'}")
    return resource


def _without_language_keys(node: Any) -> Any:
    """`node` without properties such as `display:de` or `title:en`: a JSON shorthand for the
    translation extension that some authoring tools write (the HL7 terminology test resources
    carry them next to the real extensions). They are not FHIR elements, so the strict models
    refuse them; the extension they duplicate stays."""
    if isinstance(node, dict):
        if not any(":" in key for key in node) and not any(isinstance(v, (dict, list)) for v in node.values()):
            return node
        return {k: _without_language_keys(v) for k, v in node.items() if ":" not in k}
    if isinstance(node, list):
        return [_without_language_keys(item) for item in node]
    return node


def _only_missing_elements(error: ValidationError) -> bool:
    return all(e.get("type") in ("missing", "model_field_validation.missing") for e in error.errors())


def _validated(resource: dict, origin: str, prefer: FhirVersion, lenient: bool = False) -> dict:
    rtype = resource.get("resourceType") if isinstance(resource, dict) else None
    if rtype not in LOADABLE_TYPES:
        raise InvalidContent("CONTENT_UNSUPPORTED_TYPE", origin, rtype or "JSON value without resourceType")
    label = f"{rtype}/{resource.get('id') or resource.get('url') or '?'}"
    resource = _without_language_keys(resource)
    if looks_like_r4(resource):
        order = (FhirVersion.R4,)
    elif prefer is FhirVersion.R4:
        order = (FhirVersion.R4, FhirVersion.R5)
    else:
        order = (FhirVersion.R5, FhirVersion.R4)
    first_error: ValidationError | None = None
    for version in order:
        try:
            _validate(resource, version, origin, label)
        except ValidationError as error:
            first_error = first_error or error
            continue
        return to_r5(resource) if version is FhirVersion.R4 else resource
    assert first_error is not None
    if lenient and _only_missing_elements(first_error):
        return to_r5(resource) if order[0] is FhirVersion.R4 else resource
    raise InvalidContent("CONTENT_INVALID", origin, label, order[0].value, _first_error(first_error)) from None


def _resources_in(document: object, origin: str) -> Iterator[dict]:
    if isinstance(document, dict) and document.get("resourceType") == "Bundle":
        for index, entry in enumerate(document.get("entry", [])):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if resource is not None:
                yield load_resource(resource, f"{origin} entry[{index}]")
        return
    yield load_resource(document, origin)  # type: ignore[arg-type]


JSON_SUFFIXES = (".json", ".json.gz")


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(JSON_SUFFIXES))
    if path.is_file():
        return [path]
    raise InvalidContent("CONTENT_NOT_FOUND", str(path))


def _read_text(file: Path) -> str:
    """A JSON file's text; `.json.gz` files (the large generated code systems) are gunzipped."""
    raw = file.read_bytes()
    if file.name.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise InvalidContent("CONTENT_NOT_JSON", str(file), f"not a valid gzip file ({error})") from None
    return raw.decode("utf-8-sig")


def read_paths(paths: Iterable[Path]) -> list[dict]:
    """Every resource in `paths` (files, or directories of *.json and *.json.gz), validated, as R5 dicts."""
    resources: list[dict] = []
    for path in paths:
        for file in _files(Path(path)):
            try:
                document = json.loads(_read_text(file))
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                raise InvalidContent("CONTENT_NOT_JSON", str(file), error) from None
            resources.extend(_resources_in(document, str(file)))
    return resources


def load_paths(paths: Iterable[Path]):
    """A Registry built from `paths`; nothing is half-loaded if any file fails."""
    from ..terminology.registry import Registry

    return Registry(read_paths(paths))
