"""django-q2's ORM broker, woken by the commit that queues a task.

Upstream's ORM broker finds new tasks by polling its table: with an empty
queue, the pusher sleeps ``poll`` seconds between queries. A short poll
costs an idle worker CPU (and a query) dozens of times a second; a long one
delays every task by half of it on average.

Here the pusher waits on a Unix datagram socket instead: each pusher binds
one (in the abstract namespace, so the length of VAR_DIR does not matter)
and names it by an empty file in ``VAR_DIR/wake/``; ``enqueue`` sends one
byte to every name there once its row is committed. The table stays the
only record of a task: a wake-up is a hint that can be lost (a pusher on
another host, a full socket buffer) and the poll, now seconds apart, still
finds the task. Names of pushers that went away are removed by the first
sender that finds nobody listening.

The nudge names the task it is about (its id and payload): the woken pusher
claims that row with its conditional UPDATE alone, and skips the query for
due tasks on the path of each approval. The claim matches the row's key,
payload and due lock, so a datagram (anyone on the host may send one) can
only make a pusher take, unchanged, a task that is in its own queue.

With Redis (``REDIS_URL``) django-q2's Redis broker is used instead: its
pusher already blocks in BLPOP and wakes on the push.

Queuing goes through one broker per process (:func:`task_broker`):
``async_task`` without a broker builds a new one for each task, which with
Redis meant a new connection (and its handshake) on the path of every
approval, and with the ORM closed the caller's database connection.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import select
import socket
import uuid
from pathlib import Path

from django import db
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.brokers import Broker, get_broker
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import OrmQ

__all__ = [
    "KEEP_CONNECTION_S",
    "WakingORM",
    "keep_connections",
    "queues_in_transaction",
    "task_broker",
    "wake_dir",
    "wake_pushers",
]

# A datagram without a task's name only wakes a pusher.
_NUDGE = b"!"
# A datagram naming a task: _TASK, its id, ":", its payload. Larger payloads
# send a bare nudge (the pusher then queries, as for any nudge).
_TASK = b"T"
_MAX_DATAGRAM = 32 * 1024
# How long a worker, pusher or monitor process keeps a database connection.
KEEP_CONNECTION_S = 300

# This process's broker for queuing, and what it was built for (a fork, or
# a test that changes the broker's settings, gets a new one).
_task_broker: tuple[tuple, Broker] | None = None


def task_broker() -> Broker:
    """Return this process's broker for ``async_task(..., broker=...)``.

    Redis's client keeps its connections in a pool shared by the threads of
    a process, so a second task reuses the first one's connection.
    """
    global _task_broker
    key = (os.getpid(), Conf.CLUSTER_NAME, Conf.BROKER_CLASS, Conf.ORM, str(Conf.REDIS))
    if _task_broker is None or _task_broker[0] != key:
        _task_broker = (key, get_broker())
    return _task_broker[1]


def queues_in_transaction(using: str) -> bool:
    """Return whether a task queued now is written by the open transaction on ``using``.

    So with the ORM broker on that database: the task's row then commits (or
    rolls back) with the change that queues it, in the same transaction. With
    Redis, or outside a transaction, the task can only follow the commit.
    """
    return (
        isinstance(task_broker(), ORM)
        and Conf.ORM == using
        and transaction.get_connection(using).in_atomic_block
    )


def keep_connections() -> None:
    """Keep this process's database connections from one task or query to the next.

    For the queue's own processes (workers, pusher, monitor), never the
    web's. django-q2 closes "old" connections before each task, and its ORM
    broker before each of its queries in the pusher and the monitor: with
    the default CONN_MAX_AGE of 0 each opened a new connection (on
    PostgreSQL a new server process on the path of each resume; on SQLite a
    new connection and its set-up, twice per task in the pusher, ~1 ms
    each). Each keeps its own for KEEP_CONNECTION_S; a kept connection is
    still checked before it is used again (health checks are on for
    servers), so a restarted database is met with a new one. django-q2
    closes every connection before it forks a process, so no child shares one.
    """
    for alias in db.connections:
        db.connections.settings[alias]["CONN_MAX_AGE"] = KEEP_CONNECTION_S


def wake_dir() -> Path:
    """Return the folder naming the pushers of this installation."""
    return Path(settings.VAR_DIR) / "wake"


def wake_pushers(nudge: bytes = _NUDGE) -> int:
    """Wake every pusher listening on this host; return how many were sent a nudge."""
    try:
        names = os.listdir(wake_dir())
    except FileNotFoundError:
        return 0
    sent = 0
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        for name in names:
            try:
                sock.sendto(nudge, b"\0" + name.encode())
                sent += 1
            except BlockingIOError:
                sent += 1  # its buffer is full: it has nudges waiting already
            except OSError as exc:
                if exc.errno == errno.ECONNREFUSED:  # nobody bound: a pusher gone
                    with contextlib.suppress(OSError):
                        os.unlink(wake_dir() / name)
    return sent


def _naming(pk: int, task: str) -> bytes:
    """Return the nudge that names a queued task (a bare one for a large payload)."""
    datagram = _TASK + str(pk).encode() + b":" + task.encode()
    return datagram if len(datagram) <= _MAX_DATAGRAM else _NUDGE


def _named(datagram: bytes) -> tuple[int, str] | None:
    """Return the (id, payload) a nudge names, or None for a bare or unreadable one."""
    if not datagram.startswith(_TASK):
        return None
    head, sep, payload = datagram[len(_TASK) :].partition(b":")
    try:
        return (int(head), payload.decode()) if sep and payload else None
    except (ValueError, UnicodeDecodeError):
        return None


class WakingORM(ORM):
    """The ORM broker whose pusher sleeps on a socket that ``enqueue`` nudges."""

    _listener: socket.socket | None = None
    _listener_pid = 0
    _name = ""

    def enqueue(self, task):  # type: ignore[no-untyped-def]
        # Upstream's enqueue first calls close_old_connections() when not in
        # a transaction: in the web process (CONN_MAX_AGE 0) that closed the
        # request's own connection after the decision's commit, and the
        # insert opened a new one (SQLite's close alone took ~7 ms). The
        # caller's connection is its own to manage: the web request's by
        # Django, a worker's before each task by django-q2.
        pk = (
            OrmQ.objects.using(Conf.ORM)
            .create(key=self.list_key or Conf.CLUSTER_NAME, payload=task, lock=timezone.now())
            .pk
        )
        # In autocommit this runs at once; inside a transaction, once the
        # row is visible to the pusher's query.
        transaction.on_commit(functools.partial(wake_pushers, _naming(pk, task)), using=Conf.ORM)
        return pk

    # Whether a due task may wait that this pusher has not looked for: at
    # first, after each wake-up or poll, and after a query that saw more due
    # tasks than it took (or lost one to another cluster).
    _look = True

    def dequeue(self):  # type: ignore[no-untyped-def]
        listener = self._listen()
        if self._look:
            tasks = self._take()
            if tasks:
                return tasks
        # Nothing (more) is due: sleep until a nudge or the poll, whichever
        # comes first. A task committed after the last query sends its nudge
        # after its commit, so after the last drain: it is waiting in the
        # socket already. Not querying again right after a take keeps the
        # pusher off the CPU while the worker it handed the task to starts.
        self._look = True
        with contextlib.suppress(InterruptedError):
            ready, _, _ = select.select([listener], [], [], Conf.POLL)
            if ready:
                named, bare = self._drain(listener)
                # Only bare nudges (a stop, another sender) call for a query.
                self._look = bare
                if named:
                    return self._claim(named)
        return None

    def _claim(self, named: list[tuple[int, str]]) -> list | None:
        """Take the tasks the nudges named: upstream's conditional UPDATE, without its query.

        The row must be in this queue, due, and hold the very payload named;
        a task not claimed (another cluster took it, or it is not ours) sends
        the next call to the query.
        """
        task_list = []
        for pk, payload in named[: Conf.BULK]:
            if (
                self.get_connection()
                .filter(id=pk, key=self.list_key, payload=payload, lock__lt=timezone.now())
                .update(lock=self.timeout(None))
            ):
                task_list.append((pk, payload))
            else:
                self._look = True
        if len(named) > Conf.BULK:
            self._look = True
        return task_list or None

    def _take(self) -> list | None:
        """Upstream's dequeue without its sleep: lock and return the due tasks."""
        due = list(
            self.get_connection().filter(key=self.list_key, lock__lt=timezone.now())[
                0 : Conf.BULK + 1
            ]
        )
        self._look = len(due) > Conf.BULK
        task_list = []
        for task in due[: Conf.BULK]:
            if (
                self.get_connection()
                .filter(id=task.id, lock=task.lock)
                .update(lock=self.timeout(task))
            ):
                task_list.append((task.pk, task.payload))
            else:  # another cluster was faster on that task
                self._look = True
        return task_list or None

    def _listen(self) -> socket.socket:
        """Bind this process's wake-up socket once (again after a fork)."""
        if self._listener is not None and self._listener_pid == os.getpid():
            return self._listener
        name = f"agentos-wake-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        listener.bind(b"\0" + name.encode())
        listener.setblocking(False)
        wake_dir().mkdir(parents=True, exist_ok=True)
        (wake_dir() / name).touch()
        self._listener, self._listener_pid, self._name = listener, os.getpid(), name
        return listener

    @staticmethod
    def _drain(listener: socket.socket) -> tuple[list[tuple[int, str]], bool]:
        """Read every waiting nudge: the tasks they name, and whether any named none."""
        named: list[tuple[int, str]] = []
        bare = False
        with contextlib.suppress(BlockingIOError):
            while datagram := listener.recv(_MAX_DATAGRAM + 64):
                task = _named(datagram)
                if task is None:
                    bare = True
                elif task not in named:
                    named.append(task)
        return named, bare

    def __del__(self) -> None:
        if self._listener is not None and self._listener_pid == os.getpid():
            with contextlib.suppress(OSError):
                os.unlink(wake_dir() / self._name)
            self._listener.close()
