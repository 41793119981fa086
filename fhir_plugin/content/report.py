"""The readable summaries `fhir-plugin validate` and `fhir-plugin load` print (lines, no I/O)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from ..terminology.registry import Registry
from .loader import LoadReport
from .progress import skipped_text

TYPES = ("CodeSystem", "ValueSet", "ConceptMap")
NOT_LOADED = "not CodeSystem, ValueSet, ConceptMap or NamingSystem"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def validation_lines(report: LoadReport) -> list[str]:
    """One line per problem (it names the file, the resource and the element), then the summary."""
    lines = [problem.text for problem in report.problems]
    if report.skipped:
        lines.append(f"passed over ({NOT_LOADED}): {skipped_text(sorted(report.skipped.items()))}")
    lines.append(f"{_plural(len(report.resources), 'resource')} valid, {len(report.problems)} invalid")
    return lines


def load_lines(registry: Registry, skipped: Mapping[str, int] | None = None) -> list[str]:
    """What a registry holds: resources per type, then each code system with version and size."""
    # NamingSystems are counted only when there are some, so that the usual line stays as it was
    counts = {rtype: len(registry.entries(rtype)) for rtype in (*TYPES, "NamingSystem")}
    shown = [rtype for rtype in counts if rtype in TYPES or counts[rtype]]
    lines = [f"loaded {_plural(sum(counts.values()), 'resource')}: "
             + ", ".join(f"{counts[rtype]} {rtype}" for rtype in shown)]
    for cs in sorted(registry.code_systems(), key=lambda e: (e.url, e.version or "")):
        label = f" ({cs.content})" if cs.content != "complete" else ""
        lines.append(f"  CodeSystem {cs.url} version {cs.version or '(none)'}: "
                     f"{_plural(len(cs.concepts), 'concept')}{label}")
    for rtype in ("ValueSet", "ConceptMap"):
        for entry in sorted(registry.entries(rtype), key=lambda e: (e.url or "", e.version or "")):
            lines.append(f"  {rtype} {entry.url} version {entry.version or '(none)'}")
    total = Counter(skipped or {})
    if total:
        lines.append(f"passed over ({NOT_LOADED}): {skipped_text(sorted(total.items()))}")
    return lines
