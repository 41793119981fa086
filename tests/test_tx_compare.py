"""The HL7 test runner's comparator, scrubbers and sorters (fhir_plugin.txtests), against hand-made
expected/actual pairs: one test per rule of hl7-tx-tests.md sections 4.6 and 5."""

from __future__ import annotations

import json

import pytest

from fhir_plugin.fhirversions import FhirVersion
from fhir_plugin.txtests import normalize
from fhir_plugin.txtests.compare import Comparer, TemplateError, check_response, lenient_base64
from fhir_plugin.txtests.jsontext import Number, dumps, loads


def J(value):
    """A Python literal as the runner sees JSON (numbers as their text)."""
    return loads(json.dumps(value))


def diff(expected, actual, **options):
    return Comparer(**options).compare(J(expected), J(actual))


# --- templates (5.5) ------------------------------------------------------------------------------

TEMPLATES = [
    ("$$", "anything at all", True),
    ("$choice:a|b$", "b", True),
    ("$choice:a|b$", "c", False),
    ("$choice:a|b$", "a|b", False),
    ("$choice:a|$", "", False),  # Java's split drops the trailing empty option
    ("$choice:|$", "", False),  # ... all of them: no option at all
    ("$choice:$", "", True),  # but splitting "" gives [""]
    ("$fragments:Unknown|code1X$", "the code 'CODE1x' is unknown here", True),
    ("$fragments:Unknown|code1X$", "the code 'code1x' is not known", False),
    ("$external:1$", "whatever the server says", True),
    ("$external:2:not found|code1x$", "Code code1x was not found", True),
    ("$external:2:not found|code1x$", "Code code1x is unknown", False),
    ("$external:3:http://x.org/y$", "see https://elsewhere", True),  # only 'http' survives the split
    ("$external:3:http://x.org/y$", "no link", False),
    ("$instant$", "2023-04-01T10:11:12Z", True),
    ("$instant$", "2023-04-01T10:11:12.123456+10:00", True),
    ("$instant$", "2023-04-01T10:11Z", False),
    ("$instant$", "2023-04-01T10:11:12", False),
    ("$instant$", "2023-04-01", False),
    ("$date$", "2023-04-01", True),
    ("$date$", "2023-04-01T00:00:00-05:00", True),
    ("$date$", "2023-04", False),
    ("$date$", "2023-13-01", False),
    ("$uuid$", "urn:uuid:8acdbfdc-e9d2-11ed-a05b-0242ac120003", True),
    ("$uuid$", "urn:uuid:8ACDBFDC-E9D2-11ED-A05B-0242AC120003", False),
    ("$uuid$", "8acdbfdc-e9d2-11ed-a05b-0242ac120003", False),
    ("$id$", "simple-all.5", True),
    ("$id$", "a" * 65, False),
    ("$id$", "a_b", False),
    ("$token$", "SimpleTestCodeSystem", True),
    ("$token$", "_x.y-z", True),
    ("$token$", "-x", False),
    ("$token$", "a b", False),
    ("$url$", "http://example.org/fhir/x?y=1&z=%20", True),
    ("$url$", "ftp://example.org/x", False),
    ("$url$", "http://exa mple.org", False),
    ("$string$", "a title", True),
    ("$string$", " a title", False),
    ("$string$", "a title\n", False),
    ("$semver$", "1.9.3", True),
    ("$semver$", "1.0.0-ballot.1+build.7", True),
    ("$semver$", "1.9", False),
    ("$semver$", "01.2.3", False),
]


@pytest.mark.parametrize(("template", "actual", "matches"), TEMPLATES)
def test_string_templates(template, actual, matches):
    assert Comparer().matches(actual, template) is matches


def test_version_template_is_the_servers_fhir_release():
    assert Comparer(version="4.0.1").matches("4.0.1", "$version$")
    assert not Comparer(version="5.0.0").matches("4.0.1", "$version$")
    assert Comparer(version=None).matches("anything", "$version$")


def test_version_suffix_is_substituted_in_plain_strings():
    expected = "http://hl7.org/fhir/administrative-gender|$version$"
    assert Comparer(version="4.0.1").matches("http://hl7.org/fhir/administrative-gender|4.0.1", expected)
    assert not Comparer(version="5.0.0").matches("http://hl7.org/fhir/administrative-gender|4.0.1", expected)


