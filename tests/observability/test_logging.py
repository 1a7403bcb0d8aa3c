"""Logs a machine can read: JSON lines, correlation ids in requests, workers and calls out."""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.test import Client

from agentos_site import correlation
from observability.logging import JsonFormatter
from tests.support.fixtures import Cluster, worker_env
from tests.support.waiting import wait_for
from workflows.models import Run
from workflows.services import run_create, workflow_create


def json_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.fixture
def json_log():  # type: ignore[no-untyped-def]
    """Capture the root logger's lines through the JSON formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)


def test_a_json_line_carries_the_bound_fields_and_the_traceback(json_log) -> None:
    log = logging.getLogger("agentos.test")
    with correlation.bound(correlation_id="c-1", run_id=7):
        log.warning("step %s slow", "hr", extra={"node_path": "setup/0/hr"})
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
    log.warning("outside")
    first, second, third = json_lines(json_log)
    assert first["message"] == "step hr slow" and first["level"] == "WARNING"
    assert (first["correlation_id"], first["run_id"], first["node_path"]) == (
        "c-1",
        7,
        "setup/0/hr",
    )
    assert first["logger"] == "agentos.test" and first["at"].endswith("+00:00")
    assert "ValueError: boom" in second["exc"] and second["run_id"] == 7
    assert "correlation_id" not in third and "run_id" not in third


@pytest.mark.django_db
def test_a_request_gets_a_correlation_id_in_its_answer_and_its_log_lines(json_log) -> None:
    given = Client().get("/no/such/page", HTTP_X_CORRELATION_ID="abc-123")
    assert given.status_code == 404 and given["X-Correlation-ID"] == "abc-123"
    line = next(x for x in json_lines(json_log) if x["logger"] == "django.request")
    assert line["correlation_id"] == "abc-123"
    # An id that is not a sane token is replaced, never echoed or logged.
    forged = Client().get("/no/such/page", HTTP_X_CORRELATION_ID="x\u2028<script>" * 10)
    assert len(forged["X-Correlation-ID"]) == 32 and "<" not in forged["X-Correlation-ID"]
    assert Client().get("/api/v1/health")["X-Correlation-ID"]


@pytest.mark.worker
def test_a_worker_logs_json_with_the_run_and_its_actions_send_its_correlation_id(
    transactional_db,
    receiver,
    operator,
    settings,
    tmp_path,
) -> None:
    origin = receiver.url.split("/hook")[0]
    settings.AGENTOS_API_ALLOWED_HOSTS = [origin]
    env = worker_env()
    env.update(
        AGENTOS_LOG_FORMAT="json", AGENTOS_API_ALLOWED_HOSTS=origin, AGENTOS_LOG_LEVEL="INFO"
    )
    cluster = Cluster(tmp_path / "qcluster.log", env=env).start()
    try:
        # A stored workflow: a bare plan with a non-low-risk action would
        # wait for someone to review it first.
        workflow = workflow_create(
            raw_spec={
                "slug": "call-out",
                "title": "Call out",
                "mode": "autonomous",
                "plan": {
                    "nodes": [
                        {
                            "id": "call",
                            "action": "api.request",
                            "params": {"method": "POST", "url": receiver.url, "json_body": {}},
                        }
                    ]
                },
            },
            actor=operator,
        )
        run = run_create(workflow=workflow, requester=operator)
        wait_for(
            lambda: Run.objects.get(pk=run.pk).status in ("succeeded", "failed", "waiting"),
            timeout=60,
            message="the run to end",
        )
        wait_for(lambda: "advanced run" in cluster.output(), message="the task's log line")
    finally:
        cluster.stop()
        print(cluster.output()[-3000:])
    run.refresh_from_db()
    assert run.status == "succeeded", (run.error, cluster.output()[-3000:])
    assert receiver.calls[0]["headers"]["x-correlation-id"] == str(run.correlation_id)
    lines = [json.loads(x) for x in cluster.output().splitlines() if x.startswith("{")]
    advanced = [x for x in lines if x["message"].startswith(f"advanced run {run.pk} ")]
    assert advanced and advanced[0]["run_id"] == run.pk
    assert advanced[0]["correlation_id"] == str(run.correlation_id)
    assert all({"at", "level", "logger", "message"} <= set(x) for x in lines)
    # The step's own lines name its node path, beside the run and its id.
    step = [x for x in lines if x.get("node_path") == "call"]
    assert [x["message"] for x in step] == [
        f"run {run.pk}: step call (api.request, attempt 1) started",
        f"run {run.pk}: step call (api.request) succeeded",
    ]
    assert {(x["run_id"], x["correlation_id"]) for x in step} == {
        (run.pk, str(run.correlation_id))
    }


def test_a_run_task_carries_its_correlation_id_so_the_worker_binds_it_without_a_query(
    db, operator, monkeypatch, django_capture_on_commit_callbacks, django_assert_num_queries
) -> None:
    """The worker's log context costs no query between taking a task and the run's lock."""
    import django_q.tasks

    from observability.signals import on_post_execute, on_pre_execute

    queued: list[tuple[tuple, dict]] = []
    monkeypatch.setattr(
        django_q.tasks, "async_task", lambda *args, **kwargs: queued.append((args, kwargs))
    )
    plan = {
        "nodes": [
            {"id": "v", "action": "verify.value_equals", "params": {"value": 1, "expected": 1}}
        ]
    }
    with django_capture_on_commit_callbacks(execute=True):
        run = run_create(plan=plan, mode="autonomous", requester=operator)
    [(args, kwargs)] = queued
    assert args == ("workflows.tasks.advance_run", run.pk)
    assert kwargs["correlation_id"] == str(run.correlation_id)
    carried = {"correlation_id": kwargs["correlation_id"]}
    task = {"func": args[0], "args": args[1:], "kwargs": carried, "id": "t1"}
    with django_assert_num_queries(0):
        on_pre_execute(task=task)
    try:
        assert correlation.current() == {
            "run_id": run.pk,
            "correlation_id": str(run.correlation_id),
        }
    finally:
        on_post_execute(task=task)
    # A task queued without it (before this change, or by the engine's own
    # hand-ons) still gets it, from the run.
    bare = {"func": args[0], "args": args[1:], "kwargs": {}, "id": "t2"}
    with django_assert_num_queries(1):
        on_pre_execute(task=bare)
    try:
        assert correlation.current()["correlation_id"] == str(run.correlation_id)
    finally:
        on_post_execute(task=bare)
    assert correlation.current() == {}


def test_a_carried_run_task_skips_the_health_check_and_survives_a_dead_connection(
    transactional_db, operator, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    """No `SELECT 1` before a resume's first transaction; a restart still costs no run.

    The engine retries each transaction with a new connection, so the kept
    connection's health check (PostgreSQL) is not needed on a run's task.
    """
    import django_q.tasks
    from django.db import connection
    from django_q.utils import close_old_django_connections

    from observability.signals import on_post_execute, on_pre_execute
    from workflows import reconnect
    from workflows.tasks import advance_run

    retried: list[str] = []
    monkeypatch.setattr(reconnect.logger, "warning", lambda msg, *_: retried.append(msg))
    queued: list[dict] = []
    monkeypatch.setattr(django_q.tasks, "async_task", lambda *a, **kw: queued.append(kw))
    plan = {
        "nodes": [
            {"id": "v", "action": "verify.value_equals", "params": {"value": 1, "expected": 1}}
        ]
    }
    with django_capture_on_commit_callbacks(execute=True):
        run = run_create(plan=plan, mode="autonomous", requester=operator)
    task = {
        "func": "workflows.tasks.advance_run",
        "args": (run.pk,),
        "kwargs": {"correlation_id": queued[0]["correlation_id"]},
    }
    # Kept from one task to the next, as in a worker (workflows.broker.keep_connections).
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 300)
    connection.close()
    connection.ensure_connection()
    if connection.vendor == "postgresql":
        # The server ends this connection while the worker is idle (a restart).
        import psycopg

        dsn = connection.get_connection_params()
        pid = connection.connection.info.backend_pid
        killer = {k: v for k, v in dsn.items() if k in ("host", "port", "user", "password")}
        with psycopg.connect(dbname=dsn.get("dbname"), autocommit=True, **killer) as other:
            other.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
    close_old_django_connections()  # as django-q2's worker before each task
    on_pre_execute(task=task)
    try:
        assert connection.health_check_done
        advance_run(run.pk, **task["kwargs"])
    finally:
        on_post_execute(task=task)
    run.refresh_from_db()
    assert run.status == "succeeded"
    if connection.vendor == "postgresql":  # the engine met the dead connection, and retried
        assert retried and retried[0].startswith("database unavailable")
