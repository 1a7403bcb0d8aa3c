"""Seed many runs, events and approval requests to measure pages at scale."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bench.seeding import Seeder


class Command(BaseCommand):
    help = (
        "Bulk-insert runs with valid event hash chains and approval requests "
        "(for benchmarks: never seed a database people use)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--runs", type=int, default=100_000)
        parser.add_argument("--events", type=int, default=1_000_000)
        parser.add_argument(
            "--steps", type=int, default=0, help="finished steps per run (the metrics read them)"
        )
        parser.add_argument("--batch", type=int, default=1000, help="runs per transaction")
        parser.add_argument("--seed", type=int, default=7, help="random seed")

    def handle(self, *args: Any, **options: Any) -> None:
        runs, events = options["runs"], options["events"]
        if runs < 1:
            raise CommandError("--runs: give at least 1")
        if events < runs:
            raise CommandError("--events: give at least one event per run")
        if options["steps"] < 0:
            raise CommandError("--steps: give 0 or more")
        if options["batch"] < 1:
            raise CommandError("--batch: give at least 1")
        started = time.perf_counter()
        seeder = Seeder(
            runs=runs,
            events=events,
            steps_per_run=options["steps"],
            batch=options["batch"],
            seed=options["seed"],
            progress=lambda msg: self.stderr.write(f"  {msg}", ending="\r"),
        )
        report = seeder.run()
        self.stderr.write("")
        self.stdout.write(
            self.style.SUCCESS(
                f"seeded {report.runs} runs, {report.events} events, {report.steps} steps, "
                f"{report.pending_requests} pending and {report.decided_requests} decided "
                f"requests in {time.perf_counter() - started:.1f} s; runs with many events: "
                f"{', '.join(map(str, report.long_run_ids)) or 'none'}"
            )
        )