def test_unknown_template_is_an_error_of_the_test_file():
    with pytest.raises(TemplateError, match=r"\$nonsense\$"):
        Comparer().matches("x", "$nonsense$")


def test_templates_only_apply_to_strings():
    assert diff({"a": "$$"}, {"a": 5}) == 'a: expected "$$", got 5'
    assert diff({"a": "$$"}, {"a": True}) == 'a: expected "$$", got true'


# --- primitives (5.4) -----------------------------------------------------------------------------


def test_numbers_are_compared_by_their_text():
    comparer = Comparer()
    assert comparer.compare(loads('{"total": 5}'), loads('{"total": 5}')) is None
    assert comparer.compare(loads('{"total": 5}'), loads('{"total": 5.0}')) == "total: expected 5, got 5.0"
    assert comparer.compare(loads('{"v": 0.450}'), loads('{"v": 0.45}')) == "v: expected 0.450, got 0.45"


def test_a_number_is_not_a_string_nor_a_boolean_a_string():
    assert diff({"total": 5}, {"total": "5"}) == 'total: expected 5, got "5"'
    assert diff({"result": "true"}, {"result": True}) == 'result: expected "true", got true'
    assert diff({"a": None}, {"a": None}) is None
    assert diff({"a": None}, {"a": "x"}) == 'a: expected null, got "x"'


def test_numbers_keep_their_text_through_dumps():
    text = '{"a":0.450,"b":[1,2.50],"c":"0.450"}'
    assert dumps(loads(text)) == text
    assert loads(text)["a"] == Number("0.450")


def test_narrative_is_never_compared():
    assert diff({"div": "<div>one</div>"}, {"div": "<div xmlns='x'>two</div>"}) is None


def test_lenient_base64_decoding():
    assert lenient_base64("TWFu") == b"Man"
    assert lenient_base64("TWE") == b"Ma"
    assert lenient_base64("TW") == b"M"
    assert lenient_base64("T") == b""
    assert lenient_base64("T W\nF u") == b"Man"  # other characters are skipped
    assert lenient_base64("TWFu=TWFu") == b"Man"  # the first '=' ends it
    assert lenient_base64("-_") == lenient_base64("+/")


@pytest.mark.parametrize(("expected", "actual", "passes"), [
    ("Display 1", "Display1", True),  # the space is not base64, so both decode alike
    ("a.b", "ab", True),
    ("abc", "abd", True),  # the last character's low bits are dropped
    ("abc", "abg", False),
    ("ab", "ab=cd", True),
    ("a-b", "a+b", True),
    ("!!", "??", False),  # both decode to nothing: no match
])
def test_strings_fall_back_to_lenient_base64_equality(expected, actual, passes):
    assert (diff({"s": expected}, {"s": actual}) is None) is passes


# --- objects (5.3) --------------------------------------------------------------------------------


def test_extra_and_missing_properties():
    assert diff({"a": 1}, {"a": 1, "b": 2}) == "b: unexpected property, value 2"
    assert diff({"a": 1, "b": {"c": 2}}, {"a": 1}) == 'b: missing property, expected {"c":2}'
    assert diff({"x": {"a": 1}}, {"x": {"a": 1, "b": 2}}) == "x.b: unexpected property, value 2"


def test_fhir_comments_are_ignored():
    assert diff({"a": 1, "fhir_comments": ["e"]}, {"a": 1, "fhir_comments": ["a"]}) is None


def test_optional_properties_may_be_missing_but_are_compared_when_present():
    expected = {"$optional-properties$": ["date"], "date": "2023-04-01", "name": "x"}
    assert diff(expected, {"name": "x"}) is None
    assert diff(expected, {"name": "x", "date": "2020-01-01"}) == 'date: expected "2023-04-01", got "2020-01-01"'
    assert diff(expected, {"date": "2023-04-01"}) == 'name: missing property, expected "x"'
    assert diff({"$optional-properties$": ["*"], "a": 1, "b": 2}, {}) is None


def test_optional_marker_on_a_plain_object_property_does_not_make_it_optional():
    assert diff({"a": {"$optional$": True, "b": 1}}, {}) == 'a: missing property, expected {"$optional$":true,"b":1}'


