"""Runs over the API: start, validate, read, events, cancel, one error shape."""

from __future__ import annotations

import pytest

from workflows.engine import run_advance
from workflows.models import Run

pytestmark = pytest.mark.django_db


def test_an_operator_starts_a_run_of_a_workflow(as_operator, people) -> None:
    response = as_operator.post("/runs", {"workflow": "people", "context": {"name": "Ada"}})

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "queued" and body["workflow"] == "people"
    assert body["context"] == {"name": "Ada"} and body["current_node"] == "gate"
    assert body["requester"] == "operator" and body["steps"] == []
    assert Run.objects.get(pk=body["id"]).requester.username == "operator"


def test_a_missing_input_is_named_and_nothing_starts(as_operator, people) -> None:
    response = as_operator.post("/runs", {"workflow": "people", "context": {"age": "x"}})

    assert response.status_code == 400
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"context.name", "context.age"}
    assert not Run.objects.exists()


def test_unknown_body_fields_are_refused_by_name(as_operator, people) -> None:
    response = as_operator.post(
        "/runs", {"workflow": "people", "context": {"name": "A"}, "priority": "high"}
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "priority"
    assert not Run.objects.exists()


def test_an_unknown_workflow_is_named(as_operator) -> None:
    response = as_operator.post("/runs", {"workflow": "nope", "context": {}})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "workflow"


def test_the_same_idempotency_key_returns_the_same_run(as_operator, people) -> None:
    body = {"workflow": "people", "context": {"name": "Ada"}}
    first = as_operator.post("/runs", body, **{"Idempotency-Key": "order-17"})
    again = as_operator.post("/runs", body, **{"Idempotency-Key": "order-17"})
    other = as_operator.post("/runs", body, **{"Idempotency-Key": "order-18"})

    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 201)
    assert first.json()["id"] == again.json()["id"] != other.json()["id"]
    assert Run.objects.count() == 2


def test_an_idempotency_key_reused_for_another_request_is_a_409(as_operator, people) -> None:
    """The key is bound to what it asked for: another context, mode or plan
    under the same key is refused, never answered with the first run."""
    key = {"Idempotency-Key": "order-19"}
    first = as_operator.post("/runs", {"workflow": "people", "context": {"name": "Ada"}}, **key)
    other_context = as_operator.post(
        "/runs", {"workflow": "people", "context": {"name": "Bob"}}, **key
    )
    other_mode = as_operator.post(
        "/runs", {"workflow": "people", "context": {"name": "Ada"}, "mode": "interactive"}, **key
    )
    same = as_operator.post("/runs", {"context": {"name": "Ada"}, "workflow": "people"}, **key)

    run_id = first.json()["id"]
    for refused in (other_context, other_mode):
        assert refused.status_code == 409, refused.json()
        assert refused.json()["errors"][0]["field"] == "Idempotency-Key"
        assert f"already started run {run_id} for a different request" in refused.json()["detail"]
    assert (same.status_code, same.json()["id"]) == (200, run_id)
    assert Run.objects.count() == 1


def test_runs_are_listed_by_page_and_filtered(as_operator, people) -> None:
    for name in ("a", "b", "c"):
        as_operator.post("/runs", {"workflow": "people", "context": {"name": name}})

    page = as_operator.get("/runs?limit=2&offset=0").json()
    assert page["count"] == 3 and len(page["items"]) == 2
    assert as_operator.get("/runs?status=waiting").json()["count"] == 0
    assert as_operator.get("/runs?workflow=people&status=queued").json()["count"] == 3
    bad = as_operator.get("/runs?status=bogus")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "status"


def test_events_after_a_seq_come_oldest_first(as_operator, people) -> None:
    run_id = as_operator.post("/runs", {"workflow": "people", "context": {"name": "Ada"}}).json()[
        "id"
    ]
    run_advance(run_id=run_id)

    events = as_operator.get(f"/runs/{run_id}/events").json()["items"]
    assert [e["type"] for e in events] == ["run.created", "run.running", "run.paused"]
    assert [e["seq"] for e in events] == [1, 2, 3]
    later = as_operator.get(f"/runs/{run_id}/events?after=2").json()["items"]
    assert [e["seq"] for e in later] == [3] and later[0]["hash"] == events[2]["hash"]


