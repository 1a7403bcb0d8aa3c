"""Append a signed checkpoint of every chain head that moved (what the schedule does)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from workflows.checkpoints import checkpoint_path, checkpoint_write


class Command(BaseCommand):
    help = (
        "Write a signed checkpoint of the event chains' heads outside the database; "
        "run it after upgrading and after rotating AGENTOS_AUDIT_KEY."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        number = checkpoint_write()
        if number is None:
            self.stdout.write(f"no chain moved since the last checkpoint ({checkpoint_path()})")
        else:
            self.stdout.write(
                self.style.SUCCESS(f"checkpoint line {number} written to {checkpoint_path()}")
            )
