"""Heartbeats: which worker and web processes are alive, written by themselves."""

from __future__ import annotations

from django.db import models


class ProcessKind(models.TextChoices):
    WORKER = "worker", "Worker (django-q2)"
    WEB = "web", "Web (daphne)"


class WorkerHeartbeat(models.Model):
    """The last sign of life of one worker or web process.

    `name` is the process's lease identity (workflows.leases.worker_id), so
    the runs a worker holds are the runs whose `lease_owner` is its name.
    A process that stops beating is not deleted at once: it stays listed as
    dead (with the runs it still holds) until it is pruned.
    """

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=ProcessKind.choices)
    host = models.CharField(max_length=200)
    pid = models.PositiveIntegerField()
    cluster = models.CharField(max_length=100, blank=True)
    version = models.CharField(max_length=50, blank=True)
    browser_spares = models.PositiveSmallIntegerField(
        default=0, help_text="Browsers this worker's action runner keeps warm."
    )
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        ordering = ["kind", "host", "pid"]
        indexes = [models.Index(fields=["kind", "last_seen"], name="heartbeat_kind_seen")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.name}"
