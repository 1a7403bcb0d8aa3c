"""The run admin's time machine: the state at any event, lineage, and forking."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html_join
from django.utils.safestring import SafeString

from agentos_common import limits
from agentos_site import policy
from workflows.display import json_block, render_plan
from workflows.forks import run_fork
from workflows.models import Event, Run
from workflows.plans import PlanInvalid
from workflows.replay import ReplayError, state_at
from workflows.selectors import redact


class TimeMachineMixin:
    """Adds `<run>/state/<seq>/` and `<run>/fork/` to the run admin."""

    def time_machine_urls(self) -> list:
        site = self.admin_site  # type: ignore[attr-defined]
        return [
            path(
                "<path:object_id>/state/<int:seq>/",
                site.admin_view(self.state_view),
                name="workflows_run_state",
            ),
            path(
                "<path:object_id>/fork/",
                site.admin_view(self.fork_view),
                name="workflows_run_fork",
            ),
        ]

    def has_fork_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return policy.allows(request.user, policy.RUNS_FORK)

    @staticmethod
    def forks_links(run: Run) -> SafeString | str:
        children = list(
            run.forks.filter(forked_at_seq__isnull=False)
            .order_by("id")
            .values_list("id", "forked_at_seq")
        )
        if not children:
            return "—"
        return format_html_join(
            ", ",
            '<a href="{}">Run {}</a> (at event {})',
            ((reverse("admin:workflows_run_change", args=[pk]), pk, seq) for pk, seq in children),
        )

    def state_view(self, request: HttpRequest, object_id: str, seq: int) -> HttpResponse:
        """Show the run as it was right after event `seq`, replayed from the events."""
        run = self._viewable_run(request, object_id)  # type: ignore[attr-defined]
        try:
            state = state_at(run, seq)
        except ReplayError as exc:
            raise Http404(str(exc)) from None
        event = Event.objects.get(run=run, seq=seq)
        context = {
            **self.admin_site.each_context(request),  # type: ignore[attr-defined]
            "opts": self.opts,  # type: ignore[attr-defined]
            "title": f"Run {run.pk} after event {seq} ({event.type})",
            "run": run,
            "state": state,
            "event": event,
            "context_json": json_block(redact(state.context)),
            "completed_json": json_block(redact(state.completed)),
            "plan_table": render_plan(run.plan, position=state.position),
            "previous": seq - 1 if seq > 1 else None,
            "next": seq + 1 if seq < run.last_seq else None,
            "can_fork": self.has_fork_permission(request, run),
        }
        return TemplateResponse(request, "admin/workflows/run/state.html", context)

    def fork_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Fork the run at a chosen event (POST: at_seq, optional JSON overrides)."""
        if request.method != "POST":
            raise Http404("Fork with POST.")
        run = self._viewable_run(request, object_id)  # type: ignore[attr-defined]
        if not self.has_fork_permission(request, run):
            raise PermissionDenied
        back = reverse("admin:workflows_run_change", args=[run.pk])
        try:
            at_seq = int(request.POST.get("at_seq", ""))
            overrides = limits.loads(request.POST.get("context") or "{}")
            child = run_fork(run_id=run.pk, at_seq=at_seq, context=overrides, actor=request.user)
        except ValueError:
            self.message_user(
                request, "at_seq must be a number and context a JSON object.", messages.ERROR
            )  # type: ignore[attr-defined]
            return HttpResponseRedirect(back)
        except PlanInvalid as exc:
            self.message_user(request, f"Not forked: {exc}", messages.ERROR)  # type: ignore
            return HttpResponseRedirect(back)
        self.message_user(
            request,
            f"Run {child.pk} forked from run {run.pk} at event "  # type: ignore
            f"{at_seq}.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:workflows_run_change", args=[child.pk]))
