"""Who sees what: every role × (own group's run, another group's run) × every surface.

A reviewer belongs to the Reviewers role and to a team group (Finance); a
run is "theirs" when one of its approval requests is assigned to Finance (or
delegated to them by name). The table below is the specification
(docs/security.md, "Who sees what"); `test_the_table_covers_every_surface`
derives the surfaces from the URL confs, the API schema and the websocket
routes, so a new page, operation or socket that shows runs, requests or
events fails here until it has a row.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from accounts.services import token_create
from agentos_site.api import api
from agentos_site.asgi import application
from approvals import live
from approvals.models import ApprovalRequest
from approvals.routing import websocket_urlpatterns
from tests.api.conftest import Api
from tests.support.fixtures import make_user
from workflows.engine import run_advance
from workflows.models import Event, Run, Step
from workflows.services import run_create, workflow_create

pytestmark = pytest.mark.django_db(transaction=True)

OP, R, A, S, N = "operator", "reviewer", "auditor", "admin", "nobody"
ROLES = [N, R, OP, A, S]
OWN, OTHER = "own", "other"

ALL = {OP: (True, True), R: (True, False), A: (True, True), S: (True, True), N: (False, False)}
LOG = {OP: (False, False), R: (False, False), A: (True, True), S: (True, True), N: (False, False)}

# surface -> role -> (sees its own group's run, sees another group's run)
TABLE: dict[str, dict[str, tuple[bool, bool]]] = {
    # the admin
    "admin:workflows_run_changelist": ALL,
    "admin:workflows_run_change": ALL,
    "admin:workflows_run_history": ALL,
    "admin:workflows_run_state": ALL,
    "admin:workflows_run_evidence": ALL,
    "admin:workflows_run_live": ALL,  # the run page's live panel
    "admin:approvals_approvalrequest_changelist": ALL,
    "admin:approvals_approvalrequest_change": ALL,
    "admin:approvals_approvalrequest_history": ALL,
    "admin:workflows_event_changelist": LOG,
    "admin:workflows_event_change": LOG,
    "admin:workflows_event_history": LOG,
    "admin:workflows_event_export": LOG,
    # the inbox
    "inbox:list": ALL,
    "inbox:request": ALL,
    "inbox:picture": ALL,  # the request page's live picture
    # the API
    "GET /api/v1/runs": ALL,
    "GET /api/v1/runs/{run_id}": ALL,
    "GET /api/v1/runs/{run_id}/events": ALL,
    "GET /api/v1/approvals": ALL,
    "GET /api/v1/approvals/{request_id}": ALL,
    "GET /api/v1/audit": LOG,
    "GET /api/v1/audit/export": LOG,
    # websockets
    "ws/runs/<int:run_id>/": ALL,
    "ws/runs/": ALL,
    "ws/inbox/": ALL,
}

# Views of those models that are not reads: refused or absent for the roles
# that read (tests/api/test_rbac.py has them), or writes scoped through the
# same queryset (cancel, fork, delegate, bulk decide).
NOT_READS = {
    "admin:workflows_run_add",
    "admin:workflows_run_delete",
    "admin:workflows_run_cancel",
    "admin:workflows_run_fork",
    "admin:workflows_event_add",
    "admin:workflows_event_delete",
    "admin:approvals_approvalrequest_add",
    "admin:approvals_approvalrequest_delete",
    "inbox:bulk",
    "inbox:delegate",
}
READ_PREFIXES = (
    "admin:workflows_run_",
    "admin:workflows_event_",
    "admin:approvals_approvalrequest_",
    "inbox:",
)


def _url_names(patterns: list, namespace: str = "") -> set[str]:
    names = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            names |= _url_names(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            names.add(f"{namespace}{pattern.name}")
    return names


def discovered_surfaces() -> set[str]:
    pages = {
        name for name in _url_names(get_resolver().url_patterns) if name.startswith(READ_PREFIXES)
    } - NOT_READS
    schema = api.get_openapi_schema()
    operations = {
        f"{method.upper()} {path}"
        for path, item in schema["paths"].items()
        for method in item
        if method == "get"
        and path.startswith(("/api/v1/runs", "/api/v1/approvals", "/api/v1/audit"))
    }
    sockets = {str(route.pattern) for route in websocket_urlpatterns}
    return pages | operations | sockets


def test_the_table_covers_every_surface() -> None:
    assert set(TABLE) == discovered_surfaces()
    for surface, row in TABLE.items():
        assert set(row) == set(ROLES), surface


# --- the world: two team groups, a run each ---------------------------------


def team_spec(slug: str, team: str) -> dict:
    return {
        "slug": slug,
        "title": f"{team} work",
        "mode": "autonomous",
        "inputs": {"type": "object", "properties": {"name": {"type": "string"}}},
        "plan": {
            "nodes": [
                {"id": "gate", "type": "approval", "title": "Go {{ name }}?", "assign_to": team}
            ]
        },
    }


@pytest.fixture
def world(roles, operator, auditor, superuser) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    finance = Group.objects.create(name="Finance")
    Group.objects.create(name="HR")
    reviewer = make_user(roles, "rita", "Reviewers")
    reviewer.groups.add(finance)
    nobody = make_user(roles, "nobody", None)
    users = {OP: operator, R: reviewer, A: auditor, S: superuser, N: nobody}
    runs, requests, events, steps = {}, {}, {}, {}
    for which, team in ((OWN, "Finance"), (OTHER, "HR")):
        workflow = workflow_create(
            raw_spec=team_spec(f"{team.lower()}-work", team), actor=operator
        )
        run = run_create(workflow=workflow, context={"name": team}, requester=operator)
        run_advance(run_id=run.pk)
        runs[which] = Run.objects.get(pk=run.pk)
        assert runs[which].status == "waiting", runs[which].error
        requests[which] = ApprovalRequest.objects.get(run=run)
        assert requests[which].assigned_group.name == team
        events[which] = Event.objects.filter(run=run).order_by("seq").first()
        steps[which] = evidence_step(runs[which])
    return {
        "users": users,
        "runs": runs,
        "requests": requests,
        "events": events,
        "steps": steps,
        "tokens": {
            role: token_create(user=user, name="scope").plain for role, user in users.items()
        },
    }


def evidence_step(run: Run) -> Step:
    step = Step.objects.create(
        run=run,
        node_id="gate",
        position=0,
        action="test.noop",
        status="succeeded",
        idempotency_key=f"scope-{run.pk}",
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )
    folder = Path(settings.MEDIA_ROOT) / "runs" / str(run.pk) / str(step.pk)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.txt").write_text("evidence body")
    step.evidence = {
        "files": [
            {
                "name": "report.txt",
                "bytes": 13,
                "path": str((folder / "report.txt").relative_to(settings.MEDIA_ROOT)),
            }
        ]
    }
    step.save()
    return step


# --- how each surface is asked ------------------------------------------------


def _client(world: dict, role: str) -> Client:
    """One logged-in browser per role (each login is an event of its own)."""
    clients = world.setdefault("clients", {})
    if role not in clients:
        clients[role] = Client()
        clients[role].force_login(world["users"][role])
    return clients[role]


def _listed(response: Any, pk: int) -> bool:
    if response.status_code != 200:
        return False
    return pk in {obj.pk for obj in response.context["cl"].result_list}


def _opened(response: Any) -> bool:
    """A page is shown (200); 302 (no such object), 403 and 404 are not."""
    assert response.status_code in (200, 302, 403, 404), response.status_code
    return response.status_code == 200


def _streamed(response: Any) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def _has_run(lines: bytes, run_id: int) -> bool:
    return any(json.loads(line).get("run") == run_id for line in lines.splitlines() if line)


def sees(world: dict, surface: str, role: str, which: str) -> bool:
    run, request = world["runs"][which], world["requests"][which]
    event, step = world["events"][which], world["steps"][which]
    client = _client(world, role)
    api_client = Api(world["tokens"][role])
    if surface.startswith("admin:"):
        name = surface.removeprefix("admin:")
        args: list[Any] = {
            "workflows_run_change": [run.pk],
            "workflows_run_history": [run.pk],
            "workflows_run_state": [run.pk, 1],
            "workflows_run_evidence": [run.pk, step.pk, 0],
            "workflows_run_live": [run.pk],
            "approvals_approvalrequest_change": [request.pk],
            "approvals_approvalrequest_history": [request.pk],
            "workflows_event_change": [event.pk],
            "workflows_event_history": [event.pk],
        }.get(name, [])
        url = reverse(surface, args=args)
        if name == "workflows_event_export":
            response = client.get(url, {"format": "jsonl"})
            return response.status_code == 200 and _has_run(_streamed(response), run.pk)
        # Lists are searched for the run, so other rows never push it off the page.
        response = client.get(url, {"q": str(run.pk)} if name.endswith("_changelist") else {})
        if name.endswith("_changelist"):
            pk = {
                "workflows_run_changelist": run.pk,
                "workflows_event_changelist": event.pk,
                "approvals_approvalrequest_changelist": request.pk,
            }[name]
            return _listed(response, pk)
        if name == "workflows_run_evidence" and response.status_code == 200:
            return _streamed(response) == b"evidence body"
        return _opened(response)
    if surface == "inbox:list":
        response = client.get(reverse("inbox:list"))
        return response.status_code == 200 and request.pk in {
            row.pk for row in response.context["rows"]
        }
    if surface in ("inbox:request", "inbox:picture"):
        return _opened(client.get(reverse(surface, args=[request.pk])))
    method, path = surface.split(" ", 1)
    assert method == "GET", surface
    path = (
        path.removeprefix("/api/v1")
        .replace("{run_id}", str(run.pk))
        .replace("{request_id}", str(request.pk))
    )
    query = {
        "/runs": "?limit=100",
        "/approvals": "?status=all&limit=100",
        "/audit": "?limit=500",
    }.get(path, "")
    response = api_client.get(path + query)
    assert response.status_code in (200, 403, 404), (surface, response.status_code)
    if response.status_code != 200:
        return False
    if path == "/audit/export":
        return _has_run(_streamed(response), run.pk)
    body = response.json()
    if path == "/runs":
        return run.pk in {item["id"] for item in body["items"]}
    if path == "/approvals":
        return request.pk in {item["id"] for item in body["items"]}
    if path == "/audit":
        return run.pk in {item["run"] for item in body["items"]}
    if path.endswith("/events"):
        return bool(body["items"])
    return True


HTTP_SURFACES = [surface for surface in TABLE if not surface.startswith("ws/")]
SOCKETS = [surface for surface in TABLE if surface.startswith("ws/")]


def test_every_role_sees_exactly_its_row_on_every_page_and_api(world) -> None:
    wrong = []
    for surface in HTTP_SURFACES:
        for role in ROLES:
            for which, expected in zip((OWN, OTHER), TABLE[surface][role], strict=True):
                if sees(world, surface, role, which) != expected:
                    wrong.append(f"{surface} {role} {which}: expected {expected}")
    assert not wrong, "\n".join(wrong)


# --- websockets -----------------------------------------------------------------


def _headers(user: Any) -> list[tuple[bytes, bytes]]:
    client = Client()
    client.force_login(user)
    return [
        (b"origin", b"http://127.0.0.1"),
        (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
    ]


async def _open(path: str, user: Any) -> tuple[WebsocketCommunicator, bool]:
    headers = await database_sync_to_async(_headers)(user)
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    return communicator, connected


async def _heard(
    communicator: WebsocketCommunicator, group: str, target: dict, sentinel: dict
) -> bool:
    """Send `target` then `sentinel` to a group; return whether target arrived
    before the sentinel (a consumer handles its messages in order)."""
    layer = get_channel_layer()
    await layer.group_send(group, target)
    await layer.group_send(group, sentinel)
    heard = False
    while True:
        message = await communicator.receive_json_from(timeout=5)
        if _matches(message, sentinel):
            return heard
        heard = heard or _matches(message, target)


def _matches(message: dict, sent: dict) -> bool:
    if "run" in sent and isinstance(sent["run"], dict):
        return message.get("type") == "run" and message["run"]["id"] == sent["run"]["id"]
    return (
        message.get("type") == "inbox"
        and message.get("request") == sent["request"]
        and message.get("run") == sent["run"]
    )


async def socket_sees(world: dict, surface: str, role: str, which: str) -> bool:
    user = world["users"][role]
    run, request = world["runs"][which], world["requests"][which]
    if surface == "ws/runs/<int:run_id>/":
        communicator, connected = await _open(f"/ws/runs/{run.pk}/", user)
        await communicator.disconnect()
        return connected
    # After the message about `which`, a sentinel about the user's own
    # group's run (which every viewer of the socket hears) ends the wait.
    own_run, own_request = world["runs"][OWN], world["requests"][OWN]
    path = "/ws/runs/" if surface == "ws/runs/" else "/ws/inbox/"
    communicator, connected = await _open(path, user)
    if not connected:
        return False
    if surface == "ws/inbox/":
        await communicator.receive_json_from(timeout=5)  # hello
        target = {
            "type": "inbox.event",
            "event_type": "approval.decided",
            "run": run.pk,
            "request": request.pk,
        }
        sentinel = {
            "type": "inbox.event",
            "event_type": "approval.decided",
            "run": own_run.pk,
            "request": own_request.pk,
        }
        group = live.INBOX_GROUP
    else:
        snapshot = await database_sync_to_async(live.run_snapshot)(run)
        own_snapshot = await database_sync_to_async(live.run_snapshot)(own_run)
        target = {"type": "runs.changed", "run": snapshot}
        sentinel = {"type": "runs.changed", "run": own_snapshot}
        group = live.RUNS_GROUP
    if which == OWN:  # the sentinel is the target itself
        heard = await _heard_own(communicator, group, target)
    else:
        heard = await _heard(communicator, group, target, sentinel)
    await communicator.disconnect()
    return heard


async def _heard_own(communicator: WebsocketCommunicator, group: str, target: dict) -> bool:
    await get_channel_layer().group_send(group, target)
    message = await communicator.receive_json_from(timeout=5)
    return _matches(message, target)


@pytest.mark.asyncio
async def test_every_role_sees_exactly_its_row_on_every_socket(world) -> None:
    wrong = []
    for surface in SOCKETS:
        for role in ROLES:
            for which, expected in zip((OWN, OTHER), TABLE[surface][role], strict=True):
                if await socket_sees(world, surface, role, which) != expected:
                    wrong.append(f"{surface} {role} {which}: expected {expected}")
    assert not wrong, "\n".join(wrong)


def test_a_request_delegated_to_a_reviewer_by_name_shows_them_its_run(world) -> None:
    from approvals.services import approval_delegate

    other, outsider = world["runs"][OTHER], world["users"][R]
    api_client = Api(world["tokens"][R])
    assert api_client.get(f"/runs/{other.pk}").status_code == 404
    approval_delegate(
        request_id=world["requests"][OTHER].pk,
        actor=world["users"][S],
        to_user=outsider.get_username(),
    )
    assert api_client.get(f"/runs/{other.pk}").status_code == 200
    assert api_client.get(f"/approvals/{world['requests'][OTHER].pk}").status_code == 200
    assert _opened(_client(world, R).get(reverse("admin:workflows_run_change", args=[other.pk])))
