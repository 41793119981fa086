"""Memory under requests that each bring new tx-resources (the hardening issue, point 4).

The attack: `$expand` of an inline ValueSet that includes all of ICD-10-CM (`filter=weak`,
`count=10`), each request carrying a CodeSystem tx-resource under a new url. Before, every such
request made its own overlay and its own evaluation of ICD-10-CM, and every worker kept up to 1,024
compiled resources and 128 overlays whatever their size. Now what requests bring, and what is
computed from it, shares one budget of bytes per worker (FHIR_PLUGIN_TX_RESOURCE_MEMORY), and an
evaluation of the loaded content alone is kept once, whichever overlay asks for it.

In-process tests pin the byte accounting; the attack itself runs against a real server started
with a small budget.
"""

from __future__ import annotations

import gc
import json
import tempfile
import tracemalloc
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import ICD, ICD_TITLES
from live_server import LiveServer, running_server
from test_load_faults import children

from fhir_plugin import create_app
from fhir_plugin.content.loader import load_resource
from fhir_plugin.fhirversions import FhirVersion
from fhir_plugin.runtime import Runtime
from fhir_plugin.runtime.overlay import OVERLAY_BYTES, RequestResources, measure_resource
from fhir_plugin.terminology.caching import BoundedCache, Budget
from fhir_plugin.terminology.models import ExpandRequest
from fhir_plugin.terminology.registry import EVALUATED_MEMBER_BYTES, Registry, compile_entry
from fhir_plugin.terminology.service import TerminologyService

MiB = 1024 * 1024
BASE_CS = "http://example.org/base"
ICD_ALL = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [{"system": ICD}]}}
# `filter=weak` over the whole ICD-10-CM: the total and the first page of 10
WEAK_TOTAL = 14
WEAK_FIRST_10 = ["F44.4", "I69.092", "I69.192", "I69.292", "I69.392", "I69.892", "I69.992", "M62.81", "N81.82",
                 "N81.83"]


def code_system(url: str, concepts: int, display: str = "Concept", version: str | None = None,
                **extra: Any) -> dict[str, Any]:
    resource = {"resourceType": "CodeSystem", "url": url, "status": "active", "content": "complete",
                "concept": [{"code": f"C{i}", "display": f"{display} {i}"} for i in range(concepts)], **extra}
    if version:
        resource["version"] = version
    return resource


def whole(system: str) -> dict[str, Any]:
    return {"resourceType": "ValueSet", "status": "active", "compose": {"include": [{"system": system}]}}


def expand(service: TerminologyService, value_set: dict[str, Any], **request: Any) -> tuple[int, list[str]]:
    result = service.expand(ExpandRequest(value_set=value_set, **request))
    return result.total, [c.code for c in result.contains]


# --- the cache: a budget shared by several caches -------------------------------------------------


def test_caches_sharing_a_budget_drop_the_least_recently_used_of_all():
    budget = Budget(100)
    first: BoundedCache[str] = BoundedCache("first", 0, len, budget)
    second: BoundedCache[str] = BoundedCache("second", 0, len, budget)
    first.put("a", "x" * 40)
    second.put("b", "x" * 40)
    assert first.get("a") == "x" * 40  # now "b" is the least recently used of both
    second.put("c", "x" * 30)  # 110 > 100: "b" goes, from the cache that is putting
    assert (second.get("b"), second.stats.evictions, budget.used) == (None, 1, 70)
    first.put("d", "x" * 50)  # 120 > 100: "a" goes (used before "c")
    assert (first.get("a"), first.get("d"), second.get("c")) == (None, "x" * 50, "x" * 30)
    assert (first.stats.entries, first.stats.size, first.stats.maxsize, first.stats.evictions) == (1, 50, 100, 1)
    assert (second.stats.entries, second.stats.size, budget.used) == (1, 30, 80)


def test_a_value_larger_than_the_budget_is_not_kept_and_nothing_is_pushed_out_for_it():
    budget = Budget(100)
    cache: BoundedCache[str] = BoundedCache("c", 0, len, budget)
    cache.put("small", "x" * 60)
    cache.put("huge", "x" * 101)
    assert (cache.get("huge"), cache.get("small"), budget.used, cache.stats.evictions) == (None, "x" * 60, 60, 0)


