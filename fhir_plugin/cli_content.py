"""The content commands of `fhir-plugin`: import-icd10cm, import-cpt, validate, load, unload, package,
install.

Kept apart from cli.py (serve and the dispatch) and cli_operations.py (the operations) so that
each stays readable; cli.main dispatches to HANDLERS.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .fhirversions import FhirVersion
from .terminology.errors import TerminologyError

if TYPE_CHECKING:  # imported where it is used: `fhir-plugin lookup` need not load requests
    from .client import ContentAdmin


def _import_icd10cm(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    """Convert an ICD-10-CM tabular XML release into a CodeSystem file (see the README)."""
    from pathlib import Path

    from .content import icd10cm

    try:
        if args.from_simple_icd_10_cm:
            xml, source = icd10cm.simple_icd_10_cm_source()
        elif args.xml:
            xml, source = Path(args.xml), None
        else:
            print("error: give the tabular XML file, or --from-simple-icd-10-cm", file=sys.stderr)
            return 2
        valid = icd10cm.read_code_list(Path(args.codes)) if args.codes else None
        code_system = icd10cm.import_tabular(xml, args.version, valid, source)
    except (OSError, ValueError, SyntaxError) as error:  # ET.ParseError is a SyntaxError
        print(f"error: {error}", file=sys.stderr)
        return 2
    size = icd10cm.write_code_system(code_system, Path(args.out))
    print(f"{args.out}: ICD-10-CM {code_system['version']}, {code_system['count']} concepts, {size} bytes")
    return 0


ENRICHMENT_SUMMARY = {
    "merged": "applied (definition, synonyms, schedule and consent-form names, work-rvu, unit-minutes "
              "merged into the licensed 97116)",
    "added": "applied (97116 is not in the licensed files: added from the fragment, with its display)",
    None: "not applied (--no-enrichments)",
}


def _import_cpt(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    """Convert a licensee's AMA CPT descriptor files into a complete CPT CodeSystem file (see the README)."""
    from pathlib import Path

    from .content import cpt

    files = {"long": args.long, "medium": args.medium, "short": args.short, "consumer": args.consumer}
    try:
        def path(name: str) -> Path | None:
            return Path(files[name]) if files[name] else None

        imported = cpt.import_cpt(args.version, Path(args.long), medium=path("medium"), short=path("short"),
                                  consumer=path("consumer"), enrich=not args.no_enrichments)
        cpt.write_code_system(imported.resource, Path(args.out))
    except TerminologyError as error:  # a file problem, not an HTTP answer: no status in the message
        print(f"error: {error.text}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"CPT {args.version}: {imported.codes} codes imported from {Path(args.long).name}")
    kinds = {"medium": "medium", "short": "short", "consumer": "consumer-friendly"}
    counts = [f"{n} {kinds[kind]} ({Path(files[kind]).name})" for kind, n in imported.designations.items()]
    print(f"designations: {', '.join(counts) or 'none (no --medium, --short or --consumer file)'}")
    print(f"97116 enrichments: {ENRICHMENT_SUMMARY[imported.enrichments]}")
    print(f"written: {args.out}")
    return 0

def _paths_or_content(args: argparse.Namespace, settings: dict[str, Any]) -> list[Any]:
    from pathlib import Path

    from .runtime.build import configured_paths

    return [Path(p) for p in args.paths] if args.paths else configured_paths(settings)


def _validate(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    """Every problem in the content, not only the first: exit 0 if there is none, 1 otherwise."""
    from .content import Limits, TerminalProgress, validate_paths
    from .content.report import validation_lines

    report = validate_paths(_paths_or_content(args, settings), limits=Limits.from_settings(settings),
                            progress=TerminalProgress())
    print("\n".join(validation_lines(report)))
    return 1 if report.problems else 0


def _admin(args: argparse.Namespace, settings: dict[str, Any]) -> ContentAdmin | None:
    from .client import ContentAdmin

    token = args.token or settings["FHIR_PLUGIN_ADMIN_TOKEN"]
    if not token:
        print("error: --server needs the server's admin token: --token or FHIR_PLUGIN_ADMIN_TOKEN", file=sys.stderr)
        return None
    return ContentAdmin(args.server, token, timeout=args.timeout)


def _texts(outcome: dict[str, Any]) -> list[str]:
    return [issue.get("details", {}).get("text", "") for issue in outcome.get("issue", [])]


def _load_into_server(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    """Each file into the running server at --server, in order; the first refusal stops (exit 2)
    and leaves the server serving what it had."""
    from pathlib import Path

    admin = _admin(args, settings)
    if admin is None:
        return 2
    if not args.paths:
        print(json.dumps(admin.loaded(), indent=2))
        return 0
    if args.name and len(args.paths) > 1:
        print("error: --name names one file; give one PATH with it", file=sys.stderr)
        return 2
    for path in map(Path, args.paths):
        if not path.is_file():
            print(f"error: {path}: not a file (give .json, .json.gz or .tgz files)", file=sys.stderr)
            return 2
        print("\n".join(_texts(admin.load(path.read_bytes(), args.name or path.name))))
    return 0


def _unload(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    """Unload content loaded at run time from the running server at --server."""
    admin = _admin(args, settings)
    if admin is None:
        return 2
    print("\n".join(_texts(admin.unload(args.name))))
    return 0


def _load(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    """Load as the server does at start-up, with progress on stderr, and say what was loaded.
    With --server: load into that running server instead."""
    from collections import Counter

    if args.server:
        return _load_into_server(args, settings)

    from .config import cache_dir
    from .content import TerminalProgress
    from .content.report import load_lines
    from .runtime.build import load_service
    from .runtime.compiled import CompiledContentCache

    terminal, skipped = TerminalProgress(), Counter[str]()

    def progress(event: Any) -> None:
        skipped.update(dict(event.skipped))
        terminal(event)

    directory = cache_dir(settings, server=True)
    cache = CompiledContentCache(directory) if directory else None
    service = load_service(_paths_or_content(args, settings), progress=progress, cache=cache)
    print("\n".join(load_lines(service.registry, skipped)))
    if cache is not None and cache.hits:  # no progress and no passed-over counts came: say why
        print("(read from the compiled-content cache; this content was validated when it was first loaded)")
    return 0


def _package(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    """A FHIR NPM package of the shipped resources (or of PATHs) for one FHIR version."""
    from pathlib import Path

    from .content.package_build import build_package

    built = build_package(FhirVersion(args.fhir_version), Path(args.out), [Path(p) for p in args.paths])
    print(f"{built.path} ({built.path.stat().st_size} bytes)")
    print("\n".join(f"  {name} ({size} bytes)" for name, size in built.members.items()))
    return 0


def _install(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    """FHIR packages by name from the package registries into the package cache, with their
    dependencies; without names, those of FHIR_PLUGIN_PACKAGES. Progress on stderr, what was done
    on stdout; a failure is one line on stderr and exit code 2."""
    from .config import package_cache_dir
    from .content.limits import Limits
    from .content.package_cache import PackageCache, PackageSpec, parse_specs
    from .content.package_install import Registries, install
    from .content.progress import InstallDisplay

    try:
        specs = ([PackageSpec.parse(text) for text in args.packages] if args.packages
                 else parse_specs(str(settings["FHIR_PLUGIN_PACKAGES"])))
        if not specs:
            print("nothing to install: FHIR_PLUGIN_PACKAGES names no package")
            return 0
        cache = PackageCache(Path(args.cache) if args.cache else package_cache_dir(settings))
        registries = Registries(args.registry or str(settings["FHIR_PLUGIN_PACKAGE_REGISTRIES"]).split())
        report = install(specs, cache, registries, skip=str(settings["FHIR_PLUGIN_PACKAGE_SKIP"]).split() + args.skip,
                         with_dependencies=not args.no_dependencies, limits=Limits.from_settings(settings),
                         progress=InstallDisplay())
    except TerminologyError as error:  # not an HTTP answer: no status in the message
        print(f"error: {error.text}", file=sys.stderr)
        return 2
    for label, packages in (("installed", report.installed), ("in the package cache already", report.present),
                            ("dependencies skipped", report.skipped),
                            ("installed without a checksum to check (the registry gave none)", report.unchecked)):
        if packages:
            print(f"{label}: {' '.join(packages)}")
    print(f"package cache: {cache.directory}")
    return 0


def _server_options(parser: argparse.ArgumentParser, required: bool = False) -> None:
    parser.add_argument("--server", metavar="URL", required=required,
                        help="a running fhir-plugin server (e.g. http://127.0.0.1:8080): load into it over its admin "
                             "endpoint; without PATH, list what was loaded into it")
    parser.add_argument("--token", help="the server's FHIR_PLUGIN_ADMIN_TOKEN (default: that variable)")
    parser.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                        help="with --server: seconds to wait for the answer (default 120)")


def add_parsers(commands: Any) -> None:
    """The subcommand parsers of the content commands."""
    icd = commands.add_parser(
        "import-icd10cm", help="convert a CDC ICD-10-CM tabular XML release into a CodeSystem (.json or .json.gz)")
    icd.add_argument("xml", nargs="?", help="the tabular XML, e.g. icd10cm_tabular_2026.xml")
    icd.add_argument("--from-simple-icd-10-cm", action="store_true",
                     help="read the XML that the installed simple-icd-10-cm package ships (the shipped file's source)")
    icd.add_argument("--version", help="the release (default: the date in the file name, else its <version>)")
    icd.add_argument("--codes", metavar="FILE",
                     help="the release's code list (icd10cm-codes-*.txt): keep only 7th-character codes it lists")
    icd.add_argument("--out", required=True, metavar="FILE", help="output file; gzipped if it ends in .gz")
    cpt = commands.add_parser(
        "import-cpt", help="convert a licensee's AMA CPT descriptor files into a CodeSystem (.json or .json.gz)",
        description="Reads the tab- (or |-) separated descriptor files of an annual CPT release and writes a "
                    "complete CPT CodeSystem with our 97116 enrichments on top. Load it instead of the shipped "
                    "fragment (README, 'Importing licensed CPT').")
    cpt.add_argument("--version", required=True, metavar="YEAR",
                     help="the CPT year, e.g. 2026 (the CodeSystem version)")
    cpt.add_argument("--long", required=True, metavar="FILE", help="long descriptors, e.g. LONGULT.txt (the display)")
    cpt.add_argument("--medium", metavar="FILE", help="medium descriptors, e.g. MEDU.txt")
    cpt.add_argument("--short", metavar="FILE", help="short descriptors, e.g. SHORTU.txt")
    cpt.add_argument("--consumer", metavar="FILE", help="consumer-friendly descriptors, e.g. ConsumerDescriptor.txt")
    cpt.add_argument("--no-enrichments", action="store_true",
                     help="leave out our 97116 content (definition, synonyms, names, work-rvu, unit-minutes)")
    cpt.add_argument("--out", required=True, metavar="FILE", help="output file; gzipped if it ends in .gz")
    validate = commands.add_parser(
        "validate", help="validate content (files, directories, Bundles, FHIR packages); list every problem",
        description="Prints one line per problem (file, resource, element) and 'N resources valid, M invalid'. "
                    "Exit code 0 if all are valid, 1 otherwise.")
    validate.add_argument("paths", nargs="*", metavar="PATH", help="default: FHIR_PLUGIN_CONTENT or the bundled content")
    load = commands.add_parser(
        "load", help="load content as the server does at start-up, and list what was loaded",
        description="Validates and compiles, with progress on stderr; prints the resources per type and every "
                    "code system with its version and concept count. A problem stops it (exit code 2). With "
                    "--server URL: loads each file into that running server instead (see the README, 'Loading "
                    "content into a running server'); a refused file changes nothing there.")
    load.add_argument("paths", nargs="*", metavar="PATH", help="default: FHIR_PLUGIN_CONTENT or the bundled content")
    _server_options(load)
    load.add_argument("--name", help="with --server: the name to load one file as (default: its file name)")
    unload = commands.add_parser(
        "unload", help="unload content that `load --server` loaded into a running server",
        description="Removes the named file from the server's loaded content; every worker stops serving it.")
    unload.add_argument("name", help="the name it was loaded as (`fhir-plugin load --server URL` lists them)")
    _server_options(unload, required=True)
    package = commands.add_parser(
        "package", help="build a FHIR NPM package (.tgz) of the shipped resources for R4 or R5",
        description="Writes DIR/fhir-plugin.terminology.<r4|r5>-<version>.tgz: package/package.json, "
                    "package/.index.json and one JSON file per resource, rendered for that FHIR version.")
    package.add_argument("paths", nargs="*", metavar="PATH", help="the resources (default: the bundled resources/)")
    package.add_argument("--fhir-version", required=True, choices=[v.value for v in FhirVersion], type=str.upper)
    package.add_argument("--out", required=True, metavar="DIR", help="the folder to write the .tgz into")
    install = commands.add_parser(
        "install", help="install FHIR packages by name (with their dependencies) into the package cache",
        description="Downloads each package from the first registry of FHIR_PLUGIN_PACKAGE_REGISTRIES that has it, "
                    "checks its checksum and unpacks it into the package cache (FHIR_PLUGIN_PACKAGE_CACHE, default "
                    "~/.fhir/packages/NAME#VERSION/), with the dependencies its package.json names but those "
                    "FHIR_PLUGIN_PACKAGE_SKIP matches. Packages in the cache already are used with no network. Without "
                    "NAME: the packages of FHIR_PLUGIN_PACKAGES. Exit code 0 if all are installed, 2 otherwise.")
    install.add_argument("packages", nargs="*", metavar="NAME[#VERSION]",
                         help="e.g. hl7.terminology.r5#7.0.1 (no version: the latest)")
    install.add_argument("--registry", action="append", default=[], metavar="URL",
                         help="a registry to ask, in order (repeatable; default FHIR_PLUGIN_PACKAGE_REGISTRIES)")
    install.add_argument("--skip", action="append", default=[], metavar="PATTERN",
                         help="also skip dependencies matching PATTERN (* wildcards; repeatable)")
    install.add_argument("--no-dependencies", action="store_true", help="install only the packages named")
    install.add_argument("--cache", metavar="DIR", help="the package cache (default FHIR_PLUGIN_PACKAGE_CACHE)")


HANDLERS = {"import-icd10cm": _import_icd10cm, "import-cpt": _import_cpt, "validate": _validate, "load": _load,
            "unload": _unload, "package": _package, "install": _install}
