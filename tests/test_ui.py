"""The web UI over real HTTP (a live `fhir-plugin serve`): each page's content, content negotiation
on the FHIR URLs (JSON stays the default), the pair checker, the upload of a file of pairs (CSRF,
size limit), the security headers, and escaping of a hostile display and comment loaded at run time."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
import requests

from helpers import CPT, ICD
from live_server import LiveServer, running_server

TOKEN = "ui-test-token"
HTML = {"Accept": "text/html"}
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
ESCAPED = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LiveServer]:
    settings = {"FHIR_PLUGIN_ADMIN_TOKEN": TOKEN, "FHIR_PLUGIN_LOAD_DIR": str(tmp_path_factory.mktemp("loaded")),
                "FHIR_PLUGIN_UI_MAX_UPLOAD_BYTES": "2000"}
    with running_server(settings=settings) as live:
        yield live


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def page(http, server, path: str, status: int = 200, **kwargs) -> str:
    response = http.get(f"{server.url}{path}", headers=HTML, timeout=30, **kwargs)
    assert response.status_code == status, response.text[:500]
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Content-Security-Policy"] == CSP
    return response.text


def fhir_request(text: str) -> str:
    return re.search(r'<input id="fhir-request" class="fhir-request" type="text" readonly value="([^"]*)">',
                     text).group(1).replace("&amp;", "&")


def test_home_lists_the_content_and_the_endpoints(http, server):
    text = page(http, server, "/ui/")
    assert ('<tr><td><a href="/ui/CodeSystem/icd-10-cm">International Classification of Diseases, Tenth Revision, '
            'Clinical Modification (ICD-10-CM)</a></td>\n<td>http://hl7.org/fhir/sid/icd-10-cm</td><td>2026-04-01'
            '</td><td>98,466</td><td>complete</td></tr>') in text
    assert '<a href="/ui/ConceptMap/cpt-97116-to-icd-10-cm">CPT 97116 (gait training) to associated ICD-10-CM ' \
           'diagnoses</a>' in text
    assert f"<li><code>{server.url}/r4</code> (FHIR R4)</li>" in text
    assert fhir_request(text) == f"{server.url}/r4/metadata"


def test_root_is_fhir_for_programs_and_the_ui_for_browsers(http, server):
    outcome = http.get(server.url + "/", timeout=10).json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "information"
    response = http.get(server.url + "/", headers=BROWSER, timeout=10, allow_redirects=False)
    assert (response.status_code, response.headers["Location"]) == (303, "/ui/")


@pytest.mark.parametrize("accept", [None, "application/fhir+json", "application/json", "*/*",
                                    "application/fhir+json, */*;q=0.5"])
def test_fhir_json_stays_the_default_on_resource_urls(http, server, accept):
    headers = {"Accept": accept} if accept else {}
    response = http.get(f"{server.url}/r4/CodeSystem/cpt-97116-fragment", headers=headers, timeout=10)
    assert response.headers["Content-Type"] == ("application/json" if accept == "application/json"
                                                else "application/fhir+json")
    assert response.json()["id"] == "cpt-97116-fragment"


@pytest.mark.parametrize("path, title", [
    ("/r4/CodeSystem/icd-10-cm", "International Classification of Diseases, Tenth Revision, Clinical Modification "
                                 "(ICD-10-CM)"),
    ("/r5/ValueSet/icd-10-cm-gait-training-diagnoses", "ICD-10-CM diagnoses associated with CPT 97116 (gait training)"),
    ("/fhir/ConceptMap/cpt-97116-to-icd-10-cm", "CPT 97116 (gait training) to associated ICD-10-CM diagnoses"),
])
def test_a_browser_gets_the_page_on_the_resource_url(http, server, path, title):
    response = http.get(server.url + path, headers=BROWSER, timeout=10)
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert f"<h1>{title}</h1>" in response.text


@pytest.mark.parametrize("accept", ["text/html;q=0, application/fhir+json", "application/fhir+json, text/html;q=0.5",
                                    "text/html;q=0.8, application/json"])
def test_html_that_is_not_preferred_gets_fhir_json(http, server, accept):
    response = http.get(f"{server.url}/r4/CodeSystem/cpt-97116-fragment", headers={"Accept": accept}, timeout=10)
    assert response.headers["Content-Type"].startswith("application/")
    assert response.json()["id"] == "cpt-97116-fragment"


def test_a_browser_naming_a_format_gets_fhir_json(http, server):
    response = http.get(f"{server.url}/r4/CodeSystem/cpt-97116-fragment?_format=json", headers=BROWSER, timeout=10)
    assert response.headers["Content-Type"] == "application/fhir+json"
    assert response.json()["id"] == "cpt-97116-fragment"


def test_an_unknown_resource_is_a_404_page_for_a_browser_and_an_outcome_for_programs(http, server):
    text = page(http, server, "/r4/CodeSystem/nope", 404)
    assert '<p role="alert">CodeSystem/nope not found</p>' in text
    response = http.get(f"{server.url}/r4/CodeSystem/nope", timeout=10)
    assert (response.status_code, response.json()["resourceType"]) == (404, "OperationOutcome")


def test_code_system_search_pages_through_the_text_index(http, server):
    text = page(http, server, "/ui/CodeSystem/icd-10-cm", params={"q": "gait"})
    assert "<h2>6 matches for “gait”</h2>" in text
    assert ('<tr><td><a href="/ui/CodeSystem/icd-10-cm/concept/R26.0">R26.0</a></td><td>Ataxic gait</td></tr>'
            in text)
    assert "<span>Page 1 of 1</span>" in text
    assert fhir_request(text) == (f"{server.url}/r4/ValueSet/$expand?url=http://hl7.org/fhir/sid/icd-10-cm?fhir_vs"
                                  "&filter=gait&offset=0&count=20")
    # the FHIR request gives the same codes
    expansion = http.get(fhir_request(text), timeout=30).json()["expansion"]
    assert [c["code"] for c in expansion["contains"]] == re.findall(r'concept/([^"]+)">', text)
    second = page(http, server, "/ui/CodeSystem/icd-10-cm", params={"q": "weakness", "page": "1"})
    assert '<a rel="prev" href="/ui/CodeSystem/icd-10-cm?q=weakness&amp;page=0">Previous page</a>' in second


def test_code_system_page_shows_metadata_licence_and_top_of_hierarchy(http, server):
    text = page(http, server, "/ui/CodeSystem/cpt-97116-fragment")
    assert "<dt>Licence</dt><dd>CPT © Copyright 2026 American Medical Association." in text
    assert ('<li><a href="/ui/CodeSystem/cpt-97116-fragment/concept/97116">97116</a> Therapeutic procedure, 1 or '
            'more areas, each 15 minutes; gait training (includes stair climbing)</li>') in text


def test_type_ahead_answers_json(http, server):
    response = http.get(f"{server.url}/ui/CodeSystem/icd-10-cm/suggest", params={"q": "ataxic gai"}, timeout=10)
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == [{"code": "R26.0", "display": "Ataxic gait",
                                "href": "/ui/CodeSystem/icd-10-cm/concept/R26.0"}]


def test_concept_page(http, server):
    text = page(http, server, "/ui/CodeSystem/icd-10-cm/concept/M62.81")
    assert '<h1><span class="code">M62.81</span> Muscle weakness (generalized)</h1>' in text
    assert "<tr><td>excludes1</td><td>muscle weakness in sarcopenia (M62.84)</td></tr>" in text
    assert '<li><a href="/ui/CodeSystem/icd-10-cm/concept/M62.8">M62.8</a> Other specified disorders of muscle</li>' \
           in text
    assert ('<tr><td><a href="/ui/CodeSystem/cpt-97116-fragment/concept/97116">97116</a> Therapeutic procedure, 1 or '
            'more areas, each 15 minutes; gait training (includes stair climbing)</td><td>related-to</td><td><a '
            'href="/ui/CodeSystem/icd-10-cm/concept/M62.81">M62.81</a> Muscle weakness (generalized)</td><td>The '
            'muscles are not as strong as they should be, making walking difficult. (Source: &#34;What is CPT Code '
            '97116?: A Step Towards Better Moving&#34; (an informational coding article).)</td>') in text
    assert ('<li><a href="/ui/ValueSet/icd-10-cm-gait-training-diagnoses">ICD-10-CM diagnoses associated with CPT '
            '97116 (gait training)</a></li>') in text
    assert fhir_request(text) == f"{server.url}/r4/CodeSystem/$lookup?system=http://hl7.org/fhir/sid/icd-10-cm" \
                                 "&code=M62.81"


def test_cpt_concept_page_shows_designations_and_properties(http, server):
    text = page(http, server, "/ui/CodeSystem/cpt-97116-fragment/concept/97116")
    assert "<td>Operating-room schedule name</td>" in text
    assert "<td>Surgical consent form name</td>" in text
    assert re.search(r"<tr><td>work-rvu</td><td>[0-9.]+</td></tr>", text)
    assert text.count('<a href="/ui/CodeSystem/icd-10-cm/concept/') == 3  # its three maps


def test_value_set_page(http, server):
    text = page(http, server, "/ui/ValueSet/icd-10-cm-gait-training-diagnoses")
    assert "<h2>Expansion: 3 codes</h2>" in text
    assert re.findall(r'concept/([^"]+)">', text)[-3:] == ["M62.81", "R26.2", "G81.90"]


def test_concept_map_table(http, server):
    text = page(http, server, "/ui/ConceptMap/cpt-97116-to-icd-10-cm")
    assert text.count("<td>related-to</td>") == 3
    assert "(Source: &#34;What is CPT Code 97116?: A Step Towards Better Moving&#34;" in text


@pytest.mark.parametrize("target, status, shown", [
    ("M62.81", "supported", "<li>related-to M62.81 Muscle weakness (generalized)</li>"),
    ("J45.909", "not mapped", "<p>&#39;97116&#39; in &#39;http://www.ama-assn.org/go/cpt&#39; is not mapped to "
                              "&#39;J45.909&#39; in &#39;http://hl7.org/fhir/sid/icd-10-cm&#39;</p>"),
    ("M6281", "unknown target", '<p class="suggestion">Did you mean <a href="/ui/check?source=97116&amp;target=M62.81'
                                '&amp;source_system=http://www.ama-assn.org/go/cpt&amp;target_system='
                                'http://hl7.org/fhir/sid/icd-10-cm">M62.81</a>?</p>'),
    ("ZZZ.9", "unknown target", "<li>error: Unknown code &#39;ZZZ.9&#39; in the CodeSystem "
                                "&#39;http://hl7.org/fhir/sid/icd-10-cm&#39; version &#39;2026-04-01&#39;</li>"),
])
def test_pair_checker(http, server, target, status, shown):
    text = page(http, server, "/ui/check", params={"source": "97116", "target": target})
    assert f'<span class="status">{status}</span>' in text
    assert shown in text
    assert fhir_request(text) == (f"{server.url}/r4/ConceptMap/$translate?sourceSystem={CPT}&sourceCode=97116"
                                  f"&targetSystem={ICD}&targetCode={target}")


PAIRS = "cpt,icd10cm\n97116,M62.81\n97116,J45.909\n97116,M6281\n97116,NOPE\n"


def upload(http, server, data: bytes, output: str = "page", token: str | None = "use-the-cookie"):
    form = page(http, server, "/ui/check-pairs")
    cookie = http.cookies.get("fhir_plugin_csrf")
    assert f'<input type="hidden" name="csrf_token" value="{cookie}">' in form
    fields = {"output": output}
    if token is not None:
        fields["csrf_token"] = cookie if token == "use-the-cookie" else token
    return http.post(f"{server.url}/ui/check-pairs", data=fields, files={"file": ("pairs.csv", data, "text/csv")},
                     headers=HTML, timeout=30)


def test_upload_shows_the_report(http, server):
    response = upload(http, server, PAIRS.encode())
    assert response.status_code == 200
    assert '<h2 id="summary">4 pairs: 1 supported, 1 not mapped, 0 unknown source, 2 unknown target</h2>' in response.text
    assert "<tr><td>4</td><td>97116</td><td>M6281</td><td>unknown target</td><td>M62.81</td>" in response.text


def test_upload_downloads_the_report(http, server):
    response = upload(http, server, PAIRS.encode(), output="csv")
    assert response.headers["Content-Disposition"] == 'attachment; filename="pairs-report.csv"'
    lines = response.text.splitlines()
    assert lines[0] == "line,source_system,source,target_system,target,status,suggestion,message"
    assert lines[1] == f"2,{CPT},97116,{ICD},M62.81,supported,,"
    assert [line.split(",")[5] for line in lines[1:]] == ["supported", "not mapped", "unknown target", "unknown target"]


@pytest.mark.parametrize("token", [None, "x" * 43])
def test_upload_without_the_csrf_token_is_refused(http, server, token):
    response = upload(http, server, PAIRS.encode(), token=token)
    assert response.status_code == 403
    assert "This form was not sent from this server&#39;s page" in response.text


def test_upload_beyond_the_limit_is_413(http, server):
    response = upload(http, server, PAIRS.encode() + b"97116,M62.81\n" * 200)
    assert response.status_code == 413
    assert "The request body is larger than the 2000 bytes this server accepts" in response.text


def test_malformed_upload_names_the_line(http, server):
    response = upload(http, server, b"cpt,icd10cm\n97116,M62.81\n97116,M62.81,extra\n")
    assert response.status_code == 400
    assert "Line 3 of the pairs file: 3 fields where the header has 2" in response.text


def test_hostile_display_and_comment_loaded_at_run_time_are_shown_as_text(http, server):
    cs = {"resourceType": "CodeSystem", "id": "hostile", "url": "http://example.org/hostile", "version": "1",
          "status": "active", "content": "complete", "title": HOSTILE,
          "concept": [{"code": "X1", "display": HOSTILE, "definition": HOSTILE}]}
    cm = {"resourceType": "ConceptMap", "id": "hostile-map", "url": "http://example.org/hostile-map", "status": "active",
          "title": HOSTILE, "group": [{"source": "http://example.org/hostile", "target": ICD, "element": [
              {"code": "X1", "target": [{"code": "M62.81", "relationship": "related-to", "comment": HOSTILE}]}]}]}
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": cs}, {"resource": cm}]}
    loaded = http.post(f"{server.url}/admin/content", params={"name": "hostile.json"}, data=json.dumps(bundle),
                       headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/fhir+json"},
                       timeout=30)
    assert loaded.status_code in (200, 201), loaded.text
    for path in ("/ui/", "/ui/CodeSystem/hostile", "/ui/CodeSystem/hostile/concept/X1", "/ui/ConceptMap/hostile-map",
                 "/ui/CodeSystem/icd-10-cm/concept/M62.81"):
        text = page(http, server, path)
        assert "<script>alert" not in text and "<img src=x" not in text, path
        assert ESCAPED in text, path


def _value_sets_shown(text: str) -> list[str]:
    section = text.split("<h2>Value sets that hold it</h2>", 1)[1]
    return re.findall(r'<li><a href="/ui/ValueSet/([^"]+)">', section)


def test_a_value_set_loaded_at_run_time_shows_on_the_concept_page_at_once(http, server):
    """The concept page is kept (ui/kept.py) and the value sets' systems are indexed per content
    (terminology/holders.py): a load makes a new content, so the next page lists the new value set."""
    path = "/ui/CodeSystem/icd-10-cm/concept/M62.84"
    assert _value_sets_shown(page(http, server, path)) == []
    assert _value_sets_shown(page(http, server, path)) == []  # the kept page
    value_sets = [{"resourceType": "ValueSet", "id": "loaded-muscle", "url": "http://example.org/vs/loaded-muscle",
                   "status": "active", "title": "Loaded: other specified muscle disorders", "compose": {"include": [
                       {"system": ICD, "filter": [{"property": "concept", "op": "is-a", "value": "M62.8"}]}]}},
                  {"resourceType": "ValueSet", "id": "loaded-import", "url": "http://example.org/vs/loaded-import",
                   "status": "active", "compose": {"include": [{"valueSet": ["http://example.org/vs/loaded-muscle"]}]}}]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in value_sets]}
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/fhir+json"}
    loaded = http.post(f"{server.url}/admin/content", params={"name": "muscle.json"}, data=json.dumps(bundle),
                       headers=auth, timeout=30)
    assert loaded.status_code in (200, 201), loaded.text
    try:
        assert _value_sets_shown(page(http, server, path)) == ["loaded-muscle", "loaded-import"]
        assert _value_sets_shown(page(http, server, "/ui/CodeSystem/icd-10-cm/concept/M62.81")) == [
            "loaded-muscle", "loaded-import", "icd-10-cm-gait-training-diagnoses"]  # search order: loaded first
    finally:
        removed = http.delete(f"{server.url}/admin/content/muscle.json", headers=auth, timeout=30)
        assert removed.status_code in (200, 204), removed.text
    assert _value_sets_shown(page(http, server, path)) == []
