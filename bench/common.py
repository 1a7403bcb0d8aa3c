"""What the benchmarks share: configurations, percentiles, printing, the machine.

A configuration is a set of environment variables for a throwaway
installation: `embedded` (SQLite in a temporary var/, django-q2's ORM broker,
the in-memory channel layer) or `scaled` (a database of its own on the
PostgreSQL server at 127.0.0.1:5432, Redis at 127.0.0.1:6379 for the broker
and the channel layer, under a queue name and channel prefix of its own, so
benchmarks and test suites running at the same time never share work).
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = "postgres://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/0"


def pct(values: list[float], q: float) -> float:
    """Return the nearest-rank `q` quantile (0..1) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def line(label: str, values: list[float], unit: str = "ms") -> str:
    """Return one figure: median and p95 of `values` with the sample size."""
    return (
        f"{label:<52} median {statistics.median(values):8.2f} {unit}   "
        f"p95 {pct(values, 0.95):8.2f} {unit}   (n={len(values)})"
    )


def show(label: str, values: list[float], unit: str = "ms") -> None:
    print(line(label, values, unit), flush=True)


def listening(port: int) -> bool:
    """Return whether something accepts connections on 127.0.0.1:`port`."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def configure(config: str = "embedded") -> None:
    """Point this process at a throwaway installation before django.setup().

    `embedded` ignores any DATABASE_URL/REDIS_URL; `scaled` expects
    run_all (or the caller) to have set DATABASE_URL, REDIS_URL and the
    isolation names (see `scaled_env`).
    """
    var = Path(tempfile.mkdtemp(prefix=f"agentos-bench-{config}-"))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "AGENTOS_VAR_DIR": str(var),
            "AGENTOS_FILES_ROOTS": str(var / "workspace"),
            "DJANGO_SECRET_KEY": "bench-only",
            "AGENTOS_LOG_LEVEL": "WARNING",
            "AGENTOS_API_RATE_LIMIT": "0",
        }
    )
    if config == "embedded":
        os.environ.pop("DATABASE_URL", None)
        os.environ.pop("REDIS_URL", None)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    pythonpath = os.environ.get("PYTHONPATH", "")
    if str(ROOT) not in pythonpath.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), pythonpath) if p)


def scaled_unavailable() -> str:
    """Return why the `scaled` configuration cannot run here ("" when it can)."""
    import importlib.util

    missing = [
        m for m in ("psycopg", "redis", "channels_redis") if importlib.util.find_spec(m) is None
    ]
    if missing:
        return f"{', '.join(missing)} not installed in this environment"
    if not (listening(5432) and listening(6379)):
        return "PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) must both listen"
    return ""


@contextmanager
def scaled_env() -> Iterator[dict[str, str] | None]:
    """Yield the environment of the `scaled` configuration, or None when unavailable.

    Creates a PostgreSQL database of its own and drops it afterwards.
    """
    if scaled_unavailable():
        yield None
        return
    import psycopg

    tag = uuid.uuid4().hex[:10]
    name = f"agentos_bench_{tag}"
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {
            "DATABASE_URL": f"{PG_SERVER}/{name}",
            "REDIS_URL": REDIS_URL,
            "AGENTOS_CHANNEL_PREFIX": f"agentos-bench-{tag}",
            "AGENTOS_BENCH_QUEUE": f"agentos-bench-{tag}",
        }
    finally:
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _version(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "not installed"


def machine() -> dict[str, str]:
    """Return what the figures depend on: cores, memory, load, versions, date."""
    import sqlite3

    memory = "?"
    try:
        kib = int(
            next(
                line
                for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")
            ).split()[1]
        )
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    try:
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{os.cpu_count()} cores ({platform.machine()})",
        "memory": memory,
        "load average (1/5/15 min)": load,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "postgresql": _version(["psql", "--version"]),
        "redis": _version(["redis-server", "--version"]),
    }


def postgres_database(url: str, name: str, create: bool) -> str:
    """Create or drop database `name` on the server of `url`; return its URL."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    parts = urlsplit(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


