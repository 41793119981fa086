"""The operation commands of `fhir-plugin`: lookup, translate, validate-code, expand and subsumes,
in-process or against a server (--server) through one TerminologyBackend, with their readable and
--json output.

Kept apart from cli.py (serve, conformance and the dispatch) because these five share one shape,
a typed request, a backend and a printed result, and nothing of the server's start; cli.main
dispatches to HANDLERS.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from .fhirversions import FhirVersion, translate_dialect
from .terminology.backend import TerminologyBackend
from .terminology.entries import Coding, Designation, PropertyValue
from .terminology.errors import InvalidRequest
from .terminology.models import (ExpandRequest, ExpandResult, ExpansionEntry, Issue, LookupRequest, LookupResult,
                                 SubsumesRequest, TranslateMatch, TranslateRequest, TranslateResult,
                                 ValidateCodeRequest, ValidateCodeResult)

T = TypeVar("T")


def _run(args: argparse.Namespace, settings: dict[str, Any], call: Callable[[TerminologyBackend], T]) -> T:
    """`call` with a TerminologyClient for --server, else with the in-process service over
    FHIR_PLUGIN_CONTENT (or the bundled content)."""
    if args.server:
        from .client import TerminologyClient

        with TerminologyClient(args.server, timeout=args.timeout) as client:
            return call(client)
    from .config import cache_dir
    from .runtime.build import configured_paths, load_service

    return call(load_service(configured_paths(settings), cache=cache_dir(settings, server=True)))


def _json(result: object, version: str) -> str:
    """The FHIR answer for `result`, as the server renders it (decimals come out as they do there)."""
    from .render import document
    from .render.formats import dumps

    return dumps(document(result, FhirVersion(version)), pretty=True).decode()


def _fhir_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Coding):
        return _coding_text(value)
    return str(value) if not isinstance(value, Decimal) else format(value, "f")


def _coding_text(coding: Coding) -> str:
    text = f"{coding.system or ''}#{coding.code or ''}"
    return f'{text} "{coding.display}"' if coding.display else text


def _designation_text(designation: Designation) -> str:
    about = []
    if designation.use is not None:
        about.append(designation.use.display or _coding_text(designation.use))
    if designation.language:
        about.append(designation.language)
    return designation.value + (f" ({', '.join(about)})" if about else "")


def _property_text(prop: PropertyValue) -> str:
    text = f"{prop.code} = {_fhir_value(prop.value)}"
    return f"{text} ({prop.description})" if prop.description else text


def lookup_lines(result: LookupResult) -> list[str]:
    """The readable form of a $lookup answer, one line per fact."""
    lines = [f"name: {result.name}", f"system: {result.system}"]
    if result.version:
        lines.append(f"version: {result.version}")
    lines.append(f"code: {result.code}")
    for label, value in (("display", result.display), ("definition", result.definition)):
        if value:
            lines.append(f"{label}: {value}")
    if result.abstract:
        lines.append("abstract: true")
    # the display, repeated as the preferred term of the code system's language, is shown once
    designations = [d for d in result.designations
                    if not (d.value == result.display and d.use and d.use.code == "preferredForLanguage")]
    if designations:
        lines.append("designations:")
    lines.extend(f"  {_designation_text(d)}" for d in designations)
    if result.properties:
        lines.append("properties:")
    lines.extend(f"  {_property_text(p)}" for p in result.properties)
    return lines


def _match_text(match: TranslateMatch) -> str:
    text = f"match: {match.relationship} {_coding_text(match.concept)}"
    if match.source is not None:
        text += f" (source {_coding_text(match.source)})"
    return text + (f" from map {match.origin_map}" if match.origin_map else "")


def translate_lines(result: TranslateResult) -> list[str]:
    """The readable form of a $translate answer: result, message, one line per match."""
    lines = [f"result: {_fhir_value(result.result)}"]
    if result.message:
        lines.append(f"message: {result.message}")
    return lines + [_match_text(m) for m in result.matches]


def _lookup(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    request = LookupRequest(system=args.system, code=args.code, version=args.version,
                            display_language=args.display_language, properties=tuple(args.property))
    result = _run(args, settings, lambda backend: backend.lookup(request))
    if args.json:
        print(_json(result, args.fhir_version))
    else:
        print("\n".join(lookup_lines(result)))
    return 0


def translate_request_from(args: argparse.Namespace) -> TranslateRequest:
    """--code names the source concept; without it, --system only narrows a reverse search."""
    source = (Coding(args.system, args.code, args.version),) if args.code else ()
    target = (Coding(args.target_system, args.target_code),) if args.target_code else ()
    return TranslateRequest(
        source=source, target=target, target_system=args.target_system,
        source_system=None if source else args.system, source_scope=args.source_scope,
        target_scope=args.target_scope, url=args.url, concept_map_version=args.concept_map_version,
        # --reverse is R4's flag: the request is in R4's dialect, so R4 output carries R4's match.source
        reverse=args.reverse, dialect=translate_dialect(["reverse"] if args.reverse else []),
    )


def _translate(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    request = translate_request_from(args)
    result = _run(args, settings, lambda backend: backend.translate(request))
    if args.json:
        print(_json(result, args.fhir_version))
    else:
        print("\n".join(translate_lines(result)))
    return 0 if result.result else 1


def _issue_text(issue: Issue) -> str:
    where = f" at {issue.expression}" if issue.expression else ""
    return f"issue: {issue.severity} {issue.tx_type or issue.code}{where}: {issue.text}"


def validate_lines(result: ValidateCodeResult) -> list[str]:
    """The readable form of a $validate-code answer: result, the concept, message, one line per issue."""
    lines = [f"result: {_fhir_value(result.result)}"]
    for label, value in (("code", result.code), ("system", result.system), ("version", result.version),
                         ("display", result.display), ("status", result.status), ("message", result.message)):
        if value:
            lines.append(f"{label}: {value}")
    return lines + [_issue_text(issue) for issue in result.issues]


def validate_request_from(args: argparse.Namespace) -> ValidateCodeRequest:
    """--valueset names the value set; without it, the code is checked in the code system --system."""
    coding = Coding(args.system, args.code, args.version, args.display)
    if args.valueset:
        return ValidateCodeRequest(codings=(coding,), url=args.valueset, display_language=args.display_language)
    return ValidateCodeRequest(codings=(coding,), code_system_url=args.system, display_language=args.display_language)


def _validate_code(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    if not args.valueset and not args.system:
        print("error: give --valueset URL, or --system URL to check the code in that code system", file=sys.stderr)
        return 2
    request = validate_request_from(args)
    result = _run(args, settings, lambda backend: backend.validate_code(request))
    if args.json:
        print(_json(result, args.fhir_version))
    else:
        print("\n".join(validate_lines(result)))
    return 0 if result.result else 1


def _entry_lines(entry: ExpansionEntry, depth: int) -> list[str]:
    indent = "  " * depth
    lines = [f"{indent}{_coding_text(Coding(entry.system, entry.code, display=entry.display))}"]
    lines.extend(f"{indent}    designation: {_designation_text(d)}" for d in entry.designations)
    for child in entry.contains:
        lines.extend(_entry_lines(child, depth + 1))
    return lines


def expand_lines(result: ExpandResult) -> list[str]:
    """The readable form of an $expand answer: the total (and offset of a page), then one line per
    entry, `system#code "display"` (its designations under it), nested entries indented."""
    lines = [f"total: {result.total}"]
    if result.offset is not None:
        lines.append(f"offset: {result.offset}")
    for entry in result.contains:
        lines.extend(_entry_lines(entry, 0))
    return lines


def _value_set_file(path: str, in_process: bool) -> dict[str, Any]:
    """The ValueSet of --valueset-file (OSError, ValueError: it cannot be read). In-process it is
    validated as a server validates a valueSet parameter (the engine expects valid R5); a server
    does that itself."""
    with open(path, encoding="utf-8-sig") as file:
        loaded: object = json.load(file)
    if not isinstance(loaded, dict) or loaded.get("resourceType") != "ValueSet":
        raise InvalidRequest("PARAM_BAD_TYPE", parameter="valueSet", expected="a ValueSet")  # as a server words it
    resource: dict[str, Any] = loaded
    if in_process:
        from .content import load_resource

        resource = load_resource(resource, path)
    return resource


def _expand(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    if bool(args.url) == bool(args.valueset_file):
        print("error: give one of --url URL and --valueset-file FILE", file=sys.stderr)
        return 2
    value_set = None
    if args.valueset_file:
        try:
            value_set = _value_set_file(args.valueset_file, in_process=not args.server)
        except (OSError, ValueError) as error:
            print(f"error: {args.valueset_file}: {error}", file=sys.stderr)
            return 2
    request = ExpandRequest(url=args.url, value_set=value_set, filter=args.filter, count=args.count,
                            offset=args.offset, include_designations=args.include_designations or None,
                            display_language=args.display_language)
    result = _run(args, settings, lambda backend: backend.expand(request))
    if args.json:
        print(_json(result, args.fhir_version))
    else:
        print("\n".join(expand_lines(result)))
    return 0


def _subsumes(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    request = SubsumesRequest(code_a=args.code_a, code_b=args.code_b, system=args.system, version=args.version)
    result = _run(args, settings, lambda backend: backend.subsumes(request))
    if args.json:
        print(_json(result, args.fhir_version))
    else:
        print(f"outcome: {result.outcome}")
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", metavar="URL",
                        help="a FHIR endpoint (e.g. http://127.0.0.1:8080/r4); default: in-process, "
                             "with FHIR_PLUGIN_CONTENT or the bundled content")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="with --server: seconds to wait for the server (default 10)")
    parser.add_argument("--json", action="store_true",
                        help="print the FHIR answer as JSON (a Parameters; for expand, the ValueSet)")
    parser.add_argument("--fhir-version", choices=[v.value for v in FhirVersion], default="R5",
                        type=str.upper, help="FHIR version of the --json output (default R5)")


def add_parsers(commands: Any) -> None:
    """The subcommand parsers of the operation commands."""
    lookup = commands.add_parser("lookup", help="CodeSystem/$lookup: the details of a code")
    lookup.add_argument("system", help="code system url, e.g. http://www.ama-assn.org/go/cpt")
    lookup.add_argument("code", help="the code, e.g. 97116")
    lookup.add_argument("--version", help="code system version")
    lookup.add_argument("--property", action="append", default=[], metavar="P",
                        help="only this property (repeatable; * for all)")
    lookup.add_argument("--display-language", metavar="L", help="language of the display, e.g. en")
    _common(lookup)

    translate = commands.add_parser(
        "translate", help="ConceptMap/$translate: mappings of a code, reverse, or a pairing check",
        description="Forward: --system/--code. Pairing check: add --target-code (result true or false). "
                    "Reverse: --target-system/--target-code alone (R5), or --reverse with --system/--code (R4).")
    translate.add_argument("--system", help="source code system")
    translate.add_argument("--code", help="source code")
    translate.add_argument("--version", help="source code system version")
    translate.add_argument("--target-system", help="target code system")
    translate.add_argument("--target-code", help="target code (pairing check, or reverse without --code)")
    translate.add_argument("--reverse", action="store_true",
                           help="R4 reverse: --system/--code name a target-side concept")
    translate.add_argument("--url", help="ConceptMap canonical url")
    translate.add_argument("--concept-map-version", help="ConceptMap version")
    translate.add_argument("--source-scope", help="only maps with this source scope (ValueSet url)")
    translate.add_argument("--target-scope", help="only maps with this target scope (ValueSet url)")
    _common(translate)

    validate = commands.add_parser(
        "validate-code", help="$validate-code: is a code in a value set, or in a code system (with this display)?",
        description="Against a value set: --valueset URL with --system and --code. Against a code system: --system "
                    "and --code only. Exit code 0 if the result is true, 1 if it is false.")
    validate.add_argument("--valueset", metavar="URL", help="the value set's canonical url")
    validate.add_argument("--system", help="code system url (without --valueset: the code system to check in)")
    validate.add_argument("--code", required=True, help="the code")
    validate.add_argument("--version", help="code system version")
    validate.add_argument("--display", help="a display to check")
    validate.add_argument("--display-language", metavar="L", help="language of the display, e.g. en")
    _common(validate)

    expand = commands.add_parser(
        "expand", help="ValueSet/$expand: the codes of a value set",
        description="Prints the total, then one line per code (system#code \"display\"), nested codes indented.")
    expand.add_argument("--url", help="the value set's canonical url")
    expand.add_argument("--valueset-file", metavar="FILE", help="a ValueSet (JSON) to expand instead of --url")
    expand.add_argument("--filter", metavar="TEXT", help="only codes whose display (or a designation) matches TEXT")
    expand.add_argument("--count", type=int, metavar="N", help="at most N codes (a page)")
    expand.add_argument("--offset", type=int, metavar="N", help="skip the first N codes")
    expand.add_argument("--include-designations", action="store_true", help="list each code's designations")
    expand.add_argument("--display-language", metavar="L", help="language of the displays, e.g. en")
    _common(expand)

    subsumes = commands.add_parser(
        "subsumes", help="CodeSystem/$subsumes: how two codes of one code system relate",
        description="Prints the outcome: equivalent, subsumes (A is an ancestor of B), subsumed-by or not-subsumed.")
    subsumes.add_argument("system", help="code system url, e.g. http://hl7.org/fhir/sid/icd-10-cm")
    subsumes.add_argument("code_a", metavar="CODE_A", help="code A, e.g. M62")
    subsumes.add_argument("code_b", metavar="CODE_B", help="code B, e.g. M62.81")
    subsumes.add_argument("--version", help="code system version")
    _common(subsumes)


HANDLERS = {"lookup": _lookup, "translate": _translate, "validate-code": _validate_code, "expand": _expand,
            "subsumes": _subsumes}
