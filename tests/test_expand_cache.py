"""What makes $expand fast on a large code system gives the answers a plain evaluation gives:
evaluations kept per registry, the text index over a kept evaluation, a few codes of a large
system listed in code system order, and supplemented words never mixed with the plain ones."""

from __future__ import annotations

import pytest
from helpers import ICD

from fhir_plugin.render.expansion import value_set as rendered
from fhir_plugin.terminology.evaluation import EvaluationOptions
from fhir_plugin.terminology.expand import expand_value_set, text_filtered, text_matches, words
from fhir_plugin.terminology.models import ExpandRequest
from fhir_plugin.terminology.registry import Registry, RegistryCaches
from fhir_plugin.terminology.textindex import WordIndex
from fhir_plugin.terminology.valueset import evaluate

WHOLE_ICD = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [{"system": ICD}]}}


def icd_isa(code: str) -> dict:
    return {"resourceType": "ValueSet", "status": "active", "compose": {"include": [
        {"system": ICD, "filter": [{"property": "concept", "op": "is-a", "value": code}]}]}}


@pytest.mark.parametrize("text, total, first", [
    ("gait", 6, ["R26", "R26.0", "R26.1", "R26.8", "R26.89", "R26.9"]),
    ("stair", 13, ["W00.1", "W00.1XXA", "W00.1XXD", "W00.1XXS", "W10"]),
    ("abnorm gai", 5, ["R26", "R26.8", "R26.89", "R26.9", "R63.5"]),
    ("hemipleg unspec", 19, ["G81.00", "G81.10", "G81.9", "G81.90", "G81.91"]),
    ("zzzz", 0, []),
])
def test_the_text_index_finds_what_a_scan_finds_on_the_whole_icd_10_cm(service, text, total, first):
    evaluation = evaluate(service.registry, WHOLE_ICD)
    wanted = words(text)
    indexed = text_filtered(evaluation, wanted)
    assert isinstance(evaluation.search["words"], WordIndex)  # the index was built, not the scan taken
    assert indexed == [m for m in evaluation.members if text_matches(m, wanted)]
    assert [m.code for m in indexed][:5] == first[:5] and len(indexed) == total
    answer = rendered(service.expand(ExpandRequest(value_set=WHOLE_ICD, filter=text, count=5)))["expansion"]
    assert answer["total"] == total
    assert [c["code"] for c in answer.get("contains", [])] == first[:5]


def test_a_few_codes_of_a_large_system_come_in_code_system_order(service):
    answer = rendered(service.expand(ExpandRequest(value_set=icd_isa("M62.8"), count=50)))["expansion"]
    assert [c["code"] for c in answer["contains"]] == [
        "M62.8", "M62.81", "M62.82", "M62.83", "M62.830", "M62.831", "M62.838", "M62.84", "M62.85", "M62.89"]
    concepts = service.registry.code_system(ICD).concepts
    assert [c["code"] for c in answer["contains"]] == [c for c in concepts if c.startswith("M62.8")]


def test_an_evaluation_is_computed_once_per_value_set_and_options():
    registry = Registry([{"resourceType": "CodeSystem", "url": "http://example.org/cs", "status": "active",
                          "content": "complete", "concept": [{"code": "a", "display": "Alpha"}]}])
    value_set = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [
        {"system": "http://example.org/cs"}]}}
    first = evaluate(registry, value_set)
    first.warnings.append(("warning-draft", "changed by a caller"))
    again = evaluate(registry, dict(value_set))
    assert registry.caches.evaluations.stats.misses == 1
    assert again.warnings == [] and [m.code for m in again.members] == ["a"]
    evaluate(registry, value_set, EvaluationOptions(newest_version_first=True))
    assert registry.caches.evaluations.stats.misses == 2
    assert Registry([]).caches.evaluations.stats.misses == 0  # another registry keeps its own


def test_the_cache_holds_at_most_its_members():
    code_system = {"resourceType": "CodeSystem", "url": "http://example.org/cs", "status": "active",
                   "content": "complete", "concept": [{"code": str(i)} for i in range(10)]}
    registry = Registry([code_system], caches=RegistryCaches(max_members=25))
    cache = registry.caches.evaluations
    value_sets = [{"resourceType": "ValueSet", "status": "active", "id": str(n), "compose": {"include": [
        {"system": "http://example.org/cs"}]}} for n in range(4)]
    for value_set in value_sets:
        evaluate(registry, value_set)
    assert (cache.stats.misses, cache.stats.size, cache.stats.entries) == (4, 20, 2)
    evaluate(registry, value_sets[0])  # pushed out by the third and fourth
    assert cache.stats.misses == 5
    huge = Registry([code_system], caches=RegistryCaches(max_members=5))
    evaluate(huge, value_sets[0])
    assert (huge.caches.evaluations.stats.misses, huge.caches.evaluations.stats.entries) == (1, 0)  # larger than the whole cache: not kept


def test_supplemented_words_are_found_only_with_the_supplement():
    cs = {"resourceType": "CodeSystem", "url": "http://example.org/cs", "version": "1", "status": "active",
          "content": "complete", "concept": [{"code": "a", "display": "Alpha"}, {"code": "b", "display": "Beta"}]}
    supplement = {"resourceType": "CodeSystem", "url": "http://example.org/supp", "version": "1", "status": "active",
                  "content": "supplement", "supplements": "http://example.org/cs",
                  "concept": [{"code": "a", "designation": [{"value": "Zulu"}]}]}
    registry = Registry([cs, supplement])
    value_set = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [
        {"system": "http://example.org/cs"}]}}

    def found(**request) -> list[str]:
        expansion = rendered(expand_value_set(registry, ExpandRequest(value_set=value_set, filter="zul", **request)))
        return [c["code"] for c in expansion["expansion"].get("contains", [])]

    assert found() == []
    assert found(use_supplements=("http://example.org/supp",)) == ["a"]
    assert found() == []


@pytest.mark.parametrize("code, in_value_set", [("M62.81", True), ("R26.2", True), ("G81.90", True), ("W10", True),
                                                 ("M62.81X", False), ("m62.81", False)])
def test_validate_code_against_the_whole_icd_10_cm_finds_members_through_the_index(service, code, in_value_set):
    from fhir_plugin.terminology.entries import Coding
    from fhir_plugin.terminology.models import ValidateCodeRequest

    result = service.validate_code(ValidateCodeRequest(codings=(Coding(ICD, code),), value_set=WHOLE_ICD))
    assert result.result is in_value_set
    assert "codes" in evaluate(service.registry, WHOLE_ICD).search  # the kept evaluation was indexed by code


@pytest.mark.parametrize("text, total", [("😀", 0), ("-", 0), (" ", 3), ("weak", 1), ("WEAK", 1)])
def test_a_filter_without_words_matches_as_it_is_not_everything(service, text, total):
    answer = rendered(service.expand(ExpandRequest(url="http://fhir-plugin.org/fhir/ValueSet/icd-10-cm-gait-training-diagnoses",
                                          filter=text)))
    assert answer["expansion"]["total"] == total
