"""The ORM broker's pusher is woken by the commit that queues a task, and still polls."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from workflows.broker import WakingORM, _named, wake_dir, wake_pushers

pytestmark = pytest.mark.django_db(transaction=True)

# Far longer than any test here may take: a task found within it was found
# by a wake-up, not by the poll.
LONG_POLL_S = 120.0


@pytest.fixture(autouse=True)
def own_var(settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.VAR_DIR = tmp_path
    monkeypatch.setattr(Conf, "ORM", "default")


def _broker(monkeypatch: pytest.MonkeyPatch, poll: float) -> WakingORM:
    monkeypatch.setattr(Conf, "POLL", poll)
    return WakingORM(list_key=f"test-wake-{os.getpid()}-{poll}")


def _dequeue_in_thread(broker: WakingORM) -> tuple[threading.Thread, list]:
    """Call dequeue once in a thread (its own connection) and keep what it returned."""
    found: list = []

    def pull() -> None:
        try:
            found.append(broker.dequeue())
        finally:
            from django import db

            db.connections.close_all()

    thread = threading.Thread(target=pull, daemon=True)
    return thread, found


def test_a_pusher_asleep_on_an_empty_queue_is_woken_by_the_enqueue(monkeypatch) -> None:
    broker = _broker(monkeypatch, LONG_POLL_S)
    broker._listen()  # bound before the pusher's first query, as in dequeue
    assert os.listdir(wake_dir()) == [broker._name]
    thread, found = _dequeue_in_thread(broker)
    thread.start()
    thread.join(0.2)
    assert thread.is_alive(), "the queue is empty: the pusher sleeps"
    broker.enqueue(SignedPackage.dumps({"id": "t1"}))
    thread.join(60)
    assert not thread.is_alive(), "the enqueue did not wake the pusher"
    # Woken, it returns empty-handed and the next dequeue takes the task (or,
    # on a slow machine, its query came after the commit and took it).
    [(pk, payload)] = found[0] or broker.dequeue()
    assert SignedPackage.loads(payload) == {"id": "t1"}
    assert OrmQ.objects.filter(pk=pk).exists()


def test_a_wake_up_waits_for_the_commit(monkeypatch) -> None:
    broker = _broker(monkeypatch, LONG_POLL_S)
    listener = broker._listen()
    listener.setblocking(False)
    with transaction.atomic():
        payload = SignedPackage.dumps({"id": "t2"})
        pk = broker.enqueue(payload)
        with pytest.raises(BlockingIOError):
            listener.recv(8)  # not yet: the pusher would find nothing
    assert _named(listener.recv(65536)) == (pk, payload)


def test_a_lost_wake_up_is_still_found_by_the_poll(monkeypatch) -> None:
    broker = _broker(monkeypatch, 0.05)
    broker._listen()
    # Queued by upstream's enqueue: no wake-up at all (as for a pusher on
    # another host, or a nudge dropped).
    ORM.enqueue(broker, SignedPackage.dumps({"id": "t3"}))
    tasks = None
    for _ in range(200):
        tasks = broker.dequeue()
        if tasks:
            break
    assert tasks is not None and SignedPackage.loads(tasks[0][1]) == {"id": "t3"}


def test_names_of_pushers_gone_are_removed_and_live_ones_kept(monkeypatch) -> None:
    broker = _broker(monkeypatch, LONG_POLL_S)
    broker._listen()
    gone = f"agentos-wake-{os.getpid()}-gone"
    (wake_dir() / gone).touch()  # nobody bound it: its pusher exited
    assert wake_pushers() == 1
    assert os.listdir(wake_dir()) == [broker._name]
    assert broker._listener is not None and broker._listener.recv(8) == b"!"


def test_no_pusher_no_folder_nothing_to_wake() -> None:
    assert wake_pushers() == 0
    assert not wake_dir().exists()


def test_a_forked_pusher_binds_a_socket_of_its_own(monkeypatch) -> None:
    broker = _broker(monkeypatch, LONG_POLL_S)
    broker._listen()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a pusher forked from a process that had one
        try:
            os.write(write, broker._listen() is not None and broker._name.encode())
        finally:
            os._exit(0)
    os.close(write)
    child_name = os.read(read, 200).decode()
    os.waitpid(pid, 0)
    os.close(read)
    assert child_name and child_name != broker._name
    assert f"-{pid}-" in child_name
    # The child exited: its name goes with the next wake-up.
    wake_pushers()
    assert os.listdir(wake_dir()) == [broker._name]
    assert isinstance(broker._listener, socket.socket)


def test_queuing_leaves_the_callers_database_connection_open(monkeypatch) -> None:
    """Upstream's enqueue closed "old" connections first: the request's own, after its commit."""
    from django.db import connection

    broker = _broker(monkeypatch, LONG_POLL_S)
    connection.ensure_connection()
    before = connection.connection
    broker.enqueue(SignedPackage.dumps({"id": "t4"}))
    assert connection.connection is before
    assert OrmQ.objects.filter(key=broker.list_key).count() == 1


def test_a_process_queues_through_one_broker(monkeypatch) -> None:
    """async_task builds a broker (with Redis: a connection) per task unless given one."""
    import django_q.brokers

    from workflows import broker as module

    built: list[object] = []
    real = django_q.brokers.get_broker
    monkeypatch.setattr(module, "_task_broker", None)
    monkeypatch.setattr(module, "get_broker", lambda: built.append(1) or real())
    first = module.task_broker()
    assert module.task_broker() is first
    assert len(built) == 1
    # A forked child (a worker) builds its own.
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(write, b"own" if module.task_broker() is not first else b"shared")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 10)
    os.waitpid(pid, 0)
    os.close(read)
    assert answer == b"own"


def test_after_taking_the_only_due_task_the_pusher_sleeps_without_asking_again(
    monkeypatch,
) -> None:
    """The next dequeue waits for a nudge instead of querying while the task starts."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    broker = _broker(monkeypatch, 0.05)
    broker.enqueue(SignedPackage.dumps({"id": "only"}))
    broker._listen()  # bound after the enqueue: its nudge was lost
    [(_, payload)] = broker.dequeue()
    assert SignedPackage.loads(payload) == {"id": "only"}
    with CaptureQueriesContext(connection) as queries:
        assert broker.dequeue() is None  # slept out the poll
    assert not [q for q in queries.captured_queries if "django_q_ormq" in q["sql"]]
    # The next one looks again: a task whose nudge was lost is found by the poll.
    broker.enqueue(SignedPackage.dumps({"id": "later"}))
    broker._drain(broker._listen())
    [(_, payload)] = broker.dequeue()
    assert SignedPackage.loads(payload) == {"id": "later"}


