"""JSON Schema → Django form: one real field per property, JSON-able values back."""

from __future__ import annotations

from django import forms

from workflows.forms import cleaned_values, schema_form_class

SCHEMA = {
    "type": "object",
    "required": ["name", "start", "age"],
    "properties": {
        "name": {
            "type": "string",
            "title": "Full name",
            "description": "As on the ID",
            "maxLength": 20,
            "minLength": 2,
            "pattern": "^[A-Z]",
        },
        "age": {"type": "integer", "minimum": 18, "maximum": 99},
        "score": {"type": "number", "default": 1.5},
        "remote": {"type": "boolean"},
        "department": {"type": "string", "enum": ["Engineering", "Sales"]},
        "level": {"type": "integer", "enum": [1, 2, 3]},
        "start": {"type": "string", "format": "date"},
        "email": {"type": "string", "format": "email"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "nickname": {"type": ["string", "null"]},
    },
}


def test_each_property_becomes_the_matching_field() -> None:
    form = schema_form_class(SCHEMA)()
    fields = form.fields
    assert isinstance(fields["name"], forms.CharField)
    assert fields["name"].label == "Full name" and fields["name"].help_text == "As on the ID"
    assert fields["name"].max_length == 20 and fields["name"].min_length == 2
    assert isinstance(fields["age"], forms.IntegerField) and fields["age"].required
    assert isinstance(fields["score"], forms.FloatField) and fields["score"].initial == 1.5
    assert isinstance(fields["remote"], forms.BooleanField) and not fields["remote"].required
    assert isinstance(fields["department"], forms.ChoiceField)
    assert isinstance(fields["department"].widget, forms.Select)
    assert isinstance(fields["start"], forms.DateField) and fields["start"].required
    assert isinstance(fields["email"], forms.EmailField) and not fields["email"].required
    assert isinstance(fields["tags"], forms.JSONField)
    assert isinstance(fields["nickname"], forms.CharField)


def test_valid_input_gives_json_values_without_empty_optional_ones() -> None:
    form = schema_form_class(SCHEMA)(
        {
            "name": "Ada",
            "age": "36",
            "score": "2.5",
            "level": "2",
            "start": "2024-03-01",
            "department": "",
            "email": "",
            "tags": '["a", "b"]',
        }
    )
    assert form.is_valid(), form.errors
    assert cleaned_values(form) == {
        "name": "Ada",
        "age": 36,
        "score": 2.5,
        "remote": False,
        "level": 2,
        "start": "2024-03-01",
        "tags": ["a", "b"],
    }


def test_constraints_are_enforced_by_the_form() -> None:
    form = schema_form_class(SCHEMA)(
        {
            "name": "ada",
            "age": "12",
            "start": "not a date",
            "email": "nope",
            "level": "7",
        }
    )
    assert not form.is_valid()
    assert set(form.errors) == {"name", "age", "start", "email", "level"}
    assert "pattern" in form.errors["name"][0]


def test_service_errors_land_beside_their_fields() -> None:
    form = schema_form_class(SCHEMA, prefix_errors="context.")(
        {"name": "Ada", "age": "30", "start": "2024-01-01"}
    )
    assert form.is_valid()
    unmatched = form.add_service_errors(
        [
            ("context.age", "too old"),
            ("name", "taken"),
            ("context.tags.0", "bad tag"),
            ("context", "must be an object"),
        ]
    )
    assert form.errors["age"] == ["too old"]
    assert form.errors["name"] == ["taken"]
    assert form.errors["tags"] == ["tags.0: bad tag"]
    assert unmatched == ["context: must be an object"]


def test_an_empty_schema_gives_an_empty_form() -> None:
    form = schema_form_class({"type": "object", "properties": {}})({})
    assert form.is_valid() and cleaned_values(form) == {}
