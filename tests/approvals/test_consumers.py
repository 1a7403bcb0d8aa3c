"""Websocket consumers: session auth, permissions on connect, catch-up, live events."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from agentos_site.asgi import application
from approvals.services import approval_decide
from tests.support.runs import pending_request
from tests.support.websockets import connect, cookie_for
from workflows.models import Event

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def test_anonymous_and_unprivileged_sockets_are_refused(
    gated_run, django_user_model
) -> None:
    run = await database_sync_to_async(gated_run)()
    nobody = await database_sync_to_async(django_user_model.objects.create_user)(
        "nobody", password="pw"
    )
    for user in (None, nobody):
        for path in ("/ws/inbox/", f"/ws/runs/{run.pk}/", "/ws/runs/"):
            communicator, connected, _ = await connect(path, user)
            assert not connected, (user, path)


async def test_a_foreign_origin_is_refused(gated_run, reviewer) -> None:
    headers = await database_sync_to_async(cookie_for)(reviewer)
    headers = [(b"origin", b"http://evil.example")] + headers[1:]
    communicator = WebsocketCommunicator(application, "/ws/inbox/", headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    assert not connected


async def test_a_run_feed_sends_events_after_seq_then_live_ones(gated_run, reviewer) -> None:
    run = await database_sync_to_async(gated_run)()
    communicator, connected, _ = await connect(f"/ws/runs/{run.pk}/?after=2", reviewer)
    assert connected
    seqs = []
    while True:
        message = await communicator.receive_json_from(timeout=5)
        if message["type"] == "caught_up":
            break
        seqs.append(message["event"]["seq"])
    assert seqs == list(range(3, run.last_seq + 1))
    assert message["run"]["status"] == "waiting" and message["seq"] == run.last_seq
    request = await database_sync_to_async(pending_request)(run)
    await database_sync_to_async(approval_decide)(
        request_id=request.pk, actor=reviewer, decision="approve"
    )
    live = await communicator.receive_json_from(timeout=5)
    assert live["type"] == "event" and live["event"]["seq"] == run.last_seq + 1
    assert live["event"]["type"] == "approval.decided"
    following = await communicator.receive_json_from(timeout=5)
    assert following["event"]["seq"] == run.last_seq + 2
    assert following["run"]["status"] == "queued"
    await communicator.disconnect()


async def test_nothing_is_decided_through_a_socket(gated_run, reviewer) -> None:
    run = await database_sync_to_async(gated_run)()
    communicator, connected, _ = await connect(f"/ws/runs/{run.pk}/", reviewer)
    assert connected
    while (await communicator.receive_json_from(timeout=5))["type"] != "caught_up":
        pass
    await communicator.send_json_to({"type": "decide", "decision": "approve"})
    reply = await communicator.receive_json_from(timeout=5)
    assert reply["type"] == "error"
    request = await database_sync_to_async(pending_request)(run)
    assert request.status == "pending"
    await communicator.disconnect()


async def test_the_inbox_hears_of_a_new_request_only_when_the_user_may_see_it(
    gated_run, reviewer, auditor, roles, django_user_model
) -> None:
    def outsider():  # type: ignore[no-untyped-def]
        from django.contrib.auth.models import Group, Permission

        user = django_user_model.objects.create_user("other", password="pw")
        group = Group.objects.create(name="Finance")
        group.permissions.add(
            Permission.objects.get(codename="decide_approvalrequest"),
            Permission.objects.get(codename="view_approvalrequest"),
        )
        user.groups.add(group)
        return user

    other = await database_sync_to_async(outsider)()
    sockets = {}
    for user in (reviewer, auditor, other):
        communicator, connected, _ = await connect("/ws/inbox/", user)
        assert connected
        assert (await communicator.receive_json_from(timeout=5))["type"] == "hello"
        sockets[user.username] = communicator
    run = await database_sync_to_async(gated_run)()
    for name in ("reviewer", "auditor"):
        message = await sockets[name].receive_json_from(timeout=5)
        assert message["type"] == "inbox" and message["event_type"] == "run.paused"
        assert message["run"] == run.pk
    assert await sockets["other"].receive_nothing(timeout=0.5)
    events = await database_sync_to_async(Event.objects.filter(run=run).count)()
    assert events == run.last_seq
    for communicator in sockets.values():
        await communicator.disconnect()


async def test_the_inbox_hears_of_a_request_inside_a_parallel_branch(
    reviewer, operator, tmp_path
) -> None:
    """A branch's gate reaches the inbox live while the run itself still works."""

    def start_block():  # type: ignore[no-untyped-def]
        from workflows.engine import run_advance
        from workflows.services import run_create

        run = run_create(
            mode="autonomous",
            requester=operator,
            plan={
                "nodes": [
                    {
                        "id": "setup",
                        "type": "parallel",
                        "branches": [
                            {"nodes": [{"id": "gate", "type": "approval", "title": "Badge?"}]},
                            {
                                "nodes": [
                                    {
                                        "id": "hr",
                                        "action": "test.ledger_append",
                                        "params": {"ledger": str(tmp_path / "l"), "line": "hr"},
                                    }
                                ]
                            },
                        ],
                    }
                ]
            },
        )
        run_advance(run_id=run.pk)
        return run

    communicator, connected, _ = await connect("/ws/inbox/", reviewer)
    assert connected
    assert (await communicator.receive_json_from(timeout=5))["type"] == "hello"
    run = await database_sync_to_async(start_block)()
    seen = []
    for _ in range(2):
        message = await communicator.receive_json_from(timeout=5)
        seen.append((message["event_type"], message["run"]))
    assert seen == [("node.waiting", run.pk), ("run.paused", run.pk)]
    await communicator.disconnect()
