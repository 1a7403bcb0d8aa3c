"""API schemas of the workflows app: explicit In/Out, unknown input refused."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ninja import Schema
from pydantic import ConfigDict, Field

from workflows.plans import (
    MAX_NODES,
    MAX_PARAM_DEPTH,
    MAX_PARAMS_BYTES,
    MAX_PLAN_BYTES,
    MAX_STRING_CHARS,
)

Mode = Literal["autonomous", "assisted", "interactive"]
RunStatusName = Literal["queued", "running", "waiting", "succeeded", "failed", "cancelled"]


class In(Schema):
    model_config = ConfigDict(extra="forbid")


class HealthOut(Schema):
    status: Literal["ok", "degraded"]
    database: bool
    workers: int
    version: str


class ActionOut(Schema):
    name: str
    package: str
    version: str
    description: str
    category: str
    risk: str
    idempotent: bool
    params_schema: dict[str, Any]
    output_schema: dict[str, Any]


# The plan limits the server enforces (workflows/plans.py). JSON Schema can
# state the node count; sizes in bytes of serialized JSON and the nesting depth
# of free-form params it cannot, so the description states them.
PLAN_LIMITS = (
    f"At most {MAX_PLAN_BYTES // 1024} KiB as JSON and {MAX_NODES} nodes; "
    f"a node's params at most {MAX_PARAMS_BYTES // 1024} KiB as JSON, "
    f"nested at most depth {MAX_PARAM_DEPTH}, each string at most "
    f"{MAX_STRING_CHARS:,} characters."
)
PLAN_SCHEMA = {
    "type": "object",
    "required": ["nodes"],
    "properties": {
        "nodes": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_NODES,
            "items": {"type": "object", "required": ["id"]},
        }
    },
}


class PlanIn(In):
    plan: dict[str, Any] = Field(
        description=f"The plan to check; any object is reported on, never refused. {PLAN_LIMITS}"
    )


class PlanErrorOut(Schema):
    node: str
    field: str
    message: str


class PlanValidationOut(Schema):
    valid: bool
    errors: list[PlanErrorOut]


class DraftIn(In):
    text: str = Field(min_length=1, max_length=4000, description="The request in plain language.")


class DraftOut(Schema):
    plan: dict[str, Any] | None = Field(description="The drafted plan; null when none.")
    valid: bool
    errors: list[PlanErrorOut]
    provider: str


class WorkflowIn(In):
    spec: dict[str, Any] | None = Field(None, description="The spec as an object.")
    source: str | None = Field(
        None, max_length=200_000, description="The spec as YAML or JSON text."
    )


class WorkflowOut(Schema):
    slug: str
    title: str
    description: str
    version: int
    mode: str
    spec: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class RunIn(In):
    workflow: str | None = Field(None, description="Slug of a stored workflow.")
    plan: dict[str, Any] | None = Field(
        None,
        description=f"A bare plan, instead of a workflow. {PLAN_LIMITS}",
        json_schema_extra={"anyOf": [PLAN_SCHEMA, {"type": "null"}]},
    )
    context: dict[str, Any] = Field(default_factory=dict)
    mode: Mode | None = None


class StepOut(Schema):
    id: int
    node_id: str
    node_path: str
    position: int
    visit: int
    attempt: int
    action: str
    status: str
    params: dict[str, Any]
    output: dict[str, Any] | None
    evidence: dict[str, Any]
    error: str
    started_at: datetime
    finished_at: datetime | None
    duration_ms: float | None


class RunSummaryOut(Schema):
    id: int
    status: RunStatusName
    mode: Mode
    workflow: str | None
    workflow_version: int | None
    current_node: str
    position: int
    requester: str | None
    parent: int | None
    # The parent's node that started this child run ("" for a fork or a top-level run).
    parent_node: str
    forked_at_seq: int | None
    batch: int | None
    error: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RunOut(RunSummaryOut):
    context: dict[str, Any]
    plan: dict[str, Any]
    steps: list[StepOut]
    forks: list[int]
    children: list[int]
    active_nodes: list[str]
    # node path -> done | running | waiting | failed | skipped | pending
    node_states: dict[str, str]
    # gate id -> its decision; a gate inside a map's body: a list in item order
    # (null for an item that never reached it).
    decisions: dict[str, dict[str, Any] | list[dict[str, Any] | None]]
    visits: dict[str, int]


class EventOut(Schema):
    seq: int
    type: str
    actor: str
    at: datetime
    data: dict[str, Any]
    prev_hash: str
    hash: str


class AuditEventOut(EventOut):
    id: int
    run: int | None
    correlation_id: str


class CancelIn(In):
    reason: str = Field("", max_length=500)


class ForkIn(In):
    at_seq: int = Field(..., ge=1, description="Fork from the state right after this event.")
    context: dict[str, Any] | None = Field(
        None,
        description="Values that override the rebuilt context (`a.b` keys set nested values).",
    )


class BatchIn(In):
    workflow: str
    rows: list[dict[str, Any]] | None = Field(None, description="One context per run.")
    csv: str | None = Field(
        None, max_length=1_048_576, description="CSV text whose header names the inputs."
    )
    mode: Mode | None = None


class BatchOut(Schema):
    id: int
    workflow: str
    size: int
    runs: list[int]
