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


class MetricRollup(models.Model):
    """Counts of finished steps or decided requests up to a family's mark.

    Steps and decisions are facts that do not change once settled, so the
    histograms keep what settled in these rows and each scrape adds only
    what finished since (see observability.rollup). `buckets` holds the
    per-bucket counts (not cumulative) of the family's bounds.
    """

    family = models.CharField(max_length=32)
    labels = models.CharField(max_length=400, help_text="The label values, as a JSON list.")
    count = models.BigIntegerField(default=0)
    timed = models.BigIntegerField(default=0, help_text="How many had a duration.")
    total = models.FloatField(default=0, help_text="Sum of the durations, in seconds.")
    buckets = models.JSONField(default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["family", "labels"], name="rollup_family_labels"),
        ]

    def __str__(self) -> str:
        return f"{self.family} {self.labels}"


class RollupMark(models.Model):
    """How far a family's rollup reaches: rows that finished before `upto`."""

    family = models.CharField(max_length=32, unique=True)
    upto = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.family} up to {self.upto:%Y-%m-%d %H:%M:%S}"