def test_a_pusher_that_saw_more_due_tasks_takes_the_next_without_a_nudge(monkeypatch) -> None:
    broker = _broker(monkeypatch, LONG_POLL_S)
    monkeypatch.setattr(Conf, "BULK", 1)
    for name in ("a", "b"):
        broker.enqueue(SignedPackage.dumps({"id": name}))
    broker._drain(broker._listen())  # no nudge waits: only the query can find "b"
    taken = [SignedPackage.loads(broker.dequeue()[0][1])["id"] for _ in range(2)]
    assert sorted(taken) == ["a", "b"]


def test_the_queue_processes_keep_their_database_connections(monkeypatch) -> None:
    """The sentinel sets it before forking the pusher, the monitor and the workers."""
    import uuid
    from multiprocessing import Event

    from django import db

    from workflows import cluster
    from workflows.broker import KEEP_CONNECTION_S

    for alias in db.connections:
        monkeypatch.setitem(db.connections.settings[alias], "CONN_MAX_AGE", 0)
    # Only the constructor: no fork hook or signal handler left in this process.
    monkeypatch.setattr(cluster.os, "register_at_fork", lambda **_: None)
    monkeypatch.setattr(cluster, "_deaf", lambda: None)
    cluster.WorkerSentinel(Event(), Event(), uuid.uuid4(), start=False)
    assert {db.connections.settings[alias]["CONN_MAX_AGE"] for alias in db.connections} == {
        KEEP_CONNECTION_S
    }


