"""API fixtures: a token per role and a client that sends it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from accounts.services import token_create
from workflows.services import workflow_create

PEOPLE_SPEC = {
    "slug": "people",
    "title": "Greet people",
    "mode": "autonomous",
    "inputs": {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    },
    "plan": {
        "nodes": [
            {"id": "gate", "type": "approval", "title": "Greet {{ name }}?"},
            {
                "id": "check",
                "action": "verify.value_equals",
                "params": {"value": "{{ name }}", "expected": "{{ name }}"},
            },
        ]
    },
}


class Api:
    """A Django test client speaking JSON to /api/v1 with a Bearer token."""

    def __init__(self, token: str | None = None, client: Client | None = None) -> None:
        self.client = client or Client()
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        kwargs: dict[str, Any] = {"headers": {**self.headers, **headers}}
        if body is not None:
            kwargs["data"] = json.dumps(body)
            kwargs["content_type"] = "application/json"
        return getattr(self.client, method.lower())(f"/api/v1{path}", **kwargs)

    def get(self, path: str, **headers: str) -> Any:
        return self.call("GET", path, **headers)

    def post(self, path: str, body: Any = None, **headers: str) -> Any:
        return self.call("POST", path, body if body is not None else {}, **headers)

    def put(self, path: str, body: Any = None, **headers: str) -> Any:
        return self.call("PUT", path, body, **headers)


def api_for(user: Any) -> Api:
    return Api(token_create(user=user, name="test").plain)


@pytest.fixture
def as_operator(operator) -> Api:  # type: ignore[no-untyped-def]
    return api_for(operator)


@pytest.fixture
def as_reviewer(reviewer) -> Api:  # type: ignore[no-untyped-def]
    return api_for(reviewer)


@pytest.fixture
def as_auditor(auditor) -> Api:  # type: ignore[no-untyped-def]
    return api_for(auditor)


@pytest.fixture
def people(operator):  # type: ignore[no-untyped-def]
    return workflow_create(raw_spec=PEOPLE_SPEC, actor=operator)