def test_cancel_twice_is_a_conflict(as_operator, people) -> None:
    run_id = as_operator.post("/runs", {"workflow": "people", "context": {"name": "Ada"}}).json()[
        "id"
    ]

    first = as_operator.post(f"/runs/{run_id}/cancel", {"reason": "typo"})
    second = as_operator.post(f"/runs/{run_id}/cancel")

    assert first.status_code == 200 and first.json()["status"] == "cancelled"
    assert second.status_code == 409 and "cancelled" in second.json()["detail"]


def test_a_missing_run_is_404_in_the_error_shape(as_operator) -> None:
    response = as_operator.get("/runs/999999")
    assert response.status_code == 404 and set(response.json()) == {"detail", "errors"}


def test_plans_validate_reports_every_problem(as_operator) -> None:
    response = as_operator.post(
        "/plans/validate",
        {
            "plan": {
                "nodes": [
                    {"id": "a", "action": "no.such"},
                    {"id": "b", "action": "files.list", "params": {"path": "x", "bogus": 1}},
                ]
            }
        },
    )
    body = response.json()
    assert response.status_code == 200 and body["valid"] is False
    assert {(e["node"], e["field"]) for e in body["errors"]} >= {
        ("a", "action"),
        ("b", "params.bogus"),
    }


def test_workflows_are_created_and_versioned(as_operator) -> None:
    from tests.api.conftest import PEOPLE_SPEC

    created = as_operator.post("/workflows", {"spec": PEOPLE_SPEC})
    assert created.status_code == 201 and created.json()["version"] == 1
    changed = {**PEOPLE_SPEC, "title": "Greet people warmly"}
    updated = as_operator.put("/workflows/people", {"spec": changed})
    assert updated.status_code == 200 and updated.json()["version"] == 2
    assert as_operator.get("/workflows/people").json()["title"] == "Greet people warmly"
    assert as_operator.get("/workflows").json()["count"] == 1
    bad = as_operator.post("/workflows", {"source": "slug: x\ntitle: [unclosed"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "spec"


def test_actions_list_the_registry(as_auditor) -> None:
    body = as_auditor.get("/actions?limit=500").json()
    names = {a["name"] for a in body["items"]}
    assert "files.list" in names and body["count"] == len(names)
    files_list = next(a for a in body["items"] if a["name"] == "files.list")
    assert files_list["params_schema"]["type"] == "object"


def test_health_needs_no_auth(client) -> None:
    body = client.get("/api/v1/health").json()
    assert body["status"] == "ok" and body["database"] is True


def test_the_run_list_loads_what_its_summaries_show_in_one_query(
    operator, django_assert_num_queries
) -> None:
    """`runs_list` loads only what `run_summary` reads (no plan, context or
    spec decoded per row): each summary equals the one of the run loaded
    whole, and a page of them costs its one query, not one more per row."""
    from tests.admin.support import GATE_SPEC
    from workflows.plans import parse_spec_text
    from workflows.selectors import run_summary, runs_list
    from workflows.services import run_create, workflow_create

    workflow = workflow_create(
        raw_spec=parse_spec_text(GATE_SPEC), source=GATE_SPEC, actor=operator
    )
    parent = run_create(workflow=workflow, context={"employee_name": "Ada"}, requester=operator)
    run_advance(run_id=parent.pk)
    child = run_create(workflow=workflow, context={"employee_name": "Bo"}, requester=operator)
    Run.objects.filter(pk=child.pk).update(
        parent=parent, parent_node="hire[0]/gate", forked_at_seq=2, error="boom"
    )

    with django_assert_num_queries(1):
        runs = list(runs_list())
        listed = [run_summary(run) for run in runs]
    assert {"plan", "context", "graph", "resume_grant"} <= runs[0].get_deferred_fields()
    assert "spec" in runs[0].workflow.get_deferred_fields()
    whole = [run_summary(run) for run in Run.objects.order_by("-created_at", "-id")]
    assert listed == whole
    assert [s["id"] for s in listed] == [child.pk, parent.pk]
    assert listed[0]["workflow"] == "gated" and listed[0]["requester"] == operator.username
    assert listed[0]["parent"] == parent.pk and listed[0]["error"] == "boom"
    assert listed[1]["status"] == "waiting" and listed[1]["current_node"] == "gate"
