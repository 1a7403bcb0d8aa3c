"""Verify every event hash chain; exit non-zero naming the first bad event."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from workflows.events import verify_all
from workflows.models import Event


class Command(BaseCommand):
    help = "Check every run's event chain and the system chain."

    def handle(self, *args: Any, **options: Any) -> None:
        problems = verify_all()
        if problems:
            for problem in problems:
                self.stderr.write(str(problem))
            raise CommandError(f"event log verification failed: {problems[0]}")
        self.stdout.write(self.style.SUCCESS(
            f"event log intact: {Event.objects.count()} events verified"))
