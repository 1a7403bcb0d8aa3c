"""The worker: django-q2's cluster, stopped in order however SIGTERM arrives.

Upstream's ``Cluster.sig_handler`` calls ``stop()`` inside the signal
handler, which sets the stop event and joins the sentinel. When the whole
process group gets the signal (systemd's default ``KillMode``, ``kill --
-PGID``), the sentinel dies of its own SIGTERM while it sleeps on that
event; ``Event.set()`` then waits for that sleeper to wake (multiprocessing's
``Condition.notify`` counts woken sleepers on a semaphore) and the main
process hangs in a futex for good, its sentinel a zombie.

Here instead:

- the main process's handlers only note the signal; :meth:`WorkerCluster.serve`
  acts on it outside signal context;
- the sentinel and all it forks (pusher, monitor, workers) ignore SIGTERM
  and SIGINT, so the main process alone decides the order: raise the drain
  flag (``workflows.drain``), stop the pusher (no new task), let each
  worker end its step and hand its run on, stop the monitor;
- a second signal cuts the drain short; workers still busy well past the
  bound are killed, and their runs are left to the lease, as after a crash;
- a worker past its task timeout is killed with SIGKILL (it ignores SIGTERM);
- each worker closes its action runners on the way out: no zygote, action,
  browser or home folder stays behind.

Workers run django-q2's own worker loop, so its signals (``post_spawn``,
``pre_execute``, ``post_execute``) fire as under ``qcluster``.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import uuid
from multiprocessing import Event, Value
from typing import Any

from django import db
from django_q.cluster import Cluster, Sentinel, get_mp_context
from django_q.conf import Conf
from django_q.worker import worker

from workflows import drain
from workflows.broker import WakingORM, keep_connections, wake_pushers

logger = logging.getLogger(__name__)

# After the drain bound, how long a cut action and its worker may take to
# hand the run on (an action notices the cut at its next heartbeat, at most
# five seconds later, and is killed at once) before the workers are killed.
KILL_AFTER_BOUND_S = 15.0
SIGNAL_NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT"}


class WorkerCluster(Cluster):
    """A django-q2 cluster whose main process handles signals outside signal context."""

    def __init__(self, *, drain_s: float) -> None:
        super().__init__()
        self.drain_s = drain_s
        self.signals: list[int] = []
        # Replace upstream's handlers (which stop the cluster in signal
        # context) with ones that only take note.
        signal.signal(signal.SIGTERM, self._note)
        signal.signal(signal.SIGINT, self._note)

    def _note(self, signum: int, frame: Any) -> None:
        self.signals.append(signum)

    def start(self) -> int:
        """Start the sentinel (upstream's start, with our sentinel), without waiting."""
        drain.install()
        self.stop_event = Event()
        self.start_event = Event()
        self.sentinel = get_mp_context().Process(
            target=WorkerSentinel,
            name=f"Process-{uuid.uuid4().hex}",
            args=(self.stop_event, self.start_event, self.cluster_id, self.broker, self.timeout),
        )
        self.sentinel.start()
        logger.info("worker %s starting (pid %s)", self.name, self.pid)
        return self.pid

    def serve(self) -> int:
        """Run until a signal or the sentinel's death; return the exit status."""
        announced = False
        while not self.signals and self.sentinel.is_alive():
            if not announced and self.start_event.is_set():
                logger.info("worker %s running", self.name)
                announced = True
            time.sleep(0.1)
        if not self.signals:
            logger.error("worker %s: the sentinel exited (%s)", self.name, self.sentinel.exitcode)
            return 1
        return self.shutdown()

    def shutdown(self) -> int:
        """Drain, stop the sentinel in order, and return 0 once everything ended."""
        started = time.time()
        bound = drain.begin(bound_s=self.drain_s)
        logger.info(
            "worker %s: %s: draining; steps in flight may run %.0f s more",
            self.name,
            SIGNAL_NAMES.get(self.signals[0], self.signals[0]),
            bound - started,
        )
        # Not in the signal handler, and not even on this thread: should
        # the sentinel have died asleep on the event (SIGKILL, the OOM
        # killer), set() would block forever, and we still want to end.
        threading.Thread(target=self.stop_event.set, daemon=True).start()
        seen = len(self.signals)
        kill_at = bound + KILL_AFTER_BOUND_S
        while self.sentinel.is_alive():
            self.sentinel.join(0.1)
            if len(self.signals) > seen:
                seen = len(self.signals)
                bound = drain.begin(bound_s=0)
                kill_at = min(kill_at, bound + KILL_AFTER_BOUND_S)
                logger.info("worker %s: signalled again: cutting steps in flight", self.name)
            if time.time() >= kill_at and self.sentinel.is_alive():
                logger.error(
                    "worker %s: still busy %.0f s after the drain bound; killing its processes",
                    self.name,
                    KILL_AFTER_BOUND_S,
                )
                kill_tree(self.sentinel.pid)
                self.sentinel.join(5)
                break
        logger.info("worker %s stopped in %.1f s", self.name, time.time() - started)
        self.start_event = None
        self.stop_event = None
        return 0


class WorkerSentinel(Sentinel):
    """django-q2's sentinel, deaf to SIGTERM, whose workers clean up after themselves."""

    def __init__(
        self,
        stop_event: Any,
        start_event: Any,
        cluster_id: uuid.UUID,
        broker: Any = None,
        timeout: int | None = None,
        start: bool = True,
    ) -> None:
        super().__init__(stop_event, start_event, cluster_id, broker, timeout, start=False)
        # Before the pusher, the monitor and the workers are forked: each
        # keeps its database connection (workers set it again as they spawn).
        keep_connections()
        # Upstream sets SIGTERM back to its default here; the pusher, the
        # monitor and the workers forked below inherit whatever we choose.
        _deaf()
        # ...and keep them so: a fork-time hook of another library (coverage's
        # SIGTERM saver, under test) may install its own handler in each
        # child, which would then act on a signal meant for the main process.
        # Hooks run in the order they were registered, so this one runs last.
        os.register_at_fork(after_in_child=_deaf)
        if start:
            self.start()

    def stop(self) -> None:
        """Upstream's stop, with the pusher woken at once instead of after its poll.

        Upstream sets the pusher's event and waits for it, but the pusher
        looks at the event only once its ``dequeue`` returns: with the ORM
        broker, after up to ``poll`` seconds asleep on its wake-up socket
        (a second, by default, added to every stop of an idle worker). A
        nudge, as an enqueue sends, makes it look now; a nudge that arrives
        while it queries is waiting in its socket when it sleeps next.
        """
        self.event_out.set()
        if isinstance(self.broker, WakingORM):
            wake_pushers()
        super().stop()

    def spawn_worker(self) -> None:
        timer = Value("f", -1)
        process = get_mp_context().Process(
            target=_worker,
            args=(self.task_queue, self.result_queue, timer, self.timeout),
            name=f"Process-{uuid.uuid4().hex}",
        )
        process.daemon = Conf.DAEMONIZE_WORKERS
        process.timer = timer  # type: ignore[attr-defined]
        self.pool.append(process)
        process.start()

    def reincarnate(self, process: Any) -> None:
        if process in self.pool and process.timer.value == 0 and process.is_alive():
            # A worker past its task's timeout: upstream sends SIGTERM,
            # which our workers ignore.
            process.kill()
            process.join(5)
        super().reincarnate(process)


def start_runner_soon(**_: object) -> None:
    """django-q2's post_spawn, in each new worker process: start its action runner.

    In a thread, so the worker takes tasks at once: a task that arrives
    first waits for the same start (the runner's lock) instead of starting
    the zygote itself. Its first step no longer pays a zygote's start, nor
    does the approval that resumes a run on a worker that had run nothing.
    """

    def start() -> None:
        from workflows import executor_config

        try:
            executor_config.runner().start()
        except Exception:  # the first step will try again, and report it
            logger.warning("could not start the action runner ahead of time", exc_info=True)

    threading.Thread(target=start, name="agentos-runner-start", daemon=True).start()
    keep_connections()


def _deaf() -> None:
    """Ignore SIGTERM and SIGINT: the main process orders the stop."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker(task_queue: Any, result_queue: Any, timer: Any, timeout: int | None) -> None:
    """Run django-q2's worker loop, then stop this process's action runners.

    multiprocessing ends a forked child with os._exit, which skips atexit
    handlers: without this, each worker would leave its zygote's home
    folder (and a zygote, until it notices the closed socket) behind.
    """
    from executors.runner import close_runners
    from workflows import hooks

    try:
        worker(task_queue, result_queue, timer, timeout)
    finally:
        close_runners()
        # Events committed last are still on their way to the live feed.
        hooks.flush_event_publisher()
        db.connections.close_all()


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every descendant (found through /proc), leaves first."""
    for child in reversed(descendants(pid)):
        _kill(child)
    _kill(pid)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def descendants(pid: int) -> list[int]:
    """Return the descendants of ``pid``, parents before their children."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                # The name, in parentheses, may hold spaces: split after it.
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(0), []):
            found.append(child)
            todo.append(child)
    return found
