"""Run a worker: django-q2's cluster, stopped in order on SIGTERM or SIGINT."""

from __future__ import annotations

import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = (
        "Run a worker cluster (use this, not qcluster): on SIGTERM or SIGINT, to "
        "the main process or its whole group, it takes no new task, lets steps in "
        "flight end for up to AGENTOS_WORKER_DRAIN_S, hands their runs to other "
        "workers and exits; a second signal cuts the steps short."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--drain-s",
            type=float,
            default=None,
            help="seconds a step in flight may still run after a stop signal "
            "(default: AGENTOS_WORKER_DRAIN_S)",
        )

    def handle(self, *args: Any, drain_s: float | None, **options: Any) -> None:
        from workflows.cluster import WorkerCluster

        if drain_s is not None and drain_s < 0:
            self.stderr.write("--drain-s: must be zero or more")
            sys.exit(2)
        settings.SECRET_KEY  # noqa: B018 - fail now, as qcluster does, when unset
        cluster = WorkerCluster(
            drain_s=settings.AGENTOS_WORKER_DRAIN_S if drain_s is None else drain_s
        )
        cluster.start()
        sys.exit(cluster.serve())
