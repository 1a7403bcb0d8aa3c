"""The RBAC table: every role × every API operation and admin view.

The tables below are the specification. Each test first checks that the
table covers exactly what exists (the ninja API's operations, the admin's
URL names), so adding an operation or a view without its row fails here.
Allowed means "not refused" (the operation may still answer 4xx about the
data, never 401/403); refused means 401 for anonymous callers and 403 for
the others, or a redirect to the login page in the admin.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import URLPattern, URLResolver, reverse
from django.utils import timezone

from accounts.services import token_create
from agentos_site.api import api
from approvals.models import ApprovalRequest
from tests.api.conftest import PEOPLE_SPEC, Api
from workflows.batches import runs_start_batch
from workflows.engine import run_advance
from workflows.events import system_event_append
from workflows.models import Event, Run, WorkflowSchedule
from workflows.schedules import schedule_save
from workflows.services import run_create, workflow_create

pytestmark = pytest.mark.django_db

OP, R, A, S, N = "operator", "reviewer", "auditor", "admin", "nobody"
ANON = "anonymous"
EVERYONE = {OP, R, A, S, N, ANON}
VIEWERS = {OP, R, A, S}
ORDER = [ANON, N, A, OP, R, S]  # refused roles go first: allowed ones may change state

# (method, path) -> roles allowed
API_TABLE: dict[tuple[str, str], set[str]] = {
    ("GET", "/api/v1/health"): EVERYONE,
    ("GET", "/api/v1/actions"): VIEWERS,
    ("POST", "/api/v1/plans/validate"): VIEWERS,
    ("POST", "/api/v1/plans/draft"): {OP, S},
    ("GET", "/api/v1/workflows"): VIEWERS,
    ("POST", "/api/v1/workflows"): {OP, S},
    ("GET", "/api/v1/workflows/{slug}"): VIEWERS,
    ("PUT", "/api/v1/workflows/{slug}"): {OP, S},
    ("POST", "/api/v1/runs"): {OP, S},
    ("GET", "/api/v1/runs"): VIEWERS,
    ("POST", "/api/v1/runs/batch"): {OP, S},
    ("GET", "/api/v1/runs/{run_id}"): VIEWERS,
    ("GET", "/api/v1/runs/{run_id}/events"): VIEWERS,
    ("POST", "/api/v1/runs/{run_id}/cancel"): {OP, S},
    ("POST", "/api/v1/runs/{run_id}/fork"): {OP, S},
    ("GET", "/api/v1/audit"): {A, S},
    ("GET", "/api/v1/audit/export"): {A, S},
    ("GET", "/api/v1/approvals"): VIEWERS,
    ("GET", "/api/v1/approvals/{request_id}"): VIEWERS,
    ("POST", "/api/v1/approvals/{request_id}/decision"): {R, S},
    ("GET", "/api/v1/reports/sla"): {OP, A, S},
}


def api_operations() -> set[tuple[str, str]]:
    schema = api.get_openapi_schema()
    return {(method.upper(), path) for path, item in schema["paths"].items() for method in item}


def test_the_api_table_covers_every_operation() -> None:
    assert set(API_TABLE) == api_operations()


@pytest.fixture
def world(roles, operator, reviewer, auditor, superuser) -> dict[str, Any]:  # type: ignore
    nobody = get_user_model().objects.create_user("nobody", password="pw", is_staff=True)
    users = {OP: operator, R: reviewer, A: auditor, S: superuser, N: nobody}
    workflow = workflow_create(raw_spec=PEOPLE_SPEC, actor=operator)
    run = run_create(workflow=workflow, context={"name": "Ada"}, requester=operator)
    run_advance(run_id=run.pk)
    batch = runs_start_batch(workflow=workflow, rows=[{"name": "Bob"}], actor=operator)
    schedule = schedule_save(
        schedule=WorkflowSchedule(
            name="nightly",
            workflow=workflow,
            kind="cron",
            cron="0 3 * * *",
            context={"name": "Cron"},
            owner=operator,
        ),
        actor=operator,
    )
    system_event_append(type="test.note")
    return {
        "users": users,
        "workflow": workflow,
        "run": Run.objects.get(pk=run.pk),
        "request": ApprovalRequest.objects.get(run=run),
        "batch": batch,
        "schedule": schedule,
        "group": Group.objects.get(name="Reviewers"),
        "event": Event.objects.filter(run=run).first(),
        "tokens": {
            role: token_create(user=user, name="rbac").plain for role, user in users.items()
        },
    }


def api_request(world: dict, method: str, path: str) -> tuple[str, Any]:
    concrete = (
        path.replace("{slug}", "people")
        .replace("{run_id}", str(world["run"].pk))
        .replace("{request_id}", str(world["request"].pk))
    )
    bodies = {
        "/api/v1/plans/validate": {"plan": {"nodes": [{"id": "a", "action": "test.noop"}]}},
        "/api/v1/plans/draft": {"text": "clean up Downloads"},
        "/api/v1/workflows": {"spec": {**PEOPLE_SPEC, "slug": "people-2"}},
        "/api/v1/workflows/people": {"spec": {**PEOPLE_SPEC, "title": "Changed"}},
        "/api/v1/runs": {"workflow": "people", "context": {"name": "Eve"}},
        "/api/v1/runs/batch": {"workflow": "people", "rows": [{"name": "Fay"}]},
        f"/api/v1/runs/{world['run'].pk}/cancel": {"reason": "rbac"},
        f"/api/v1/runs/{world['run'].pk}/fork": {"at_seq": 1},
        f"/api/v1/approvals/{world['request'].pk}/decision": {"decision": "approve"},
    }
    return concrete, bodies.get(concrete) if method != "GET" else None  # full path


def test_every_role_meets_the_api_table(world) -> None:
    for (method, path), allowed in sorted(API_TABLE.items()):
        concrete, body = api_request(world, method, path)
        concrete = concrete.removeprefix("/api/v1")
        for role in ORDER:
            client = Api(world["tokens"][role]) if role != ANON else Api()
            response = client.call(method, concrete, body)
            content = b"" if response.streaming else response.content[:200]
            where = f"{role} {method} {concrete}: {response.status_code} {content!r}"
            if role in allowed:
                assert response.status_code not in (401, 403), where
                assert response.status_code < 500, where
            else:
                assert response.status_code == (401 if role == ANON else 403), where


def test_forged_requests_are_refused(world) -> None:
    run, request = world["run"], world["request"]
    # A session POST without the CSRF token is refused; with it, it passes.
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(world["users"][OP])
    body = {"workflow": "people", "context": {"name": "Csrf"}}
    forged = browser.post("/api/v1/runs", body, content_type="application/json")
    assert forged.status_code in (401, 403)
    browser.get("/admin/")
    token = browser.cookies["csrftoken"].value
    honest = browser.post(
        "/api/v1/runs", body, content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert honest.status_code == 201
    # A forged bearer token, or a real one sent as a different scheme.
    real = world["tokens"][OP]
    for header in (f"Bearer {real}x", f"Basic {real}", f"Token {real}", "Bearer "):
        response = Client().get("/api/v1/runs", headers={"Authorization": header})
        assert response.status_code == 401, header
    # The requester cannot decide their own run's gate (four-eyes)...
    own = run_create(
        workflow=world["workflow"], context={"name": "Own"}, requester=world["users"][S]
    )
    run_advance(run_id=own.pk)
    own_request = ApprovalRequest.objects.get(run=own)
    refused = Api(world["tokens"][S]).post(
        f"/approvals/{own_request.pk}/decision", {"decision": "approve"}
    )
    assert refused.status_code == 403 and "four-eyes" in refused.json()["detail"]
    # ...and a reviewer cannot decide a request assigned to another group.
    ApprovalRequest.objects.filter(pk=request.pk).update(
        assigned_group=Group.objects.create(name="Finance")
    )
    other = Api(world["tokens"][R]).post(
        f"/approvals/{request.pk}/decision", {"decision": "approve"}
    )
    # One policy for the API and the inbox: a request assigned to a group the
    # reviewer is not in is not even visible to them.
    assert other.status_code == 404
    assert ApprovalRequest.objects.get(pk=request.pk).status == "pending"
    assert Run.objects.get(pk=run.pk).status == "waiting"


# --- the admin ---------------------------------------------------------------

NOT_OPERATIONS = {
    "login",
    "logout",
    "password_change",
    "password_change_done",
    "autocomplete",
    "jsi18n",
    "view_on_site",
    None,
}
SUPER = {S}


def model_rows(
    prefix: str, *, view: set[str], add: set[str], delete: set[str], change: set[str] | None = None
) -> dict[str, tuple[str, set[str], int]]:
    """Rows of a ModelAdmin's standard views (change is read-only for viewers)."""
    return {
        f"{prefix}_changelist": ("GET", view, 200),
        f"{prefix}_add": ("GET", add, 200),
        f"{prefix}_change": ("GET", change if change is not None else view, 200),
        f"{prefix}_history": ("GET", view, 200),
        f"{prefix}_delete": ("GET", delete, 200),
    }


