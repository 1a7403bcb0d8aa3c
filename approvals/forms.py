"""Inbox forms: the decision, delegation and bulk approval."""

from __future__ import annotations

from django import forms

from approvals.models import Resolution


class DecisionForm(forms.Form):
    """Approve or reject; the values live in a form generated from the schema."""

    decision = forms.ChoiceField(
        choices=[("approve", "Approve"), ("reject", "Reject")], widget=forms.RadioSelect
    )
    comment = forms.CharField(
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Required to reject; recorded with the decision.",
    )
    digest = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)
    resolution = forms.ChoiceField(
        choices=[("", "---------"), *Resolution.choices],
        required=False,
        help_text="For an unknown outcome: what happened.",
    )

    def clean(self) -> dict:
        data = super().clean()
        if data.get("decision") == "reject" and not (data.get("comment") or "").strip():
            self.add_error("comment", "Give a reason to reject.")
        return data


class DelegateForm(forms.Form):
    """Hand a request to a person or a group."""

    to_user = forms.CharField(required=False, max_length=150, label="Person (username)")
    to_group = forms.CharField(required=False, max_length=150, label="or group")
    comment = forms.CharField(required=False, max_length=1000)

    def clean(self) -> dict:
        data = super().clean()
        if bool(data.get("to_user")) == bool(data.get("to_group")):
            self.add_error("to_user", "Give either a person or a group.")
        return data