def test_a_key_kept_again_is_counted_once_and_clear_gives_the_bytes_back():
    budget = Budget(100)
    cache: BoundedCache[str] = BoundedCache("c", 0, len, budget)
    other: BoundedCache[str] = BoundedCache("other", 0, len, budget)
    cache.put("k", "x" * 30)
    cache.put("k", "x" * 50)
    other.put("o", "x" * 10)
    assert (cache.stats.entries, cache.stats.size, budget.used) == (1, 50, 60)
    cache.clear()
    assert (len(cache), cache.stats.size, budget.used, other.get("o")) == (0, 0, 10, "x" * 10)


def test_empty_values_still_count_so_that_their_number_is_bounded():
    cache: BoundedCache[str] = BoundedCache("c", 3, len)
    for key in "abcde":
        cache.put(key, "")
    assert (cache.stats.entries, cache.stats.size, cache.stats.evictions) == (3, 3, 2)
    off: BoundedCache[str] = BoundedCache("off", 0, len)
    off.put("a", "")
    assert len(off) == 0  # a bound of 0 keeps nothing


# --- the estimate of a resource's bytes -------------------------------------------------------------


def _kept_bytes(resource: dict[str, Any]) -> int:
    """What loading and compiling `resource` keeps, measured."""
    text = json.dumps(resource)
    load_resource(json.loads(text), "warm-up", FhirVersion.R4, lenient=True)  # imports, model caches
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = compile_entry(load_resource(json.loads(text), "measured", FhirVersion.R4, lenient=True))
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept.url
    return used


@pytest.mark.parametrize("resource", [
    code_system("http://example.org/codes-only", 0, concept=[{"code": str(i)} for i in range(2000)]),
    code_system("http://example.org/displays", 2000, display="A display of about the length of ICD-10-CM's"),
    code_system("http://example.org/long", 100, display="x" * 5000),
    code_system("http://example.org/rich", 0, concept=[
        {"code": f"C{i}", "display": f"d{i}", "designation": [{"language": "de", "value": f"v{i}{j}"} for j in range(3)],
         "property": [{"code": "p", "valueString": f"s{i}"}, {"code": "q", "valueInteger": i}]} for i in range(1000)]),
    {"resourceType": "ValueSet", "url": "http://example.org/vs", "status": "active", "compose": {"include": [
        {"system": "http://example.org/displays", "concept": [{"code": f"C{i}"} for i in range(2000)]}]}},
], ids=["codes only", "displays", "long displays", "designations and properties", "value set"])
def test_the_estimate_of_a_resource_is_what_it_keeps_within_a_factor_of_two(resource):
    _, estimate = measure_resource(resource)
    kept = _kept_bytes(resource)
    assert kept / 2 < estimate < kept * 2, (estimate, kept)


# --- evaluations: kept with the content they come from ----------------------------------------------


@pytest.fixture
def base() -> TerminologyService:
    return TerminologyService(Registry([code_system(BASE_CS, 50)]))


def test_an_evaluation_of_the_loaded_content_is_shared_by_every_overlay(base):
    runtime = Runtime(base)
    for n in range(30):
        overlay = runtime.for_request(base, [code_system(f"http://example.org/new/{n}", 3)], FhirVersion.R4)
        assert expand(overlay, whole(BASE_CS), count=2) == (50, ["C0", "C1"])
    stats = runtime.cache_stats()
    assert (stats["evaluations"].entries, stats["evaluations"].misses, stats["evaluations"].hits) == (1, 1, 29)
    assert (stats["tx-evaluations"].entries, stats["tx-evaluations"].misses) == (0, 0)
    assert expand(base, whole(BASE_CS), count=2) == (50, ["C0", "C1"])  # the same one, without an overlay
    assert runtime.cache_stats()["evaluations"].hits == 30


def test_an_overlay_that_changes_a_look_up_gets_its_own_evaluation(base):
    runtime = Runtime(base)
    assert expand(base, whole(BASE_CS), count=1) == (50, ["C0"])
    # a newer version of the base's code system: the overlay's is the one an include without a version takes
    newer = runtime.for_request(base, [code_system(BASE_CS, 3, version="2", display="Newer")], FhirVersion.R4)
    assert expand(newer, whole(BASE_CS)) == (3, ["C0", "C1", "C2"])
    # a value set the include imports, which only the overlay defines
    imported = {"resourceType": "ValueSet", "url": "http://example.org/vs", "status": "active",
                "compose": {"include": [{"system": BASE_CS, "concept": [{"code": "C7"}]}]}}
    importing = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [
        {"system": BASE_CS, "valueSet": ["http://example.org/vs"]}]}}
    with_vs = runtime.for_request(base, [imported], FhirVersion.R4)
    assert expand(with_vs, importing) == (1, ["C7"])
    stats = runtime.cache_stats()
    assert (stats["evaluations"].entries, stats["tx-evaluations"].entries, stats["tx-evaluations"].misses) == (1, 2, 2)
    # the loaded content alone still answers as before, and the overlays' answers are theirs again
    assert expand(base, whole(BASE_CS), count=1) == (50, ["C0"])
    assert expand(runtime.for_request(base, [code_system(BASE_CS, 3, version="2", display="Newer")], FhirVersion.R4),
                  whole(BASE_CS)) == (3, ["C0", "C1", "C2"])
    assert runtime.cache_stats()["tx-evaluations"].hits == 1