# url name -> (method, roles allowed, status when allowed)
ADMIN_TABLE: dict[str, tuple[str, set[str], int]] = {
    "index": ("GET", {OP, R, A, S, N}, 200),
    "app_list": ("GET", VIEWERS, 200),
    **model_rows("workflows_workflow", view=VIEWERS, add={OP, S}, delete=set()),
    "workflows_workflow_start": ("GET", {OP, S}, 200),
    "workflows_workflow_batch": ("GET", {OP, S}, 200),
    # The editor's picture: validates a posted spec (400 here: no `source`).
    "workflows_workflow_picture": ("POST", {OP, S}, 400),
    **model_rows("workflows_run", view=VIEWERS, add=set(), delete=set()),
    "workflows_run_state": ("GET", VIEWERS, 200),
    "workflows_run_live": ("GET", VIEWERS, 200),  # the run page's live panel
    "workflows_run_evidence": ("GET", VIEWERS, 404),  # allowed: no such file
    "workflows_run_fork": ("POST", {OP, S}, 302),
    "workflows_run_cancel": ("POST", {OP, S}, 302),
    # The whole log, system events included: auditors and superusers only.
    **model_rows("workflows_event", view={A, S}, add=set(), delete=set()),
    "workflows_event_export": ("GET", {A, S}, 200),
    **model_rows("workflows_runbatch", view={OP, A, S}, add=set(), delete=set()),
    **model_rows("workflows_workflowschedule", view={OP, A, S}, add={OP, S}, delete={OP, S}),
    **model_rows("approvals_approvalrequest", view=VIEWERS, add=set(), delete=set()),
    **model_rows("approvals_workflowwebhook", view={OP, A, S}, add={OP, S}, delete={OP, S}),
    **model_rows("accounts_apitoken", view=SUPER, add=SUPER, delete=set()),
    **model_rows("auth_user", view=SUPER, add=SUPER, delete=SUPER),
    "auth_user_password_change": ("GET", SUPER, 200),
    **model_rows("auth_group", view=SUPER, add=SUPER, delete=SUPER),
    **model_rows("observability_workerheartbeat", view={OP, A, S}, add=set(), delete=set()),
    **model_rows("django_q_schedule", view=SUPER, add=SUPER, delete=SUPER),
    **model_rows("django_q_success", view=SUPER, add=set(), delete=SUPER),
    **model_rows("django_q_failure", view=SUPER, add=set(), delete=SUPER),
}
if "orm" in settings.Q_CLUSTER:  # django-q2 shows its ORM queue only with that broker
    ADMIN_TABLE.update(model_rows("django_q_ormq", view=SUPER, add=set(), delete=SUPER))


