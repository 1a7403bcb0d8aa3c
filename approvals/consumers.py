"""Websocket consumers: the inbox feed and one run's feed.

Both check the session user and their permissions on connect, and carry
notifications only: nothing is decided through a socket. A run feed first
sends the events after the `seq` the client last saw (`?after=N`), then live
ones, skipping any it already sent, so a reconnect loses nothing.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from approvals import live
from approvals.permissions import may_view_requests, may_view_run, visible_requests

CATCH_UP_BATCH = 500
FORBIDDEN = 4403


class _LiveConsumer(AsyncJsonWebsocketConsumer):
    groups_joined: list[str]
    relayed = False

    async def _join(self, *groups: str) -> None:
        if live.uses_relay():
            await live.relay.subscribe()
            self.relayed = True
        self.groups_joined = list(groups)
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)
        if self.relayed:
            live.relay.unsubscribe()
            self.relayed = False

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})
            return
        await self.send_json({"type": "error",
                              "message": "this socket only carries notifications; decide "
                                         "in the inbox, the admin or the API"})


class RunConsumer(_LiveConsumer):
    """`/ws/runs/<id>/?after=N`: a run's events after seq N, then live ones."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        self.run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        if not await database_sync_to_async(_may_watch_run)(user, self.run_id):
            await self.close(code=FORBIDDEN)
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
                self.run_id, self.last_seq)
            for message in events:
                await self.send_json(message)
                self.last_seq = message["event"]["seq"]
            if len(events) < CATCH_UP_BATCH:
                return snapshot

    async def run_event(self, message: dict) -> None:
        seq = message["event"]["seq"]
        if seq <= self.last_seq:
            return  # already sent during catch-up
        if seq > self.last_seq + 1:
            await self._catch_up()  # fill a gap from the database, in order
            if seq <= self.last_seq:
                return
        await self.send_json({k: v for k, v in message.items() if k != "type"}
                             | {"type": "event"})
        self.last_seq = seq


class InboxConsumer(_LiveConsumer):
    """`/ws/inbox/`: tells an open inbox that its requests changed."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if not await database_sync_to_async(may_view_requests)(user):
            await self.close(code=FORBIDDEN)
            return
        await self._join(live.INBOX_GROUP)
        await self.accept()
        await self.send_json({"type": "hello"})

    async def inbox_event(self, message: dict) -> None:
        request_id = message.get("request")
        if message["event_type"] == "run.paused" and request_id:
            visible = await database_sync_to_async(_request_visible)(
                self.scope["user"], request_id)
            if not visible:
                return
        await self.send_json({"type": "inbox", "event_type": message["event_type"],
                              "run": message["run"], "request": request_id})


def _may_watch_run(user: Any, run_id: int) -> bool:
    from workflows.models import Run

    return may_view_run(user, run_id) and Run.objects.filter(pk=run_id).exists()


def _request_visible(user: Any, request_id: int) -> bool:
    return visible_requests(user).filter(pk=request_id).exists()


def _events_since(run_id: int, after: int) -> tuple[list[dict], dict]:
    from workflows.models import Event, Run

    run = Run.objects.get(pk=run_id)
    events = list(Event.objects.filter(run_id=run_id, seq__gt=after)
                  .order_by("seq")[:CATCH_UP_BATCH])
    messages = [live.event_message(e, run) | {"type": "event"} for e in events]
    return messages, live.run_snapshot(run)


class RunListConsumer(_LiveConsumer):
    """`/ws/runs/`: status, current node and progress of any run, for run lists."""

    async def connect(self) -> None:
        if not await database_sync_to_async(may_view_run)(self.scope.get("user")):
            await self.close(code=FORBIDDEN)
            return
        await self._join(live.RUNS_GROUP)
        await self.accept()

    async def runs_changed(self, message: dict) -> None:
        await self.send_json({"type": "run", "run": message["run"]})
