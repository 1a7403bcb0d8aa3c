"""The run admin: a read-only record for everyone, plus cancel and evidence."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timesince import timesince

from agentos_site import policy
from workflows.admin.paging import CappedCountPaginator
from workflows.admin.runpage import run_panel_context
from workflows.admin.timemachine import TimeMachineMixin
from workflows.display import (
    json_block,
    progress_html,
    status_badge,
)
from workflows.models import Run, Step, Workflow
from workflows.readonly import ReadOnlyAdminMixin
from workflows.selectors import redact
from workflows.services import RunNotFound, run_cancel
from workflows.states import TransitionNotAllowed

SEARCH_MATCHES = 200
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "text/plain"})


@admin.register(Run)
class RunAdmin(ReadOnlyAdminMixin, TimeMachineMixin, admin.ModelAdmin):
    """Runs are started from a workflow and changed only by services."""

    list_display = (
        "id",
        "workflow_label",
        "status_label",
        "current_node",
        "progress",
        "requester",
        "age",
    )
    list_display_links = ("id",)
    list_filter = ("status", "mode", "workflow", "batch")
    # Searched by get_search_results through indexes, never a LIKE over runs.
    search_fields = ("id__exact", "workflow__slug", "requester__username", "current_node__exact")
    search_help_text = "A run id, part of a workflow slug or a requester's name, or a node id."
    list_select_related = ("workflow", "requester")
    list_per_page = 50
    paginator = CappedCountPaginator
    show_full_result_count = False
    actions = ["cancel_runs"]
    change_form_template = "admin/workflows/run/change_form.html"
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "workflow_label",
                    "status_label",
                    "mode",
                    "current_node",
                    "progress",
                    "requester_label",
                    "error_text",
                ]
            },
        ),
        ("Timing", {"fields": ["created_at", "started_at", "finished_at", "updated_at"]}),
        (
            "Lineage",
            {
                "fields": [
                    "parent_link",
                    "forked_at_seq",
                    "forks_list",
                    "batch",
                    "schedule",
                    "idempotency_key",
                    "correlation_id",
                    "last_seq",
                ]
            },
        ),
        ("Context", {"fields": ["context_json"]}),
    ]
    readonly_fields = (
        "workflow_label",
        "status_label",
        "mode",
        "current_node",
        "progress",
        "requester_label",
        "error_text",
        "created_at",
        "started_at",
        "finished_at",
        "updated_at",
        "parent_link",
        "forked_at_seq",
        "forks_list",
        "batch",
        "schedule",
        "idempotency_key",
        "correlation_id",
        "last_seq",
        "context_json",
    )

    # --- permissions: nobody adds, changes or deletes a run here (the mixin) --

    def has_cancel_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return policy.allows(request.user, policy.RUNS_CANCEL)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """Only the runs the user may see (policy.visible_runs): list, page, evidence.

        Someone without the view permission keeps the whole queryset, so the
        admin's own permission check answers them 403, not "no such run".
        """
        runs = super().get_queryset(request)
        if not self.has_view_or_change_permission(request):
            return runs
        return policy.visible_runs(request.user, runs)

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Run | None:
        try:
            pk = int(object_id)
        except (TypeError, ValueError):
            return None
        return (
            self.get_queryset(request)
            .select_related("workflow", "requester")
            .filter(pk=pk)
            .first()
        )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        """Match the run id, workflow slug, requester or node through indexes.

        Slugs and user names are looked up in their own (small) tables first,
        so the runs are filtered by indexed ids instead of a LIKE per run.
        """
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(current_node=term[:100])
        if term.isdigit() and int(term) < 2**63:
            match |= Q(pk=int(term))
        workflows = list(
            Workflow.objects.filter(slug__icontains=term).values_list("pk", flat=True)[
                :SEARCH_MATCHES
            ]
        )
        users = list(
            get_user_model()
            .objects.filter(username__icontains=term)
            .values_list("pk", flat=True)[:SEARCH_MATCHES]
        )
        if workflows:
            match |= Q(workflow_id__in=workflows)
        if users:
            match |= Q(requester_id__in=users)
        return queryset.filter(match), False

    # --- columns and fields --------------------------------------------------

    @admin.display(description="Workflow", ordering="workflow__slug")
    def workflow_label(self, run: Run) -> str:
        if run.workflow_id is None:
            return "(plan)"
        return f"{run.workflow.slug} v{run.workflow_version}"

    @admin.display(description="Status", ordering="status")
    def status_label(self, run: Run) -> SafeString:
        return status_badge(run.status, run.get_status_display())

    @admin.display(description="Progress")
    def progress(self, run: Run) -> SafeString:
        return progress_html(run.position, len(run.nodes))

    @admin.display(description="Age", ordering="created_at")
    def age(self, run: Run) -> str:
        return timesince(run.created_at, timezone.now())

    @admin.display(description="Requester")
    def requester_label(self, run: Run) -> str:
        return run.requester.get_username() if run.requester_id else "—"

    @admin.display(description="Error")
    def error_text(self, run: Run) -> str:
        return redact(run.error)

    @admin.display(description="Forked from / part of")
    def parent_link(self, run: Run) -> SafeString | str:
        if run.parent_id is None:
            return "—"
        url = reverse("admin:workflows_run_change", args=[run.parent_id])
        if run.forked_at_seq is None:  # a child run of a `type: workflow` node
            return format_html(
                '<a href="{}">Run {}</a> (its node {})', url, run.parent_id, run.parent_node
            )
        state = reverse("admin:workflows_run_state", args=[run.parent_id, run.forked_at_seq])
        return format_html(
            '<a href="{}">Run {}</a> (<a href="{}">its state at event {}</a>)',
            url,
            run.parent_id,
            state,
            run.forked_at_seq,
        )

    @admin.display(description="Forks")
    def forks_list(self, run: Run) -> SafeString | str:
        return self.forks_links(run)

    @admin.display(description="Context")
    def context_json(self, run: Run) -> SafeString:
        return json_block(redact(run.context))

    # --- the detail page -----------------------------------------------------

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Run | None = None,
    ) -> HttpResponse:
        if obj is not None:
            context.update(self._detail_context(request, obj))
        return super().render_change_form(
            request, context, add=add, change=change, form_url=form_url, obj=obj
        )

    def _detail_context(self, request: HttpRequest, run: Run) -> dict[str, Any]:
        can_cancel = not run.is_terminal and self.has_cancel_permission(request, run)
        return run_panel_context(request, run, can_cancel=can_cancel, forks=self.forks_links(run))

    def live_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Return the run page's panel alone, for the page to swap in when it changes."""
        run = self._viewable_run(request, object_id)
        response = TemplateResponse(
            request, "admin/workflows/run/panel.html", self._detail_context(request, run)
        )
        response["Cache-Control"] = "no-store"
        return response

    # --- cancel and evidence -------------------------------------------------

    def get_urls(self) -> list:
        extra = [
            path(
                "<path:object_id>/cancel/",
                self.admin_site.admin_view(self.cancel_view),
                name="workflows_run_cancel",
            ),
            path(
                "<path:object_id>/live/",
                self.admin_site.admin_view(self.live_view),
                name="workflows_run_live",
            ),
            path(
                "<path:object_id>/evidence/<int:step_id>/<int:index>/",
                self.admin_site.admin_view(self.evidence_view),
                name="workflows_run_evidence",
            ),
            *self.time_machine_urls(),
        ]
        return extra + super().get_urls()

    def _viewable_run(self, request: HttpRequest, object_id: str) -> Run:
        run = self.get_object(request, unquote(object_id))
        if run is None:
            raise Http404("No such run.")
        if not self.has_view_permission(request, run):
            raise PermissionDenied
        return run

    def cancel_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Cancel a run through the service (POST only; CSRF-checked by admin_view)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        run = self._viewable_run(request, object_id)
        if not self.has_cancel_permission(request, run):
            raise PermissionDenied
        reason = request.POST.get("reason", "").strip()[:500] or "cancelled in the admin"
        try:
            run_cancel(run_id=run.pk, actor=request.user, reason=reason)
        except TransitionNotAllowed as exc:
            self.message_user(request, f"Run {run.pk} was not cancelled: {exc}.", messages.ERROR)
        except RunNotFound:
            raise Http404("No such run.") from None
        else:
            self.message_user(request, f"Run {run.pk} is cancelled.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:workflows_run_change", args=[run.pk]))

    @admin.action(description="Cancel the selected runs", permissions=["cancel"])
    def cancel_runs(self, request: HttpRequest, queryset: QuerySet) -> None:
        cancelled, refused = [], []
        for run_id in queryset.values_list("pk", flat=True):
            try:
                run_cancel(run_id=run_id, actor=request.user, reason="cancelled from the run list")
            except (TransitionNotAllowed, RunNotFound) as exc:
                refused.append(f"run {run_id}: {exc}")
            else:
                cancelled.append(str(run_id))
        if cancelled:
            self.message_user(
                request, f"Cancelled run(s) {', '.join(cancelled)}.", messages.SUCCESS
            )
        if refused:
            self.message_user(
                request, "Not cancelled: " + "; ".join(refused) + ".", messages.ERROR
            )

    def evidence_view(
        self, request: HttpRequest, object_id: str, step_id: int, index: int
    ) -> FileResponse:
        """Serve one evidence file of a run's step to a user who may view the run."""
        run = self._viewable_run(request, object_id)
        step = Step.objects.filter(pk=step_id, run=run).only("evidence").first()
        files = ((step.evidence or {}).get("files") or []) if step is not None else []
        if index >= len(files) or not isinstance(files[index], dict):
            raise Http404("No such evidence file.")
        entry = files[index]
        root = (Path(settings.MEDIA_ROOT) / "runs").resolve()
        target = (Path(settings.MEDIA_ROOT) / str(entry.get("path", ""))).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            raise Http404("The evidence file is not on this server.")
        name = Path(str(entry.get("name") or target.name)).name
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        response = FileResponse(
            target.open("rb"),
            as_attachment=content_type not in INLINE_TYPES,
            filename=name,
            content_type=content_type,
        )
        response["Content-Security-Policy"] = "sandbox; default-src 'none'"
        response["X-Content-Type-Options"] = "nosniff"
        return response
