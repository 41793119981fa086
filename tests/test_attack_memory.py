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

from fhir_plugin.terminology.caching import BoundedCache, Budget

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
