"""Read FHIR content, validate it once with fhir.resources, and hand R5 dicts to the registry.

Content is JSON files (.json, .json.gz), Bundles (bundles.py) and FHIR NPM packages (packages.py),
given as files or directories. Each resource is validated against the R5 models; if that fails and
the R4B models accept it, it is an R4 resource and is converted to R5 (fhirversions.to_r5). A
resource neither accepts is refused with a message naming the file (the archive and member, the
Bundle entry), the resource and the first offending element. Loading is all-or-nothing: the
caller builds a new registry only when every file loaded; `validate_paths` instead carries on and
collects every problem.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..fhirversions import FhirVersion, model_class, read_as, validation_order
from ..terminology.aliases import AmbiguousNamingSystem, naming_system_canonical
from ..terminology.registry import Registry
from .errors import InvalidContent
from .bundles import bundle_resources, is_bundle
from .canonicals import CanonicalIndex
from .codes import binding_errors
from .limits import DepthError, Limits, LoadBounds, gunzip, parse_json
from .packages import LOADABLE_TYPES, PACKAGE_SUFFIXES, is_package, is_package_dir, read_package, read_package_dir
from .progress import LoadProgress, ProgressCallback, skipped_text

log = logging.getLogger(__name__)

__all__ = ["LOADABLE_TYPES", "LoadReport", "load_paths", "load_resource", "read_paths", "scan_paths", "validate_paths"]


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    location = ".".join(str(p) for p in first.get("loc", ()) if p != "__root__") or "(resource)"
    return f"{location}: {first.get('msg')}"


def _validate(resource: dict[str, Any], version: FhirVersion, origin: str, label: str) -> None:
    model_class(version, resource["resourceType"]).model_validate(resource)
    for problem in binding_errors(resource, version):
        raise InvalidContent("CONTENT_INVALID", origin=origin, resource=label, version=version.value, problem=problem)


def load_resource(resource: object, origin: str = "(inline)", prefer: FhirVersion = FhirVersion.R5,
                  lenient: bool = False) -> dict[str, Any]:
    """One validated resource, as an R5 dict; `resource` may be any parsed JSON value (one that is not
    a resource of a loadable type is refused). `prefer` is the version tried first: the endpoint's,
    for resources that arrive in a request. `lenient` (for tx-resource) lets through a resource
    whose only faults are missing required elements: it is used for one request, and the engine
    reports the gap where it matters (a filter without a value), as the reference server does,
    instead of refusing a whole request over a resource it may not even touch."""
    resource = _validated(resource, origin, prefer, lenient)
    if resource["resourceType"] == "CodeSystem" and not resource.get("url"):
        # FHIR allows it (url is 0..1), but codes are looked up by system url: it could never be used.
        raise InvalidContent("CONTENT_NO_URL", origin=origin, resource=f"CodeSystem/{resource.get('id') or '?'}")
    if resource["resourceType"] == "NamingSystem":
        try:
            naming_system_canonical(resource)
        except AmbiguousNamingSystem as error:
            label = f"NamingSystem/{resource.get('id') or resource.get('name') or '?'}"
            raise InvalidContent("CONTENT_NAMINGSYSTEM_AMBIGUOUS", origin=origin, resource=label,
                                 uris=", ".join(error.uris)) from None
    return resource


def _dropped(key: str) -> bool:
    """Keys the models cannot read, dropped before validation: `display:de`, `title:en` (a JSON
    shorthand for the translation extension that some authoring tools write; the HL7 terminology
    test resources carry them next to the real extensions, which stay), and the extensions of a
    choice value, `_valueCode` beside `valueCode` (valid FHIR JSON, which fhir.resources refuses: FHIR
    R5 core's discriminator-type and search-entry-mode code systems carry one, a deprecation reason
    on an extension, which no operation reads)."""
    return ":" in key or (key.startswith("_value") and key[6:7].isupper())


def _without_language_keys(node: Any) -> Any:
    """`node` without the keys that `_dropped` names, at any depth."""
    if isinstance(node, dict):
        if not any(_dropped(key) for key in node) and not any(isinstance(v, (dict, list)) for v in node.values()):
            return node
        return {k: _without_language_keys(v) for k, v in node.items() if not _dropped(k)}
    if isinstance(node, list):
        return [_without_language_keys(item) for item in node]
    return node


def _only_missing_elements(error: ValidationError) -> bool:
    return all(e.get("type") in ("missing", "model_field_validation.missing") for e in error.errors())


def _validated(given: object, origin: str, prefer: FhirVersion, lenient: bool = False) -> dict[str, Any]:
    rtype = given.get("resourceType") if isinstance(given, dict) else None
    if not isinstance(given, dict) or rtype not in LOADABLE_TYPES:  # (not a dict: rtype is None)
        raise InvalidContent("CONTENT_UNSUPPORTED_TYPE", origin=origin, resource_type=rtype or "JSON value without resourceType")
    label = f"{rtype}/{given.get('id') or given.get('url') or '?'}"
    resource: dict[str, Any] = _without_language_keys(given)
    order = validation_order(resource, prefer)
    first_error: ValidationError | None = None
    for version in order:
        try:
            _validate(resource, version, origin, label)
        except ValidationError as error:
            first_error = first_error or error
            continue
        return read_as(version, resource)
    assert first_error is not None
    if lenient and _only_missing_elements(first_error):
        return read_as(order[0], resource)
    raise InvalidContent("CONTENT_INVALID", origin=origin, resource=label, version=order[0].value, problem=_first_error(first_error)) from None


def _is_fhir_type(name: str) -> bool:
    try:
        model_class(FhirVersion.R5, name)
    except (ValueError, KeyError):
        return False
    return True


# --- finding and reading files ---------------------------------------------------------------------

JSON_SUFFIXES = (".json", ".json.gz")


def _files(path: Path) -> list[Path]:
    """The files to read under `path`, and the unpacked packages (folders holding package/package.json,
    as the package cache keeps them), which are read as packages, not as folders of JSON."""
    if path.is_dir():
        if is_package_dir(path):
            return [path]
        found = []
        for top, subfolders, names in os.walk(path):
            folder = Path(top)
            for sub in list(subfolders):
                if is_package_dir(folder / sub):
                    subfolders.remove(sub)
                    found.append(folder / sub)
            found.extend(folder / n for n in names if n.endswith(JSON_SUFFIXES + PACKAGE_SUFFIXES))
        return sorted(p for p in found if p.is_dir() or p.is_file())
    if path.is_file():
        return [path]
    raise InvalidContent("CONTENT_NOT_FOUND", path=str(path))


def _size(path: Path) -> int:
    """Bytes on disk of a file, or of the files directly in an unpacked package's package/."""
    if path.is_dir():
        return sum(p.stat().st_size for p in (path / "package").iterdir() if p.is_file())
    return path.stat().st_size


