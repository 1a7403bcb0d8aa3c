"""API tokens in the admin: create (shown once), list, revoke; never edit."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from accounts.models import ApiToken
from accounts.services import token_create, token_revoke
from agentos_site import policy


class TokenAddForm(forms.ModelForm):
    expires_days = forms.IntegerField(
        min_value=1,
        max_value=3650,
        required=False,
        help_text="Days until it expires; empty for never.",
    )

    class Meta:
        model = ApiToken
        fields = ["user", "name"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = (
        "prefix",
        "user",
        "name",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "active",
    )
    list_filter = ("revoked_at",)
    search_fields = ("prefix", "name", "user__username")
    actions = ["revoke_tokens"]
    readonly_fields = (
        "user",
        "name",
        "prefix",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "created_by",
    )

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = TokenAddForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else ()

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["user", "name", "expires_days"]
        return list(self.readonly_fields)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return policy.allows(request.user, policy.TOKENS_REVOKE)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(boolean=True, description="Active")
    def active(self, token: ApiToken) -> bool:
        return token.is_active

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        new = token_create(
            user=form.cleaned_data["user"],
            name=form.cleaned_data["name"],
            expires_days=form.cleaned_data.get("expires_days"),
            actor=request.user,
        )
        obj.pk = new.token.pk
        obj.__dict__.update(new.token.__dict__)
        request._agentos_new_token = new.plain  # type: ignore[attr-defined]

    def response_add(
        self, request: HttpRequest, obj: ApiToken, post_url_continue: Any = None
    ) -> HttpResponse:
        # Shown in this response only: never in a message cookie or the session.
        context = {
            **self.admin_site.each_context(request),
            "token": obj,
            "plain": getattr(request, "_agentos_new_token", ""),
            "opts": self.opts,
            "title": "API token created",
        }
        return TemplateResponse(request, "admin/accounts/apitoken/created.html", context)

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        # The audit trail has token.created; the admin's LogEntry would repeat it.
        return None

    @admin.action(description="Revoke the selected tokens", permissions=["revoke"])
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet) -> None:
        for token_id in queryset.values_list("pk", flat=True):
            token_revoke(token_id=token_id, actor=request.user)
        self.message_user(request, "Revoked.", messages.SUCCESS)
