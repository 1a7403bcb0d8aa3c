"""Operators at volume in the admin: batch start, batches, schedules."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from agentos_common import limits
from agentos_site import policy
from workflows.batches import (
    MAX_BATCH,
    MAX_CSV_BYTES,
    BatchInvalid,
    rows_from_csv,
    runs_start_batch,
)
from workflows.forms import BoundedJSONField
from workflows.models import RunBatch, WorkflowSchedule
from workflows.readonly import ReadOnlyAdminMixin
from workflows.schedules import schedule_delete, schedule_problems, schedule_save
from workflows.states import RunMode


class BatchForm(forms.Form):
    csv_file = forms.FileField(
        required=False,
        label="CSV file",
        help_text="A header line naming the inputs, one run per row.",
    )
    rows_json = forms.CharField(
        required=False,
        label="Or a JSON list",
        widget=forms.Textarea(attrs={"rows": 8, "cols": 80}),
        help_text='e.g. [{"name": "Ada"}, {"name": "Bob"}]',
    )
    mode = forms.ChoiceField(
        choices=[("", "the workflow's mode"), *RunMode.choices], required=False
    )


class BatchStartMixin:
    """Adds `<workflow>/batch/` to the workflow admin."""

    def batch_urls(self) -> list:
        return [
            path(
                "<path:object_id>/batch/",
                self.admin_site.admin_view(self.batch_view),  # type: ignore[attr-defined]
                name="workflows_workflow_batch",
            )
        ]

    def batch_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Start up to 100 runs from a CSV upload or a JSON list: all or none."""
        workflow = self.get_object(request, unquote(object_id))  # type: ignore[attr-defined]
        if workflow is None:
            raise Http404("No such workflow.")
        if not policy.allows(request.user, policy.RUNS_START):
            raise PermissionDenied
        row_errors: list[dict] = []
        form = BatchForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                rows, source = self._rows(form, workflow)
                batch = runs_start_batch(
                    workflow=workflow,
                    rows=rows,
                    actor=request.user,
                    source=source,
                    mode=form.cleaned_data["mode"] or None,
                )
            except BatchInvalid as exc:
                row_errors = [e.as_dict() for e in exc.errors]
                for error in exc.errors:
                    if error.row == 0 and error.column == "mode":
                        form.add_error("mode", error.message)
                form.add_error(None, f"No run was started: {len(row_errors)} problem(s).")
            else:
                self.message_user(
                    request,
                    f"Batch {batch.pk}: {batch.size} runs of "  # type: ignore
                    f"{workflow.slug} queued.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:workflows_run_changelist") + f"?batch__id__exact={batch.pk}"
                )
        context = {
            **self.admin_site.each_context(request),  # type: ignore[attr-defined]
            "opts": self.opts,
            "workflow": workflow,
            "form": form,  # type: ignore
            "row_errors": row_errors,
            "max_batch": MAX_BATCH,
            "inputs": list(workflow.inputs_schema.get("properties", {})),
            "title": f"Start a batch of {workflow.title}",
        }
        return TemplateResponse(request, "admin/workflows/workflow/batch.html", context)

    @staticmethod
    def _rows(form: BatchForm, workflow: Any) -> tuple[Any, str]:
        from workflows.batches import RowError

        upload, text = form.cleaned_data["csv_file"], form.cleaned_data["rows_json"].strip()
        if bool(upload) == bool(text):
            raise BatchInvalid([RowError(0, "file", "give either a CSV file or a JSON list")])
        if upload:
            if upload.size > MAX_CSV_BYTES:
                raise BatchInvalid([RowError(0, "file", "the file is too large")])
            try:
                content = upload.read().decode("utf-8-sig")
            except UnicodeDecodeError:
                raise BatchInvalid([RowError(0, "file", "not UTF-8 text")]) from None
            return rows_from_csv(content, workflow.inputs_schema), "csv"
        try:
            return limits.loads(text), "json"
        except ValueError as exc:
            raise BatchInvalid([RowError(0, "rows", f"not valid JSON: {exc}")]) from None


@admin.register(RunBatch)
class RunBatchAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "workflow", "size", "source", "created_by", "created_at", "runs_link")
    readonly_fields = ("workflow", "size", "source", "created_by", "created_at")

    @admin.display(description="Runs")
    def runs_link(self, batch: RunBatch) -> Any:
        from django.utils.html import format_html

        url = reverse("admin:workflows_run_changelist") + f"?batch__id__exact={batch.pk}"
        return format_html('<a href="{}">{} runs</a>', url, batch.size)


class ScheduleForm(forms.ModelForm):
    """A schedule's fields; its owner is whoever saves it (never chosen here)."""

    actor: Any = None  # the request's user, set by WorkflowScheduleAdmin.get_form

    class Meta:
        model = WorkflowSchedule
        fields = ["name", "workflow", "kind", "cron", "minutes", "context", "mode", "enabled"]
        field_classes = {"context": BoundedJSONField}  # deep JSON: a form error, not a 500

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if not policy.allows(self.actor, policy.RUNS_START):
            self.add_error(
                None,
                "Only a person who may start runs can save a schedule: "
                "its runs are started in their name.",
            )
        if not self.errors:
            candidate = WorkflowSchedule(**{f: cleaned.get(f) for f in self.Meta.fields})
            candidate.mode = candidate.mode or ""
            for field, message in schedule_problems(candidate).items():
                name = field if field in self.fields else "context"
                self.add_error(name, f"{field}: {message}" if name != field else message)
        return cleaned


@admin.register(WorkflowSchedule)
class WorkflowScheduleAdmin(admin.ModelAdmin):
    """Schedules saved through the service, which keeps django-q2's Schedule in step."""

    form = ScheduleForm
    list_display = ("name", "workflow", "kind", "cron", "minutes", "enabled", "owner")
    readonly_fields = ("owner",)
    list_filter = ("enabled", "kind", "workflow")
    actions = ["delete_schedules"]

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"actor": request.user})

    def save_model(
        self, request: HttpRequest, obj: WorkflowSchedule, form: Any, change: bool
    ) -> None:
        """Save through the service, which makes the saver the schedule's owner."""
        obj.mode = obj.mode or ""
        schedule_save(schedule=obj, actor=request.user)

    def delete_model(self, request: HttpRequest, obj: WorkflowSchedule) -> None:
        schedule_delete(schedule=obj, actor=request.user)

    @admin.action(description="Delete the selected schedules", permissions=["delete"])
    def delete_schedules(self, request: HttpRequest, queryset: Any) -> None:
        for schedule in queryset.select_related("workflow"):
            schedule_delete(schedule=schedule, actor=request.user)
        self.message_user(request, "Deleted.", messages.SUCCESS)