def test_the_woken_pusher_takes_the_named_task_with_its_update_alone(monkeypatch) -> None:
    """No query for due tasks between the nudge and the hand-off to a worker."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    broker = _broker(monkeypatch, LONG_POLL_S)
    broker._listen()
    broker._look = False  # asleep after an earlier take, as between approvals
    payload = SignedPackage.dumps({"id": "t5"})
    pk = broker.enqueue(payload)
    with CaptureQueriesContext(connection) as queries:
        assert broker.dequeue() == [(pk, payload)]
    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["UPDATE"]
    assert OrmQ.objects.get(pk=pk).lock > timezone.now(), "claimed"
    assert broker._look is False, "nothing else is known to be due"


def test_a_nudge_naming_what_is_not_in_the_row_takes_nothing(monkeypatch) -> None:
    """Anyone on the host may send a datagram: it can only make the pusher look."""
    broker = _broker(monkeypatch, LONG_POLL_S)
    listener = broker._listen()
    payload = SignedPackage.dumps({"id": "t6"})
    pk = broker.enqueue(payload)
    listener.recv(65536)  # the genuine nudge, lost
    lock = OrmQ.objects.get(pk=pk).lock
    other = WakingORM(list_key="another-queue")
    theirs = ORM.enqueue(other, SignedPackage.dumps({"id": "t7"}))
    forged = SignedPackage.dumps({"id": "replayed"})  # signed, but not this row's
    for datagram in (f"T{pk}:{forged}", f"T{theirs}:{OrmQ.objects.get(pk=theirs).payload}"):
        broker._look = False
        wake_pushers(datagram.encode())
        assert broker.dequeue() is None
        assert broker._look is True, "a task named and not claimed sends it to the query"
    assert OrmQ.objects.get(pk=pk).lock == lock
    assert OrmQ.objects.get(pk=theirs).lock <= timezone.now(), "not taken"
    # The query then takes the row as it is.
    assert broker.dequeue() == [(pk, payload)]


def _with_the_orm_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Queue through the waking ORM broker on this database (also in the Redis pass)."""
    from workflows import broker as module

    monkeypatch.setattr(Conf, "BROKER_CLASS", "workflows.broker.WakingORM")
    monkeypatch.setattr(module, "_task_broker", None)


def _tasks_for(run_id: int) -> list[OrmQ]:
    return [
        row for row in OrmQ.objects.all() if SignedPackage.loads(row.payload)["args"] == (run_id,)
    ]


def test_the_orm_brokers_task_is_written_in_the_transaction_that_queues_it(
    monkeypatch, operator
) -> None:
    """A committed run start has exactly one task; a rolled-back one none, and no run."""
    from workflows.models import Run
    from workflows.services import run_create

    _with_the_orm_broker(monkeypatch)
    plan = {
        "nodes": [
            {"id": "v", "action": "verify.value_equals", "params": {"value": 1, "expected": 1}}
        ]
    }
    nudged: list[bytes] = []
    monkeypatch.setattr("workflows.broker.wake_pushers", nudged.append)
    with pytest.raises(RuntimeError), transaction.atomic():
        run = run_create(plan=plan, mode="autonomous", requester=operator)
        # Already there, before the commit: no window without a task.
        assert len(_tasks_for(run.pk)) == 1
        assert nudged == []  # the pusher could not see it yet
        raise RuntimeError("rolled back")
    assert not Run.objects.filter(pk=run.pk).exists()
    assert _tasks_for(run.pk) == []
    assert nudged == []
    run = run_create(plan=plan, mode="autonomous", requester=operator)
    [task] = _tasks_for(run.pk)
    assert len(nudged) == 1 and str(task.pk).encode() in nudged[0]
