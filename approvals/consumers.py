"""Websocket consumers: the inbox feed and one run's feed.

Both check the session user and their permissions on connect, and carry
notifications only: nothing is decided through a socket. A run feed first
sends the events after the `seq` the client last saw (`?after=N`), then live
ones, skipping any it already sent, so a reconnect loses nothing.

What a socket may carry is decided by `agentos_site.policy`, like every
other surface, and not only once: each consumer re-reads its user from the
database every AGENTOS_WS_RECHECK_S seconds, and at once when the user is
saved, deleted or changes groups (`approvals.live.user_changed`, a message to
the user's own group), and closes with 4403 when the user may no longer watch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user_model

from agentos_site import policy
from approvals import live
from approvals.permissions import may_view_requests, visible_requests

CATCH_UP_BATCH = 500
FORBIDDEN = 4403
UNAVAILABLE = 1011  # the server could not check: try again
logger = logging.getLogger(__name__)


class _LiveConsumer(AsyncJsonWebsocketConsumer):
    groups_joined: list[str]
    relayed = False
    recheck: asyncio.Task | None = None
    user: Any = None
    sees_everything = False
    refused = False

    def allowed(self, user: Any) -> bool:
        """Return whether `user` (fresh from the database) may keep this socket."""
        raise NotImplementedError

    def _check(self) -> bool:
        """Re-read the user and ask the policy (in a thread: it queries)."""
        scoped = self.scope.get("user")
        pk = getattr(scoped, "pk", None)
        user = get_user_model().objects.filter(pk=pk).first() if pk is not None else None
        self.user = user
        self.sees_everything = user is not None and policy.sees_everything(user)
        return user is not None and self.allowed(user)

    async def _authorize(self) -> bool:
        """Check on connect; False (and closed with 4403) when refused."""
        if not await database_sync_to_async(self._check)():
            await self.close(code=FORBIDDEN)
            return False
        return True

    async def _join(self, *groups: str) -> None:
        if live.uses_relay():
            await live.relay.subscribe()
            self.relayed = True
        self.groups_joined = [*groups, live.user_group(self.user.pk)]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        self.recheck = asyncio.get_running_loop().create_task(self._recheck_every())

    async def _recheck_every(self) -> None:
        while not self.refused:
            await asyncio.sleep(settings.AGENTOS_WS_RECHECK_S)
            await self._recheck()

    async def _recheck(self) -> None:
        if self.refused:
            return
        try:
            allowed = await database_sync_to_async(self._check)()
        except Exception:  # the database is away: close, the client reconnects later
            logger.exception("could not re-check a websocket's user")
            self.refused = True
            await self.close(code=UNAVAILABLE)
            return
        if not allowed:
            self.refused = True
            await self.close(code=FORBIDDEN)

    async def user_changed(self, message: dict) -> None:
        """The user was saved, deleted or changed groups: check again now."""
        await self._recheck()

    async def disconnect(self, code: int) -> None:
        self.refused = True
        if self.recheck is not None and self.recheck is not asyncio.current_task():
            self.recheck.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.recheck
        self.recheck = None
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)
        self.groups_joined = []
        if self.relayed:
            live.relay.unsubscribe()
            self.relayed = False

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})
            return
        await self.send_json(
            {
                "type": "error",
                "message": "this socket only carries notifications; decide "
                "in the inbox, the admin or the API",
            }
        )


class RunConsumer(_LiveConsumer):
    """`/ws/runs/<id>/?after=N`: a run's events after seq N, then live ones."""

    def allowed(self, user: Any) -> bool:
        return _may_watch_run(user, self.run_id)

    async def connect(self) -> None:
        self.run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        if not await self._authorize():
            return
        query = parse_qs(self.scope.get("query_string", b"").decode())
        try:
            self.last_seq = max(0, int(query.get("after", ["0"])[0]))
        except ValueError:
            self.last_seq = 0
        await self._join(live.run_group(self.run_id))
        await self.accept()
        snapshot = await self._catch_up()
        await self.send_json({"type": "caught_up", "seq": self.last_seq, "run": snapshot})

    async def _catch_up(self) -> dict:
        while True:
            events, snapshot = await database_sync_to_async(_events_since)(
                self.run_id, self.last_seq
            )
            for message in events:
                await self.send_json(message)
                self.last_seq = message["event"]["seq"]
            if len(events) < CATCH_UP_BATCH:
                return snapshot

    async def run_event(self, message: dict) -> None:
        if self.refused:
            return
        seq = message["event"]["seq"]
        if seq <= self.last_seq:
            return  # already sent during catch-up
        if seq > self.last_seq + 1:
            await self._catch_up()  # fill a gap from the database, in order
            if seq <= self.last_seq:
                return
        await self.send_json({k: v for k, v in message.items() if k != "type"} | {"type": "event"})
        self.last_seq = seq


class InboxConsumer(_LiveConsumer):
    """`/ws/inbox/`: tells an open inbox that its requests changed."""

    def allowed(self, user: Any) -> bool:
        return may_view_requests(user)

    async def connect(self) -> None:
        if not await self._authorize():
            return
        await self._join(live.INBOX_GROUP)
        await self.accept()
        await self.send_json({"type": "hello"})

    async def inbox_event(self, message: dict) -> None:
        if self.refused:
            return
        if not self.sees_everything and not await database_sync_to_async(_inbox_visible)(
            self.user, message.get("request"), message.get("run")
        ):
            return
        request_id = message.get("request")
        await self.send_json(
            {
                "type": "inbox",
                "event_type": message["event_type"],
                "run": message["run"],
                "request": request_id,
            }
        )


def _may_watch_run(user: Any, run_id: int) -> bool:
    return policy.visible_runs(user).filter(pk=run_id).exists()


def _inbox_visible(user: Any, request_id: Any, run_id: Any) -> bool:
    """Return whether an inbox event concerns a request (or else a run) the user sees."""
    if isinstance(request_id, int):
        return visible_requests(user).filter(pk=request_id).exists()
    return isinstance(run_id, int) and policy.visible_runs(user).filter(pk=run_id).exists()


def _events_since(run_id: int, after: int) -> tuple[list[dict], dict]:
    from workflows.models import Event, Run

    run = Run.objects.get(pk=run_id)
    events = list(
        Event.objects.filter(run_id=run_id, seq__gt=after).order_by("seq")[:CATCH_UP_BATCH]
    )
    messages = [live.event_message(e, run) | {"type": "event"} for e in events]
    return messages, live.run_snapshot(run)


class RunListConsumer(_LiveConsumer):
    """`/ws/runs/`: status, current node and progress of any run, for run lists."""

    def allowed(self, user: Any) -> bool:
        return policy.may_view_run(user)

    async def connect(self) -> None:
        if not await self._authorize():
            return
        await self._join(live.RUNS_GROUP)
        await self.accept()

    async def runs_changed(self, message: dict) -> None:
        if self.refused:
            return
        if not self.sees_everything and not await database_sync_to_async(_may_watch_run)(
            self.user, message["run"]["id"]
        ):
            return
        await self.send_json({"type": "run", "run": message["run"]})