def test_an_evaluation_of_an_overlay_counts_the_overlay_it_keeps_alive(base):
    runtime = Runtime(base)
    own = code_system("http://example.org/own", 20)
    overlay = runtime.for_request(base, [own], FhirVersion.R4)
    assert expand(overlay, whole("http://example.org/own"), count=1) == (20, ["C0"])
    _, resource_bytes = measure_resource(own)
    assert overlay.registry.size == OVERLAY_BYTES + resource_bytes
    stats = runtime.cache_stats()
    # its members refer to the overlay's code system: evicting the overlay would not free it
    assert stats["tx-evaluations"].size == 20 * EVALUATED_MEMBER_BYTES + overlay.registry.size
    assert stats["tx-resources"].size == resource_bytes
    assert stats["tx-overlays"].size == overlay.registry.size


def test_a_supplement_sent_as_a_tx_resource_is_applied_within_the_budget(base):
    runtime = Runtime(base)
    supplement = {"resourceType": "CodeSystem", "url": "http://example.org/supplement", "status": "active",
                  "content": "supplement", "supplements": BASE_CS,
                  "concept": [{"code": "C3", "designation": [{"language": "de", "value": "Drei"}]}]}
    overlay = runtime.for_request(base, [supplement], FhirVersion.R4)
    assert expand(overlay, whole(BASE_CS), filter="drei", use_supplements=("http://example.org/supplement",)) == (
        1, ["C3"])
    stats = runtime.cache_stats()
    assert (stats["tx-supplemented-code-systems"].entries, stats["supplemented-code-systems"].entries) == (1, 0)
    assert expand(base, whole(BASE_CS), filter="drei") == (0, [])


def test_what_requests_bring_stays_within_its_budget(base):
    resources = RequestResources(memory=MiB)
    sizes = []
    for n in range(40):
        resource = code_system(f"http://example.org/new/{n}", 200)
        overlay = resources.service(base, [resource], FhirVersion.R4)
        assert expand(overlay, whole(f"http://example.org/new/{n}"), count=1) == (200, ["C0"])
        assert resources.budget.used <= MiB
        sizes.append(measure_resource(resource)[1])
    stats = {s.name: s for s in resources.stats()}
    assert sum(s.size for s in stats.values()) == resources.budget.used
    # each request kept a resource, an overlay and an evaluation of about 100 KB each: a few fit
    assert 0 < stats["tx-overlays"].entries < 10 and stats["tx-overlays"].evictions == 40 - stats["tx-overlays"].entries
    assert stats["tx-resources"].evictions > 0 and stats["tx-evaluations"].evictions > 0
    assert stats["tx-resources"].size == sum(sizes[-stats["tx-resources"].entries:])  # the most recent ones


def test_a_budget_of_zero_keeps_nothing_and_answers_all_the_same(base):
    runtime = Runtime(base, request_memory=0)
    for _ in range(2):
        overlay = runtime.for_request(base, [code_system("http://example.org/own", 5)], FhirVersion.R4)
        assert expand(overlay, whole("http://example.org/own")) == (5, ["C0", "C1", "C2", "C3", "C4"])
    stats = runtime.cache_stats()
    assert [stats[name].entries for name in ("tx-resources", "tx-overlays", "tx-evaluations")] == [0, 0, 0]
    assert stats["tx-resources"].misses == 2


# --- the attack, against a real server ------------------------------------------------------------

BUDGET_MIB = 8
# A worker's resident memory may grow past what it keeps by what one request allocates while it
# runs (a 1 MB body parsed, validated and compiled) and what the allocator keeps of that: measured
# at about 4 MiB after 60 requests; without the budget the same requests grew it by about 70 MiB.
MARGIN_MIB = 16
TOKEN = "attack-test-token"


