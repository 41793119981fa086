"""Import a licensee's AMA CPT data files into a complete CPT CodeSystem (R5), keeping our 97116 enrichments.

CPT descriptors are AMA copyright: this repository never holds them (only the 97116 entry of our
source article). A licensed user runs `fhir-plugin import-cpt` on the descriptor files of their
annual CPT release; the result is written to their own file, never to `resources/`.

What the parser assumes about the files (we cannot see the real ones; check these against yours):

- One descriptor file per kind: long (e.g. LONGULT.txt, mixed case; required), medium (e.g.
  MEDU.txt), short (e.g. SHORTU.txt) and consumer-friendly (e.g. ConsumerDescriptor.txt).
- Text, one code per line, columns separated by tabs or by `|`. The separator is taken from the
  first non-blank line (a tab if it has one, else `|`) and used for the whole file.
- The code is in the first column; in the consumer file, whose columns are concept id, CPT code
  and descriptor, it is in the second when the first line has 3 or more columns. A header row
  overrides this: its column whose name contains "code" (and not "concept") holds the code.
  The descriptor is the last non-empty column after the code, so extra columns in between (ids,
  dates) and trailing empty columns do no harm.
- A code is exactly 5 characters, upper-case letters or digits (5 digits, or 4 digits and a
  letter as in Category II and III codes).
- The first non-blank line is a header, and skipped, if its code column holds no digit: every CPT
  code has digits, no column title does. Only the first line can be a header.
- Encoding UTF-8 (a byte-order mark is allowed), else Latin-1. Lines end with LF or CRLF; blank
  lines are ignored.
- A descriptor is on one line: a code given twice in one file is an error (a layout that wraps a
  descriptor over several lines, as fixed-width files may, is not supported).
- The long file defines the codes. A code in another file that is not in the long file is an error:
  the files are then not from one release.

Anything else (no separator, not a code, no descriptor, a control character, as a Windows-1252
file read as Latin-1 gives) is an InvalidContent error naming the file and the line number.

The CodeSystem: display = the long descriptor ("The long mixed-case description is the preferred
general purpose display", HL7 THO); the medium, short and consumer-friendly descriptors are
designations (uses cpt-medium, cpt-short, cpt-consumer of our designation-use code system); every
code has THO's properties modifier=false, modified=false, kind=code. Code 97116 also gets the
enrichments of the shipped fragment (definition, synonyms, schedule and consent-form names, work-rvu,
unit-minutes); its display stays the licensed long descriptor.
"""

from __future__ import annotations

import copy
import datetime
import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import bundled_dir
from ..terminology.errors import InvalidRequest
from .errors import InvalidContent

CPT_URL = "http://www.ama-assn.org/go/cpt"
USE_SYSTEM = "http://fhir-plugin.org/fhir/CodeSystem/designation-use"
FRAGMENT_FILE = "CodeSystem-cpt-97116-fragment.json"
ENRICHED_CODE = "97116"
ARTICLE = '"What is CPT Code 97116?: A Step Towards Better Moving" (an informational coding article)'
THO_PROPERTIES = ("modifier", "modified", "kind")

# kind -> (designation use code, its display), in the order the designations are written
DESIGNATION_USES = {
    "medium": ("cpt-medium", "CPT medium descriptor"),
    "short": ("cpt-short", "CPT short descriptor"),
    "consumer": ("cpt-consumer", "CPT consumer-friendly descriptor"),
}
FILE_LABELS = {"long": "long descriptors", "medium": "medium descriptors", "short": "short descriptors",
               "consumer": "consumer-friendly descriptors"}

CODE = re.compile(r"[0-9A-Z]{5}")
# C0 controls except tab, and C1 controls: never in a descriptor, but what a Windows-1252 file's
# curly quotes and dashes become when decoded as Latin-1.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def copyright_statement(year: str) -> str:
    return (f"CPT © Copyright {year} American Medical Association. All rights reserved. AMA and CPT are "
            "registered trademarks of the American Medical Association.")


def _text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise InvalidContent("CONTENT_NOT_FOUND", path=str(path)) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # never fails: every byte is a Latin-1 character