def _read_text(file: Path, limits: Limits | None = None) -> str:
    """A JSON file's text; `.json.gz` files (the large generated code systems) are gunzipped,
    within FHIR_PLUGIN_MAX_MEMBER_BYTES."""
    raw = file.read_bytes()
    if file.name.endswith(".gz"):
        raw = gunzip(raw, (limits or Limits.from_settings()).max_member_bytes, str(file))
    return raw.decode("utf-8-sig")


def _read_json(file: Path, limits: Limits) -> object:
    try:
        return parse_json(_read_text(file, limits), limits.max_json_depth)
    except DepthError as error:
        raise InvalidContent("CONTENT_TOO_DEEP", origin=str(file), limit=error.limit) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidContent("CONTENT_NOT_JSON", origin=str(file), reason=error) from None


# --- one pass over the content -----------------------------------------------------------------------


@dataclass
class LoadReport:
    """What a pass over some paths found: the valid resources (R5, duplicates merged) with where
    each came from, the problems, and what was passed over."""

    resources: list[dict[str, Any]] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    groups: list[str | None] = field(default_factory=list)  # the package each came from (None: not a package)
    problems: list[InvalidContent] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # resource type -> count (not terminology content)
    passed_over: list[str] = field(default_factory=list)  # package members not read (examples, docs)
    # identifiers that packages give two code systems: they name neither (canonicals.py says why)
    ambiguous: dict[str, tuple[str, ...]] = field(default_factory=dict)
    strict: bool = True  # raise the first problem rather than collect it

    def fail(self, problem: InvalidContent) -> None:
        if self.strict:
            raise problem
        self.problems.append(problem)


