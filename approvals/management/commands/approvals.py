"""List, show and decide approval requests from the command line."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from approvals.models import ApprovalRequest, RequestStatus
from approvals.services import (
    AlreadyDecided,
    DecisionInvalid,
    DecisionRefused,
    approval_decide,
)
from workflows.management.cli import parse_sets, plan_errors, user_named
from workflows.plans import PlanInvalid
from workflows.states import TransitionNotAllowed


class Command(BaseCommand):
    help = "approvals list | approvals show ID | approvals decide ID approve|reject --as USER"

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="verb", required=True)
        listing = sub.add_parser("list", help="list requests (pending by default)")
        listing.add_argument("--status", default="pending", choices=[*RequestStatus.values, "all"])
        listing.add_argument("--run", type=int)
        show = sub.add_parser("show", help="show what a request asks")
        show.add_argument("id", type=int)
        decide = sub.add_parser("decide", help="approve or reject a request")
        decide.add_argument("id", type=int)
        decide.add_argument("decision", choices=["approve", "reject"])
        decide.add_argument("--as", dest="username", required=True)
        decide.add_argument("--set", action="append", dest="sets", metavar="FIELD=VALUE")
        decide.add_argument("--comment", default="")
        decide.add_argument("--resolution", default="", choices=["", "retry", "mark_done", "fail"])

    def handle(self, *args: Any, verb: str, **options: Any) -> None:
        getattr(self, f"_{verb}")(**options)

    def _list(self, *, status: str, run: int | None, **options: Any) -> None:
        requests = ApprovalRequest.objects.select_related("assigned_group").order_by("id")
        if status != "all":
            requests = requests.filter(status=status)
        if run is not None:
            requests = requests.filter(run_id=run)
        for request in requests:
            group = request.assigned_group.name if request.assigned_group else "-"
            self.stdout.write(
                f"{request.pk}\trun {request.run_id}\t{request.node_id}\t"
                f"{request.kind}\t{request.status}\t{group}\t{request.title}"
            )

    def _show(self, *, id: int, **options: Any) -> None:
        request = self._get(id)
        self.stdout.write(f"{request.title}\n\n{request.description}\n")
        self.stdout.write("fields: " + json.dumps(request.fields, indent=2))
        state = request.state
        if state:
            self.stdout.write("state: " + json.dumps(state, indent=2))

    def _decide(
        self,
        *,
        id: int,
        decision: str,
        username: str,
        sets: list[str] | None,
        comment: str,
        resolution: str,
        **options: Any,
    ) -> None:
        self._get(id)
        user = user_named(username, perm="approvals.decide_approvalrequest")
        try:
            approval_decide(
                request_id=id,
                actor=user,
                decision=decision,
                values=parse_sets(sets),
                comment=comment,
                resolution=resolution,
            )
        except DecisionInvalid as exc:
            raise CommandError(
                "refused:\n" + "\n".join(f"  {k}: {v}" for k, v in exc.errors.items())
            ) from None
        except PlanInvalid as exc:
            raise plan_errors(exc) from None
        except (AlreadyDecided, DecisionRefused, TransitionNotAllowed) as exc:
            raise CommandError(str(exc)) from None
        verb = "approved" if decision == "approve" else "rejected"
        self.stdout.write(self.style.SUCCESS(f"request {id}: {verb}"))

    @staticmethod
    def _get(request_id: int) -> ApprovalRequest:
        request = ApprovalRequest.objects.filter(pk=request_id).first()
        if request is None:
            raise CommandError(f"no approval request {request_id}")
        return request