def test_all_optional_arrays_may_be_missing():
    assert diff({"severity": "error", "expression": ["code"]}, {"severity": "error"}) is None
    assert diff({"a": []}, {}) is None
    assert diff({"a": [{"$optional$": False, "b": 1}]}, {}) is None  # any $optional$ value counts here
    assert diff({"a": [{"$optional$": True}, {"b": 1}]}, {}) == 'a: missing property, expected [{"$optional$":true},{"b":1}]'


def test_count_arrays_compares_only_lengths():
    expected = {"$count-arrays$": ["contains"], "contains": [{"code": "a"}, {"code": "b"}]}
    assert diff(expected, {"contains": [{"code": "x"}, {"other": 1}]}) is None
    assert diff(expected, {"contains": [{"code": "a"}]}) == "contains: expected 2 items, got 1"


def test_kinds_must_match():
    assert diff({"a": [1]}, {"a": {"b": 1}}) == 'a: expected an array [1], got an object {"b":1}'
    assert diff([1], {"a": 1}) == '(root): expected an array [1], got an object {"a":1}'


# --- arrays (5.4, 5.6) ----------------------------------------------------------------------------


def test_array_lengths():
    assert diff({"a": [1, 2]}, {"a": [1, 2, 3]}) == "a: expected 2 items, got 3"
    assert diff({"a": [{"b": 1}, {"$optional$": True, "c": 2}, {"d": 3}]}, {"a": [{"d": 3}]}) == \
        "a: expected 2 to 3 items, got 1"


def test_count_message_names_missing_and_unexpected_parameters():
    expected = {"parameter": [{"name": "result"}, {"name": "display"}, {"$optional$": True, "name": "version"}]}
    actual = {"parameter": [{"name": "result"}, {"name": "message"}, {"name": "code"}, {"name": "x"}]}
    assert diff(expected, actual) == "parameter: expected 2 to 3 items, got 4 (missing display; unexpected code, message, x)"


def test_array_items_are_compared_in_order():
    assert diff({"a": [1, 2]}, {"a": [2, 1]}) == "a[0]: expected 1, got 2"


def test_a_non_matching_optional_item_is_skipped():
    expected = {"a": [{"b": 1}, {"$optional$": True, "c": 2}, {"d": 3}]}
    assert diff(expected, {"a": [{"b": 1}, {"d": 3}]}) is None
    assert diff(expected, {"a": [{"b": 1}, {"c": 2}, {"d": 3}]}) is None


def test_optional_items_are_matched_greedily_without_backtracking():
    expected = {"a": [{"$optional$": True, "name": "x"}, {"name": "x"}]}
    assert diff(expected, {"a": [{"name": "x"}]}) == 'a[1]: no item left to match expected {"name":"x"}'


def test_running_out_inside_the_optional_tail_ends_the_comparison():
    expected = {"a": [{"b": 1}, {"$optional$": True, "c": 2}, {"$optional$": True, "d": 3}, {"e": 4}]}
    # {"e": 4} is required, but is never looked at once the actual items run out in the tail
    assert diff(expected, {"a": [{"b": 1}, {"c": 2}]}) is None
    assert diff({"a": [{"b": 1}, {"$optional$": True, "c": 2}, {"e": 4}]}, {"a": [{"b": 1}, {"c": 2}]}) == \
        'a[2]: no item left to match expected {"e":4}'


def test_an_emitted_optional_item_must_match():
    message_id = "http://hl7.org/fhir/StructureDefinition/operationoutcome-message-id"
    expected = {"extension": [{"$optional$": "!tx.fhir.org", "url": message_id, "valueString": "UNKNOWN_CODE"}]}
    assert diff(expected, {}) is None
    assert diff(expected, {"extension": [{"url": message_id, "valueString": "UNKNOWN_CODE"}]}) is None
    assert diff(expected, {"extension": [{"url": message_id, "valueString": "OTHER"}]}) == \
        f'extension[0]: unexpected item {{"url":"{message_id}","valueString":"OTHER"}}'


def test_tail_warning_is_recorded_but_does_not_fail():
    comparer = Comparer()
    expected = J({"parameter": [{"name": "result"}, {"$optional$": "warning:version", "name": "version"}]})
    assert comparer.compare(expected, J({"parameter": [{"name": "result"}]})) is None
    assert comparer.warnings == ["version"]


