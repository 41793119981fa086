"""Read and search as FHIR defines them (search.html#summary, #elements, #count, string modifiers,
paging), over HTTP against real servers (`fhir-plugin serve`, nginx in front when installed), on R4
and R5: `_summary` (true, text, data, count, false) and `_elements` on read and search of every
resource type; `_count` and `_offset` with first/previous/next/last/self links, walked to the end;
the string parameters' default match (starts with, whatever the case and accents), `:exact` and
`:contains`, alternatives and repeats; strict and lenient handling; the self link of what was applied.

The expected summaries are written from the specification's Σ flags (R4 and R5 list different
elements), not read from the library the server uses.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from helpers import MESSAGE_ID_URL, validate
from live_server import LiveServer, running_server
from test_http_resources import IDS, SUBSETTED, listed, shipped

from fhir_plugin import fhirversions
from fhir_plugin.fhirversions import FhirVersion, resource_for
from fhir_plugin.render import document
from fhir_plugin.render.resources import ResourceView
from fhir_plugin.render.subset import Subset

TIMEOUT = 60.0
VERSIONS = [("r4", FhirVersion.R4), ("r5", FhirVersion.R5)]
READS = [(rtype, rid) for rtype, ids in IDS.items() for rid in ids]
COMMON_R4 = ("id", "meta", "implicitRules", "url", "identifier", "version", "name", "title", "status", "experimental",
             "date", "publisher", "contact", "useContext", "jurisdiction")
COMMON_R5 = COMMON_R4 + ("modifierExtension", "versionAlgorithmString", "versionAlgorithmCoding", "effectivePeriod")
# The Σ elements of each type, from the specification's resource pages (R4 4.0.1, R5 5.0.0)
SUMMARY = {
    FhirVersion.R4: {
        "CodeSystem": COMMON_R4 + ("caseSensitive", "valueSet", "hierarchyMeaning", "compositional", "versionNeeded",
                                   "content", "supplements", "count", "filter", "property"),
        "ValueSet": COMMON_R4 + ("immutable",),
        "ConceptMap": COMMON_R4 + ("sourceUri", "sourceCanonical", "targetUri", "targetCanonical"),
    },
    FhirVersion.R5: {
        "CodeSystem": COMMON_R5 + ("caseSensitive", "valueSet", "hierarchyMeaning", "compositional", "versionNeeded",
                                   "content", "supplements", "count", "filter", "property"),
        "ValueSet": COMMON_R5 + ("immutable",),
        "ConceptMap": COMMON_R5 + ("property", "additionalAttribute", "sourceScopeUri", "sourceScopeCanonical",
                                   "targetScopeUri", "targetScopeCanonical"),
    },
}
MANDATORY = {"CodeSystem": ("status", "content"), "ValueSet": ("status",), "ConceptMap": ("status",)}


def tagged(resource: dict) -> dict:
    meta = dict(resource.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    return {**resource, "meta": meta}


def only(resource: dict, keys) -> dict:
    return {k: v for k, v in resource.items() if k == "resourceType" or k in keys}


_FULL: dict[tuple, dict] = {}


def full(version: FhirVersion, rtype: str, rid: str) -> dict:
    """The shipped resource as `version` serves it (converted once per test session)."""
    key = (version, rtype, rid)
    if key not in _FULL:
        _FULL[key] = resource_for(version, shipped(rtype, rid))
    return _FULL[key]


def get(url: str, **params) -> requests.Response:
    return requests.get(url, params=params, timeout=TIMEOUT)


def fhir_json(response: requests.Response, status: int = 200) -> dict:
    assert response.status_code == status, response.text[:500]
    assert response.headers["Content-Type"] == "application/fhir+json"
    return response.json()


def outcome(response: requests.Response, status: int, message_id: str, text: str) -> None:
    body = fhir_json(response, status)
    issue = body["issue"][0]
    assert (body["resourceType"], issue["details"]["text"], issue["extension"]) == (
        "OperationOutcome", text, [{"url": MESSAGE_ID_URL, "valueString": message_id}])


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with running_server() as live:
        yield live


# --- _summary and _elements on read ----------------------------------------------------------------


@pytest.mark.parametrize("rtype, rid", READS)
@pytest.mark.parametrize("base, version", VERSIONS)
def test_read_summary_true_is_the_summary_elements(server, base, version, rtype, rid):
    body = fhir_json(get(f"{server.url}/{base}/{rtype}/{rid}", _summary="true"))
    assert body == tagged(only(full(version, rtype, rid), SUMMARY[version][rtype]))
    validate(body, version)


@pytest.mark.parametrize("rtype, rid", READS)
@pytest.mark.parametrize("base, version", VERSIONS)
def test_read_summary_text_is_id_meta_text_and_the_mandatory_elements(server, base, version, rtype, rid):
    body = fhir_json(get(f"{server.url}/{base}/{rtype}/{rid}", _summary="text"))
    assert body == tagged(only(full(version, rtype, rid), ("id", "meta", "text") + MANDATORY[rtype]))
    validate(body, version)


@pytest.mark.parametrize("rtype, rid", READS)
@pytest.mark.parametrize("base, version", VERSIONS)
def test_read_summary_data_and_false(server, base, version, rtype, rid):
    whole = full(version, rtype, rid)
    assert fhir_json(get(f"{server.url}/{base}/{rtype}/{rid}", _summary="data")) == tagged(
        {k: v for k, v in whole.items() if k != "text"})
    assert fhir_json(get(f"{server.url}/{base}/{rtype}/{rid}", _summary="false")) == whole


@pytest.mark.parametrize("rtype, rid", READS)
@pytest.mark.parametrize("base, version", VERSIONS)
def test_read_elements(server, base, version, rtype, rid):
    body = fhir_json(get(f"{server.url}/{base}/{rtype}/{rid}", _elements="title,url"))
    assert body == tagged(only(full(version, rtype, rid), ("id", "meta", "title", "url") + MANDATORY[rtype]))
    # R5's form with the type, and names given twice, mean the same
    again = get(f"{server.url}/{base}/{rtype}/{rid}", _elements=f"{rtype}.url, title,url,{rtype}.title")
    assert fhir_json(again) == body


def test_the_summary_of_icd_10_cm_is_small(server):
    response = get(f"{server.url}/r4/CodeSystem/icd-10-cm", _summary="true")
    body = fhir_json(response)
    assert len(response.content) < 4000
    assert (body["count"], "concept" in body, body["meta"]["tag"]) == (98466, False, [SUBSETTED])
    assert [f["code"] for f in body["filter"]] == ["concept", "notSelectable"]


@pytest.mark.parametrize("base, version, elements, kept", [
    ("r4", FhirVersion.R4, "source", ("sourceUri",)),  # a choice element by its name: source[x]
    ("r4", FhirVersion.R4, "sourceUri,targetCanonical", ("sourceUri", "targetCanonical")),
    ("r5", FhirVersion.R5, "sourceScope", ("sourceScopeUri",)),
    ("r5", FhirVersion.R5, "targetScopeUri,group", ("targetScopeUri", "group")),
])
def test_read_elements_of_a_concept_map_by_each_versions_names(server, base, version, elements, kept):
    body = fhir_json(get(f"{server.url}/{base}/ConceptMap/cpt-97116-to-icd-10-cm", _elements=elements))
    assert body == tagged(only(full(version, "ConceptMap", "cpt-97116-to-icd-10-cm"), ("id", "meta", "status") + kept))


@pytest.mark.parametrize("base, elements", [("r4", "sourceScope"), ("r5", "sourceUri"), ("r4", "nonsense"),
                                            ("r5", "ValueSet.title")])
def test_read_elements_that_name_nothing_of_the_resource_leave_it_whole(server, base, elements):
    version = FhirVersion(base.upper())
    body = fhir_json(get(f"{server.url}/{base}/ConceptMap/cpt-97116-to-icd-10-cm", _elements=elements))
    assert body == full(version, "ConceptMap", "cpt-97116-to-icd-10-cm")


@pytest.mark.parametrize("query, status, message_id, text", [
    ({"_summary": "count"}, 400, "SUMMARY_COUNT_ON_READ",
     "_summary=count asks for the number of matches of a search; a read has none"),
    ({"_summary": "yes"}, 400, "SUMMARY_BAD_VALUE",
     "Parameter '_summary' must be one of true, text, data, count or false, not 'yes'"),
    ({"_summary": "true", "_elements": "name"}, 400, "PARAM_EXCLUSIVE", "Only one of '_summary' and '_elements' may be given"),
    ({"_elements": ["name", "title"]}, 400, "PARAM_REPEATED", "Parameter '_elements' may be given at most once"),
])
def test_read_refuses_what_cannot_be_applied(server, query, status, message_id, text):
    outcome(requests.get(f"{server.r5}/CodeSystem/cpt-97116-fragment", params=query, timeout=TIMEOUT), status,
            message_id, text)


def test_a_cut_read_of_icd_10_cm_copies_none_of_its_concepts(service, monkeypatch):
    """The R4 conversion deep-copies what it converts: with _elements or _summary, only what is kept."""
    copied: list[object] = []
    real = copy.deepcopy
    monkeypatch.setattr(fhirversions.copy, "deepcopy", lambda value, *rest: copied.append(value) or real(value, *rest))
    icd = service.read("CodeSystem", "icd-10-cm").resource
    for subset in (Subset(elements=("name", "title")), Subset(summary="true"), Subset(summary="text")):
        copied.clear()
        answer = document(ResourceView(icd, subset), FhirVersion.R4)
        assert "concept" not in answer
        assert copied and all("concept" not in value for value in copied if isinstance(value, dict))
    copied.clear()
    assert len(document(ResourceView(icd, Subset(summary="data")), FhirVersion.R4)["concept"]) == 22


# --- _summary and _elements on search --------------------------------------------------------------


def entries(bundle: dict) -> list[dict]:
    return [e["resource"] for e in bundle.get("entry", [])]


@pytest.mark.parametrize("rtype", list(IDS))
@pytest.mark.parametrize("base, version", VERSIONS)
def test_search_summary_true(server, base, version, rtype):
    bundle = fhir_json(get(f"{server.url}/{base}/{rtype}", _summary="true"))
    assert bundle["total"] == len(IDS[rtype])
    assert entries(bundle) == [tagged(only(full(version, rtype, rid), SUMMARY[version][rtype])) for rid in IDS[rtype]]
    assert bundle["link"] == [{"relation": "self", "url": f"{server.url}/{base}/{rtype}?_summary=true"}]
    validate(bundle, version)


@pytest.mark.parametrize("rtype", list(IDS))
@pytest.mark.parametrize("base, version", VERSIONS)
def test_search_summary_text_data_false(server, base, version, rtype):
    text = fhir_json(get(f"{server.url}/{base}/{rtype}", _summary="text"))
    assert entries(text) == [tagged(only(full(version, rtype, rid), ("id", "meta", "text") + MANDATORY[rtype]))
                             for rid in IDS[rtype]]
    listed_here = [resource_for(version, listed(shipped(rtype, rid))) for rid in IDS[rtype]]
    data = fhir_json(get(f"{server.url}/{base}/{rtype}", _summary="data"))
    # ICD-10-CM is listed without its concepts, and SUBSETTED, either way: once
    assert entries(data) == [r if "SUBSETTED" in json.dumps(r) else tagged(r) for r in listed_here]
    assert entries(fhir_json(get(f"{server.url}/{base}/{rtype}", _summary="false"))) == listed_here


@pytest.mark.parametrize("rtype", list(IDS))
@pytest.mark.parametrize("base", ["r4", "r5"])
def test_search_summary_count_is_the_total_alone(server, base, rtype):
    bundle = fhir_json(get(f"{server.url}/{base}/{rtype}", _summary="count", status="active"))
    assert bundle == {"resourceType": "Bundle", "type": "searchset", "total": len(IDS[rtype]), "link": [
        {"relation": "self", "url": f"{server.url}/{base}/{rtype}?status=active&_summary=count"}]}
    zero = fhir_json(get(f"{server.url}/{base}/{rtype}", _count="0"))
    assert zero == {"resourceType": "Bundle", "type": "searchset", "total": len(IDS[rtype]), "link": [
        {"relation": "self", "url": f"{server.url}/{base}/{rtype}?_count=0"}]}


@pytest.mark.parametrize("rtype", list(IDS))
@pytest.mark.parametrize("base, version", VERSIONS)
def test_search_elements(server, base, version, rtype):
    bundle = fhir_json(get(f"{server.url}/{base}/{rtype}", _elements="publisher,name,nonsense"))
    assert entries(bundle) == [tagged(only(full(version, rtype, rid), ("id", "meta", "name", "publisher") + MANDATORY[rtype]))
                               for rid in IDS[rtype]]
    # normalised: known names once, in the order of the definition; the unknown one left out
    assert bundle["link"][0]["url"] == f"{server.url}/{base}/{rtype}?_elements=name,publisher"


# --- a server with more to page through, and names to match ---------------------------------------

TITLES = {3: "Ménière's disease and inner-ear disorders", 7: "MENIERE syndrome", 11: "Gait disorders",
          12: "Disorders of gait, unspecified", 19: "Ménière, comma, and more"}
PUBLISHERS = {11: "Société Française de Test", 12: "Societe francaise de test"}
DESCRIPTIONS = {3: "Vertigo of inner-ear origin", 12: "Walking difficulty; inner-ear origin excluded"}
N = 23
ALL_VS = [f"vs-{i:02d}" for i in range(1, N + 1)]


def value_set(i: int) -> dict:
    resource = {"resourceType": "ValueSet", "id": f"vs-{i:02d}", "url": f"http://example.org/fhir/ValueSet/vs-{i:02d}",
                "version": "1", "name": f"ValueSet{i:02d}", "title": TITLES.get(i, f"Value set {i:02d}"),
                "status": "draft" if i % 5 == 0 else "active",
                "compose": {"include": [{"system": "http://example.org/cs", "concept": [{"code": str(i)}]}]}}
    if i in PUBLISHERS:
        resource["publisher"] = PUBLISHERS[i]
    if i in DESCRIPTIONS:
        resource["description"] = DESCRIPTIONS[i]
    if i == 1:
        resource["text"] = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Value set 01</div>'}
    return resource


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> Iterator[LiveServer]:
    """23 value sets, pages of at most 10."""
    folder: Path = tmp_path_factory.mktemp("many")
    for i in range(1, N + 1):
        (folder / f"ValueSet-vs-{i:02d}.json").write_text(json.dumps(value_set(i)), encoding="utf-8")
    with running_server(settings={"FHIR_PLUGIN_CONTENT": str(folder), "FHIR_PLUGIN_SEARCH_PAGE_SIZE": "10"}) as live:
        yield live


def ids(bundle: dict) -> list[str]:
    return [r["id"] for r in entries(bundle)]


def links(bundle: dict) -> dict[str, str]:
    return {link["relation"]: link["url"] for link in bundle["link"]}


def walk(url: str, relation: str = "next") -> tuple[list[str], list[dict]]:
    """Every page from `url` on, following `relation` links to the end."""
    found, pages = [], []
    while url:
        bundle = fhir_json(requests.get(url, timeout=TIMEOUT))
        pages.append(bundle)
        found += ids(bundle)
        url = links(bundle).get(relation, "")
        assert len(pages) <= N + 1
    return found, pages


@pytest.mark.parametrize("base", ["r4", "r5"])
def test_paging_walked_to_the_end_by_next_links(many, base):
    found, pages = walk(f"{many.url}/{base}/ValueSet?_count=5")
    assert found == ALL_VS
    assert [len(ids(p)) for p in pages] == [5, 5, 5, 5, 3]
    assert {p["total"] for p in pages} == {N}
    at = f"{many.url}/{base}/ValueSet?_count=5&_offset="
    assert links(pages[2]) == {"self": f"{at}10", "first": f"{at}0", "previous": f"{at}5", "next": f"{at}15",
                               "last": f"{at}20"}
    assert links(pages[0]) == {"self": f"{many.url}/{base}/ValueSet?_count=5", "first": f"{at}0", "next": f"{at}5",
                               "last": f"{at}20"}
    assert links(pages[-1]) == {"self": f"{at}20", "first": f"{at}0", "previous": f"{at}15", "last": f"{at}20"}
    back, _ = walk(links(pages[-1])["last"], "previous")
    assert back == ALL_VS[20:] + ALL_VS[15:20] + ALL_VS[10:15] + ALL_VS[5:10] + ALL_VS[:5]


@pytest.mark.parametrize("base", ["r4", "r5"])
def test_paging_keeps_the_criteria_and_the_subset(many, base):
    found, pages = walk(f"{many.url}/{base}/ValueSet?_summary=true&status=active&_count=4")
    active = [vs for i, vs in enumerate(ALL_VS, 1) if i % 5]
    assert found == active and {p["total"] for p in pages} == {len(active)}
    assert links(pages[1])["next"] == f"{many.url}/{base}/ValueSet?status=active&_summary=true&_count=4&_offset=8"
    assert all(r["meta"]["tag"] == [SUBSETTED] and "compose" not in r for p in pages for r in entries(p))


def test_without_count_a_page_is_the_page_size_and_a_larger_count_is_lowered_to_it(many):
    first = fhir_json(get(f"{many.r4}/ValueSet"))
    assert (ids(first), first["total"]) == (ALL_VS[:10], N)
    assert links(first) == {"self": f"{many.r4}/ValueSet", "first": f"{many.r4}/ValueSet?_count=10&_offset=0",
                            "next": f"{many.r4}/ValueSet?_count=10&_offset=10",
                            "last": f"{many.r4}/ValueSet?_count=10&_offset=20"}
    lowered = fhir_json(get(f"{many.r4}/ValueSet", _count="1000000"))
    assert ids(lowered) == ALL_VS[:10]
    assert links(lowered)["self"] == f"{many.r4}/ValueSet?_count=10"
    assert walk(f"{many.r5}/ValueSet")[0] == ALL_VS


def test_an_offset_beyond_the_end_is_an_empty_page_with_the_total(many):
    bundle = fhir_json(get(f"{many.r5}/ValueSet", _count="5", _offset="100"))
    assert ("entry" in bundle, bundle["total"]) == (False, N)
    at = f"{many.r5}/ValueSet?_count=5&_offset="
    assert links(bundle) == {"self": f"{at}100", "first": f"{at}0", "previous": f"{at}20", "last": f"{at}20"}


@pytest.mark.parametrize("query, value", [("_count=-1", "-1"), ("_count=abc", "abc"), ("_offset=-5", "-5"),
                                          ("_offset=1.5", "1.5"), ("_count=%201", " 1"), ("_count=1e3", "1e3")])
def test_a_count_or_offset_that_is_not_a_whole_number_is_a_400(many, query, value):
    name = query.split("=")[0]
    outcome(requests.get(f"{many.r4}/ValueSet?{query}", timeout=TIMEOUT), 400, "PAGE_BAD_VALUE",
            f"Parameter '{name}' must be a whole number, 0 or more, not '{value}'")


def test_empty_result_parameters_are_not_given(many):
    bundle = fhir_json(requests.get(f"{many.r4}/ValueSet?_count=&_offset=&_summary=&_elements=", timeout=TIMEOUT))
    assert (ids(bundle), bundle["total"], links(bundle)["self"]) == (ALL_VS[:10], N, f"{many.r4}/ValueSet")


def test_the_text_element_goes_with_summary_data_and_comes_with_summary_text(many):
    data = entries(fhir_json(get(f"{many.r5}/ValueSet", _id="vs-01", _summary="data")))
    text = entries(fhir_json(get(f"{many.r5}/ValueSet", _id="vs-01", _summary="text")))
    assert data == [tagged({k: v for k, v in value_set(1).items() if k != "text"})]
    assert text == [tagged({k: value_set(1)[k] for k in ("resourceType", "id", "text", "status")})]


# --- string matching and modifiers --------------------------------------------------------------------


@pytest.mark.parametrize("query, found", [
    ("title=meniere", ["vs-03", "vs-07", "vs-19"]),  # starts with, whatever the case and the accents
    ("title=MÉNIÈRE's", ["vs-03"]),
    ("title=disease", []),  # at the start only
    ("title:contains=DISEASE", ["vs-03"]),
    ("title:contains=disorders", ["vs-03", "vs-11", "vs-12"]),
    ("title:contains=ière", ["vs-03", "vs-07", "vs-19"]),
    ("title:exact=MENIERE syndrome", ["vs-07"]),
    ("title:exact=meniere syndrome", []),
    ("title:exact=MENIERE", []),
    ("title:exact=Ménière's disease and inner-ear disorders", ["vs-03"]),
    ("title:exact=Ménière\\, comma\\, and more", ["vs-19"]),  # \, is a comma in a value
    ("title=gait,meniere", ["vs-03", "vs-07", "vs-11", "vs-19"]),  # alternatives
    ("title:contains=disorders&title:contains=inner", ["vs-03"]),  # a repeat must hold too
    ("publisher=societe", ["vs-11", "vs-12"]),
    ("publisher:exact=Societe francaise de test", ["vs-12"]),
    ("publisher:contains=FRANÇAISE", ["vs-11", "vs-12"]),
    ("description:contains=inner-ear", ["vs-03", "vs-12"]),
    ("description=walking", ["vs-12"]),
    ("name=valueset0", [f"vs-0{i}" for i in range(1, 10)]),
    ("name:exact=ValueSet17", ["vs-17"]),
    ("name:contains=t2", ["vs-20", "vs-21", "vs-22", "vs-23"]),
    ("status=draft", ["vs-05", "vs-10", "vs-15", "vs-20"]),
    ("_id=vs-02,vs-04", ["vs-02", "vs-04"]),
    ("url=http://example.org/fhir/ValueSet/vs-09|1", ["vs-09"]),
    ("url=http://example.org/fhir/ValueSet/vs-09|2", []),
    ("title=", ALL_VS[:10]),  # an empty value is not a criterion
])
@pytest.mark.parametrize("base", ["r4", "r5"])
def test_string_matching(many, base, query, found):
    bundle = fhir_json(requests.get(f"{many.url}/{base}/ValueSet?{query}", timeout=TIMEOUT))
    assert ids(bundle) == found
    assert bundle["total"] == (N if query == "title=" else len(found))


@pytest.mark.parametrize("query, self_query", [
    ("_pretty=false&title:contains=disease&foo=bar&name=a,b", "name=a,b&title:contains=disease&_pretty=false"),
    ("status=active&_format=json&_sort=title&_elements=title,ValueSet.name", "status=active&_elements=name,title&_format=json"),
    ("title:missing=true&title=gait%20d&_offset=0", "title=gait%20d"),
    ("title:exact=a%5C,b&_count=3", "title:exact=a%5C,b&_count=3"),
    ("url=http://example.org/fhir/ValueSet/vs-09|1&_summary=false", "url=http://example.org/fhir/ValueSet/vs-09%7C1"),
])
def test_the_self_link_shows_what_was_applied(many, query, self_query):
    bundle = fhir_json(requests.get(f"{many.r4}/ValueSet?{query}", timeout=TIMEOUT))
    assert bundle["link"][0] == {"relation": "self", "url": f"{many.r4}/ValueSet?{self_query}"}


def test_the_self_link_gives_the_same_page_again(many):
    bundle = fhir_json(requests.get(f"{many.r5}/ValueSet?title:contains=dis&_count=2&_offset=1&_elements=title",
                                    timeout=TIMEOUT))
    again = fhir_json(requests.get(bundle["link"][0]["url"], timeout=TIMEOUT))
    assert again == bundle and ids(bundle) == ["vs-11", "vs-12"] and bundle["total"] == 3


# --- strict and lenient handling ---------------------------------------------------------------------

STRICT = {"Prefer": "handling=strict"}


@pytest.mark.parametrize("query, message_id, text", [
    ("foo=bar", "SEARCH_PARAM_UNKNOWN", "Unknown search parameter 'foo' for ValueSet (Prefer: handling=strict)"),
    ("_sort=title", "SEARCH_PARAM_UNKNOWN", "Unknown search parameter '_sort' for ValueSet (Prefer: handling=strict)"),
    ("title:missing=true", "SEARCH_MODIFIER_UNSUPPORTED",
     "Search parameter 'title' of ValueSet has no modifier ':missing' here (Prefer: handling=strict)"),
    ("status:exact=active", "SEARCH_MODIFIER_UNSUPPORTED",
     "Search parameter 'status' of ValueSet has no modifier ':exact' here (Prefer: handling=strict)"),
    ("url:below=http://example.org", "SEARCH_MODIFIER_UNSUPPORTED",
     "Search parameter 'url' of ValueSet has no modifier ':below' here (Prefer: handling=strict)"),
    ("_elements=title,bogus", "ELEMENT_UNKNOWN", "Unknown element 'bogus' in _elements for ValueSet (Prefer: handling=strict)"),
])
@pytest.mark.parametrize("base", ["r4", "r5"])
def test_strict_handling_refuses_what_it_cannot_apply(many, base, query, message_id, text):
    response = requests.get(f"{many.url}/{base}/ValueSet?{query}", headers=STRICT, timeout=TIMEOUT)
    outcome(response, 400, message_id, text)
    lenient = fhir_json(requests.get(f"{many.url}/{base}/ValueSet?{query}", headers={"Prefer": "handling=lenient"},
                                     timeout=TIMEOUT))
    assert lenient["total"] == N  # the criterion is left out: every value set matches


def test_strict_handling_accepts_everything_it_applies(many):
    query = "title:contains=dis&name=value&_summary=true&_count=2&_offset=0&_format=json&_pretty=true"
    bundle = fhir_json(requests.get(f"{many.r4}/ValueSet?{query}", headers=STRICT, timeout=TIMEOUT))
    assert bundle["total"] == 3 and ids(bundle) == ["vs-03", "vs-11"]


def test_a_read_ignores_unknown_parameters_even_when_strict(many):
    body = fhir_json(requests.get(f"{many.r4}/ValueSet/vs-02?foo=bar&_elements=title,bogus", headers=STRICT,
                                  timeout=TIMEOUT))
    assert body == tagged({"resourceType": "ValueSet", "id": "vs-02", "title": "Value set 02", "status": "active"})


# --- the client: the same search, every page -----------------------------------------------------------


@pytest.mark.parametrize("base", ["r4", "r5"])
def test_the_client_searches_with_modifiers_and_follows_the_pages(many, base):
    from fhir_plugin.client import TerminologyClient
    from fhir_plugin.terminology.models import Criterion

    with TerminologyClient(f"{many.url}/{base}") as client:
        found = client.search("ValueSet", [Criterion("title", ("value",)), Criterion("status", ("active",))])
        assert [e.id for e in found] == [vs for i, vs in enumerate(ALL_VS, 1) if i % 5 and i not in TITLES]
        assert len(found) > 10  # more than one page of FHIR_PLUGIN_SEARCH_PAGE_SIZE
        assert [e.id for e in client.search("ValueSet", [Criterion("title", ("meniere",), "contains")])] == [
            "vs-03", "vs-07", "vs-19"]
        assert [e.id for e in client.search("ValueSet", {"title": "Ménière, comma, and more"})] == ["vs-19"]
