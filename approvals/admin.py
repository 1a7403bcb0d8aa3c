"""Approval requests in the admin: decide a pending one, read the others.

A pending request shows its requested fields as real inputs, generated from
its JSON Schema, next to the decision; submitting goes through
`approvals.services.approval_decide`, the one way every interface decides.
Nobody adds, edits or deletes a request here.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from approvals.models import ApprovalRequest, RequestKind, Resolution, WorkflowWebhook
from approvals.permissions import decide_refusal, may_decide_at_all, visible_requests
from approvals.services import AlreadyDecided, DecisionInvalid, DecisionRefused, approval_decide
from workflows.display import (
    json_block,
    render_fields,
    status_badge,
)
from workflows.forms import SchemaForm, cleaned_values, schema_form_class
from workflows.picture import child_run_links, request_picture
from workflows.plans import PlanInvalid
from workflows.readable import readable_with_raw
from workflows.readonly import ReadOnlyAdminMixin
from workflows.selectors import redact
from workflows.states import TransitionNotAllowed

VALUES_PREFIX = "values"


class DecisionForm(forms.Form):
    """The decision itself; the values live in a separate, generated form."""

    decision = forms.ChoiceField(
        choices=[("approve", "Approve"), ("reject", "Reject")],
        widget=forms.RadioSelect,
    )
    comment = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Required to reject; recorded with the decision.",
    )
    # The digest of the parameters the page showed; checked by the service.
    digest = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)


class OutcomeDecisionForm(DecisionForm):
    """A decision about a step whose outcome is unknown."""

    resolution = forms.ChoiceField(
        choices=Resolution.choices,
        widget=forms.RadioSelect,
        required=False,
        help_text="To approve, say what happened. Marking the step done needs its outputs.",
    )


def _decision_form_class(request: ApprovalRequest) -> type[DecisionForm]:
    return OutcomeDecisionForm if request.kind == RequestKind.UNKNOWN_OUTCOME else DecisionForm


def _values_asked(request: ApprovalRequest, decision: str, resolution: str) -> bool:
    if decision != "approve":
        return False
    return request.kind != RequestKind.UNKNOWN_OUTCOME or resolution == Resolution.MARK_DONE


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Requests: decided through the service, otherwise read-only for everyone."""

    list_display = (
        "title",
        "kind",
        "run_link",
        "node_id",
        "status_label",
        "assigned_group",
        "created_at",
        "decided_by",
    )
    list_filter = ("status", "kind", "assigned_group")
    search_fields = ("title", "node_id", "run__id__exact", "decided_by__username")
    list_select_related = ("assigned_group", "decided_by")
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "title",
                    "kind",
                    "run_link",
                    "node_id",
                    "status_label",
                    "resolution",
                    "assigned_group",
                    "description",
                ]
            },
        ),
        ("Where in the plan", {"fields": ["plan_picture"]}),
        ("Decision", {"fields": ["decided_by", "decided_at", "comment", "values_json"]}),
        ("What was asked", {"fields": ["fields_json", "state_json", "created_at"]}),
    ]
    readonly_fields = (
        "title",
        "kind",
        "run_link",
        "node_id",
        "status_label",
        "resolution",
        "assigned_group",
        "description",
        "decided_by",
        "decided_at",
        "comment",
        "values_json",
        "fields_json",
        "state_json",
        "created_at",
        "plan_picture",
    )

    @admin.display(description="Plan")
    def plan_picture(self, obj: ApprovalRequest) -> SafeString:
        """The run's plan with this request's node outlined and each node's state."""
        return request_picture(obj, redact(obj.run.context), links=child_run_links(obj.run))

    # --- permissions: read-only (the mixin); deciding is not editing, see
    # change_view ---------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        """Only the requests the user may see (policy.visible_requests).

        Someone without the view permission keeps the whole queryset, so the
        admin's own permission check answers them 403, not "no such request".
        """
        requests = super().get_queryset(request)
        if not self.has_view_or_change_permission(request):
            return requests
        return visible_requests(request.user, requests)

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> ApprovalRequest | None:
        try:
            pk = int(object_id)
        except (TypeError, ValueError):
            return None
        return (
            self.get_queryset(request)
            .select_related("run__workflow", "assigned_group", "decided_by")
            .filter(pk=pk)
            .first()
        )

    # --- columns -------------------------------------------------------------

    @admin.display(description="Run", ordering="run_id")
    def run_link(self, obj: ApprovalRequest) -> SafeString:
        url = reverse("admin:workflows_run_change", args=[obj.run_id])
        return format_html('<a href="{}">Run {}</a>', url, obj.run_id)

    @admin.display(description="Status", ordering="status")
    def status_label(self, obj: ApprovalRequest) -> SafeString:
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description="Values")
    def values_json(self, obj: ApprovalRequest) -> SafeString:
        return readable_with_raw(redact(obj.values))

    @admin.display(description="Fields (JSON Schema)")
    def fields_json(self, obj: ApprovalRequest) -> SafeString:
        return json_block(obj.fields)

    @admin.display(description="State")
    def state_json(self, obj: ApprovalRequest) -> SafeString:
        return readable_with_raw(redact(obj.state))

    # --- deciding ------------------------------------------------------------

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """Decide a pending request, or show any request read-only."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None or not self.has_view_permission(request, obj):
            return super().change_view(request, object_id, form_url, extra_context)
        if request.method == "POST":
            if not may_decide_at_all(request.user):
                raise PermissionDenied
            return self._decide(request, obj)
        if obj.is_pending and may_decide_at_all(request.user):
            refusal = decide_refusal(request.user, obj, obj.run)
            if not refusal:
                return self._render_decide(request, obj, *self._blank_forms(obj))
            self.message_user(
                request, f"You cannot decide this request: {refusal}.", messages.WARNING
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def _blank_forms(self, obj: ApprovalRequest) -> tuple[DecisionForm, SchemaForm]:
        values_class = self._values_form_class(obj)
        return (
            _decision_form_class(obj)(initial={"digest": obj.digest}),
            values_class(prefix=VALUES_PREFIX, initial=dict(obj.values or {})),
        )

    @staticmethod
    def _values_form_class(obj: ApprovalRequest) -> type[SchemaForm]:
        return schema_form_class(obj.fields, prefix_errors="values.", name="RequestValuesForm")

    def _decide(self, request: HttpRequest, obj: ApprovalRequest) -> HttpResponse:
        values_class = self._values_form_class(obj)
        decision_form = _decision_form_class(obj)(request.POST)
        values_form = values_class(request.POST, prefix=VALUES_PREFIX)
        if not decision_form.is_valid():
            values_form.is_valid()
            return self._render_decide(request, obj, decision_form, values_form)
        decision = decision_form.cleaned_data["decision"]
        resolution = decision_form.cleaned_data.get("resolution") or ""
        asked = _values_asked(obj, decision, resolution)
        values: dict[str, Any] = {}
        if asked:
            if not values_form.is_valid():
                return self._render_decide(request, obj, decision_form, values_form)
            values = cleaned_values(values_form)
        else:
            # Not validated (a rejection needs no values), so redisplay what
            # was typed without reporting the values as missing.
            typed = {
                name: request.POST.get(values_form.add_prefix(name)) for name in values_form.fields
            }
            values_form = values_class(prefix=VALUES_PREFIX, initial=typed)
        try:
            approval_decide(
                request_id=obj.pk,
                actor=request.user,
                decision=decision,
                values=values,
                comment=decision_form.cleaned_data["comment"],
                resolution=resolution if decision == "approve" else "",
                # The parameters the person saw: a request that now guards
                # something else refuses the decision.
                digest=decision_form.cleaned_data.get("digest") or None,
            )
        except (DecisionInvalid, PlanInvalid) as exc:
            pairs = (
                list(exc.errors.items())
                if isinstance(exc, DecisionInvalid)
                else [(error.field, error.message) for error in exc.errors]
            )
            general = self._show_errors(pairs, decision_form, values_form if asked else None)
            return self._render_decide(request, obj, decision_form, values_form, general)
        except (AlreadyDecided, DecisionRefused, TransitionNotAllowed) as exc:
            self.message_user(request, f"Not decided: {exc}.", messages.ERROR)
            return HttpResponseRedirect(request.path)
        verb = "Approved" if decision == "approve" else "Rejected"
        self.message_user(request, f"{verb}: {obj.title} (run {obj.run_id}).", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:workflows_run_change", args=[obj.run_id]))

    @staticmethod
    def _show_errors(
        errors: list[tuple[str, str]], decision_form: DecisionForm, values_form: SchemaForm | None
    ) -> list[str]:
        """Put each service error beside its field; return the ones that fit none."""
        general, for_values = [], []
        for field, message in errors:
            if field in decision_form.fields and field != "digest":  # digest is hidden
                decision_form.add_error(field, message)
            elif values_form is not None and field not in ("", "values", "node"):
                for_values.append((field, message))
            else:
                general.append(f"{field}: {message}" if field else message)
        if values_form is not None:
            general += values_form.add_service_errors(for_values)
        return general

    def _render_decide(
        self,
        request: HttpRequest,
        obj: ApprovalRequest,
        decision_form: DecisionForm,
        values_form: SchemaForm,
        general_errors: list[str] | None = None,
    ) -> HttpResponse:
        state = obj.state or {}
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Decide: {obj.title}",
            "original": obj,
            "status": status_badge(obj.status, obj.get_status_display()),
            "run_link": self.run_link(obj),
            "values_fields": render_fields(values_form),
            "has_values": bool(values_form.fields),
            "decision_fields": render_fields(decision_form),
            "general_errors": general_errors or [],
            "state_json": readable_with_raw(redact(state)),
            "guards": [
                {**guard, "readable": readable_with_raw(guard.get("params") or {})}
                for guard in redact(obj.guards or [])
                if isinstance(guard, dict)
            ],
            "inbox_url": reverse("inbox:request", args=[obj.pk]),
            "has_state": bool(state),
            "purpose": obj.purpose,
            "media": self.media + values_form.media + decision_form.media,
        }
        return TemplateResponse(request, "admin/approvals/approvalrequest/decide.html", context)


@admin.register(WorkflowWebhook)
class WorkflowWebhookAdmin(admin.ModelAdmin):
    """Where a workflow's approval events are POSTed; the key is a named secret."""

    list_display = ("workflow", "url", "secret_name", "active")
    list_filter = ("active",)
    # Django 6 defaults scheme-less URLs to https; say so now, explicitly.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
