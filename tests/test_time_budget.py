"""The time budget of a request (FHIR_PLUGIN_TIME_BUDGET_MS, terminology.budget): work that runs
past it stops with a 400 too-costly OperationOutcome, keeps nothing half-done, and its answer is
not kept for the next identical request."""

from __future__ import annotations

import time
import uuid

import pytest

from fhir_plugin import create_app
from fhir_plugin.config import load_settings
from fhir_plugin.errors import OverBudget
from fhir_plugin.terminology import budget
from fhir_plugin.terminology.entries import Coding
from fhir_plugin.terminology.models import ExpandRequest, LookupRequest, ValidateCodeRequest
from helpers import FHIR_JSON, MESSAGE_ID_URL, body_of, param, parameters

ICD = "http://hl7.org/fhir/sid/icd-10-cm"


def whole_icd(tag: str) -> dict:
    """A value set of all of ICD-10-CM that no other test evaluates (its exclude is unique), so
    that its evaluation is not already kept: evaluating 98,000 members takes far more than 1 ms."""
    return {"resourceType": "ValueSet", "status": "active",
            "compose": {"include": [{"system": ICD}], "exclude": [{"system": ICD, "concept": [{"code": tag}]}]}}


def over_budget_outcome(milliseconds: int) -> dict:
    return {"resourceType": "OperationOutcome", "issue": [{
        "extension": [{"url": MESSAGE_ID_URL, "valueString": "REQUEST_OVER_BUDGET"}],
        "severity": "error", "code": "too-costly",
        "details": {"text": f"The request was stopped after its time budget of {milliseconds} ms; this server "
                            "answers a request in at most that time (ask for less: a filter, a count, fewer codes)"}}]}


def spent(milliseconds: int = 1):
    """A budget that is already spent when the work starts: the first look at the clock stops it."""
    context = budget.time_budget(milliseconds)
    context.__enter__()
    time.sleep(milliseconds / 1000 + 0.005)
    return context


def test_the_default_is_five_seconds():
    assert load_settings(environ={})["FHIR_PLUGIN_TIME_BUDGET_MS"] == 5000
    assert load_settings(environ={"FHIR_PLUGIN_TIME_BUDGET_MS": "250"})["FHIR_PLUGIN_TIME_BUDGET_MS"] == 250


def test_checked_passes_every_item_in_order_with_and_without_a_budget():
    items = [str(i) for i in range(5000)]
    assert list(budget.checked(items)) == items
    with budget.time_budget(60_000):
        assert list(budget.checked(iter(items))) == items
        assert list(budget.checked([])) == []


def test_checked_stops_once_the_budget_is_spent():
    seen = []
    with budget.time_budget(1):
        with pytest.raises(OverBudget) as raised:
            for index, item in enumerate(budget.checked(range(10 * budget.STRIDE))):
                if index == budget.STRIDE - 1:
                    time.sleep(0.01)
                seen.append(item)
    assert len(seen) == budget.STRIDE  # stopped at the next look at the clock
    assert (raised.value.status, raised.value.issue_code, raised.value.message_id) == (400, "too-costly",
                                                                                       "REQUEST_OVER_BUDGET")
    assert raised.value.fields == {"milliseconds": 1}


def test_no_budget_never_stops_and_budgets_nest():
    with budget.time_budget(0):
        time.sleep(0.002)
        budget.check()
    with budget.time_budget(60_000):
        with budget.time_budget(1):
            time.sleep(0.005)
            with pytest.raises(OverBudget):
                budget.check()
        budget.check()  # the outer budget again


def test_a_budget_inside_another_never_reaches_past_it():
    """A batch Bundle's entries each open the budget of a single request inside the Bundle's one."""
    for inner in (60_000, 0, None):
        with budget.time_budget(1):
            with budget.time_budget(inner):
                time.sleep(0.005)
                with pytest.raises(OverBudget) as raised:
                    budget.check()
        assert raised.value.fields == {"milliseconds": 1}  # the budget that ran out is named


def test_an_expansion_past_its_budget_stops_and_keeps_nothing(service):
    tag = f"budget-{uuid.uuid4()}"
    request = ExpandRequest(value_set=whole_icd(tag), filter="gait", count=3)
    kept = {s.name: s.size for s in service.registry.caches.stats()}
    context = spent()
    try:
        with pytest.raises(OverBudget) as raised:
            service.expand(request)
    finally:
        context.__exit__(None, None, None)
    assert raised.value.text == over_budget_outcome(1)["issue"][0]["details"]["text"]
    assert {s.name: s.size for s in service.registry.caches.stats()} == kept  # no half evaluation kept
    result = service.expand(request)  # without a budget: answered in full
    assert (result.total, [e.code for e in result.contains]) == (6, ["R26", "R26.0", "R26.1"])


def test_a_lookup_has_no_long_loop_and_is_answered_even_with_a_spent_budget(service):
    context = spent()
    try:
        result = service.lookup(LookupRequest(system=ICD, code="M62.81"))
    finally:
        context.__exit__(None, None, None)
    assert result.display == "Muscle weakness (generalized)"


def test_a_batch_past_its_budget_stops_as_a_whole(service):
    requests = [ValidateCodeRequest(value_set=whole_icd(f"batch-{uuid.uuid4()}"), codings=(Coding(ICD, "R26.2"),))
                for _ in range(3)]
    context = spent()
    try:
        with pytest.raises(OverBudget):
            service.batch_validate(requests)
    finally:
        context.__exit__(None, None, None)
    assert [r.result for r in service.batch_validate(requests)] == [True, True, True]


@pytest.mark.parametrize("version", ["r4", "r5"])
def test_over_budget_over_http_is_too_costly_and_not_kept(service, version):
    app = create_app({"FHIR_PLUGIN_TIME_BUDGET_MS": 1}, service=service)
    client = app.test_client()
    body = parameters(param("valueSet", resource=whole_icd(f"http-{uuid.uuid4()}")),
                      param("code", valueCode="R26.2"), param("system", valueUri=ICD))
    response = client.post(f"/{version}/ValueSet/$validate-code", json=body)
    assert (response.status_code, response.mimetype) == (400, FHIR_JSON)
    assert body_of(response) == over_budget_outcome(1)
    app.extensions["fhir_plugin"].settings["FHIR_PLUGIN_TIME_BUDGET_MS"] = 0
    again = client.post(f"/{version}/ValueSet/$validate-code", json=body)  # the same request, not a kept 400
    assert again.status_code == 200
    assert body_of(again)["parameter"][0] == {"name": "result", "valueBoolean": True}
