"""Websockets re-check their user: deactivated, regrouped or deleted users are cut off.

Permissions are checked on connect and again: at once when the user is saved,
deleted or changes groups (a message to the user's own channel group), and
every AGENTOS_WS_RECHECK_S seconds for changes no signal reports (a raw
UPDATE). A refused socket is closed with 4403.
"""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group

from approvals.consumers import FORBIDDEN
from tests.support.websockets import connect

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def closed_with(communicator: WebsocketCommunicator) -> int:
    """Read until the server closes the socket; return the close code."""
    while True:
        output = await communicator.receive_output(timeout=10)
        if output["type"] == "websocket.close":
            return int(output.get("code", 1000))


async def still_open(communicator: WebsocketCommunicator) -> bool:
    """Ping through the socket; True when it answers (it handles messages in order)."""
    await communicator.send_json_to({"type": "ping"})
    while True:
        output = await communicator.receive_output(timeout=10)
        if output["type"] == "websocket.close":
            return False
        if '"pong"' in output.get("text", ""):
            return True


def _deactivate(user: Any) -> None:
    user.is_active = False
    user.save(update_fields=["is_active"])


def _leave_reviewers(user: Any) -> None:
    user.groups.remove(Group.objects.get(name="Reviewers"))


def _group_drops_user(user: Any) -> None:
    Group.objects.get(name="Reviewers").user_set.remove(user)


def _delete(user: Any) -> None:
    user.delete()


def _rename(user: Any) -> None:
    user.first_name = "Renamed"
    user.save(update_fields=["first_name"])


@pytest.mark.parametrize("change", [_deactivate, _leave_reviewers, _group_drops_user, _delete])
@pytest.mark.parametrize("path", ["/ws/runs/{run}/", "/ws/inbox/", "/ws/runs/"])
async def test_a_change_to_the_user_closes_their_sockets_at_once(
    gated_run, reviewer, settings, change, path
) -> None:
    settings.AGENTOS_WS_RECHECK_S = 60  # the periodic check plays no part here
    run = await database_sync_to_async(gated_run)()
    communicator, connected, _ = await connect(path.format(run=run.pk), reviewer)
    assert connected
    assert await still_open(communicator)
    await database_sync_to_async(change)(reviewer)
    assert await closed_with(communicator) == FORBIDDEN
    await communicator.disconnect()


async def test_a_change_that_keeps_the_right_keeps_the_socket(
    gated_run, reviewer, reviewer2, settings
) -> None:
    settings.AGENTOS_WS_RECHECK_S = 60
    run = await database_sync_to_async(gated_run)()
    communicator, connected, _ = await connect(f"/ws/runs/{run.pk}/", reviewer)
    assert connected
    await database_sync_to_async(_rename)(reviewer)
    other = await database_sync_to_async(Group.objects.create)(name="Finance")
    await database_sync_to_async(reviewer.groups.add)(other)
    await database_sync_to_async(_deactivate)(reviewer2)  # someone else
    assert await still_open(communicator)
    await communicator.disconnect()


async def test_the_periodic_check_catches_what_no_signal_reports(
    gated_run, reviewer, settings, django_user_model
) -> None:
    settings.AGENTOS_WS_RECHECK_S = 0.2
    run = await database_sync_to_async(gated_run)()
    communicator, connected, _ = await connect(f"/ws/runs/{run.pk}/", reviewer)
    assert connected
    assert await still_open(communicator)
    # A raw UPDATE sends no signal: only the periodic re-check sees it.
    await database_sync_to_async(django_user_model.objects.filter(pk=reviewer.pk).update)(
        is_active=False
    )
    assert await closed_with(communicator) == FORBIDDEN
    await communicator.disconnect()


async def test_a_reviewer_whose_group_loses_the_run_is_cut_off(
    gated_run, reviewer, settings
) -> None:
    """Scoping is re-checked too: the run's request handed to another group."""
    from approvals.models import ApprovalRequest

    settings.AGENTOS_WS_RECHECK_S = 0.2
    run = await database_sync_to_async(gated_run)()
    communicator, connected, _ = await connect(f"/ws/runs/{run.pk}/", reviewer)
    assert connected
    finance = await database_sync_to_async(Group.objects.create)(name="Finance")
    await database_sync_to_async(ApprovalRequest.objects.filter(run=run).update)(
        assigned_group=finance
    )
    assert await closed_with(communicator) == FORBIDDEN
    await communicator.disconnect()


async def test_a_reviewer_removed_from_the_team_group_is_cut_off_at_once(
    gated_run, reviewer, settings
) -> None:
    settings.AGENTOS_WS_RECHECK_S = 60  # the periodic check plays no part here
    run = await database_sync_to_async(gated_run)(assign_to="Finance")
    finance = await database_sync_to_async(Group.objects.get)(name="Finance")
    await database_sync_to_async(reviewer.groups.add)(finance)
    communicator, connected, _ = await connect(f"/ws/runs/{run.pk}/", reviewer)
    assert connected
    assert await still_open(communicator)
    await database_sync_to_async(reviewer.groups.remove)(finance)
    assert await closed_with(communicator) == FORBIDDEN
    await communicator.disconnect()