@pytest.mark.parametrize(("flag", "modes", "version", "optional"), [
    (True, {"general"}, "5.0.0", True),
    (False, {"general"}, "5.0.0", False),
    ("!tx.fhir.org", {"general"}, "5.0.0", True),
    ("!tx.fhir.org", {"general", "tx.fhir.org"}, "5.0.0", False),
    ("warning:version", {"general"}, "5.0.0", True),
    ("version:4", {"general"}, "4.0.1", True),
    ("version:4", {"general"}, "5.0.0", False),
    ("version:5", {"general"}, "5.0.0", True),
    ("flat", {"general"}, "5.0.0", False),
    ("flat", {"general", "flat"}, "5.0.0", True),
])
def test_optional_flags(flag, modes, version, optional):
    expected = {"a": [{"b": 1}, {"$optional$": flag, "c": 2}]}
    assert (diff(expected, {"a": [{"b": 1}]}, modes=modes, version=version) is None) is optional


def test_translate_relationship_optionality_follows_the_servers_version():
    expected = {"part": [{"name": "concept"}, {"$optional$": "version:5", "name": "equivalence"},
                         {"$optional$": "version:4", "name": "relationship"}]}
    r4_answer = {"part": [{"name": "concept"}, {"name": "equivalence"}]}
    r5_answer = {"part": [{"name": "concept"}, {"name": "relationship"}]}
    assert diff(expected, r4_answer, version="4.0.1") is None
    assert diff(expected, r5_answer, version="5.0.0") is None
    assert diff(expected, r5_answer, version="4.0.1") == 'part[1].name: expected "equivalence", got "relationship"'


# --- pattern mode (5.7) ---------------------------------------------------------------------------


def test_pattern_mode_ignores_extra_properties_and_matches_an_ordered_subsequence():
    expected = {"interaction": [{"code": "read"}, {"code": "search-type"}]}
    actual = {"interaction": [{"code": "read", "doc": "x"}, {"code": "vread"}, {"code": "search-type"}], "extra": 1}
    assert diff(expected, actual, pattern=True) is None
    assert diff({"interaction": [{"code": "search-type"}, {"code": "read"}]}, actual, pattern=True) == \
        'interaction[1]: no item (in order) matches expected {"code":"read"}'
    assert diff({"name": "x", "status": "active"}, {"name": "x"}, pattern=True) == 'status: missing property, expected "active"'
    assert diff({"a": 1}, {"a": 1, "b": 2}, pattern=False) == "b: unexpected property, value 2"


# --- scrubbing (5.1) ------------------------------------------------------------------------------

UNKNOWN = "http://example.org/StructureDefinition/server-private"
MESSAGE_ID = "http://hl7.org/fhir/StructureDefinition/operationoutcome-message-id"


def test_domain_resource_scrub():
    value_set = J({
        "resourceType": "ValueSet", "text": {"div": "<div/>"}, "meta": {"versionId": "1"},
        "extension": [{"url": UNKNOWN, "valueString": "x"}, {"url": "local", "valueString": "kept"}],
        "compose": {"extension": [{"url": UNKNOWN}], "include": [{"extension": [{"url": UNKNOWN}]}]},
        "expansion": {"contains": [{"code": "a", "_display": {"extension": [{"url": UNKNOWN}]},
                                    "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/valueset-label",
                                                   "extension": [{"url": UNKNOWN}, {"url": "sub"}]}]}]},
    })
    normalize.scrub_domain_resource(value_set)
    assert value_set == J({
        "resourceType": "ValueSet",
        "extension": [{"url": "local", "valueString": "kept"}],
        # compose's own extensions go, the walk does not go below it
        "compose": {"include": [{"extension": [{"url": UNKNOWN}]}]},
        "expansion": {"contains": [{"code": "a", "extension": [
            {"url": "http://hl7.org/fhir/StructureDefinition/valueset-label", "extension": [{"url": "sub"}]}]}]},
    })


def test_operation_outcome_scrub():
    outcome = J({"resourceType": "OperationOutcome", "text": {"div": "<div/>"}, "issue": [
        {"severity": "error", "code": "exception", "diagnostics": "stack trace"},
        {"severity": "error", "code": "invalid", "details": {"text": "bad"}, "diagnostics": "internal",
         "extension": [{"url": MESSAGE_ID, "valueString": "BAD"}, {"url": UNKNOWN}]},
        {"severity": "information", "code": "informational", "details": {"text": "i"},
         "diagnostics": "X-Request-Id: txTests:a/b"},
    ]})
    normalize.scrub_operation_outcome(outcome)
    assert outcome == J({"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "invalid", "details": {"text": "bad"},
         "extension": [{"url": MESSAGE_ID, "valueString": "BAD"}]},
        {"severity": "information", "code": "informational", "details": {"text": "i"},
         "diagnostics": "X-Request-Id: txTests:a/b"},
    ]})


