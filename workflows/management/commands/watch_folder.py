"""Start a workflow whenever files land in a watched folder (watchdog)."""

from __future__ import annotations

import fnmatch
import queue
import signal
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from executors.actions.paths import confine
from executors.base import ActionFailed
from workflows.management.cli import parse_sets, user_named
from workflows.models import Workflow
from workflows.plans import PlanInvalid
from workflows.services import run_create


class _Landed(FileSystemEventHandler):
    """Queue the paths of files created in or moved into the folder."""

    def __init__(self, inbox: queue.Queue[Path]) -> None:
        self.inbox = inbox

    def on_created(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self.inbox.put(Path(str(event.src_path)))

    def on_moved(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self.inbox.put(Path(str(event.dest_path)))


class Command(BaseCommand):
    help = (
        "Watch a folder inside AGENTOS_FILES_ROOTS and start a run of a workflow for each "
        "file that lands in it, with the file's path (relative to the first root) in the "
        "context under --key."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("folder", help="folder to watch (inside the file roots)")
        parser.add_argument("--workflow", required=True, help="slug of the workflow to start")
        parser.add_argument(
            "--as",
            dest="username",
            required=True,
            help="the user the runs are started as (needs workflows.start_run)",
        )
        parser.add_argument("--key", default="path", help="context key for the file's path")
        parser.add_argument("--pattern", default="*", help="only files matching this glob")
        parser.add_argument(
            "--set",
            action="append",
            dest="sets",
            metavar="KEY=VALUE",
            help="more context values for every run",
        )
        parser.add_argument(
            "--settle",
            type=float,
            default=0.5,
            help="seconds a file's size must stay still before it counts",
        )
        parser.add_argument("--recursive", action="store_true", help="watch sub-folders too")

    def handle(
        self,
        *args: Any,
        folder: str,
        workflow: str,
        username: str,
        key: str,
        pattern: str,
        sets: list[str] | None,
        settle: float,
        recursive: bool,
        **options: Any,
    ) -> None:
        user = user_named(username, perm="workflows.start_run")
        found = Workflow.objects.filter(slug=workflow).first()
        if found is None:
            raise CommandError(f"--workflow: no workflow {workflow!r}")
        roots = list(settings.AGENTOS_FILES_ROOTS)
        try:
            base = confine(folder, roots)
        except ActionFailed as exc:
            raise CommandError(f"folder: {exc}") from None
        base.mkdir(parents=True, exist_ok=True)
        extra = parse_sets(sets)
        inbox: queue.Queue[Path] = queue.Queue()
        observer = Observer()
        observer.schedule(_Landed(inbox), str(base), recursive=recursive)
        observer.start()
        stopping = False

        def stop(*_: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"watching {base} for {pattern} -> workflow {workflow}", ending="\n")
        self.stdout.flush()
        seen: set[tuple[str, int, int]] = set()
        waiting: dict[Path, tuple[int, float]] = {}
        try:
            while not stopping:
                try:
                    path = inbox.get(timeout=0.1)
                    waiting.setdefault(path, (-1, time.monotonic()))
                except queue.Empty:
                    pass
                for path, (size, since) in list(waiting.items()):
                    ready = self._settled(path, size, since, settle, waiting)
                    if ready is None:
                        continue
                    del waiting[path]
                    if ready and fnmatch.fnmatch(path.name, pattern):
                        self._start(path, found, user, key, extra, roots, seen)
        finally:
            observer.stop()
            observer.join(timeout=5)

    @staticmethod
    def _settled(
        path: Path, size: int, since: float, settle: float, waiting: dict[Path, tuple[int, float]]
    ) -> bool | None:
        """Return True once the size stayed still for `settle` s, False if gone."""
        try:
            now_size = path.stat().st_size
        except FileNotFoundError:
            return False
        if now_size != size:
            waiting[path] = (now_size, time.monotonic())
            return None
        return True if time.monotonic() - since >= settle else None

    def _start(
        self,
        path: Path,
        workflow: Workflow,
        user: Any,
        key: str,
        extra: dict,
        roots: list[str],
        seen: set[tuple[str, int, int]],
    ) -> None:
        try:
            real = confine(str(path), roots)
        except ActionFailed as exc:
            self.stderr.write(f"skipped {path.name}: {exc}")
            return
        info = real.stat()
        marker = (str(real), info.st_size, info.st_mtime_ns)
        if marker in seen:
            return
        seen.add(marker)
        first = Path(roots[0]).resolve()
        rel = real.relative_to(first).as_posix() if real.is_relative_to(first) else str(real)
        try:
            run = run_create(workflow=workflow, context={**extra, key: rel}, requester=user)
        except PlanInvalid as exc:
            self.stderr.write(f"not started for {rel}: {exc}")
            return
        self.stdout.write(f"run {run.pk} started for {rel}")
        self.stdout.flush()