def _children(node: object, key: str) -> list[Any]:
    found = node.get(key) if isinstance(node, dict) else None
    return found if isinstance(found, list) else []


def _concepts(resource: dict[str, Any], stop: int) -> int:
    """How many concepts a resource holds, counted in its unvalidated JSON (which may be anything):
    a code system's at any depth, those a value set lists or its expansion contains, the elements
    of a concept map. The count ends once it is beyond `stop`."""
    rtype = resource.get("resourceType")
    pending: list[list[Any]] = []
    if rtype == "CodeSystem":
        pending.append(_children(resource, "concept"))
    elif rtype == "ValueSet":
        compose = resource.get("compose")
        pending.extend(_children(part, "concept") for key in ("include", "exclude") for part in _children(compose, key))
        pending.append(_children(resource.get("expansion"), "contains"))
    elif rtype == "ConceptMap":
        pending.extend(_children(group, "element") for group in _children(resource, "group"))
    count = 0
    while pending and count <= stop:  # a loop, not recursion: the nesting is the sender's to choose
        items = pending.pop()
        count += len(items)
        if count > stop:
            break
        for item in items:
            if isinstance(item, dict) and ("concept" in item or "contains" in item):
                pending.extend(children for key in ("concept", "contains") if (children := _children(item, key)))
    return count


@dataclass
class _Budget:
    """What a scan has met so far, against the bounds of one load."""

    bounds: LoadBounds
    resources: int = 0
    concepts: int = 0

    def charge(self, documents: list[object], origin: str) -> None:
        """Count the resources and concepts of `documents` (parsed, not validated; Bundles opened)
        and refuse them if the scan is now beyond its bounds."""
        pending = list(documents)
        while pending:
            document = pending.pop()
            if is_bundle(document):
                pending.extend(entry.get("resource") for entry in _children(document, "entry") if isinstance(entry, dict))
            elif isinstance(document, dict) and document.get("resourceType") in LOADABLE_TYPES:
                self.resources += 1
                self.concepts += _concepts(document, self.bounds.max_concepts - self.concepts)
        self.bounds.check_count(self.resources, self.concepts, origin)


def _documents(file: Path, limits: Limits, report: LoadReport,
               budget: _Budget | None = None) -> Iterator[tuple[object, str, FhirVersion, str | None]]:
    """(resource, origin, version to try first, the package it is in or None) for each resource in
    `file` (a file, or an unpacked package's folder)."""
    documents: list[tuple[object, str, FhirVersion, str | None]]
    if is_package(file) or file.is_dir():
        package = read_package(file, limits) if is_package(file) else read_package_dir(file, limits)
        report.passed_over.extend(package.passed_over)
        documents = [(doc, origin, package.prefer or FhirVersion.R5, package.origin) for doc, origin in package.documents]
    else:
        documents = [(_read_json(file, limits), str(file), FhirVersion.R5, None)]
    if budget is not None:
        budget.charge([document for document, _, _, _ in documents], str(file))
    for document, origin, prefer, group in documents:
        if is_bundle(document):
            for resource, where in bundle_resources(document, origin):
                yield resource, where, prefer, group
        else:
            yield document, origin, prefer, group


def _take(resource: object, origin: str, prefer: FhirVersion, group: str | None, report: LoadReport) -> None:
    rtype = resource.get("resourceType") if isinstance(resource, dict) else None
    if group is not None and rtype not in LOADABLE_TYPES:
        # Real packages hold StructureDefinitions, an ImplementationGuide, SearchParameters...: they
        # are passed over (and counted), but a member that is not FHIR at all is refused.
        if not isinstance(rtype, str):
            raise InvalidContent("CONTENT_NOT_FHIR", origin=origin, problem="no resourceType")
        if not _is_fhir_type(rtype):
            raise InvalidContent("CONTENT_NOT_FHIR", origin=origin, problem=f"'{rtype}' is not a FHIR resource type")
        report.skipped[rtype] += 1
        return
    report.resources.append(load_resource(resource, origin, prefer))
    report.origins.append(origin)
    report.groups.append(group)