def admin_url_names() -> set[str | None]:
    def walk(patterns: list) -> Any:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns)
            elif isinstance(pattern, URLPattern):
                yield pattern.name

    return set(walk(admin.site.get_urls()))


def test_the_admin_table_covers_every_view() -> None:
    assert admin_url_names() - NOT_OPERATIONS == set(ADMIN_TABLE)


def admin_objects(world: dict) -> dict[str, Any]:
    from django_q.models import OrmQ, Schedule, Task

    from approvals.models import WorkflowWebhook
    from observability.models import WorkerHeartbeat

    now = timezone.now()
    Task.objects.create(
        id="ok1", name="ok", func="math.floor", started=now, stopped=now, success=True
    )
    Task.objects.create(
        id="bad1", name="bad", func="math.floor", started=now, stopped=now, success=False
    )
    return {
        "workflow": world["workflow"].pk,
        "run": world["run"].pk,
        "event": world["event"].pk,
        "runbatch": world["batch"].pk,
        "workflowschedule": world["schedule"].pk,
        "approvalrequest": world["request"].pk,
        "workflowwebhook": WorkflowWebhook.objects.create(
            workflow=world["workflow"], url="http://127.0.0.1:9/hook", secret_name="HOOK"
        ).pk,
        "apitoken": world["users"][OP].api_tokens.first().pk,
        "user": world["users"][OP].pk,
        "group": world["group"].pk,
        "schedule": Schedule.objects.first().pk,
        "success": "ok1",
        "failure": "bad1",
        "workerheartbeat": WorkerHeartbeat.objects.create(
            name="h:1:x", kind="worker", host="h", pid=1, started_at=now, last_seen=now
        ).pk,
        "ormq": OrmQ.objects.create(key="k", payload="p", lock=None).pk
        if "orm" in settings.Q_CLUSTER
        else None,
    }


def admin_url(name: str, objects: dict[str, Any]) -> str:
    if name == "index":
        return reverse("admin:index")
    if name == "app_list":
        return reverse("admin:app_list", args=["workflows"])
    if name in ("workflows_run_state",):
        return reverse(f"admin:{name}", args=[objects["run"], 1])
    if name == "workflows_run_evidence":
        return reverse(f"admin:{name}", args=[objects["run"], 999, 0])
    if name == "auth_user_password_change":
        return reverse(f"admin:{name}", args=[objects["user"]])
    app_model = (
        name.removeprefix("django_q_") if name.startswith("django_q_") else name.split("_", 1)[1]
    )
    model = app_model.split("_")[0]
    needs_object = name.endswith(
        ("_change", "_history", "_delete", "_start", "_batch", "_fork", "_cancel", "_live")
    )
    return reverse(f"admin:{name}", args=[objects[model]] if needs_object else [])


def test_every_role_meets_the_admin_table(world) -> None:
    objects = admin_objects(world)
    for name, (method, allowed, ok_status) in sorted(ADMIN_TABLE.items()):
        url = admin_url(name, objects)
        for role in ORDER:
            client = Client()
            if role != ANON:
                client.force_login(world["users"][role])
            data = {"at_seq": "1", "reason": "rbac"} if method == "POST" else None
            response = client.post(url, data) if method == "POST" else client.get(url)
            where = f"{role} {method} {url}: {response.status_code}"
            if role in allowed:
                assert response.status_code == ok_status, where
            elif role == ANON:
                assert response.status_code == 302 and "/login/" in response["Location"], where
            else:
                expected = (404,) if name == "app_list" else (403,)
                assert response.status_code in expected, where
