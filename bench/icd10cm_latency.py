"""Latency of $lookup, $validate-code and $expand on the complete ICD-10-CM, in-process through the
Flask test client (no network, no WSGI server): the engine's own cost per request. Not a test.

    .venv/bin/python bench/icd10cm_latency.py [repetitions]
"""

from __future__ import annotations

import statistics
import sys
import time

from fhir_plugin import create_app, load_service
from fhir_plugin.config import cache_dir, load_settings

ICD = "http://hl7.org/fhir/sid/icd-10-cm"




def value_set(*filters: dict) -> dict:
    include = {"system": ICD, **({"filter": list(filters)} if filters else {})}
    return {"resourceType": "ValueSet", "status": "active", "compose": {"include": [include]}}


def expand(vs: dict, **params) -> dict:
    """A POST $expand body: the ValueSet inline, with the other parameters."""
    parts = [{"name": "valueSet", "resource": vs}]
    parts += [{"name": k, ("valueInteger" if isinstance(v, int) else "valueString"): v} for k, v in params.items()]
    return {"resourceType": "Parameters", "parameter": parts}


def is_a(code: str) -> dict:
    return value_set({"property": "concept", "op": "is-a", "value": code})


EXPAND = "/r4/ValueSet/$expand"
REQUESTS = {
    "lookup M62.81": (f"/r4/CodeSystem/$lookup?system={ICD}&code=M62.81", None),
    "validate-code M62.81 with display": (
        f"/r4/CodeSystem/$validate-code?url={ICD}&code=M62.81&display=Muscle%20weakness%20(generalized)", None),
    "subsumes M62 M62.81": (f"/r4/CodeSystem/$subsumes?system={ICD}&codeA=M62&codeB=M62.81", None),
    "expand is-a M62, filter weakness, count 10": (EXPAND, expand(is_a("M62"), filter="weakness", count=10)),
    "expand is-a 13 (chapter), filter weakness, count 10": (EXPAND, expand(is_a("13"), filter="weakness", count=10)),
    "expand is-a 13 (chapter), count 10": (EXPAND, expand(is_a("13"), count=10)),
    "expand all ICD-10-CM, count 10": (EXPAND, expand(value_set(), count=10)),
    "expand all ICD-10-CM, count 10, offset 90000": (EXPAND, expand(value_set(), count=10, offset=90000)),
    "expand all ICD-10-CM, filter weakness, count 10": (EXPAND, expand(value_set(), filter="weakness", count=10)),
}


def main(repetitions: int = 20) -> None:
    client = create_app(service=load_service(cache=cache_dir(load_settings(), server=True))).test_client()
    print(f"| request | median ms | min ms | total |\n|---|---|---|---|")
    for name, (url, body) in REQUESTS.items():
        call = (lambda: client.get(url)) if body is None else (lambda: client.post(url, json=body))
        response = call()
        assert response.status_code == 200, (name, response.get_data(as_text=True)[:300])
        total = response.get_json().get("expansion", {}).get("total", "")
        times = []
        for _ in range(repetitions):
            start = time.perf_counter()
            call()
            times.append((time.perf_counter() - start) * 1000)
        print(f"| {name} | {statistics.median(times):.1f} | {min(times):.1f} | {total} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
