"""The Workers admin: every process that beats, live or dead, and what it holds."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from observability.heartbeats import live_window
from observability.models import WorkerHeartbeat
from observability.selectors import runs_held_by_dead_workers
from workflows.models import Run
from workflows.states import ACTIVE


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    """Read-only: rows are written by the processes themselves."""

    list_display = (
        "name",
        "kind",
        "alive",
        "last_seen",
        "version",
        "in_flight",
        "browser_spares",
    )
    list_filter = ("kind",)
    readonly_fields = [f.name for f in WorkerHeartbeat._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        orphans = runs_held_by_dead_workers()
        extra = {
            "held_by_dead": [
                {"id": pk, "url": reverse("admin:workflows_run_change", args=[pk])}
                for pk in orphans.values_list("pk", flat=True)[:50]
            ],
            "held_by_dead_count": orphans.count(),
            "live_window_s": int(live_window().total_seconds()),
        }
        return super().changelist_view(request, {**(extra_context or {}), **extra})

    def get_queryset(self, request: HttpRequest) -> QuerySet[WorkerHeartbeat]:
        held = (
            Run.objects.filter(status__in=sorted(ACTIVE), lease_owner=OuterRef("name"))
            .order_by()
            .values("lease_owner")
            .annotate(n=Count("id"))
            .values("n")
        )
        return super().get_queryset(request).annotate(held=Subquery(held))

    @admin.display(boolean=True, description="alive")
    def alive(self, obj: WorkerHeartbeat) -> bool:
        return obj.last_seen >= timezone.now() - live_window()

    @admin.display(description="runs in flight")
    def in_flight(self, obj: WorkerHeartbeat) -> int:
        return getattr(obj, "held", None) or 0
