"""Plan review in tests: a bare plan above low risk waits for another person first."""

from __future__ import annotations

from typing import Any

from approvals.models import ApprovalRequest, RequestStatus
from approvals.services import approval_decide
from workflows.engine import run_advance
from workflows.models import Run


def approve_plan_review(run: Run, reviewer: Any) -> Run:
    """Advance a bare plan's run to its plan review and have `reviewer` approve it."""
    run_advance(run_id=run.pk)
    review = ApprovalRequest.objects.get(
        run=run, status=RequestStatus.PENDING, purpose="plan_review"
    )
    approval_decide(request_id=review.pk, actor=reviewer, decision="approve")
    run.refresh_from_db()
    return run
