"""Import the CDC/NCHS ICD-10-CM tabular list (XML) as an R5 CodeSystem dict.

Standard library only, so that any release the CDC publishes can be imported without extra
packages. The XML is `<ICD10CM.tabular>` > `<chapter>` > `<section>` (a block) > `<diag>` (a
category) > nested `<diag>` (subcategories and codes). Codes with a 7th character are not in the
XML: a `<sevenChrDef>` on a code or an ancestor lists the characters, and every leaf below it
takes each of them (padded with the placeholder X to six characters first), as the tabular list
instructs. Chapters and blocks are concepts too, coded as simple-icd-10-cm codes them ("13",
"M60-M63"), so that the whole classification is one hierarchy.

Whole-file parsing (ElementTree.parse) is deliberate: the release is ~10 MB, this runs at build
time, and the nesting of notes and 7th-character definitions is much simpler to follow on a tree.
"""

from __future__ import annotations

import gzip
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

URL = "http://hl7.org/fhir/sid/icd-10-cm"
DESIGNATION_USE = "http://fhir-plugin.org/fhir/CodeSystem/designation-use"
INCLUSION_TERM = {"system": DESIGNATION_USE, "code": "inclusion-term", "display": "Inclusion term"}
_PROPERTY_BASE = "http://fhir-plugin.org/fhir/CodeSystem/icd-10-cm#"
# Instructional notes kept as string properties, one value per <note>: XML element -> definition.
NOTE_PROPERTIES = {
    "includes": "Includes note: further defines, or gives examples of, the content of the code",
    "excludes1": "Excludes1 note: the excluded condition is never coded together with this code",
    "excludes2": "Excludes2 note: the excluded condition is not part of this code, but both may be coded",
    "codeFirst": "Code first note: the underlying condition is to be coded first",
    "useAdditionalCode": "Use additional code note: a further code is to be added",
    "codeAlso": "Code also note: a further code may be needed",
    "notes": "Other instructional note of the tabular list",
}
# 7th-character rules stated only in prose. April 2026 (category S06 notes): "7th characters D and S
# do not apply to codes in category S06 with 6th character 7 ... or 8". (category, 6th) -> excluded.
SEVENTH_CHARACTER_EXCEPTIONS = {("S06", "7"): {"D", "S"}, ("S06", "8"): {"D", "S"}}
_MONTHS = {m: i for i, m in enumerate(("january", "february", "march", "april", "may", "june", "july", "august",
                                       "september", "october", "november", "december"), start=1)}
_HIERARCHY_OPERATORS = ["is-a", "descendent-of", "is-not-a", "child-of", "descendent-leaf", "generalizes", "=", "in",
                        "regex"]
# 7th character -> (its text, the <note>s that follow it), from a <sevenChrDef>
SeventhCharacters = dict[str, tuple[str, list[str]]]


def release_version(path: Path, root: ET.Element | None = None) -> str:
    """The release a tabular file is: the date in its name (`...-April-1-2026.xml` -> 2026-04-01)
    when there is one, else the fiscal year in `<version>`."""
    found = re.search(r"([A-Za-z]+)[-_ ](\d{1,2})[-_ ](\d{4})", path.name)
    if found and found.group(1).lower() in _MONTHS:
        return f"{found.group(3)}-{_MONTHS[found.group(1).lower()]:02d}-{int(found.group(2)):02d}"
    root = root if root is not None else ET.parse(path).getroot()
    text = (root.findtext("version") or "").strip()
    if not text:
        raise ValueError(f"{path}: no release date in the file name and no <version> element")
    return text


def _required_text(element: ET.Element, tag: str) -> str:
    """The text of the child `tag` of `element`, which the tabular list always has."""
    text = element.findtext(tag)
    if text is None:
        raise ValueError(f"<{element.tag}> without <{tag}>")
    return text


def _required_attribute(element: ET.Element, name: str) -> str:
    value = element.get(name)
    if value is None:
        raise ValueError(f"<{element.tag}> without the attribute {name}")
    return value


def _notes(element: ET.Element) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(properties, designations) from a chapter, section or diag's own instructional notes."""
    properties, designations = [], []
    for child in element:
        texts = [n.text.strip() for n in child.findall("note") if n.text and n.text.strip()]
        if child.tag in NOTE_PROPERTIES:
            properties += [{"code": child.tag, "valueString": t} for t in texts]
        elif child.tag == "inclusionTerm":
            designations += [{"language": "en", "use": INCLUSION_TERM, "value": t} for t in texts]
    return properties, designations


