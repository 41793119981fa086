"""The web UI's concept page and type-ahead, fast and exact (issue 13, performance): the value
sets a concept page lists are exactly those `$validate-code` says hold it (asked only of the value
sets that name its system, terminology/holders.py); the type-ahead's matches are exactly $expand's
first page (the word index, terminology/textindex.py); answers are kept per content, host and
query in the bounded answer cache, never across a run-time load nor across clients."""

from __future__ import annotations

import random
import re

import pytest

from fhir_plugin import create_app
from fhir_plugin.extension import cache_stats
from fhir_plugin.terminology import expand
from fhir_plugin.terminology.entries import Coding
from fhir_plugin.terminology.errors import TerminologyError
from fhir_plugin.terminology.evaluation import resolve_value_set
from fhir_plugin.terminology.holders import ValueSetSystems, value_sets_holding
from fhir_plugin.terminology.models import ExpandRequest, ValidateCodeRequest
from fhir_plugin.terminology.valueset import evaluate
from helpers import CPT, ICD

HTML = {"Accept": "text/html"}


def _asking_every_value_set(service, system: str, code: str) -> list[str]:
    """What the concept page listed before the index: $validate-code of every value set served."""
    found = []
    for entry in service.search("ValueSet", {}):
        try:
            result = service.validate_code(ValidateCodeRequest(codings=(Coding(system, code),), url=entry.url,
                                                               value_set_version=entry.version, membership_only=True))
        except TerminologyError:
            continue
        if result.result:
            found.append(entry.id)
    return found


def _holding(service, system: str, code: str) -> list[str]:
    systems = ValueSetSystems(service.registry, service.search("ValueSet", {}))
    return [entry.id for entry in value_sets_holding(service, systems, system, code)]


def test_value_sets_holding_gait_training_concepts(default_service):
    assert _holding(default_service, ICD, "M62.81") == ["icd-10-cm-gait-training-diagnoses"]
    # ours, then THO's CPT value sets (two packages each have a ValueSet/cpt-all)
    assert _holding(default_service, CPT, "97116") == [
        "cpt-gait-training", "example-cpt-all", "cpt-all", "cpt-all", "cpt-base", "cpt-usable"]


def test_value_sets_holding_is_what_asking_every_value_set_says(default_service):
    """On the default content (about 4,000 value sets: FHIR core, THO, ours), for concepts of code
    systems picked at random with a fixed seed, and the gait-training ones."""
    picked = random.Random(13)
    systems = [cs for cs in default_service.registry.code_systems() if cs.concepts]
    cases = [(ICD, "M62.81"), (ICD, "R26.2"), (CPT, "97116")]
    cases += [(cs.url, picked.choice(sorted(cs.concepts))) for cs in picked.sample(systems, 8)]
    held = 0
    for system, code in cases:
        expected = _asking_every_value_set(default_service, system, code)
        assert _holding(default_service, system, code) == expected, (system, code)
        held += len(expected)
    assert held >= 10  # the cases do hold concepts in value sets: the comparison is not of empty lists


def test_value_sets_defined_by_filters_imports_and_aliases(service):
    """Membership by is-a filter, by import, by an OID naming the system, and an exclude: each
    listed exactly as $validate-code says."""
    from fhir_plugin.terminology.registry import Registry
    from fhir_plugin.terminology.service import TerminologyService

    def vs(name: str, **compose) -> dict:
        return {"resourceType": "ValueSet", "id": name, "url": f"http://example.org/vs/{name}", "status": "active",
                "compose": compose}
    oid = {"resourceType": "NamingSystem", "id": "icd-oid", "name": "IcdOid", "status": "active", "kind": "codesystem",
           "date": "2026-01-01", "uniqueId": [{"type": "oid", "value": "2.16.840.1.113883.6.90"},
                                              {"type": "uri", "value": ICD, "preferred": True}]}
    resources = [
        vs("isa", include=[{"system": ICD, "filter": [{"property": "concept", "op": "is-a", "value": "M62.8"}]}]),
        vs("imports", include=[{"valueSet": ["http://example.org/vs/isa"]}]),
        vs("excludes", include=[{"system": ICD, "filter": [{"property": "concept", "op": "is-a", "value": "M62"}]}],
           exclude=[{"system": ICD, "concept": [{"code": "M62.81"}]}]),
        vs("by-oid", include=[{"system": "urn:oid:2.16.840.1.113883.6.90", "concept": [{"code": "M62.81"}]}]),
        vs("other-system", include=[{"system": CPT}]),
        vs("imports-unknown", include=[{"valueSet": ["http://example.org/vs/not-there"]}]),
        oid,
    ]
    layered = TerminologyService(Registry(resources, parent=service.registry))
    systems = ValueSetSystems(layered.registry, layered.search("ValueSet", {}))
    assert {entry.id: s for entry, s in systems.entries if entry.id in ("isa", "imports", "other-system")} == {
        "isa": frozenset({ICD}), "imports": frozenset({ICD}), "other-system": frozenset({CPT})}
    expected = _asking_every_value_set(layered, ICD, "M62.81")
    assert sorted(expected) == ["by-oid", "icd-10-cm-gait-training-diagnoses", "imports", "isa"]
    assert _holding(layered, ICD, "M62.81") == expected
    assert sorted(_holding(layered, ICD, "M62.84")) == ["excludes", "imports", "isa"]
    assert _holding(layered, ICD, "M62.84") == _asking_every_value_set(layered, ICD, "M62.84")


