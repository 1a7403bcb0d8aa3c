"""The API's contract outside its operations: JSON everywhere, strict times,
and the limits stated in the OpenAPI schema (docs/api.md)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from agentos_site.api import api
from agentos_site.api_pagination import MAX_LIMIT

pytestmark = pytest.mark.django_db


def assert_json_error(response: Any, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json"), response.content
    body = response.json()
    assert set(body) == {"detail", "errors"} and body["detail"]
    return body


@pytest.mark.parametrize(
    "path",
    [
        "/runs/abc",  # a path parameter of the wrong type matches no route
        "/runs/1/nope",
        "/runs/abc/events",
        "/no-such-thing",
        "/",
    ],
)
def test_a_path_that_matches_no_route_is_a_json_404(as_operator, path) -> None:
    body = assert_json_error(as_operator.get(path), 404)

    assert body["errors"] == [{"field": "path", "message": "matches no resource"}]


def test_a_method_the_path_does_not_allow_is_a_json_405_with_allow(as_operator) -> None:
    response = as_operator.call("DELETE", "/runs")

    body = assert_json_error(response, 405)
    assert body["errors"][0]["field"] == "method"
    assert set(response["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}


def test_an_unhandled_exception_is_a_json_500(operator, monkeypatch) -> None:
    from accounts.services import token_create
    from workflows.api import runs

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("a bug nobody mapped")

    monkeypatch.setattr(runs, "runs_list", broken)
    client = Client(raise_request_exception=False)
    token = token_create(user=operator, name="t").plain

    response = client.get("/api/v1/runs", headers={"Authorization": f"Bearer {token}"})

    body = assert_json_error(response, 500)
    assert "a bug nobody mapped" not in response.content.decode()
    assert body["detail"] == "internal server error"


def test_a_body_over_the_upload_limit_is_a_json_400(as_operator, settings) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = as_operator.post("/plans/validate", {"plan": {"x": "y" * 2000}})

    assert_json_error(response, 400)


@pytest.mark.parametrize(
    "value", ["0.5", "1700000000", "yesterday", "2026-01-31T25:00:00Z", "2026-13-01"]
)
def test_a_query_time_that_is_not_iso_8601_is_a_422_naming_it(as_auditor, value) -> None:
    response = as_auditor.get(f"/audit?until={value}")

    body = assert_json_error(response, 422)
    assert [error["field"] for error in body["errors"]] == ["until"]


@pytest.mark.parametrize(
    "value",
    ["2026-01-31T09:00:00Z", "2026-01-31T09:00:00.5+02:00", "2026-01-31", "2026-01-31T09:00"],
)
def test_iso_8601_query_times_are_accepted(as_auditor, value) -> None:
    response = as_auditor.get(f"/audit/export?since={value.replace('+', '%2B')}")

    assert response.status_code == 200, response.content


def _schema() -> dict:
    return api.get_openapi_schema()


def _parameter(path: str, name: str) -> dict:
    operation = _schema()["paths"][f"/api/v1{path}"]["get"]
    return next(p for p in operation["parameters"] if p["name"] == name)["schema"]


def test_the_openapi_schema_states_the_limits_the_server_enforces() -> None:
    schemas = _schema()["components"]["schemas"]

    assert _parameter("/runs", "limit")["maximum"] == MAX_LIMIT
    assert _parameter("/runs", "offset")["minimum"] == 0
    assert _parameter("/audit", "until")["anyOf"][0]["format"] == "date-time"
    assert schemas["DraftIn"]["properties"]["text"]["maxLength"] == 4000
    assert schemas["DecisionIn"]["required"] == ["decision"]
    for plan in (schemas["PlanIn"]["properties"]["plan"], schemas["RunIn"]["properties"]["plan"]):
        assert "32 KiB" in plan["description"] and "depth 8" in plan["description"]
        assert "8,000 characters" in plan["description"]
    run_plan = schemas["RunIn"]["properties"]["plan"]["anyOf"][0]
    assert run_plan["properties"]["nodes"]["maxItems"] == 200
    documented = {
        str(code) for code in _schema()["paths"]["/api/v1/runs/{run_id}"]["get"]["responses"]
    }
    assert {"200", "401", "403", "404", "422"} <= documented
