"""Heartbeats: each worker and web process says it is alive, every few seconds.

django-q2's own statistics live in the broker's cache, which does not cross
processes on the ORM broker, so `GET /health` used to report no workers while
a cluster was busy. Instead every django-q2 worker process (on `post_spawn`)
and every daphne (from `agentos_site.asgi`) starts a daemon thread that
upserts one `WorkerHeartbeat` row every AGENTOS_HEARTBEAT_S seconds. A process
is live while its row is younger than AGENTOS_HEARTBEAT_LIVE_S (a minute):
a worker killed with SIGKILL simply stops beating and drops out of the count,
on SQLite and PostgreSQL alike, with no cleanup needed from anyone.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta
from importlib import metadata

from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import QuerySet
from django.utils import timezone

from observability.models import ProcessKind, WorkerHeartbeat

logger = logging.getLogger(__name__)

# Rows of processes dead for longer than this are deleted by the next beat.
PRUNE_AFTER = timedelta(days=1)

_started: dict[int, HeartbeatThread] = {}
_lock = threading.Lock()


def agentos_version() -> str:
    """Return the installed AgentOS version ("" when not installed)."""
    try:
        return metadata.version("agentos")
    except metadata.PackageNotFoundError:
        return ""


def _browser_spares() -> int:
    """Return how many pre-started browsers this process's action runners hold ready now."""
    from executors import runner

    # Counted by each zygote as its spares get ready, are taken or retire; a
    # worker that never ran a browser action has none.
    live = getattr(runner, "_live_runners", ())
    return sum(r.ready_spares for r in list(live))


def heartbeat_beat(*, name: str, kind: str, cluster: str = "", spares: int = 0) -> None:
    """Record that the process `name` is alive now (insert or update its row)."""
    now = timezone.now()
    updated = WorkerHeartbeat.objects.filter(name=name).update(
        last_seen=now, browser_spares=spares
    )
    if not updated:
        WorkerHeartbeat.objects.create(
            name=name,
            kind=kind,
            host=socket.gethostname(),
            pid=os.getpid(),
            cluster=cluster,
            version=agentos_version(),
            browser_spares=spares,
            started_at=now,
            last_seen=now,
        )
    WorkerHeartbeat.objects.filter(last_seen__lt=now - PRUNE_AFTER).delete()


def live_window() -> timedelta:
    return timedelta(seconds=settings.AGENTOS_HEARTBEAT_LIVE_S)


def live_processes(kind: str = ProcessKind.WORKER) -> QuerySet[WorkerHeartbeat]:
    """Return the processes of `kind` that beat within the live window."""
    return WorkerHeartbeat.objects.filter(kind=kind, last_seen__gte=timezone.now() - live_window())


class HeartbeatThread(threading.Thread):
    """Beat for this process until it exits (a daemon thread: no join needed)."""

    def __init__(self, *, kind: str, cluster: str = "") -> None:
        super().__init__(name=f"agentos-heartbeat-{kind}", daemon=True)
        from workflows.leases import worker_id

        # The lease identity of this process: the runs it holds name it.
        self.process_name = worker_id()
        self.kind = kind
        self.cluster = cluster
        self.stopping = threading.Event()

    def run(self) -> None:
        interval = settings.AGENTOS_HEARTBEAT_S
        while not self.stopping.is_set():
            try:
                close_old_connections()
                heartbeat_beat(
                    name=self.process_name,
                    kind=self.kind,
                    cluster=self.cluster,
                    spares=_browser_spares() if self.kind == ProcessKind.WORKER else 0,
                )
            except Exception:  # a database restart must not end the beating
                logger.warning("heartbeat of %s failed", self.process_name, exc_info=True)
                connection.close()
            self.stopping.wait(interval)
        connection.close()


def start_heartbeat(*, kind: str, cluster: str = "") -> HeartbeatThread:
    """Start this process's heartbeat thread once (again in a forked child)."""
    with _lock:
        thread = _started.get(os.getpid())
        if thread is None or not thread.is_alive():
            thread = _started[os.getpid()] = HeartbeatThread(kind=kind, cluster=cluster)
            thread.start()
        return thread


def on_worker_spawned(sender: object = None, proc_name: str = "", **_: object) -> None:
    """django-q2's post_spawn, in each new worker process: start beating."""
    from django_q.conf import Conf

    start_heartbeat(kind=ProcessKind.WORKER, cluster=Conf.PREFIX or "")
