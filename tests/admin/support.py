"""Helpers for the admin tests: specs and logged-in clients."""

from __future__ import annotations

from django.test import Client

GATE_SPEC = """\
slug: gated
title: Gated workflow
mode: autonomous
inputs:
  type: object
  required: [employee_name]
  properties:
    employee_name: {type: string, title: Full name, maxLength: 80}
    count: {type: integer, minimum: 1, multipleOf: 5}
plan:
  nodes:
    - id: gate
      type: approval
      title: "OK for {{ employee_name }}?"
"""

INPUT_PLAN = {
    "nodes": [
        {
            "id": "ask",
            "type": "input",
            "title": "Which laptop?",
            "fields": {
                "laptop_model": {"type": "string", "title": "Laptop model", "maxLength": 40},
                "quantity": {"type": "integer", "minimum": 1, "maximum": 5},
            },
            "required": ["laptop_model"],
        },
    ]
}


def client_for(user) -> Client:  # type: ignore[no-untyped-def]
    """Return a test client logged in as user."""
    client = Client()
    client.force_login(user)
    return client
