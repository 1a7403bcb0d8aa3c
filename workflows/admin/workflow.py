"""The workflow admin: edit the spec as YAML or JSON, see its plan, start runs."""

from __future__ import annotations

from typing import Any

import yaml
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
)
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from agentos_site import policy
from workflows import executor_config
from workflows.admin.volume import BatchStartMixin
from workflows.display import json_block, plan_error_text, render_fields, render_plan
from workflows.forms import cleaned_values, schema_form_class
from workflows.models import Workflow
from workflows.picture import render_graph
from workflows.plans import PlanError, PlanInvalid, parse_spec_text, validate_spec
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


MAX_SOURCE_CHARS = 512 * 1024


def spec_problems(text: str, workflow: Workflow | None) -> tuple[Any, list[PlanError]]:
    """Return the parsed spec (None when it does not parse) and every problem.

    The checks saving makes (workflow_create / workflow_update), without saving.
    """
    try:
        raw = parse_spec_text(text)
    except PlanInvalid as exc:
        return None, exc.errors
    try:
        spec = validate_spec(
            raw, registry=executor_config.registry(), policy=executor_config.policy()
        )
    except PlanInvalid as exc:
        return raw, exc.errors
    if workflow is not None and spec.slug != workflow.slug:
        return raw, [PlanError("", "slug", "the slug of a workflow cannot change")]
    if workflow is None and Workflow.objects.filter(slug=spec.slug).exists():
        return raw, [PlanError("", "slug", f"a workflow {spec.slug!r} already exists")]
    return raw, []


def child_workflow_links(plan: Any) -> dict[str, str]:
    """Return node id -> the admin page of the stored workflow a `workflow` node runs."""
    nodes = plan.get("nodes") if isinstance(plan, dict) else None
    wanted = {
        str(node.get("id")): node.get("workflow")
        for node in nodes or []
        if isinstance(node, dict)
        and node.get("type") == "workflow"
        and isinstance(node.get("workflow"), str)
    }
    found = dict(Workflow.objects.filter(slug__in=set(wanted.values())).values_list("slug", "pk"))
    return {
        node_id: reverse("admin:workflows_workflow_change", args=[found[slug]])
        for node_id, slug in wanted.items()
        if slug in found
    }


def spec_picture(text: str, workflow: Workflow | None) -> dict[str, Any]:
    """Return the spec's plan drawn with its problems on their boxes, and the problems.

    Each problem says whether its box shows it (`on_box`); the others (the
    slug, the inputs, a node the drawing cannot place) are listed apart.
    """
    raw, errors = spec_problems(text, workflow)
    plan = raw.get("plan") if isinstance(raw, dict) else None
    by_path: dict[str, list[str]] = {}
    for error in errors:
        if error.node:
            message = f"{error.field}: {error.message}" if error.field else error.message
            by_path.setdefault(error.node, []).append(message)
    left = {path: list(messages) for path, messages in by_path.items()}
    picture = render_graph(
        plan,
        {},
        errors=left,
        links=child_workflow_links(plan),
        label="The plan as it stands in the editor",
    )
    return {
        "valid": not errors,
        "picture": str(picture),
        "errors": [
            {
                **error.as_dict(),
                "text": plan_error_text(error),
                "on_box": bool(error.node) and error.node not in left,
            }
            for error in errors
        ],
    }


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
        "plan_picture",
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
            return [(None, {"fields": ["source", "plan_picture"]})]
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
            ("Spec", {"fields": [source, "plan_picture"]}),
            ("Plan", {"fields": ["plan_table", "inputs_json"]}),
            ("Versions", {"fields": ["versions_table"], "classes": ["collapse"]}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return self.readonly_fields if obj is not None else ("plan_picture",)

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

    @admin.display(description="Plan as drawn")
    def plan_picture(self, obj: Workflow | None) -> SafeString:
        """The plan's picture; the editor redraws it as the spec validates."""
        stored = obj is not None and obj.pk
        plan = obj.plan if stored else parse_spec_text(STARTER_SPEC)["plan"]
        return format_html(
            '<div id="spec-picture" class="spec-picture" data-url="{}" data-workflow="{}">'
            '<p id="spec-picture-state" class="spec-picture-state" role="status">{}</p>'
            '<ul id="spec-problems" class="errorlist" hidden></ul>'
            '<div id="spec-picture-graph">{}</div></div>',
            reverse("admin:workflows_workflow_picture"),
            obj.pk if stored else "",
            "The saved plan." if stored else "The starter plan.",
            render_graph(plan, {}, links=child_workflow_links(plan)),
        )

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
                "picture/",
                self.admin_site.admin_view(self.picture_view),
                name="workflows_workflow_picture",
            ),
            path(
                "<path:object_id>/start/",
                self.admin_site.admin_view(self.start_run_view),
                name="workflows_workflow_start",
            ),
            *self.batch_urls(),
        ]
        return extra + super().get_urls()

    def picture_view(self, request: HttpRequest) -> HttpResponse:
        """Validate a posted spec without saving it; answer its picture and problems.

        The editor posts here as the person types (debounced). Only those who
        may add or change workflows may ask: validation reads stored workflows.
        """
        if request.method != "POST":
            return JsonResponse({"errors": [{"field": "method", "text": "POST only"}]}, status=405)
        workflow = None
        raw_id = request.POST.get("workflow", "")
        if raw_id:
            if not raw_id.isdigit():
                return JsonResponse(
                    {"errors": [{"field": "workflow", "text": "workflow: must be an id"}]},
                    status=400,
                )
            workflow = Workflow.objects.filter(pk=int(raw_id)).first()
            if workflow is None:
                raise Http404("No such workflow.")
            if not self.has_change_permission(request, workflow):
                raise PermissionDenied
        elif not self.has_add_permission(request):
            raise PermissionDenied
        text = request.POST.get("source")
        if text is None or len(text) > MAX_SOURCE_CHARS:
            message = "is missing" if text is None else f"over {MAX_SOURCE_CHARS} characters"
            return JsonResponse(
                {"errors": [{"field": "source", "text": f"source: {message}"}]}, status=400
            )
        return JsonResponse(spec_picture(text, workflow))  # never cached: admin_view

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
