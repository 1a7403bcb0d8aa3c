"""Batches (all or nothing, errors by row and column) and schedules."""

from __future__ import annotations

import pytest
from django_q.models import Schedule

from tests.api.conftest import PEOPLE_SPEC, api_for
from workflows.batches import BatchInvalid, rows_from_csv, runs_start_batch
from workflows.events import verify_all
from workflows.models import Event, Run, RunBatch, WorkflowSchedule
from workflows.schedules import schedule_save
from workflows.services import workflow_create
from workflows.tasks import start_scheduled_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(operator):  # type: ignore[no-untyped-def]
    return workflow_create(raw_spec=PEOPLE_SPEC, actor=operator)


def test_a_csv_batch_starts_every_row(people, operator) -> None:
    rows = rows_from_csv("name,age\nAda,36\nBob,\n", people.inputs_schema)
    assert rows == [{"name": "Ada", "age": 36}, {"name": "Bob"}]

    batch = runs_start_batch(workflow=people, rows=rows, actor=operator, source="csv")

    runs = list(Run.objects.filter(batch=batch).order_by("id"))
    assert [r.context for r in runs] == rows and batch.size == 2
    assert all(Event.objects.get(run=r, seq=1).data["batch"] == batch.pk for r in runs)
    assert Event.objects.get(type="batch.started").data["runs"] == [r.pk for r in runs]
    assert verify_all() == []


def test_one_bad_row_starts_nothing_and_every_problem_is_named(people, operator) -> None:
    rows = rows_from_csv("name,age\nAda,36\n,x\nCy,7\n", people.inputs_schema)
    with pytest.raises(BatchInvalid) as caught:
        runs_start_batch(
            workflow=people, rows=rows + [{"nick": "z", "name": "Dee"}], actor=operator
        )
    problems = {(e.row, e.column) for e in caught.value.errors}
    assert problems == {(2, "name"), (2, "age"), (4, "nick")}
    assert not Run.objects.exists() and not RunBatch.objects.exists()


def test_csv_header_and_size_limits(people, operator) -> None:
    with pytest.raises(BatchInvalid) as caught:
        rows_from_csv("name,colour\nAda,red\n", people.inputs_schema)
    assert [(e.row, e.column) for e in caught.value.errors] == [(0, "colour")]
    with pytest.raises(BatchInvalid) as caught:
        runs_start_batch(workflow=people, rows=[{"name": "x"}] * 101, actor=operator)
    assert caught.value.errors[0].column == "rows"
    assert not Run.objects.exists()


def test_batch_over_the_api_reports_rows_and_columns(people, operator) -> None:
    api = api_for(operator)
    bad = api.post("/runs/batch", {"workflow": "people", "csv": "name,age\nAda,old\n"})
    assert bad.status_code == 400
    assert [(e["row"], e["field"], e["message"]) for e in bad.json()["errors"]] == [
        (1, "age", "'old' is not of type 'integer'")
    ]
    good = api.post("/runs/batch", {"workflow": "people", "rows": [{"name": "A"}, {"name": "B"}]})
    assert good.status_code == 201 and len(good.json()["runs"]) == 2


def test_a_schedule_keeps_its_q2_schedule_and_records_its_runs(people, operator) -> None:
    schedule = schedule_save(
        schedule=WorkflowSchedule(
            name="hourly",
            workflow=people,
            kind="interval",
            minutes=60,
            context={"name": "Tick"},
            owner=operator,
        ),
        actor=operator,
    )
    q = Schedule.objects.get(pk=schedule.q_schedule_id)
    assert (q.func, q.schedule_type, q.minutes) == (
        "workflows.tasks.start_scheduled_run",
        Schedule.MINUTES,
        60,
    )

    run_id = start_scheduled_run(schedule.pk)

    run = Run.objects.get(pk=run_id)
    assert (run.schedule_id, run.requester, run.context) == (
        schedule.pk,
        operator,
        {"name": "Tick"},
    )
    assert Event.objects.get(run=run, seq=1).data["schedule"] == "hourly"
    schedule.kind, schedule.cron, schedule.minutes = "cron", "*/5 * * * *", None
    schedule_save(schedule=schedule, actor=operator)
    q.refresh_from_db()
    assert (q.schedule_type, q.cron) == (Schedule.CRON, "*/5 * * * *")
    schedule.enabled = False
    schedule_save(schedule=schedule, actor=operator)
    assert not Schedule.objects.filter(pk=q.pk).exists()
    assert start_scheduled_run(schedule.pk) is None
    assert [e.type for e in Event.objects.filter(type__startswith="schedule.")] == [
        "schedule.created",
        "schedule.updated",
        "schedule.updated",
    ]


def test_the_schedule_admin_refuses_a_bad_cron(people, operator, client) -> None:
    client.force_login(operator)
    response = client.post(
        "/admin/workflows/workflowschedule/add/",
        {
            "name": "bad",
            "workflow": people.pk,
            "kind": "cron",
            "cron": "every day",
            "context": '{"name": "x"}',
            "mode": "",
            "enabled": "on",
        },
    )
    assert response.status_code == 200
    assert "not a valid cron expression" in response.content.decode()
    assert not WorkflowSchedule.objects.exists()
