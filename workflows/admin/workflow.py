"""The workflow admin: edit the spec as YAML or JSON, see its plan, start runs."""

from __future__ import annotations

from typing import Any

import yaml
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from agentos_site import policy
from workflows.admin.volume import BatchStartMixin
from workflows.display import json_block, plan_error_text, render_fields, render_plan
from workflows.forms import cleaned_values, schema_form_class
from workflows.models import Workflow
from workflows.plans import PlanError, PlanInvalid, parse_spec_text
from workflows.services import run_create, workflow_create, workflow_update
from workflows.states import RunMode, mode_refusal, modes_allowed

STARTER_SPEC = """\
slug: my-workflow
title: My workflow
mode: assisted
inputs:
  type: object
  required: [name]
  properties:
    name: {type: string, title: Name}
plan:
  nodes:
    - id: confirm
      type: approval
      title: "Go ahead for {{ name }}?"
"""


class WorkflowSpecForm(forms.ModelForm):
    """One textarea holding the whole spec; saving goes through the services.

    The services both validate and save, so `clean()` calls them: their
    PlanInvalid problems then appear beside the textarea, and the admin's
    transaction around the request covers the write.
    """

    source = forms.CharField(
        label="Spec (YAML or JSON)",
        strip=False,
        widget=forms.Textarea(attrs={"rows": 30, "class": "agentos-code", "spellcheck": "false"}),
        help_text="slug, title, description, mode, allow_self_approval, slack_channel, "
        "inputs (a JSON Schema object) and plan.nodes. Saving a change stores a new version; "
        "runs already started keep the plan they froze.",
    )
    actor: Any = None  # the request's user, set by WorkflowAdmin.get_form
    saved: Workflow | None = None

    class Meta:
        model = Workflow
        fields = ["source"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.initial.get("source"):
            self.initial["source"] = yaml.safe_dump(
                self.instance.spec, sort_keys=False, allow_unicode=True
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        text = cleaned.get("source")
        if text is None:
            return cleaned
        try:
            raw = parse_spec_text(text)
            if self.instance.pk:
                self.saved = workflow_update(
                    workflow=self.instance, raw_spec=raw, source=text, actor=self.actor
                )
            else:
                self.saved = workflow_create(raw_spec=raw, source=text, actor=self.actor)
        except PlanInvalid as exc:
            for error in exc.errors:
                self.add_error("source", plan_error_text(error))
        return cleaned


class StartOptionsForm(forms.Form):
    """What a run needs besides its inputs.

    The mode is the workflow's own or a stricter one: a weaker mode is neither
    offered nor accepted (run_create refuses it too).
    """

    mode = forms.ChoiceField(
        choices=RunMode.choices,
        widget=forms.RadioSelect,
        help_text="Which actions need a person's approval: the workflow's mode or a stricter one.",
    )

    def __init__(self, *args: Any, floor: str = RunMode.AUTONOMOUS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.floor = floor
        allowed = modes_allowed(floor)
        # Only the widget narrows: a forged weaker mode then meets clean_mode's
        # message instead of a bare "not one of the available choices".
        self.fields["mode"].widget.choices = [
            (value, label) for value, label in RunMode.choices if value in allowed
        ]

    def clean_mode(self) -> str:
        mode = self.cleaned_data["mode"]
        refusal = mode_refusal(mode, self.floor)
        if refusal:
            raise forms.ValidationError(refusal)
        return mode


@admin.register(Workflow)
class WorkflowAdmin(BatchStartMixin, admin.ModelAdmin):
    """Workflows: add and change through the services, never delete."""

    form = WorkflowSpecForm
    list_display = ("slug", "title", "version", "mode_label", "node_count", "updated_at")
    list_display_links = ("slug", "title")
    search_fields = ("slug", "title", "description")
    readonly_fields = (
        "slug",
        "title",
        "version",
        "mode_label",
        "created_by",
        "created_at",
        "updated_at",
        "source_text",
        "inputs_json",
        "plan_table",
        "versions_table",
    )
    actions = ["start_run_action"]
    save_as = False
    change_form_template = "admin/workflows/workflow/change_form.html"

    # --- permissions ---------------------------------------------------------

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # A workflow is written once and then versioned: "Save and add
        # another" means nothing here, and its versions are its history.
        extra_context = {**(extra_context or {}), "show_save_and_add_another": False}
        return super().changeform_view(request, object_id, form_url, extra_context)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # runs refer to workflows; their history must stay

    def has_start_run_permission(self, request: HttpRequest) -> bool:
        return policy.allows(request.user, policy.RUNS_START)

    # --- list ----------------------------------------------------------------

    def get_list_display(self, request: HttpRequest) -> tuple[str, ...]:
        columns = tuple(super().get_list_display(request))
        if self.has_start_run_permission(request):
            columns += ("start_link",)
        return columns

    @admin.display(description="Mode")
    def mode_label(self, obj: Workflow) -> str:
        return RunMode(obj.mode).label.split(":")[0] if obj.mode in RunMode.values else obj.mode

    @admin.display(description="Nodes")
    def node_count(self, obj: Workflow) -> int:
        return len(obj.plan.get("nodes", []))

    @admin.display(description="")
    def start_link(self, obj: Workflow) -> SafeString:
        url = reverse("admin:workflows_workflow_start", args=[obj.pk])
        batch = reverse("admin:workflows_workflow_batch", args=[obj.pk])
        return format_html(
            '<a class="button" href="{}">Start a run</a> '
            '<a class="button" href="{}">Start a batch</a>',
            url,
            batch,
        )

    @admin.action(description="Start a run of the selected workflow", permissions=["start_run"])
    def start_run_action(self, request: HttpRequest, queryset: QuerySet) -> Any:
        chosen = list(queryset.values_list("pk", flat=True)[:2])
        if len(chosen) != 1:
            self.message_user(
                request, "Select exactly one workflow to start a run.", messages.WARNING
            )
            return None
        return HttpResponseRedirect(reverse("admin:workflows_workflow_start", args=chosen))

    # --- the change form -----------------------------------------------------

    def get_fieldsets(self, request: HttpRequest, obj: Workflow | None = None) -> list:
        if obj is None:
            return [(None, {"fields": ["source"]})]
        source = "source" if self.has_change_permission(request, obj) else "source_text"
        return [
            (
                None,
                {
                    "fields": [
                        "slug",
                        "title",
                        "version",
                        "mode_label",
                        "created_by",
                        "created_at",
                        "updated_at",
                    ]
                },
            ),
            ("Spec", {"fields": [source]}),
            ("Plan", {"fields": ["plan_table", "inputs_json"]}),
            ("Versions", {"fields": ["versions_table"], "classes": ["collapse"]}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return self.readonly_fields if obj is not None else ()

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {"source": STARTER_SPEC}

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"actor": request.user})

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> Workflow:
        assert form.saved is not None, "clean() saved the workflow through the services"
        return form.saved

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Do nothing: the service called from the form's clean() saved it."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Do nothing: a workflow has no related rows to save here."""

    @admin.display(description="Spec (YAML or JSON)")
    def source_text(self, obj: Workflow) -> SafeString:
        text = obj.source or yaml.safe_dump(obj.spec, sort_keys=False, allow_unicode=True)
        return format_html('<pre class="agentos-json">{}</pre>', text)

    @admin.display(description="Inputs (JSON Schema)")
    def inputs_json(self, obj: Workflow) -> SafeString:
        return json_block(obj.inputs_schema)

    @admin.display(description="Nodes")
    def plan_table(self, obj: Workflow) -> SafeString:
        return render_plan(obj.plan)

    @admin.display(description="Versions")
    def versions_table(self, obj: Workflow) -> SafeString:
        versions = obj.versions.select_related("created_by").order_by("-version")
        return render_to_string(
            "admin/workflows/workflow/versions_table.html",
            {"versions": versions, "current": obj.version},
        )

    # --- starting a run ------------------------------------------------------

    def get_urls(self) -> list:
        extra = [
            path(
                "<path:object_id>/start/",
                self.admin_site.admin_view(self.start_run_view),
                name="workflows_workflow_start",
            ),
            *self.batch_urls(),
        ]
        return extra + super().get_urls()

    def start_run_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Show a form generated from the workflow's inputs; queue a run on submit."""
        workflow = self.get_object(request, unquote(object_id))
        if workflow is None:
            raise Http404("No such workflow.")
        if not (
            self.has_view_permission(request, workflow) and self.has_start_run_permission(request)
        ):
            raise PermissionDenied
        inputs_class = schema_form_class(
            workflow.inputs_schema, prefix_errors="context.", name="RunInputsForm"
        )
        if request.method == "POST":
            inputs = inputs_class(request.POST)
            options = StartOptionsForm(request.POST, prefix="run", floor=workflow.mode)
            if inputs.is_valid() and options.is_valid():
                try:
                    run = run_create(
                        workflow=workflow,
                        context=cleaned_values(inputs),
                        mode=options.cleaned_data["mode"],
                        requester=request.user,
                    )
                except PlanInvalid as exc:
                    self._show_run_errors(exc.errors, inputs, options)
                else:
                    self.message_user(
                        request, f"Run {run.pk} of {workflow.slug} is queued.", messages.SUCCESS
                    )
                    return HttpResponseRedirect(
                        reverse("admin:workflows_run_change", args=[run.pk])
                    )
        else:
            inputs = inputs_class()
            options = StartOptionsForm(
                prefix="run", initial={"mode": workflow.mode}, floor=workflow.mode
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Start a run of {workflow.title}",
            "workflow": workflow,
            "fields": render_fields(options, inputs),
            "has_inputs": bool(inputs.fields),
            "plan_table": render_plan(workflow.plan),
            "media": self.media + inputs.media + options.media,
        }
        return TemplateResponse(request, "admin/workflows/workflow/start_run.html", context)

    @staticmethod
    def _show_run_errors(errors: list[PlanError], inputs: Any, options: forms.Form) -> None:
        pairs = []
        for error in errors:
            if not error.node and error.field == "mode":
                options.add_error("mode", error.message)
            elif error.node:
                pairs.append(("", plan_error_text(error)))
            else:
                pairs.append((error.field, error.message))
        for message in inputs.add_service_errors(pairs):
            inputs.add_error(None, message)