def test_parameters_scrub():
    parameters = J({"resourceType": "Parameters", "meta": {"lastUpdated": "x"}, "extension": [{"url": UNKNOWN}],
                    "parameter": [
                        {"name": "diagnostics", "valueString": "took 3 ms"},
                        {"name": "issues", "resource": {"resourceType": "OperationOutcome", "issue": [
                            {"severity": "error", "code": "x", "details": {"text": "t"}, "diagnostics": "d"}]}},
                        {"name": "vs", "resource": {"resourceType": "ValueSet", "text": {"div": "<div/>"}}},
                        {"name": "result", "valueBoolean": True}]})
    normalize.scrub_parameters(parameters)
    assert parameters == J({"resourceType": "Parameters", "extension": [{"url": UNKNOWN}], "parameter": [
        {"name": "issues", "resource": {"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "x", "details": {"text": "t"}}]}},
        {"name": "vs", "resource": {"resourceType": "ValueSet"}},
        {"name": "result", "valueBoolean": True}]})


# --- sorting (5.2) --------------------------------------------------------------------------------


def _names(parameters):
    return [p["name"] for p in parameters["parameter"]]


def test_parameters_sort_by_name_with_property_and_designation_tie_breaks():
    parameters = J({"resourceType": "Parameters", "parameter": [
        {"name": "version", "valueString": "1"},
        {"name": "property", "part": [{"name": "code", "valueCode": "parent"}, {"name": "value", "valueCode": "b"}]},
        {"name": "property", "part": [{"name": "value", "valueCode": "A"}, {"name": "code", "valueCode": "Parent"}]},
        {"name": "property", "part": [{"name": "code", "valueCode": "child"}, {"name": "value", "valueCode": "z"}]},
        {"name": "designation", "part": [{"name": "value", "valueString": "b"}]},
        {"name": "designation", "part": [{"name": "language", "valueCode": "en"}, {"name": "value", "valueString": "a"}]},
        {"name": "designation", "part": [{"name": "value", "valueString": "a"}]},
        {"name": "code", "valueCode": "x"},
    ]})
    normalize.sort_parameters(parameters)
    assert _names(parameters) == ["code", "designation", "designation", "designation",
                                  "property", "property", "property", "version"]
    designations = [[(p["name"], str(next(iter(v for k, v in p.items() if k.startswith("value"))))) for p in d["part"]]
                    for d in parameters["parameter"][1:4]]
    assert designations == [[("value", "a")], [("value", "b")], [("language", "en"), ("value", "a")]]
    properties = [[str(part.get("valueCode")) for part in p["part"]] for p in parameters["parameter"][4:7]]
    assert properties == [["child", "z"], ["Parent", "A"], ["parent", "b"]]  # parts sorted too


def test_parts_are_only_sorted_when_their_parameter_is_compared():
    single = J({"resourceType": "Parameters", "parameter": [
        {"name": "match", "part": [{"name": "relationship"}, {"name": "concept"}]}]})
    normalize.sort_parameters(single)
    assert [p["name"] for p in single["parameter"][0]["part"]] == ["relationship", "concept"]
    two = J({"resourceType": "Parameters", "parameter": [
        {"name": "result", "valueBoolean": True},
        {"name": "match", "part": [{"name": "relationship"}, {"name": "concept"}]}]})
    normalize.sort_parameters(two)
    assert [p["name"] for p in two["parameter"][0]["part"]] == ["concept", "relationship"]


def test_property_ties_without_a_value_keep_the_servers_order():
    parameters = J({"resourceType": "Parameters", "parameter": [
        {"name": "property", "part": [{"name": "code", "valueCode": "p"}, {"name": "value", "valueString": "2"}]},
        {"name": "property", "part": [{"name": "code", "valueCode": "p"}]},
        {"name": "property", "part": [{"name": "code", "valueCode": "p"}, {"name": "value", "valueString": "1"}]},
    ]})
    normalize.sort_parameters(parameters)
    values = [p["part"][1]["valueString"] if len(p["part"]) > 1 else None for p in parameters["parameter"]]
    assert values == ["2", None, "1"]  # "1" < "2" is never compared directly: stable, as in Java


def test_nested_issues_are_sorted_and_messages_split():
    parameters = J({"resourceType": "Parameters", "parameter": [
        {"name": "message", "valueString": "zeta; alpha; mu"},
        {"name": "issues", "resource": {"resourceType": "OperationOutcome", "issue": [
            {"severity": "warning", "code": "a", "details": {"text": "w"}},
            {"severity": "information", "code": "b"},
            {"severity": "error", "code": "invalid", "expression": ["Coding.display"], "details": {"text": "2"}},
            {"severity": "error", "code": "invalid", "expression": ["Coding.code"], "details": {"text": "3"}},
            {"severity": "error", "code": "invalid", "expression": ["Coding.code"], "details": {"text": "1"}},
        ]}}]})
    normalize.sort_parameters(parameters)
    issues = parameters["parameter"][0]["resource"]["issue"]
    assert [(i["severity"], i.get("details", {}).get("text")) for i in issues] == [
        ("error", "1"), ("error", "3"), ("error", "2"), ("information", None), ("warning", "w")]
    assert parameters["parameter"][1] == {"name": "message", "valueString": "alpha; mu; zeta"}


def test_value_set_sort():
    value_set = J({"resourceType": "ValueSet",
                   "extension": [{"url": "b"}, {"url": "a", "extension": [{"url": "y"}, {"url": "x"}]}],
                   "expansion": {
                       "parameter": [{"name": "used-codesystem", "valueUri": "b|1"}, {"name": "excludeNested", "valueBoolean": True},
                                     {"name": "used-codesystem", "valueUri": "a|1"}],
                       "property": [{"code": "z", "uri": "http://u/2"}, {"code": "y", "uri": "http://u/1"}, {"code": "x"}],
                       "contains": [
                           {"system": "s1", "code": "b", "contains": [{"code": "b2"}, {"code": "b1"}],
                            "designation": [{"language": "fr", "value": "x"}, {"language": "de", "value": "y"}],
                            "property": [{"code": "q"}, {"code": "p"}]},
                           {"system": "s2", "code": "a"}]}})
    normalize.sort_value_set(value_set)
    assert [e["url"] for e in value_set["extension"]] == ["a", "b"]
    assert [e["url"] for e in value_set["extension"][0]["extension"]] == ["x", "y"]
    expansion = value_set["expansion"]
    assert [(p["name"], p.get("valueUri")) for p in expansion["parameter"]] == [
        ("excludeNested", None), ("used-codesystem", "a|1"), ("used-codesystem", "b|1")]
    assert [p["code"] for p in expansion["property"]] == ["x", "y", "z"]  # no uri first
    assert [c["code"] for c in expansion["contains"]] == ["a", "b"]  # by code, whatever the system
    b = expansion["contains"][1]
    assert [c["code"] for c in b["contains"]] == ["b1", "b2"]
    assert [d["language"] for d in b["designation"]] == ["de", "fr"]
    assert [p["code"] for p in b["property"]] == ["p", "q"]


# --- one response (4.6) ---------------------------------------------------------------------------

PARAMETERS_OK = {"resourceType": "Parameters", "parameter": [{"name": "result", "valueBoolean": True}]}


def check(operation, http_code, expected, status, body, version=FhirVersion.R5):
    return check_response(operation, http_code, J(expected), status, json.dumps(body).encode(), version)


def test_a_matching_answer_passes():
    assert check("validate-code", "2xx", PARAMETERS_OK, 200, PARAMETERS_OK).message is None


def test_the_status_class_is_checked_even_when_the_body_matches():
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found"}]}
    assert check("expand", "4xx", outcome, 404, outcome).message is None
    assert check("expand", "4xx", outcome, 500, outcome).message == "HTTP status: expected 4xx, got 500"


def test_a_2xx_error_outcome_is_compared_as_an_error_with_its_2xx_status():
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found"}]}
    assert check("expand", "4xx", outcome, 200, outcome).message == "HTTP status: expected 4xx, got 200"
    warning_only = {"resourceType": "OperationOutcome", "issue": [{"severity": "warning", "code": "x"}]}
    assert check("expand", "2xx", {"resourceType": "ValueSet"}, 200, warning_only).message == \
        "expected a ValueSet response, got OperationOutcome (HTTP 200)"


def test_an_error_without_an_operation_outcome_fails():
    verdict = check_response("lookup", "4xx", J({"resourceType": "OperationOutcome"}), 404, b"Not Found", FhirVersion.R5)
    assert verdict.message == "HTTP 404 without an OperationOutcome body (not FHIR JSON)"


def test_an_error_answer_reports_status_and_first_difference():
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-supported"}]}
    assert check("validate-code", "2xx", PARAMETERS_OK, 405, outcome).message == \
        'HTTP status: expected 2xx, got 405; first difference: resourceType: expected "Parameters", got "OperationOutcome"'


def test_top_level_outcome_issues_are_not_sorted():
    expected = {"resourceType": "OperationOutcome", "issue": [{"severity": "warning", "code": "b"},
                                                              {"severity": "error", "code": "a"}]}
    assert check("expand", "4xx", expected, 400, expected).message is None
    swapped = {"resourceType": "OperationOutcome", "issue": expected["issue"][::-1]}
    assert check("expand", "4xx", expected, 400, swapped).message == 'issue[0].severity: expected "warning", got "error"'


def test_cs_validate_code_errors_are_compared_unscrubbed():
    expected = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "invalid", "details": {"text": "t"}}]}
    answer = {"resourceType": "OperationOutcome", "text": {"div": "<div/>"},
              "issue": [{"severity": "error", "code": "invalid", "details": {"text": "t"}, "diagnostics": "detail"}]}
    assert check("validate-code", "4xx", expected, 400, answer).message is None
    assert check("cs-validate-code", "4xx", expected, 400, answer).message == \
        'issue[0].diagnostics: unexpected property, value "detail"'