def add_seed_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the seed's size and where to keep it (bench_scale and bench_metrics share them)."""
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=3, help="finished steps per run")
    parser.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="keep the SQLite data in DIR and reuse it when it matches (bench/kept.py)",
    )
    parser.add_argument(
        "--pg-database",
        metavar="NAME",
        help="keep the PostgreSQL data in database NAME (created when missing) and reuse it",
    )
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--sqlite-only", action="store_true")
    only.add_argument("--postgres-only", action="store_true")


def seeded_child(
    script: str,
    child_args: list[str],
    *,
    label: str,
    database_url: str | None,
    args: argparse.Namespace,
    env: dict[str, str],
) -> int:
    """Run `script --child` on an installation (bench.settings) seeded at scale.

    The child prepares (bench.kept.prepare) `args.runs` runs with
    `args.events` events and `args.steps` steps per run (BENCH_RUNS,
    BENCH_EVENTS, BENCH_STEPS), on SQLite or on `database_url`; `env` adds
    what the benchmark needs. Without `args.data` the var/ is a throwaway,
    removed afterwards; with it, the var/ is that folder, kept, and the
    child reuses the data in it when it matches (BENCH_KEEP). A PostgreSQL
    database is kept when `args.pg_database` names it.
    """
    kept_sqlite = database_url is None and args.data is not None
    keep = kept_sqlite or (database_url is not None and args.pg_database is not None)
    if kept_sqlite:
        var = args.data.resolve()
        var.mkdir(parents=True, exist_ok=True)
    else:
        var = Path(
            tempfile.mkdtemp(prefix=f"agentos-bench-{Path(script).stem.removeprefix('bench_')}-")
        )
    child_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "AGENTOS_VAR_DIR": str(var),
        "AGENTOS_FILES_ROOTS": str(var / "workspace"),
        "DJANGO_SECRET_KEY": "bench-only",
        "AGENTOS_AUDIT_KEY": "bench-only-audit-key-0123456789abcdef",
        "DJANGO_DEBUG": "0",
        "DJANGO_ALLOWED_HOSTS": "testserver",
        "BENCH_RUNS": str(args.runs),
        "BENCH_EVENTS": str(args.events),
        "BENCH_STEPS": str(args.steps),
        "BENCH_KEEP": "1" if keep else "0",
        **env,
    }
    child_env.pop("REDIS_URL", None)
    child_env.pop("DATABASE_URL", None)
    if database_url:
        child_env["DATABASE_URL"] = database_url
    where = f" (kept in {var if kept_sqlite else args.pg_database})" if keep else ""
    print(
        f"{label}: {args.runs} runs, {args.events} events, {args.steps} steps per run{where}",
        flush=True,
    )
    try:
        return subprocess.call(
            [sys.executable, script, "--child", *child_args], env=child_env, cwd=ROOT
        )
    finally:
        if not kept_sqlite:
            subprocess.call(["rm", "-rf", str(var)])


def prepare_seeded() -> None:
    """In the child: make its database hold the seeded data the parent asked for."""
    from bench.kept import prepare

    prepare(
        runs=int(os.environ["BENCH_RUNS"]),
        events=int(os.environ["BENCH_EVENTS"]),
        steps_per_run=int(os.environ["BENCH_STEPS"]),
        keep=os.environ.get("BENCH_KEEP") == "1",
        say=lambda msg: print(msg, flush=True),
    )


def kept_postgres_database(url: str, name: str) -> str:
    """Create database `name` on the server of `url` unless it exists; return its URL."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not found:
            conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def on_each_database(
    run: Callable[[str, str | None], int],
    *,
    name: str,
    sqlite_only: bool = False,
    postgres_only: bool = False,
    pg_database: str | None = None,
) -> int:
    """Call `run(label, database_url)` for SQLite, then for PostgreSQL when DATABASE_URL names one.

    PostgreSQL gets a database of its own (`name` and this process's id),
    created before and dropped after; or, with `pg_database`, that database,
    created when missing and kept. Return the children's statuses or'ed.
    """
    status = 0 if postgres_only else run("SQLite (embedded default)", None)
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")) and not sqlite_only:
        if pg_database:
            return status | run("PostgreSQL", kept_postgres_database(url, pg_database))
        database = f"{name}_{os.getpid()}"
        try:
            status |= run("PostgreSQL", postgres_database(url, database, True))
        finally:
            postgres_database(url, database, False)
    else:
        print("PostgreSQL: skipped (set DATABASE_URL=postgres://... to measure it)")
    return status