def attack(number: int, own_system: bool = False) -> bytes:
    """An $expand with one new tx-resource of about 1 MB (500 concepts with long displays: cheap
    to validate, big to keep); `own_system` expands the tx-resource's code system instead of ICD-10-CM."""
    resource = code_system(f"http://example.org/attack/{number}", 500, display=f"Attack {number} " + "x" * 2000)
    value_set = whole(resource["url"]) if own_system else ICD_ALL
    return json.dumps({"resourceType": "Parameters", "parameter": [
        {"name": "valueSet", "resource": value_set}, {"name": "count", "valueInteger": 10},
        *([] if own_system else [{"name": "filter", "valueString": "weak"}]),
        {"name": "tx-resource", "resource": resource}]}).encode()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def worker_of(master: int) -> int:
    workers = sorted(children(master))  # the master's children but the nginx in front
    assert len(workers) == 1, workers
    return workers[0]


def post_expand(server: LiveServer, body: bytes) -> dict[str, Any]:
    request = urllib.request.Request(f"{server.r4}/ValueSet/$expand", data=body,
                                     headers={"Content-Type": "application/fhir+json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200
        return json.loads(response.read())["expansion"]


@pytest.fixture(scope="module")
def small_budget_server() -> Iterator[LiveServer]:
    with tempfile.TemporaryDirectory() as loaded, running_server(settings={
            "FHIR_PLUGIN_TX_RESOURCE_MEMORY": str(BUDGET_MIB), "FHIR_PLUGIN_ADMIN_TOKEN": TOKEN,
            "FHIR_PLUGIN_LOAD_DIR": loaded}) as server:
        yield server


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads a worker's memory from /proc")
def test_requests_with_new_tx_resources_keep_the_worker_within_the_budget(small_budget_server):
    server = small_budget_server
    worker = worker_of(server.pid)
    for number in (-2, -1):  # the evaluation of ICD-10-CM and one request's worth of allocations
        assert post_expand(server, attack(number))["total"] == WEAK_TOTAL
    before = rss_mib(worker)
    for number in range(60):
        own = number % 10 == 9  # now and then, an evaluation of the tx-resource itself
        expansion = post_expand(server, attack(number, own_system=own))
        if own:
            assert expansion["total"] == 500
            assert expansion["contains"][0]["display"].startswith(f"Attack {number} xx")
        else:
            assert (expansion["total"], [c["code"] for c in expansion["contains"]]) == (WEAK_TOTAL, WEAK_FIRST_10)
    grown = rss_mib(worker) - before
    assert grown < BUDGET_MIB + MARGIN_MIB, f"the worker grew by {grown:.1f} MiB"

    request = urllib.request.Request(f"{server.url}/admin/caches", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        caches = json.loads(response.read())
    budgeted = ("tx-resources", "tx-overlays", "inline-resources", "tx-evaluations", "tx-supplemented-code-systems")
    assert all(caches[name]["maxsize"] == BUDGET_MIB * MiB for name in budgeted)
    assert sum(caches[name]["size"] for name in budgeted) <= BUDGET_MIB * MiB
    assert caches["tx-resources"]["evictions"] > 50 and caches["tx-overlays"]["evictions"] > 50
    assert caches["tx-evaluations"]["misses"] == 6
    # one evaluation of ICD-10-CM, whatever tx-resources the 56 requests that used it carried
    assert (caches["evaluations"]["entries"], caches["evaluations"]["misses"], caches["evaluations"]["hits"]) == (
        1, 1, 55)
    assert caches["inline-resources"]["entries"] >= 1

    with urllib.request.urlopen(f"{server.r4}/CodeSystem/$lookup?system={ICD}&code=M62.81", timeout=10) as response:
        answer = json.loads(response.read())
    assert response.status == 200
    assert {"name": "display", "valueString": ICD_TITLES["M62.81"]} in answer["parameter"]


def test_the_caches_figures_are_for_the_admin_only(small_budget_server):
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{small_budget_server.url}/admin/caches", timeout=10)
    with refused.value:
        assert refused.value.code == 401
        issue = json.loads(refused.value.read())["issue"][0]
    assert (issue["code"], issue["details"]["text"]) == (
        "login", "This admin endpoint needs the header 'Authorization: Bearer <FHIR_PLUGIN_ADMIN_TOKEN>'")
    request = urllib.request.Request(f"{small_budget_server.url}/admin/caches", data=b"{}", method="POST",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    with refused.value:
        assert refused.value.code == 405


def test_without_an_admin_token_the_caches_figures_are_off(base):
    response = create_app(service=base).test_client().get("/admin/caches")
    issue = response.get_json()["issue"][0]
    assert (response.status_code, issue["code"]) == (403, "forbidden")
    assert issue["details"]["text"].startswith("Loading content into this server over HTTP is disabled")