@pytest.fixture(scope="module")
def icd_evaluation(service):
    value_set = resolve_value_set(service.registry, f"{ICD}?fhir_vs")
    return evaluate(service.registry, value_set)


def _filters() -> list[str]:
    picked = random.Random(7)
    words = ["gait", "muscle", "weakness", "fracture", "left", "right", "of", "disorder", "abnormal", "sjögren",
             "ataxic", "m62", "r26", "displaced", "pain", "unspecified", "with", "and"]
    found = [" ".join(picked.choice(words)[:picked.randint(1, 7)] for _ in range(picked.randint(1, 3)))
             for _ in range(50)]
    return found + ["- -", " ", "😀", "a", "M62.8", "gait tra", "dis dis", "é", "ab", "x" * 40]


def test_word_index_finds_what_scanning_finds(icd_evaluation):
    """The word index (textindex.py) against the definition: every word of the filter starts a word of
    the member's search text, tested member by member."""
    members = icd_evaluation.members
    texts = [(expand._search_text(m), m) for m in members]
    for text in _filters():
        wanted = expand.filter_words(ExpandRequest(url="x", filter=text))
        scanned = [m.key for t, m in texts if all(" " + word in t for word in wanted)]
        # keys, not members: a failing comparison of members would print each one's code system
        assert [m.key for m in expand.text_filtered(icd_evaluation, wanted)] == scanned, text
        assert [m.key for m in expand.text_filtered(icd_evaluation, wanted, 10)] == scanned[:10], text
    gait = expand.filter_words(ExpandRequest(url="x", filter="gait"))
    assert [m.code for m in expand.text_filtered(icd_evaluation, gait)] == [
        "R26", "R26.0", "R26.1", "R26.8", "R26.89", "R26.9"]


@pytest.fixture
def ui_app(service):
    return create_app({"FHIR_PLUGIN_ANSWER_CACHE": "64"}, service=service)


@pytest.mark.parametrize("text", ["gait", "ataxic gai", "mus weak", "fracture of left", "ab", "Sjögren", "zzzz", "m62"])
def test_type_ahead_is_the_first_page_of_expand(ui_app, text):
    client = ui_app.test_client()
    suggested = client.get("/ui/CodeSystem/icd-10-cm/suggest", query_string={"q": text}).get_json()
    expansion = client.get("/r4/ValueSet/$expand", query_string={"url": f"{ICD}?fhir_vs", "filter": text,
                                                                 "count": 10}).get_json()
    assert [(s["code"], s["display"]) for s in suggested] == [
        (c["code"], c["display"]) for c in expansion["expansion"].get("contains", [])]
    assert all(s["href"] == f"/ui/CodeSystem/icd-10-cm/concept/{s['code']}" for s in suggested)


def _fhir_request(text: str) -> str:
    return re.search(r'readonly value="([^"]*)"', text).group(1).replace("&amp;", "&")


def test_a_kept_page_is_per_host(ui_app):
    """The page's absolute FHIR request names the host asked: a page kept for one host is not
    given to another."""
    client = ui_app.test_client()
    for _ in range(2):
        for host in ("a.example", "b.example"):
            text = client.get("/ui/CodeSystem/icd-10-cm/concept/M62.81", headers={**HTML, "Host": host}).text
            assert _fhir_request(text) == f"http://{host}/r4/CodeSystem/$lookup?system={ICD}&code=M62.81"
    assert cache_stats(ui_app)["answers"].hits == 2


def test_no_client_gets_another_clients_csrf_token(ui_app):
    tokens = set()
    for _ in range(3):
        client = ui_app.test_client()  # a new browser: no cookie
        form = client.get("/ui/check-pairs", headers=HTML)
        token = form.headers["Set-Cookie"].split("fhir_plugin_csrf=", 1)[1].split(";", 1)[0]
        assert f'value="{token}"' in form.text
        tokens.add(token)
    assert len(tokens) == 3


@pytest.mark.parametrize("path, query", [("/ui/CodeSystem/icd-10-cm/concept/M62.81", {}),
                                         ("/ui/CodeSystem/icd-10-cm/suggest", {"q": "gait"})])
def test_the_front_door_gives_the_page_flask_gave(ui_app, path, query):
    """The second request is answered by the answer cache's front door (web/front.py), before Flask:
    the same status, bytes and headers (the security headers too), but its own request id."""
    client = ui_app.test_client()
    first = client.get(path, query_string=query, headers=HTML)
    second = client.get(path, query_string=query, headers=HTML)
    assert (second.status_code, second.data) == (first.status_code, first.data)
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]
    without_id = [sorted((k, v) for k, v in r.headers.items() if k != "X-Request-ID") for r in (first, second)]
    assert without_id[0] == without_id[1]
    assert dict(without_id[0])["X-Frame-Options"] == "DENY"
    stats = cache_stats(ui_app)["answers"]
    assert (stats.hits, stats.misses, stats.entries) == (1, 1, 1)