def _merge_duplicates(report: LoadReport) -> None:
    """The same resource twice (one file named twice) is kept once; two different resources with
    one url|version, or one id, are a conflict, reported with both places (ids are a package's
    own: canonicals.py)."""
    index = CanonicalIndex()
    kept: list[tuple[dict[str, Any], str, str | None]] = []
    for resource, origin, group in zip(report.resources, report.origins, report.groups):
        try:
            if index.add(resource, origin, group):
                kept.append((resource, origin, group))
        except InvalidContent as error:
            report.fail(error)
    report.resources = [resource for resource, _, _ in kept]
    report.origins = [origin for _, origin, _ in kept]
    report.groups = [group for _, _, group in kept]
    report.ambiguous = index.ambiguous
    if index.ambiguous:
        log.info("%d identifiers that packages give two code systems name neither: %s", len(index.ambiguous),
                 ", ".join(sorted(index.ambiguous)))


def scan_paths(paths: Iterable[Path], *, strict: bool = True, limits: Limits | None = None,
               progress: ProgressCallback | None = None, bounds: LoadBounds | None = None) -> LoadReport:
    """Read and validate everything in `paths` (files, directories, packages). Strict: the first
    problem is raised, as InvalidContent. Otherwise every problem is collected in the report.
    `bounds`: the resources and concepts of everything read are counted before each file is
    validated, and LoadTooCostly is raised once they are beyond them (whether strict or not)."""
    limits = limits or Limits.from_settings()
    report = LoadReport(strict=strict)
    budget = _Budget(bounds) if bounds is not None else None
    files: list[Path] = []
    for path in paths:
        try:
            files.extend(_files(Path(path)))
        except InvalidContent as error:
            report.fail(error)
    sizes = [_size(file) for file in files]
    done = 0
    for number, (file, size) in enumerate(zip(files, sizes), start=1):
        if progress:
            progress(LoadProgress("reading", str(file), size, files_done=number - 1, files_total=len(files),
                                  bytes_done=done, bytes_total=sum(sizes)))
        loaded, skipped_before = len(report.resources), Counter(report.skipped)
        try:
            for resource, origin, prefer, group in _documents(file, limits, report, budget):
                try:
                    _take(resource, origin, prefer, group, report)
                except InvalidContent as error:
                    report.fail(error)
        except InvalidContent as error:
            report.fail(error)
        done += size
        skipped = tuple(sorted((report.skipped - skipped_before).items()))
        if skipped:
            log.info("%s: passed over %s (not CodeSystem, ValueSet, ConceptMap or NamingSystem)", file,
                     skipped_text(skipped))
        if progress:
            progress(LoadProgress("read", str(file), size, len(report.resources) - loaded, skipped, number,
                                  len(files), done, sum(sizes)))
    _merge_duplicates(report)
    return report


def read_paths(paths: Iterable[Path], *, limits: Limits | None = None,
               progress: ProgressCallback | None = None) -> list[dict[str, Any]]:
    """Every resource in `paths` (files, directories, Bundles, packages), validated, as R5 dicts.
    Raises InvalidContent for the first problem."""
    return scan_paths(paths, limits=limits, progress=progress).resources


def validate_paths(paths: Iterable[Path], *, limits: Limits | None = None,
                   progress: ProgressCallback | None = None) -> LoadReport:
    """Like read_paths, but every problem is collected in the report instead of raised."""
    return scan_paths(paths, strict=False, limits=limits, progress=progress)


def load_paths(paths: Iterable[Path], *, limits: Limits | None = None,
               progress: ProgressCallback | None = None) -> Registry:
    """A Registry built from `paths`; nothing is half-loaded if any file fails."""
    resources = read_paths(paths, limits=limits, progress=progress)
    if progress:
        progress(LoadProgress("compiling", resources=len(resources)))
    registry = Registry(resources)
    if progress:
        progress(LoadProgress("done", resources=len(resources)))
    return registry