def test_success_answers_are_scrubbed_and_sorted_before_comparing():
    expected = {"resourceType": "Parameters", "parameter": [
        {"name": "display", "valueString": "D"}, {"name": "result", "valueBoolean": True}]}
    answer = {"resourceType": "Parameters", "meta": {"versionId": "2"}, "parameter": [
        {"name": "result", "valueBoolean": True}, {"name": "diagnostics", "valueString": "x"},
        {"name": "display", "valueString": "D"}]}
    assert check("validate-code", "2xx", expected, 200, answer).message is None


def test_an_r4_answer_is_converted_to_r5_before_comparing():
    expected = {"resourceType": "ValueSet", "expansion": {
        "property": [{"code": "prop", "uri": "http://u/prop"}],
        "contains": [{"code": "a", "property": [{"code": "prop", "valueCode": "x"}]}]}}
    xver = "http://hl7.org/fhir/5.0/StructureDefinition/extension-ValueSet.expansion."
    r4_answer = {"resourceType": "ValueSet", "expansion": {
        "extension": [{"url": xver + "property", "extension": [{"url": "code", "valueCode": "prop"},
                                                              {"url": "uri", "valueUri": "http://u/prop"}]}],
        "contains": [{"code": "a", "extension": [{"url": xver + "contains.property", "extension": [
            {"url": "code", "valueCode": "prop"}, {"url": "value", "valueCode": "x"}]}]}]}}
    assert check("expand", "2xx", expected, 200, r4_answer, FhirVersion.R4).message is None
    # an R5 endpoint answering with the extensions is not converted: they are scrubbed away
    assert check("expand", "2xx", expected, 200, r4_answer, FhirVersion.R5).message == \
        'expansion.contains[0].property: missing property, expected [{"code":"prop","valueCode":"x"}]'


def test_malformed_answers_are_differences_not_crashes():
    expected = {"resourceType": "ValueSet", "expansion": {"contains": [{"code": "a"}]}}
    answer = {"resourceType": "ValueSet", "expansion": {"contains": [{"code": "a", "contains": 5}, "x"]}}
    assert check("expand", "2xx", expected, 200, answer).message == "expansion.contains: expected 1 items, got 2"
    assert check("lookup", "2xx", PARAMETERS_OK, 200, {"resourceType": "Parameters", "parameter": "oops"}).message == \
        'parameter: expected an array [{"name":"result","valueBoolean":true}], got a primitive "oops"'
    only_diagnostics = {"resourceType": "Parameters", "parameter": [{"name": "diagnostics", "valueString": "x"}]}
    assert check("lookup", "2xx", PARAMETERS_OK, 200, only_diagnostics).message == \
        'parameter: missing property, expected [{"name":"result","valueBoolean":true}]'
