"""Seeded data kept between benchmark runs: seed once, measure many times.

Seeding 100,000 runs and 1,000,000 events takes minutes (and far more on a
loaded machine), the measurement itself well under one. With `--data DIR`
(SQLite: DIR/agentos.sqlite3) or `--pg-database NAME`, `bench_scale.py` and
`bench_metrics.py` keep their database and share it. A marker table inside
that database (`bench_seed_marker`) records what was seeded: the seed
parameters and DATA_VERSION. A later run reuses the data when they match
and seeds again (from an empty database) when they do not:

- the same parameters and every applied migration known to this code:
  reused; migrations added since (another branch merged) are applied
  forward, as on a live installation, and the statistics refreshed;
- other parameters, another DATA_VERSION, or a migration applied that this
  code does not have (the database came from another branch): seeded again.

The marker lives in the database itself, so a database and its marker
cannot drift apart (a deleted file or a dropped database has no marker).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader

from bench.seeding import Seeder

# Bump when bench/seeding.py writes different data for the same parameters.
DATA_VERSION = 2
SEED = 7
MARKER_TABLE = "bench_seed_marker"


def wanted(*, runs: int, events: int, steps_per_run: int) -> dict[str, int]:
    """Return the marker's parameters for this seed."""
    return {
        "data_version": DATA_VERSION,
        "runs": runs,
        "events": events,
        "steps_per_run": steps_per_run,
        "seed": SEED,
    }


def read_marker() -> dict[str, Any] | None:
    """Return what the marker says was seeded, or None (no marker: never seeded here)."""
    if MARKER_TABLE not in connection.introspection.table_names():
        return None
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT params, migrations, seeded_at, seconds FROM {MARKER_TABLE}")
        row = cursor.fetchone()
    if row is None:
        return None
    params, migrations, seeded_at, seconds = row
    return {
        "params": json.loads(params),
        "migrations": json.loads(migrations),
        "seeded_at": seeded_at,
        "seconds": seconds,
    }


def _applied() -> list[str]:
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    return sorted(f"{app}.{name}" for app, name in loader.applied_migrations)


def write_marker(params: dict[str, int], seconds: float) -> None:
    """Record that the database now holds `params`' data (replacing any marker)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (id integer PRIMARY KEY, "
            "params text NOT NULL, migrations text NOT NULL, seeded_at text NOT NULL, "
            "seconds real NOT NULL)"
        )
        cursor.execute(f"DELETE FROM {MARKER_TABLE}")
        cursor.execute(
            f"INSERT INTO {MARKER_TABLE} VALUES (1, %s, %s, %s, %s)",
            [
                json.dumps(params, sort_keys=True),
                json.dumps(_applied()),
                datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                seconds,
            ],
        )


def _update_marker_migrations() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {MARKER_TABLE} SET migrations = %s", [json.dumps(_applied())])


def unknown_migrations() -> list[str]:
    """Return the migrations applied to this database that this code does not have."""
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    return sorted(
        f"{app}.{name}"
        for app, name in loader.applied_migrations
        if (app, name) not in loader.disk_migrations
    )


def pending_migrations() -> list[str]:
    """Return the migrations of this code not yet applied to this database."""
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{m.app_label}.{m.name}" for m, _backwards in plan]


def reseed_reason(
    marker: dict[str, Any] | None, params: dict[str, int], unknown: list[str]
) -> str:
    """Return why the kept data cannot serve `params` ("" when it can)."""
    if marker is None:
        return "no marker: nothing kept here yet"
    if unknown:
        return f"migrations this code does not have: {', '.join(unknown)}"
    if marker["params"] != params:
        return f"seeded with {marker['params']}"
    return ""


def wipe() -> None:
    """Empty this process's database: the SQLite file goes, PostgreSQL's schema is dropped."""
    if connection.vendor == "sqlite":
        name = Path(connection.settings_dict["NAME"])
        connection.close()
        for path in (name, Path(f"{name}-wal"), Path(f"{name}-shm")):
            path.unlink(missing_ok=True)
        return
    with connection.cursor() as cursor:
        cursor.execute("DROP SCHEMA public CASCADE")
        cursor.execute("CREATE SCHEMA public")


def refresh_statistics() -> None:
    """Give the planner statistics, as a database in use has them.

    Freshly bulk-loaded tables have none, and PostgreSQL then scans whole
    tables instead of the indexes; VACUUM also sets the visibility map that
    index-only scans need (autovacuum does both on a live installation).
    """
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")


def _migrate() -> None:
    call_command("migrate", database=DEFAULT_DB_ALIAS, verbosity=0)


def prepare(
    *,
    runs: int,
    events: int,
    steps_per_run: int,
    keep: bool,
    say: Callable[[str], None] = print,
) -> None:
    """Make this process's database hold the seeded data: reuse it when kept and matching."""
    started = time.perf_counter()
    params = wanted(runs=runs, events=events, steps_per_run=steps_per_run)
    if keep:
        marker = read_marker()
        why = reseed_reason(marker, params, unknown_migrations() if marker else [])
        if marker and not why:
            pending = pending_migrations()
            if pending:
                _migrate()
                refresh_statistics()
                _update_marker_migrations()
            say(
                f"  reusing the data seeded {marker['seeded_at']} (in {marker['seconds']:.0f} s)"
                f"{f'; applied {len(pending)} new migrations' if pending else ''}: "
                f"{time.perf_counter() - started:.1f} s"
            )
            return
        say(f"  seeding afresh ({why})")
        wipe()
    _migrate()
    report = Seeder(runs=runs, events=events, steps_per_run=steps_per_run, seed=SEED).run()
    refresh_statistics()
    seconds = time.perf_counter() - started
    if keep:
        write_marker(params, seconds)
    say(
        f"  migrate + seed ({report.runs} runs, {report.events} events, "
        f"{report.steps} steps): {seconds:.1f} s"
    )
