"""Django forms generated from JSON Schema objects.

A run's inputs, an input node's fields and an approval request's values are
all described by a JSON Schema of type object; `schema_form_class` turns one
into a real form (one field per property) and `cleaned_values` turns a valid
form back into JSON-able values. The admin and the inbox both use them.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from django import forms
from django.core.validators import RegexValidator
from django.forms.fields import InvalidJSONInput

from agentos_common import limits

LONG_TEXT = 300  # strings allowed to be longer than this get a textarea


class SchemaForm(forms.Form):
    """A form built from a JSON Schema; see `schema_form_class`."""

    schema: dict[str, Any] = {}
    error_prefix: str = ""

    def add_service_errors(self, errors: Iterable[tuple[str, str]]) -> list[str]:
        """Attach (field, message) pairs from a service to the fields they name.

        Field names may carry the class's `error_prefix` (`context.name`) or
        not (`name`); nested paths (`name.sub`) land on their top field.
        Return the messages that name no field of this form.
        """
        unmatched: list[str] = []
        for field, message in errors:
            name = field
            if self.error_prefix and name.startswith(self.error_prefix):
                name = name[len(self.error_prefix) :]
            top = name.split(".", 1)[0]
            if name in self.fields:
                self.add_error(name, message)
            elif top in self.fields:
                self.add_error(top, f"{name}: {message}")
            else:
                unmatched.append(f"{field}: {message}" if field else message)
        return unmatched


def _first_type(prop: dict[str, Any]) -> str:
    kind = prop.get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    return kind if isinstance(kind, str) else "string"


def _enum_field(prop: dict[str, Any], common: dict[str, Any]) -> forms.Field:
    options = list(prop["enum"])
    by_text = {str(option): option for option in options}
    choices = [(str(option), str(option)) for option in options]
    initial = common.get("initial")
    # No option is chosen for the person unless the schema gives a default: a
    # required enum starts on an empty "choose" entry, so a careless submit
    # is refused instead of ordering the first model on the list.
    if not common["required"]:
        choices = [("", "---------"), *choices]
    elif initial is None:
        choices = [("", "Choose…"), *choices]
    if initial is not None:
        common["initial"] = str(initial)
    return forms.TypedChoiceField(
        choices=choices, coerce=lambda text: by_text[text], empty_value=None, **common
    )


def _string_field(prop: dict[str, Any], common: dict[str, Any]) -> forms.Field:
    fmt = prop.get("format")
    if fmt == "date":
        return forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), **common)
    if fmt == "date-time":
        return forms.DateTimeField(**common)
    if fmt == "email":
        return forms.EmailField(max_length=prop.get("maxLength"), **common)
    if fmt in ("uri", "url"):
        return forms.URLField(max_length=prop.get("maxLength"), **common)
    validators = []
    if isinstance(prop.get("pattern"), str):
        # JSON Schema patterns are unanchored searches, like RegexValidator's.
        validators.append(
            RegexValidator(prop["pattern"], message=f"must match the pattern {prop['pattern']}")
        )
    max_length = prop.get("maxLength")
    long_text = fmt == "textarea" or (isinstance(max_length, int) and max_length > LONG_TEXT)
    widget = (
        forms.Textarea(attrs={"rows": 3}) if long_text else forms.TextInput(attrs={"size": 60})
    )
    return forms.CharField(
        max_length=max_length,
        min_length=prop.get("minLength"),
        validators=validators,
        widget=widget,
        strip=False,
        **common,
    )


def schema_field(prop: dict[str, Any], *, name: str, required: bool) -> forms.Field:
    """Return the form field for one JSON Schema property."""
    prop = prop if isinstance(prop, dict) else {}
    common: dict[str, Any] = {
        "label": prop.get("title") or name.replace("_", " ").capitalize(),
        "help_text": prop.get("description", ""),
        "required": required,
    }
    if "default" in prop:
        common["initial"] = prop["default"]
    if isinstance(prop.get("enum"), list) and prop["enum"]:
        return _enum_field(prop, common)
    kind = _first_type(prop)
    if kind == "string":
        return _string_field(prop, common)
    if kind == "integer":
        return forms.IntegerField(
            min_value=prop.get("minimum"), max_value=prop.get("maximum"), **common
        )
    if kind == "number":
        return forms.FloatField(
            min_value=prop.get("minimum"), max_value=prop.get("maximum"), **common
        )
    if kind == "boolean":
        # An unticked box is a value (False), so it never counts as missing.
        return forms.BooleanField(**{**common, "required": False})
    # Arrays, objects and anything else: edit the JSON itself.
    common["help_text"] = " ".join(filter(None, [common["help_text"], f"JSON ({kind})."]))
    return BoundedJSONField(widget=forms.Textarea(attrs={"rows": 3}), **common)


class BoundedJSONField(forms.JSONField):
    """A JSON field that refuses text nested deeper than limits.MAX_DEPTH."""

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and limits.text_depth(value) > limits.MAX_DEPTH:
            raise forms.ValidationError(str(limits.TooDeep()), code="too_deep")
        return super().to_python(value)

    def bound_data(self, data: Any, initial: Any) -> Any:
        # Shown again as typed, without parsing it (which would recurse).
        if isinstance(data, str) and limits.text_depth(data) > limits.MAX_DEPTH:
            return InvalidJSONInput(data)
        return super().bound_data(data, initial)


def schema_form_class(
    schema: dict[str, Any], *, prefix_errors: str = "", name: str = "SchemaForm"
) -> type[SchemaForm]:
    """Return a form class with one field per property of a JSON Schema object.

    `prefix_errors` is how the service that receives the values names these
    fields in its errors (`"context."` for run_create), so
    `form.add_service_errors` can put each message beside its field.
    """
    schema = schema if isinstance(schema, dict) else {}
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    fields = {
        key: schema_field(prop, name=key, required=key in required)
        for key, prop in properties.items()
    }
    attrs: dict[str, Any] = {**fields, "schema": schema, "error_prefix": prefix_errors}
    return type(name, (SchemaForm,), attrs)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def cleaned_values(form: forms.Form) -> dict[str, Any]:
    """Return a valid form's values as JSON-able data, without empty optional ones."""
    values: dict[str, Any] = {}
    for key, field in form.fields.items():
        value = form.cleaned_data.get(key)
        if isinstance(field, forms.BooleanField):
            values[key] = bool(value)
            continue
        if value is None or value == "" or (value in ([], {}) and not field.required):
            continue
        values[key] = _json_value(value)
    return values
