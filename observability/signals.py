"""Bind a run's correlation id while a django-q2 worker advances it.

django-q2 sends `pre_execute` in the worker just before a task's function
runs and `post_execute_in_worker` right after, so every log line of
`workflows.tasks.advance_run` (engine, runner) carries the run id and the
run's correlation id, and the action processes it starts receive the id in
their ActionContext. Logging context only: the engine does not read it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from agentos_site import correlation

logger = logging.getLogger("agentos.tasks")

RUN_TASKS = {"workflows.tasks.advance_run"}
_tokens: list[object] = []
_started: list[float] = []


def on_pre_execute(
    sender: Any = None, func: Any = None, task: dict | None = None, **_: Any
) -> None:
    task = task or {}
    fields: dict[str, object] = {"correlation_id": task.get("id") or None}
    args = task.get("args") or ()
    if task.get("func") in RUN_TASKS and args and isinstance(args[0], int):
        # Carried by the task when its sender had the run (the decision's
        # resume among them): no query between taking the task and the
        # run's first transaction. Tasks queued without it are read here.
        value = (task.get("kwargs") or {}).get("correlation_id")
        if value:
            _skip_health_check()
        else:
            try:
                value = _correlation_id(args[0])
            except Exception:  # logging context must never stop a task
                value = None
        fields = {"run_id": args[0], "correlation_id": str(value) if value else None}
    _tokens.append(correlation.bind(**fields))
    _started.append(time.perf_counter())


def _skip_health_check() -> None:
    """Spare a run's task the kept connection's health check (PostgreSQL).

    django-q2 closes "old" connections before each task, and Django then
    checks a kept one with a ``SELECT 1`` before its first query: a round
    trip before the run's first transaction. The engine needs no such check:
    each of its transactions is retried on a connection error with a new
    connection (``workflows.reconnect.retrying``), so a connection a database
    restart left dead costs that task one retry instead.
    """
    from django.db import connection

    connection.health_check_done = True


def _correlation_id(run_id: int) -> object:
    """Read a run's correlation id: one indexed read, on the path of every resume.

    The ORM's query (built, compiled and ordered for ``first()`` each time)
    cost ~0.7 ms of the worker's CPU between taking a task and starting it.
    """
    from django.db import connection

    from workflows.models import Run

    table = connection.ops.quote_name(Run._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT correlation_id FROM {table} WHERE id = %s", [run_id])
        row = cursor.fetchone()
    return Run._meta.get_field("correlation_id").to_python(row[0]) if row else None


def on_post_execute(sender: Any = None, task: dict | None = None, **_: Any) -> None:
    task = task or {}
    if _started and task.get("func") in RUN_TASKS:
        # One line per hop of a run through a worker: which run, how long,
        # and (JSON logs) its correlation id.
        logger.info(
            "advanced run %s in %.0f ms (%s)",
            correlation.current().get("run_id"),
            (time.perf_counter() - _started[-1]) * 1000,
            "ok" if task.get("success") else "failed",
        )
    _started.clear()
    while _tokens:
        correlation.unbind(_tokens.pop())
