"""No endpoint that changes what the server serves is open by default.

Walks every rule the app registers (app.url_map, so that routes added later, such as the admin
endpoints, are covered without changing this test), substitutes plausible values for its variables
(existing ids and bogus ones), and sends POST, PUT, PATCH and DELETE with bodies that would add
content if anything accepted them. What the server serves before and after must be identical, and
the service it answers with must be the very same object.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import tarfile

from fhir_plugin import create_app
from fhir_plugin.fhirversions import FhirVersion
from helpers import CPT, FHIR_JSON, parameters, param, with_resources

INJECTED_URL = "http://example.org/fhir/CodeSystem/injected"
INJECTED = {"resourceType": "CodeSystem", "id": "injected", "url": INJECTED_URL, "version": "1", "name": "Injected",
            "status": "active", "content": "complete", "concept": [{"code": "x", "display": "Injected"}]}
INJECTED_VS = {"resourceType": "ValueSet", "id": "injected-vs", "url": "http://example.org/fhir/ValueSet/injected",
               "status": "active", "compose": {"include": [{"system": INJECTED_URL}]}}
BUNDLE = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": INJECTED}, {"resource": INJECTED_VS}]}
# a CodeSystem the bundled content has, changed: replacing it would show in the reads
REPLACED_CPT = {"resourceType": "CodeSystem", "id": "cpt-97116-fragment", "url": CPT, "version": "2026", "status": "active",
                "content": "fragment", "concept": [{"code": "97116", "display": "Replaced"}]}


def package() -> bytes:
    """A FHIR NPM package holding the injected CodeSystem."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, document in (("package/package.json", {"name": "injected.pkg", "version": "1.0.0",
                                                          "fhirVersions": ["4.0.1"]}),
                               ("package/CodeSystem-injected.json", INJECTED)):
            data = json.dumps(document).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


BODIES = [
    (json.dumps(INJECTED), FHIR_JSON), (json.dumps(BUNDLE), "application/json"), (json.dumps(REPLACED_CPT), FHIR_JSON),
    (json.dumps(parameters(param("resource", resource=INJECTED), param("tx-resource", resource=INJECTED))), FHIR_JSON),
    (gzip.compress(json.dumps(INJECTED).encode()), "application/gzip"), (package(), "application/gzip"),
    (package(), "application/octet-stream"), (b"url=" + INJECTED_URL.encode(), "application/x-www-form-urlencoded"),
    (b"", None),
]
HEADERS = [{}, {"Authorization": "Bearer "}, {"Authorization": "Bearer x"}, {"Authorization": "Basic YWRtaW46YWRtaW4="},
           {"X-HTTP-Method-Override": "PUT"}]
QUERIES = ["", "?name=injected.json", "?name=../../injected.json"]
METHODS = ("POST", "PUT", "PATCH", "DELETE")
IDS = {"CodeSystem": ["cpt-97116-fragment", "icd-10-cm", "injected", "nope"],
       "ValueSet": ["cpt-gait-training", "injected-vs", "nope"],
       "ConceptMap": ["cpt-97116-to-icd-10-cm", "nope"]}
VARIABLE = re.compile(r"<(?:([a-z]+)(\([^)]*\))?:)?(\w+)>")


def concrete_paths(rule: str) -> list[str]:
    """`rule` with plausible values for its variables: every resource type of an any(...), existing
    and bogus ids, and for any other variable an existing file name, a bogus one and a path trick."""
    paths = [rule]
    while True:
        expanded = []
        for path in paths:
            found = VARIABLE.search(path)
            if found is None:
                expanded.append(path)
                continue
            converter, arguments, name = found.groups()
            if converter == "any":
                values = [v.strip().strip("'\"") for v in arguments.strip("()").split(",")]
            elif name == "resource_id":
                rtype = next((t for t in IDS if f"/{t}/" in path[:found.start()] + "/"), None)
                values = IDS[rtype] if rtype else sorted({i for ids in IDS.values() for i in ids})
            elif converter == "path":
                values = ["a/b", "Patient/1", "CodeSystem/injected"]
            else:
                values = ["injected.json", "nope", "..%2Finjected.json", "CodeSystem-cpt-97116-fragment.json"]
            expanded += [path[:found.start()] + v + path[found.end():] for v in values]
        if expanded == paths:
            return paths
        paths = expanded


