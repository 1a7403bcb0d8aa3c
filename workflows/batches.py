"""Start many runs at once: a batch of rows (a CSV or a JSON list), all or nothing."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from agentos_common import limits
from workflows import executor_config
from workflows.events import system_event_append
from workflows.exceptions import BatchInvalid
from workflows.models import RunBatch, Workflow
from workflows.plans import validate_plan
from workflows.services import _context_errors, run_create
from workflows.states import RunMode, mode_refusal

MAX_BATCH = 100
MAX_CSV_BYTES = 1024 * 1024


@dataclass(frozen=True)
class RowError:
    """One problem of a batch: row (1-based; 0 is the CSV header), column, message."""

    row: int
    column: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "message": self.message}


def _coerce(value: str, schema: dict) -> Any:
    """Turn a CSV cell into the type its input declares; leave it when it will not fit."""
    kind = schema.get("type")
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
        if kind == "boolean":
            lowered = value.strip().lower()
            if lowered in ("true", "1", "yes"):
                return True
            if lowered in ("false", "0", "no"):
                return False
        if kind in ("array", "object"):
            return limits.loads(value)
    except limits.TooDeep:
        raise
    except ValueError:
        pass
    return value


def rows_from_csv(text: str, inputs_schema: dict) -> list[dict]:
    """Parse a CSV with a header of input names; empty cells are left out."""
    if len(text.encode()) > MAX_CSV_BYTES:
        raise BatchInvalid([RowError(0, "file", f"larger than {MAX_CSV_BYTES // 1024} KiB")])
    reader = csv.DictReader(io.StringIO(text))
    properties = inputs_schema.get("properties", {})
    header = reader.fieldnames or []
    errors = [
        RowError(0, name or "(empty)", "not an input of this workflow")
        for name in header
        if name not in properties
    ]
    if not header:
        errors.append(RowError(0, "file", "the first line must name the inputs"))
    if errors:
        raise BatchInvalid(errors)
    rows = []
    for record in reader:
        if None in record:
            rows.append({"__extra__": record[None]})
            continue
        row = {}
        for key, value in record.items():
            if value in ("", None):
                continue
            try:
                row[key] = _coerce(value, properties.get(key, {}))
            except limits.TooDeep as exc:
                errors.append(RowError(len(rows) + 1, key, str(exc)))
        rows.append(row)
    if errors:
        raise BatchInvalid(errors)
    return rows


def batch_validate(workflow: Workflow, rows: Any) -> list[RowError]:
    """Return every problem of every row at once; empty means all may start."""
    if not isinstance(rows, list) or not rows:
        return [RowError(0, "rows", "give a non-empty list of contexts")]
    if len(rows) > MAX_BATCH:
        return [RowError(0, "rows", f"at most {MAX_BATCH} runs in one batch")]
    errors = [
        RowError(0, f"plan.{e.node}.{e.field}", e.message)
        for e in validate_plan(
            workflow.plan,
            registry=executor_config.registry(),
            policy=executor_config.policy(),
            inputs_schema=workflow.inputs_schema,
            stored=True,
        )
    ]
    properties = workflow.inputs_schema.get("properties", {})
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            errors.append(RowError(number, "", "a row must be an object of inputs"))
            continue
        if "__extra__" in row:
            errors.append(RowError(number, "", "more cells than the header names"))
            continue
        for key in row:
            if key not in properties:
                errors.append(RowError(number, key, "not an input of this workflow"))
        for error in _context_errors(workflow.inputs_schema, row):
            column = error.field.removeprefix("context").lstrip(".") or "(row)"
            errors.append(RowError(number, column, error.message))
    return errors


def runs_start_batch(
    *, workflow: Workflow, rows: Any, actor: Any, source: str = "json", mode: str | None = None
) -> RunBatch:
    """Validate every row, then start all the runs in one transaction, or none."""
    if mode is not None and mode not in RunMode.values:
        raise BatchInvalid([RowError(0, "mode", "must be autonomous, assisted or interactive")])
    refusal = mode_refusal(mode, workflow.mode)
    if refusal:
        raise BatchInvalid([RowError(0, "mode", refusal)])
    errors = batch_validate(workflow, rows)
    if errors:
        raise BatchInvalid(errors)
    with transaction.atomic():
        batch = RunBatch.objects.create(
            workflow=workflow, size=len(rows), source=source, created_by=actor
        )
        runs = [
            run_create(workflow=workflow, context=row, mode=mode, requester=actor, batch=batch)
            for row in rows
        ]
        system_event_append(
            type="batch.started",
            actor=actor,
            data={
                "batch": batch.pk,
                "workflow": workflow.slug,
                "size": len(runs),
                "runs": [run.pk for run in runs],
                "source": source,
            },
        )
    return batch