def read_descriptor_file(path: Path, kind: str = "long") -> dict[str, tuple[int, str]]:
    """code -> (line number, descriptor) of one descriptor file, in file order (see the module docstring)."""
    path = Path(path)

    def fail(number: int, reason: str) -> InvalidContent:
        return InvalidContent("CPT_FILE_INVALID", file=path, line=number, problem=reason)

    codes: dict[str, tuple[int, str]] = {}
    separator = None
    code_column = 0
    # split("\n"), not splitlines(): that also splits at U+0085 and U+001C-U+001E, which would
    # shift the line numbers of the messages.
    for number, line in enumerate(_text(path).split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        if separator is None:
            separator = "\t" if "\t" in line else "|"
            cells = [cell.strip() for cell in line.split(separator)]
            # The consumer file leads with a concept id: with 3 or more columns, the code is the second.
            code_column = 1 if kind == "consumer" and len(cells) >= 3 else 0
            if not any(c.isdigit() for c in cells[code_column]):  # every code has digits, no title has
                titles = [i for i, cell in enumerate(cells) if "code" in cell.lower() and "concept" not in cell.lower()]
                code_column = titles[0] if titles else code_column
                continue  # the header row
        if separator not in line:
            raise fail(number, "no tab or '|' between the code and its descriptor")
        if match := CONTROL.search(line):
            raise fail(number, f"control character U+{ord(match.group()):04X} (a Windows-1252 file? save it as UTF-8)")
        cells = [cell.strip() for cell in line.split(separator)]
        code = cells[code_column] if code_column < len(cells) else ""
        if not CODE.fullmatch(code):
            raise fail(number, f"'{code}' in column {code_column + 1} is not a CPT code "
                               "(5 upper-case letters or digits)")
        descriptor = next((cell for cell in reversed(cells[code_column + 1:]) if cell), None)
        if descriptor is None:
            raise fail(number, f"no descriptor after the code {code}")
        if code in codes:
            raise fail(number, f"code {code} is given twice (also on line {codes[code][0]})")
        codes[code] = (number, descriptor)
    if not codes:
        raise InvalidContent("CPT_FILE_EMPTY", file=path)
    return codes


@dataclass(frozen=True)
class CptImport:
    """The imported CodeSystem and what the summary reports."""

    resource: dict[str, Any]
    designations: dict[str, int]  # kind (medium, short, consumer) -> designations added
    enrichments: str | None  # "merged", "added" (97116 not in the licensed files) or None (not applied)

    @property
    def codes(self) -> int:
        return len(self.resource["concept"])


def _merge_enrichments(concepts: dict[str, dict[str, Any]], fragment: dict[str, Any]) -> str:
    extra = next(c for c in fragment["concept"] if c["code"] == ENRICHED_CODE)
    mine = concepts.get(ENRICHED_CODE)
    if mine is None:  # the licensed files lack 97116: only then is the fragment's display used
        concepts[ENRICHED_CODE] = copy.deepcopy(extra)
        return "added"
    if "definition" in extra:
        mine["definition"] = extra["definition"]
    # The licensed descriptors first, then our synonyms and names.
    mine["designation"] = mine.get("designation", []) + copy.deepcopy(extra.get("designation", []))
    known = {p["code"] for p in mine["property"]}
    mine["property"] += [copy.deepcopy(p) for p in extra.get("property", []) if p["code"] not in known]
    return "merged"


def _description(year: str, today: datetime.date, files: dict[str, Path], enrichments: str | None) -> str:
    sources = "; ".join(f"{FILE_LABELS[kind]} {path.name}" for kind, path in files.items())
    # Never any descriptor text here: only where the content came from and how it is arranged.
    text = (f"CPT {year}, imported on {today.isoformat()} by fhir_plugin (fhir-plugin import-cpt) from the "
            f"licensee's AMA CPT data files: {sources}. The display is the long descriptor (HL7 THO: the long "
            "mixed-case description is the preferred general purpose display); the medium, short and "
            "consumer-friendly descriptors are designations with the uses cpt-medium, cpt-short and cpt-consumer "
            f"of {USE_SYSTEM}. The properties modifier, modified and kind are defined by HL7 Terminology (THO) for "
            "CPT (https://terminology.hl7.org/CPT.html).")
    if enrichments:
        text += (f" Code {ENRICHED_CODE} also carries the fhir_plugin project's content from {ARTICLE}: the "
                 "definition, three synonyms, the operating-room schedule and surgical consent form names, "
                 "work-rvu (a CMS Physician Fee Schedule value, not a CPT property) and unit-minutes.")
    if enrichments == "added":
        text += f" {ENRICHED_CODE} is not in the licensed files: its whole entry is the project's fragment."
    return text


def import_cpt(year: str, long: Path, medium: Path | None = None, short: Path | None = None,
               consumer: Path | None = None, enrich: bool = True, fragment: Path | None = None,
               today: datetime.date | None = None) -> CptImport:
    """The complete CPT CodeSystem (R5 dict) of release `year` from the AMA descriptor files.

    `enrich=False` leaves out our 97116 content; `fragment` is where it is read from (default: the
    shipped fragment); `today` is the import date written into the resource."""
    year = str(year)
    if not re.fullmatch(r"\d{4}", year):
        raise InvalidRequest("PARAM_BAD_VALUE", parameter="version", type="CPT year", value=year, expression="version")
    today = today or datetime.date.today()
    fragment_cs = json.loads(Path(fragment or bundled_dir("resources") / FRAGMENT_FILE).read_text(encoding="utf-8"))
    files = {kind: Path(p) for kind, p in
             (("long", long), ("medium", medium), ("short", short), ("consumer", consumer)) if p is not None}

    tho = [{"code": "modifier", "valueBoolean": False}, {"code": "modified", "valueBoolean": False},
           {"code": "kind", "valueCode": "code"}]
    concepts: dict[str, dict[str, Any]] = {code: {"code": code, "display": text, "property": copy.deepcopy(tho)}
                for code, (_, text) in read_descriptor_file(files["long"], "long").items()}
    counts: dict[str, int] = {}
    for kind, (use, use_display) in DESIGNATION_USES.items():
        if kind not in files:
            continue
        rows = read_descriptor_file(files[kind], kind)
        for code, (number, text) in rows.items():
            if code not in concepts:
                raise InvalidContent("CPT_FILE_INVALID", file=files[kind], line=number,
                                     problem=f"code {code} is not in the long descriptor file {files['long'].name}")
            concepts[code].setdefault("designation", []).append(
                {"language": "en", "use": {"system": USE_SYSTEM, "code": use, "display": use_display}, "value": text})
        counts[kind] = len(rows)
    enrichments = _merge_enrichments(concepts, fragment_cs) if enrich else None
    # The FHIR element order in every concept (the 97116 merge appends "definition" last).
    ordered = [{k: c[k] for k in ("code", "display", "definition", "designation", "property") if k in c}
               for c in concepts.values()]
    # THO's definitions always; the work-rvu and unit-minutes definitions come with the enrichments.
    properties = [copy.deepcopy(p) for p in fragment_cs["property"] if enrich or p["code"] in THO_PROPERTIES]
    resource = {
        "resourceType": "CodeSystem",
        "id": f"cpt-{year}",
        "url": CPT_URL,
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:oid:2.16.840.1.113883.6.12"}],
        "version": year,
        "name": "CPT",
        "title": "Current Procedural Terminology (CPT®)",
        "status": "active",
        "experimental": False,
        "date": today.isoformat(),
        "publisher": "American Medical Association (AMA)",
        "description": _description(year, today, files, enrichments),
        "copyright": copyright_statement(year),
        "caseSensitive": True,
        "content": "complete",
        "language": "en",
        "count": len(ordered),
        "property": properties,
        "concept": ordered,
    }
    return CptImport(resource, counts, enrichments)


def write_code_system(resource: dict[str, Any], out: Path) -> None:
    """Validate `resource` as the loader will, then write it as JSON (gzip-compressed if `out` ends in .gz)."""
    from .loader import load_resource

    out = Path(out)
    load_resource(resource, str(out))  # an import that would not load is refused before it is written
    if out.name.endswith(".gz"):
        data = json.dumps(resource, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        out.write_bytes(gzip.compress(data, mtime=0))  # mtime=0: the same input gives the same bytes
    else:
        out.write_text(json.dumps(resource, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
