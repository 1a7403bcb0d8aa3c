"""Live status: how committed events reach websocket clients.

Two ways, one message format. With Redis (`REDIS_URL`), the process that
commits an event publishes it at once (`publish_committed`, installed as the
engine's event publisher). Without Redis, the in-memory channel layer does
not cross processes, so the web process runs an `EventRelay`: while anyone
is connected it tails the event table (`id > last`, indexed) every
AGENTOS_LIVE_POLL_S seconds and fans new events out to its local groups; ids
that commit out of order (PostgreSQL) are waited for, not skipped.
Clients never depend on either: they ask for "events after seq N" on connect.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import close_old_connections, connection, transaction

from workflows.selectors import redact

logger = logging.getLogger(__name__)

INBOX_GROUP = "inbox"
RUNS_GROUP = "runs"  # every run's status changes, for run lists
# Events that change what an inbox shows.
INBOX_TYPES = frozenset(
    {
        "run.paused",
        # A branch of a parallel block or a map item waits (or goes on) while
        # the run itself keeps running (plans as graphs).
        "node.waiting",
        "node.resumed",
        "approval.decided",
        "approval.vote",
        "approval.delegated",
        "approval.escalated",
        "run.cancelled",
        "run.failed",
    }
)


def run_group(run_id: int) -> str:
    """Return the channel group of one run's live feed."""
    return f"run.{run_id}"


def user_group(user_id: int) -> str:
    """Return the channel group of one user's open sockets (for re-checks)."""
    return f"user.{user_id}"


def user_changed(user_ids: Any) -> None:
    """Ask the users' open sockets to check their permissions again, after commit.

    Connected to the user model's save and delete and to group membership
    changes (approvals.apps), so a deactivated, deleted or regrouped user's
    sockets close at once in this process (and in every process with Redis);
    the consumers' periodic re-check covers the rest.
    """
    ids = sorted({int(pk) for pk in user_ids if pk is not None})
    if not ids:
        return

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        for pk in ids:
            try:
                async_to_sync(layer.group_send)(user_group(pk), {"type": "user.changed"})
            except Exception:  # a live feed hiccup must never undo the change
                logger.exception("could not tell user %s's sockets to re-check", pk)

    transaction.on_commit(send)


def on_user_saved(
    sender: Any, instance: Any, created: bool = False, update_fields: Any = None, **_: Any
) -> None:
    if created or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return  # a new user has no sockets; a login changes no right
    user_changed([instance.pk])


def on_user_deleted(sender: Any, instance: Any, **_: Any) -> None:
    user_changed([instance.pk])


def on_groups_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **_: Any
) -> None:
    """A user's groups changed (`user.groups...` or `group.user_set...`)."""
    if action not in ("post_add", "post_remove", "post_clear", "pre_clear"):
        return
    if not reverse:
        user_changed([instance.pk])
    elif action == "pre_clear":
        user_changed(instance.user_set.values_list("pk", flat=True))
    else:
        user_changed(pk_set or [])


def uses_relay() -> bool:
    """Return whether this deployment relays events from the database (no Redis)."""
    return not settings.REDIS_URL


def run_snapshot(run: Any) -> dict:
    """Return what a live page shows of a run: status, current node, progress."""
    total = len(run.plan.get("nodes", [])) if isinstance(run.plan, dict) else 0
    return {
        "id": run.pk,
        "status": run.status,
        "current_node": run.current_node,
        "position": min(run.position, total),
        "total": total,
        "error": redact(run.error or "")[:500],
    }


def event_message(event: Any, run: Any) -> dict:
    """Return the message a run's group receives for one event."""
    return {
        "type": "run.event",
        "event": {
            "id": event.pk,
            "seq": event.seq,
            "type": event.type,
            "actor": event.actor_label,
            "at": event.at.isoformat(),
            "data": redact(event.data),
        },
        "run": run_snapshot(run),
    }


def inbox_message(event: Any) -> dict:
    """Return the message the inbox group receives (ids only; pages re-read)."""
    return {
        "type": "inbox.event",
        "event_type": event.type,
        "run": event.run_id,
        "request": (event.data or {}).get("request"),
    }


def group_messages(event: Any, run: Any) -> list[tuple[str, dict]]:
    """Return (group, message) for one event: its run's group and, when it matters
    there, the run lists and the inbox."""
    message = event_message(event, run)
    sends = [(run_group(run.pk), message)]
    if event.type.startswith("run.") or event.type == "step.succeeded":
        sends.append((RUNS_GROUP, {"type": "runs.changed", "run": message["run"]}))
    if event.type in INBOX_TYPES:
        sends.append((INBOX_GROUP, inbox_message(event)))
    return sends