def _concept(code: str, display: str, selectable: bool, element: ET.Element | None = None) -> dict[str, Any]:
    properties, designations = _notes(element) if element is not None else ([], [])
    concept: dict[str, Any] = {"code": code, "display": display}
    if designations:
        concept["designation"] = designations
    concept["property"] = [{"code": "notSelectable", "valueBoolean": not selectable}, *properties]
    return concept


def _seventh_characters(diag: ET.Element) -> SeventhCharacters | None:
    """character -> (its text, the <note>s that follow it: alternative wordings, such as
    "initial encounter for open fracture NOS" after B, kept as inclusion terms)."""
    definition = diag.find("sevenChrDef")
    if definition is None:
        return None
    found: SeventhCharacters = {}
    last = None
    for item in definition:
        if item.tag == "extension":
            last = _required_attribute(item, "char")
            found[last] = ((item.text or "").strip(), [])
        elif item.tag == "note" and last is not None and (item.text or "").strip():
            found[last][1].append((item.text or "").strip())
    return found


def _extended(code: str, display: str, seventh: SeventhCharacters, valid: set[str] | None) -> list[dict[str, Any]]:
    """The 7th-character codes under the leaf `code`, in the order the definition lists them."""
    stem = (code if "." in code else code + ".").ljust(7, "X")
    excluded = SEVENTH_CHARACTER_EXCEPTIONS.get((code[:3], stem[6]), set())
    out = []
    for char, (text, notes) in seventh.items():
        if char in excluded or (valid is not None and (stem + char).replace(".", "") not in valid):
            continue
        concept = _concept(stem + char, f"{display}, {text}", True)
        if notes:
            concept["designation"] = [{"language": "en", "use": INCLUSION_TERM, "value": f"{display}, {n}"}
                                      for n in notes]
        out.append(concept)
    return out


def _diag(diag: ET.Element, inherited: SeventhCharacters | None, valid: set[str] | None) -> dict[str, Any]:
    code, display = _required_text(diag, "name").strip(), " ".join(_required_text(diag, "desc").split())
    seventh = _seventh_characters(diag) or inherited
    children = [_diag(d, seventh, valid) for d in diag.findall("diag")]
    if not children and seventh:
        children = _extended(code, display, seventh, valid)
    concept = _concept(code, display, not children, diag)
    if children:
        concept["concept"] = children
    return concept


def _section(section: ET.Element, valid: set[str] | None) -> dict[str, Any]:
    diags = section.findall("diag")
    code = _required_attribute(section, "id")
    if len(diags) == 1 and _required_text(diags[0], "name").strip() == code:
        # A one-category block (B20, F99, ...) shares its code with its category: a code is
        # unique in a CodeSystem, so the category stands for the block and takes its notes too.
        category = _diag(diags[0], None, valid)
        extra, _ = _notes(section)
        category["property"] += [p for p in extra if p not in category["property"]]
        return category
    block = _concept(code, " ".join(_required_text(section, "desc").split()), False, section)
    block["concept"] = [_diag(d, None, valid) for d in diags]
    return block


def _chapter(chapter: ET.Element, valid: set[str] | None) -> dict[str, Any]:
    title = " ".join(_required_text(chapter, "desc").split())
    concept = _concept(_required_text(chapter, "name").strip(), title, False, chapter)
    concept["concept"] = [_section(s, valid) for s in chapter.findall("section")]
    return concept


def _count(concepts: list[dict[str, Any]]) -> int:
    return sum(1 + _count(c.get("concept", [])) for c in concepts)


