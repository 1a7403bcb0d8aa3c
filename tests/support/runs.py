"""Drive runs in-process: advance one until it pauses or ends, read its status, its request."""

from __future__ import annotations

from approvals.models import ApprovalRequest, RequestStatus
from workflows.engine import run_advance
from workflows.models import Run


def advance(run: Run) -> Run:
    """Advance the run in-process until it pauses or ends."""
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    return run


def status(run: Run) -> str:
    """Return the run's status as stored now."""
    run.refresh_from_db()
    return run.status


def pending_request(run: Run) -> ApprovalRequest:
    """Return the run's one pending request."""
    return ApprovalRequest.objects.get(run=run, status=RequestStatus.PENDING)