async def fan_out(layer: Any, event: Any, run: Any) -> None:
    """Send one event to its run's group and, when it matters there, to the inbox."""
    for group, message in group_messages(event, run):
        await layer.group_send(group, message)


class _Publisher:
    """One thread per process that sends committed events to the Redis layer, in order.

    The committing thread only builds the messages (the run as it was at the
    commit) and queues them: a step no longer waits for Redis, and the
    thread's one event loop keeps the layer's connection open across
    events (``async_to_sync`` on the committing thread made a loop, and so a
    new Redis connection, per event). At exit (and at the end of a
    django-q2 worker process, see workflows.cluster) ``flush`` sends what is
    still queued.
    """

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.queue: queue.SimpleQueue[list[tuple[str, dict]]] = queue.SimpleQueue()
        # Events queued and not yet sent (or given up), under its condition.
        self.pending = 0
        self.settled = threading.Condition()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._serve, name="live-publisher", daemon=True)
        self.thread.start()

    def put(self, sends: list[tuple[str, dict]]) -> None:
        with self.settled:
            self.pending += 1
        self.queue.put(sends)

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued was sent (or failed); False on timeout."""
        with self.settled:
            return self.settled.wait_for(lambda: self.pending == 0, timeout)

    def _serve(self) -> None:
        while True:
            batch = [self.queue.get()]
            while not self.queue.empty():
                batch.append(self.queue.get())
            try:
                self.loop.run_until_complete(self._send(batch))
            except Exception:  # a live feed hiccup must never stop the feed
                logger.exception("could not publish %d events", len(batch))
            with self.settled:
                self.pending -= len(batch)
                self.settled.notify_all()

    async def _send(self, batch: list[list[tuple[str, dict]]]) -> None:
        sends = [pair for event_sends in batch for pair in event_sends]
        listened = await _listened(self.layer, {group for group, _ in sends})
        for group, message in sends:
            if listened is None or group in listened:
                await self.layer.group_send(group, message)


async def _listened(layer: Any, groups: set[str]) -> set[str] | None:
    """Return which of `groups` have members, in one round trip per Redis host.

    A group nobody is in (no page open on a run) gets nothing from
    ``group_send`` but still costs it two round trips and the messages'
    encoding; most of a worker's events go to such groups. The members
    are expired first, as ``group_send`` does, so a group counts as
    listened to exactly when ``group_send`` would find someone in it; a
    listened group then gets ``group_send`` itself, unchanged. A socket that
    joins after the check misses nothing it would not have missed joining
    a moment later: a client asks for the events after its last seq on
    connect. None for a layer that is not channels_redis' (send to all).
    """
    from channels_redis.core import RedisChannelLayer

    if not isinstance(layer, RedisChannelLayer) or not groups:
        return None
    by_host: dict[int, list[str]] = {}
    for group in sorted(groups):
        by_host.setdefault(layer.consistent_hash(group), []).append(group)
    stale = int(time.time()) - layer.group_expiry
    listened = set()
    for index, host_groups in by_host.items():
        pipe = layer.connection(index).pipeline(transaction=False)
        for group in host_groups:
            key = layer._group_key(group)
            pipe.zremrangebyscore(key, min=0, max=stale)
            pipe.zcard(key)
        replies = await pipe.execute()
        listened.update(g for g, n in zip(host_groups, replies[1::2], strict=True) if n)
    return listened


_publishers: dict[int, _Publisher] = {}
_publishers_lock = threading.Lock()


def _publisher(layer: Any) -> _Publisher:
    """Return this process's publisher for ``layer`` (a new one after a fork)."""
    with _publishers_lock:
        publisher = _publishers.get(os.getpid())
        if publisher is None or publisher.layer is not layer:
            publisher = _publishers[os.getpid()] = _Publisher(layer)
        return publisher


def flush_published(timeout: float = 5.0) -> bool:
    """Send what this process's publisher still holds; False if it timed out."""
    publisher = _publishers.get(os.getpid())
    return publisher.flush(timeout) if publisher is not None else True


