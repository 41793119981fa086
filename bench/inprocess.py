"""In-process cost of the library calls, without HTTP: TerminologyService.lookup, translate and
validate_code for CPT 97116 and ICD-10-CM M62.81, in microseconds per call (timeit; the median of
several repeats, so that a burst of load from elsewhere on a shared machine does not decide it).

Results go to bench/results/inprocess.md. Run: .venv/bin/python bench/inprocess.py
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import timeit
from pathlib import Path

from fhir_plugin import TerminologyService, load_service
from fhir_plugin.config import cache_dir, load_settings
from fhir_plugin.terminology.entries import Coding
from fhir_plugin.terminology.models import LookupRequest, TranslateRequest, ValidateCodeRequest

RESULTS = Path(__file__).resolve().parent / "results"
CPT, ICD = "http://www.ama-assn.org/go/cpt", "http://hl7.org/fhir/sid/icd-10-cm"
DX_VS = "http://fhir-plugin.org/fhir/ValueSet/icd-10-cm-gait-training-diagnoses"
CPT_VS = "http://fhir-plugin.org/fhir/ValueSet/cpt-gait-training"


def calls(service: TerminologyService) -> list[tuple[str, object]]:
    """(label, zero-argument call) for every measured operation."""
    cases = []
    for system, code, value_set in ((CPT, "97116", CPT_VS), (ICD, "M62.81", DX_VS)):
        lookup = LookupRequest(system=system, code=code)
        translate = (TranslateRequest(source=(Coding(CPT, code),), target_system=ICD) if system == CPT
                     else TranslateRequest(target=(Coding(ICD, code),)))  # reverse: which CPT code maps here
        in_code_system = ValidateCodeRequest(codings=(Coding(system, code),), code_system_url=system)
        in_value_set = ValidateCodeRequest(codings=(Coding(system, code),), url=value_set)
        cases += [
            (f"lookup {code}", lambda r=lookup: service.lookup(r)),
            (f"translate {code}" + (" (forward)" if system == CPT else " (reverse)"),
             lambda r=translate: service.translate(r)),
            (f"validate_code {code} in its CodeSystem", lambda r=in_code_system: service.validate_code(r)),
            (f"validate_code {code} in a ValueSet", lambda r=in_value_set: service.validate_code(r)),
        ]
    return cases


def measure(call, number: int, repeat: int) -> float:
    """Median microseconds per call over `repeat` runs of `number` calls each."""
    call()  # warm: first-call costs are not what a running server pays
    return statistics.median(timeit.repeat(call, number=number, repeat=repeat)) / number * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=5000, help="calls per repeat (default 5000)")
    parser.add_argument("--repeat", type=int, default=7, help="repeats, the median is reported (default 7)")
    args = parser.parse_args()
    service = load_service(cache=cache_dir(load_settings(), server=True))
    rows = []
    for label, call in calls(service):
        micros = measure(call, args.number, args.repeat)
        rows.append((label, micros))
        print(f"{label:45} {micros:8.2f} µs", flush=True)
    lines = [f"# In-process calls ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", "",
             f"`TerminologyService` on the bundled content (the complete ICD-10-CM), no HTTP. timeit: median of "
             f"{args.repeat} repeats of {args.number} calls; Python {platform.python_version()}, {os.cpu_count()} "
             "CPUs, a shared machine. Target: lookup under 20 µs.", "",
             "| call | µs per call |", "|---|---|"]
    lines += [f"| {label} | {micros:.1f} |" for label, micros in rows]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "inprocess.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
