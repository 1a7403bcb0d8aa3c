"""API schemas of approval requests and decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ninja import Schema
from pydantic import ConfigDict, Field


class ApprovalOut(Schema):
    id: int
    run: int
    node: str
    node_path: str
    kind: str
    title: str
    description: str
    fields: dict[str, Any]
    values: dict[str, Any]
    status: Literal["pending", "approved", "rejected", "cancelled"]
    digest: str
    assigned_to: str | None
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    comment: str
    resolution: str


class DecisionIn(Schema):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    values: dict[str, Any] | None = None
    comment: str = Field("", max_length=2000)
    resolution: Literal["retry", "mark_done", "fail"] | None = Field(
        None, description="Only for an unknown outcome."
    )
    digest: str | None = Field(
        None, max_length=64, description="The digest the caller saw; 409 if it changed."
    )
