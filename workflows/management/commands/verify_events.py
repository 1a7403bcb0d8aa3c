"""Verify every event chain and the checkpoints; exit non-zero naming what is wrong."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from workflows.checkpoints import checkpoint_path
from workflows.events import verify_log


class Command(BaseCommand):
    help = (
        "Check every run's event chain and the system chain (HMAC under the audit keys), "
        "and every chain against the signed checkpoints outside the database."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = verify_log()
        if report.problems:
            for problem in report.problems:
                self.stderr.write(str(problem))
            raise CommandError(f"event log verification failed: {report.problems[0]}")
        marks = report.checkpoints
        if marks.lines:
            pinned = (
                f"{len(marks.heads)} chains match {marks.lines} checkpoint lines "
                f"(newest {marks.newest_at})"
            )
        else:
            pinned = (
                f"no checkpoints yet in {checkpoint_path()}: deleted newest events "
                "or runs cannot be detected until `manage.py audit_checkpoint` runs"
            )
        self.stdout.write(
            self.style.SUCCESS(f"event log intact: {report.events} events verified; {pinned}")
        )