def read_code_list(path: Path) -> set[str]:
    """The codes (without dots) of a release's code list: the first word of each line (the CDC
    `icd10cm-codes-*.txt`, the order file's second column is not supported)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return {line.split()[0].replace(".", "") for line in lines if line.strip()}


def import_tabular(path: Path, version: str | None = None, valid_codes: set[str] | None = None,
                   source: str | None = None) -> dict[str, Any]:
    """The CodeSystem for the tabular XML at `path`. `valid_codes` (from the release's code list)
    drops generated 7th-character codes the release does not have beyond the known exceptions;
    `source` says where the file was taken from (for the description)."""
    path = Path(path)
    root = ET.parse(path).getroot()
    if root.tag != "ICD10CM.tabular":
        raise ValueError(f"{path}: not an ICD-10-CM tabular list (root <{root.tag}>)")
    version = version or release_version(path, root)
    concepts = [_chapter(c, valid_codes) for c in root.findall("chapter")]
    return _code_system(concepts, version, path.name, source)


def _code_system(concepts: list[dict[str, Any]], version: str, file_name: str, source: str | None) -> dict[str, Any]:
    taken = f"the file {file_name}" + (f", {source}" if source else "")
    date = version if re.fullmatch(r"\d{4}-\d{2}-\d{2}", version) else None
    return {
        "resourceType": "CodeSystem",
        "id": "icd-10-cm",
        "url": URL,
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:oid:2.16.840.1.113883.6.90"}],
        "version": version,
        "name": "ICD10CM",
        "title": "International Classification of Diseases, Tenth Revision, Clinical Modification (ICD-10-CM)",
        "status": "active",
        "experimental": False,
        **({"date": date} if date else {}),
        "publisher": "National Center for Health Statistics (NCHS), CDC; converted to FHIR by the fhir_plugin project",
        "description": (
            f"The complete ICD-10-CM tabular list, release {version} (CDC/NCHS), read from {taken}, by the "
            "fhir_plugin importer (fhir_plugin.content.icd10cm). Every chapter, block, category and code is a "
            "concept, nested as in the tabular list. Chapters and blocks use the codes of the simple-icd-10-cm "
            "package: the chapter number (\"13\") and the block's code range (\"M60-M63\"); a block holding a "
            "single category of the same code (B20) is that category. Codes with a 7th character are generated "
            "from the 7th-character definitions, as the tabular list instructs. Chapters, blocks and codes with "
            "subcodes are notSelectable (not billable). Inclusion terms are designations (use inclusion-term); "
            "instructional notes are string properties, on the concept that carries them in the tabular list "
            "(notes of a chapter or category apply to the codes below it)."
        ),
        "copyright": ("ICD-10-CM is maintained and published by the National Center for Health Statistics (NCHS), "
                      "Centers for Disease Control and Prevention. The tabular list carries no copyright notice."),
        "caseSensitive": True,
        "hierarchyMeaning": "classified-with",
        "content": "complete",
        "count": _count(concepts),
        "language": "en",
        "filter": [
            {"code": "concept", "description": "Codes by their place in the hierarchy (chapters, blocks included)",
             "operator": _HIERARCHY_OPERATORS, "value": "an ICD-10-CM code, chapter or block"},
            {"code": "notSelectable", "description": "Chapters, blocks and non-billable codes (true) or billable codes (false)",
             "operator": ["="], "value": "true or false"},
        ],
        "property": [
            {"code": "notSelectable", "uri": "http://hl7.org/fhir/concept-properties#notSelectable", "type": "boolean",
             "description": "True for chapters, blocks and codes with subcodes (not billable)"},
            *({"code": code, "uri": _PROPERTY_BASE + code, "type": "string", "description": text}
              for code, text in NOTE_PROPERTIES.items()),
        ],
        "concept": concepts,
    }


def write_code_system(code_system: dict[str, Any], out: Path) -> int:
    """Write `code_system` as compact JSON, gzipped when `out` ends in .gz; returns the bytes written.
    The same input gives the same bytes (fixed key order, gzip mtime 0, no file name in the
    header), so a regenerated file only differs from the shipped one when the content does."""
    data = json.dumps(code_system, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
    if str(out).endswith(".gz"):
        data = gzip.compress(data, compresslevel=9, mtime=0)
    Path(out).write_bytes(data)
    return len(data)


def simple_icd_10_cm_source() -> tuple[Path, str]:
    """(the tabular XML simple-icd-10-cm ships, a description of where it came from). The package
    is only needed for this (pip install simple-icd-10-cm==1.5.0); it is not imported, because
    importing it parses the whole release (~1.4 s, ~180 MB)."""
    from importlib.metadata import PackageNotFoundError, files, version

    try:
        found = [f for f in files("simple-icd-10-cm") or () if f.name.startswith("icd10c") and f.suffix == ".xml"]
        package_version = version("simple-icd-10-cm")
    except PackageNotFoundError:
        raise ValueError("simple-icd-10-cm is not installed: pip install simple-icd-10-cm==1.5.0") from None
    if len(found) != 1:
        raise ValueError(f"expected one tabular XML in simple-icd-10-cm, found {[str(f) for f in found]}")
    return Path(found[0].locate()), f"as distributed in the PyPI package simple-icd-10-cm {package_version}"