def snapshot(client) -> dict:
    """What the server serves: its terminology capabilities, every searchset, the reads of the
    shipped and the injected resources, and a lookup of the injected code."""
    urls = ["/r4/metadata?mode=terminology", "/r5/metadata?mode=terminology"]
    urls += [f"/{v}/{t}" for v in ("r4", "r5") for t in ("CodeSystem", "ValueSet", "ConceptMap")]
    urls += [f"/r4/{t}/{i}" for t, ids in IDS.items() for i in ids if t != "CodeSystem" or i != "icd-10-cm"]
    urls += [f"/r4/CodeSystem/$lookup?system={INJECTED_URL}&code=x", f"/r4/CodeSystem/$lookup?system={CPT}&code=97116"]
    seen = {}
    for url in urls:
        response = client.get(url)
        seen[url] = (response.status_code, response.get_data(as_text=True))
    return seen


def all_requests(app):
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        for path in concrete_paths(rule.rule):
            for method in METHODS:
                for query in QUERIES:
                    for n, (body, content_type) in enumerate(BODIES):  # the headers in turn, not crossed
                        yield rule.rule, method, path + query, body, content_type, HEADERS[n % len(HEADERS)]


def test_the_walk_reaches_every_rule_with_every_method(app):
    rules = {r.rule for r in app.url_map.iter_rules()}
    walked = {(rule, method) for rule, method, *_ in all_requests(app)}
    assert walked == {(rule, method) for rule in rules for method in METHODS}
    assert {"/r4/CodeSystem/<resource_id>/$lookup", "/r5/<any(CodeSystem, ValueSet, ConceptMap):resource_type>/<resource_id>",
            "/fhir/<path:path>"} <= rules
    assert concrete_paths("/r4/<any(CodeSystem, ValueSet, ConceptMap):resource_type>/<resource_id>")[:4] == [
        "/r4/CodeSystem/cpt-97116-fragment", "/r4/CodeSystem/icd-10-cm", "/r4/CodeSystem/injected", "/r4/CodeSystem/nope"]


def test_the_snapshot_sees_added_content(service):
    """The comparison below can fail: content added under a request would change the snapshot."""
    before = snapshot(create_app(service=service).test_client())
    changed = snapshot(create_app(service=with_resources(service, [INJECTED, REPLACED_CPT], FhirVersion.R4)).test_client())
    differ = {url for url in before if before[url] != changed[url]}
    assert f"/r4/CodeSystem/$lookup?system={INJECTED_URL}&code=x" in differ
    assert "/r4/CodeSystem/injected" in differ or "/r4/CodeSystem" in differ


def test_no_request_changes_what_the_server_serves(service):
    app = create_app(service=service)  # the default configuration
    client = app.test_client()
    state = app.extensions["fhir_plugin"]
    served, registry = state.service, state.service.registry
    before = snapshot(client)
    opened = []  # (method, path, status) of 2xx answers outside the FHIR operations
    count = 0
    for rule, method, url, body, content_type, headers in all_requests(app):
        response = client.open(url, method=method, data=body, content_type=content_type, headers=headers)
        count += 1
        assert response.status_code < 500, (method, url, response.status_code, response.get_data(as_text=True)[:300])
        if response.status_code < 300 and "$" not in rule:
            opened.append((method, url, response.status_code))
    assert opened == []  # only the operations (which read their body, never keep it) answer these methods
    assert state.service is served and state.service.registry is registry
    assert snapshot(client) == before