def publish_committed(*, event: Any, run: Any) -> None:
    """Publish a committed event to the Redis layer (worker or web), without waiting."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        _publisher(layer).put(group_messages(event, run))
    except Exception:  # a live feed hiccup must never undo or stop the work
        logger.exception("could not publish event %s of run %s", event.pk, run.pk)


atexit.register(flush_published)


class EventRelay:
    """Tail the event table in the web process while websockets are connected.

    Event ids are handed out when a row is inserted but become visible when
    its transaction commits, and on PostgreSQL a later id may commit first.
    So an id the relay sees skipped over stays *pending*: each poll asks for
    the ids after the newest one sent and, by primary key, for the pending
    ones; a pending id that has not appeared after AGENTOS_LIVE_GAP_S is taken
    for a rolled-back insert and forgotten. Where ids commit in order (SQLite)
    nothing is ever pending and a poll is the plain indexed `id > last` query.
    """

    def __init__(self) -> None:
        self.subscribers = 0
        self.last_id: int | None = None
        self.pending: dict[int, float] = {}  # skipped id -> when it was first missed
        self.task: asyncio.Task | None = None
        # One thread keeps one database connection for the polling queries, so
        # polls never queue behind (or hold up) request handling.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="event-relay")

    async def subscribe(self) -> None:
        """Count a client in; start tailing from the newest event if idle."""
        self.subscribers += 1
        loop = asyncio.get_running_loop()
        if self.task is None or self.task.done() or self.task.get_loop() is not loop:
            self.last_id, missing = await loop.run_in_executor(self.executor, _newest_event_id)
            # Ids just below the newest may still be committing: wait for them.
            now = loop.time()
            self.pending = {event_id: now for event_id in missing}
            self.task = loop.create_task(self._tail())

    def unsubscribe(self) -> None:
        """Count a client out; the tail stops when nobody is left."""
        self.subscribers = max(0, self.subscribers - 1)

    def take(self, ids: list[int], now: float) -> list[int]:
        """Record the ids a poll found; return, ascending, those to send.

        Ids skipped between the newest sent and a newer one become pending;
        pending ids older than AGENTOS_LIVE_GAP_S are given up.
        """
        assert self.last_id is not None
        fresh = []
        for event_id in sorted(set(ids)):
            if self.pending.pop(event_id, None) is not None:
                fresh.append(event_id)
            elif event_id > self.last_id:
                for missing in range(self.last_id + 1, min(event_id, self.last_id + 1 + MAX_GAP)):
                    self.pending[missing] = now
                self.last_id = event_id
                fresh.append(event_id)
        give_up = now - settings.AGENTOS_LIVE_GAP_S
        for missing in [i for i, seen in self.pending.items() if seen < give_up]:
            del self.pending[missing]
        return fresh

    async def _tail(self) -> None:
        loop = asyncio.get_running_loop()
        layer = get_channel_layer()
        interval = settings.AGENTOS_LIVE_POLL_S
        while self.subscribers > 0:
            try:
                batch = await loop.run_in_executor(
                    self.executor, _events_after, self.last_id, sorted(self.pending)
                )
            except Exception:
                logger.exception("event relay: polling failed; retrying")
                await asyncio.sleep(1.0)
                continue
            by_id = {event.pk: event for event in batch}
            fresh = self.take(list(by_id), loop.time())
            for event_id in fresh:
                event = by_id[event_id]
                if event.run_id is not None:  # system events have no live feed
                    await fan_out(layer, event, event.run)
            if len(batch) < RELAY_BATCH:
                await asyncio.sleep(interval)


RELAY_BATCH = 500
MAX_GAP = 10_000  # a larger jump is not waited for in full


def _newest_event_id(window: int = 200) -> tuple[int, list[int]]:
    """Return the newest event id and the ids missing among the `window` below it."""
    from workflows.models import Event

    close_old_connections()
    newest = Event.objects.order_by("-id").values_list("id", flat=True).first() or 0
    low = max(0, newest - window)
    present = set(Event.objects.filter(id__gt=low, id__lte=newest).values_list("id", flat=True))
    return newest, [i for i in range(low + 1, newest) if i not in present]


def _events_after(last_id: int, pending: list[int]) -> list[Any]:
    """Return the events after `last_id` (one batch) and the pending ones that appeared."""
    from workflows.models import Event

    try:
        events = list(
            Event.objects.filter(id__gt=last_id).select_related("run").order_by("id")[:RELAY_BATCH]
        )
        if pending:
            events += list(Event.objects.filter(id__in=pending).select_related("run"))
        return events
    except Exception:
        connection.close()  # reconnect on the next poll
        raise


relay = EventRelay()
