"""The event log in the admin: readable by those allowed, writable by nobody."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from agentos_site import policy
from workflows.audit import audit_events, audit_exported, export_csv, export_jsonl
from workflows.display import HASH_PREFIX, json_block
from workflows.models import Event
from workflows.readonly import ReadOnlyAdminMixin
from workflows.selectors import redact


class ExportForm(forms.Form):
    since = forms.DateTimeField(
        required=False,
        help_text="From (inclusive), UTC.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    until = forms.DateTimeField(
        required=False,
        help_text="Up to (exclusive), UTC.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    format = forms.ChoiceField(choices=[("jsonl", "JSON Lines"), ("csv", "CSV")])


MIN_HASH_SEARCH = 8


@admin.register(Event)
class EventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Events are append-only: no add, change or delete, not even for superusers."""

    list_display = ("id", "run_link", "seq", "type", "actor_label", "at", "hash_prefix")
    list_display_links = ("id",)
    list_filter = ("type",)
    search_fields = ("type", "actor_label", "run__id__exact", "correlation_id__exact")
    search_help_text = "Type, actor, run id, correlation id, or the first 8+ characters of a hash."
    date_hierarchy = "at"
    ordering = ("-id",)
    list_per_page = 100
    show_full_result_count = False
    fields = (
        "run_link",
        "seq",
        "type",
        "actor_label",
        "at",
        "correlation_id",
        "data_json",
        "prev_hash",
        "hash",
    )
    readonly_fields = fields

    def has_module_permission(self, request: HttpRequest) -> bool:
        return policy.may_read_system_log(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """The whole log, system events included: auditors and superusers only."""
        return policy.may_read_system_log(request.user)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def get_urls(self) -> list:
        return [
            path(
                "export/",
                self.admin_site.admin_view(self.export_view),
                name="workflows_event_export",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        extra_context = {
            **(extra_context or {}),
            "can_export": policy.allows(request.user, policy.AUDIT_EXPORT),
        }
        return super().changelist_view(request, extra_context)

    def export_view(self, request: HttpRequest) -> HttpResponse:
        """Download the log for a time range as JSON Lines or CSV (auditors)."""
        if not policy.allows(request.user, policy.AUDIT_EXPORT):
            raise PermissionDenied
        form = ExportForm(request.GET or None)
        if request.GET and form.is_valid():
            data = form.cleaned_data
            events = audit_events(since=data["since"], until=data["until"])
            audit_exported(
                actor=request.user, since=data["since"], until=data["until"], format=data["format"]
            )
            stream, kind = (
                (export_csv(events), "text/csv")
                if data["format"] == "csv"
                else (export_jsonl(events), "application/x-ndjson")
            )
            response = StreamingHttpResponse(stream, content_type=kind)
            response["Content-Disposition"] = (
                f'attachment; filename="agentos-audit.{data["format"]}"'
            )
            return response
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "form": form,
            "title": "Export the audit log",
        }
        return TemplateResponse(request, "admin/workflows/event/export.html", context)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        found, duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip().lower()
        if len(term) >= MIN_HASH_SEARCH and all(c in "0123456789abcdef" for c in term):
            # Short digits would match most hashes; a real prefix finds one event.
            found = found | queryset.filter(hash__startswith=term)
        return found, duplicates

    @admin.display(description="Run", ordering="run_id")
    def run_link(self, event: Event) -> SafeString | str:
        if event.run_id is None:
            return "system"
        url = reverse("admin:workflows_run_change", args=[event.run_id])
        return format_html('<a href="{}">Run {}</a>', url, event.run_id)

    @admin.display(description="Hash")
    def hash_prefix(self, event: Event) -> SafeString:
        return format_html("<code>{}…</code>", event.hash[:HASH_PREFIX])

    @admin.display(description="Data")
    def data_json(self, event: Event) -> SafeString:
        return json_block(redact(event.data))
