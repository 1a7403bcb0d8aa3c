"""What the benchmarks share: configurations, percentiles, printing, the machine.

A configuration is a set of environment variables for a throwaway
installation: `embedded` (SQLite in a temporary var/, django-q2's ORM broker,
the in-memory channel layer) or `scaled` (a database of its own on the
PostgreSQL server at 127.0.0.1:5432, Redis at 127.0.0.1:6379 for the broker
and the channel layer, under a queue name and channel prefix of its own, so
benchmarks and test suites running at the same time never share work).
"""

from __future__ import annotations

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


def seeded_child(
    script: str,
    child_args: list[str],
    *,
    label: str,
    database_url: str | None,
    runs: int,
    events: int,
    env: dict[str, str],
) -> int:
    """Run `script --child` on a throwaway installation (bench.settings) that seeds at scale.

    The child migrates and seeds `runs` runs with `events` events (BENCH_RUNS,
    BENCH_EVENTS) in a var/ of its own, on SQLite or on `database_url`; `env`
    adds what the benchmark needs. The var/ is removed afterwards.
    """
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
        "BENCH_RUNS": str(runs),
        "BENCH_EVENTS": str(events),
        **env,
    }
    child_env.pop("REDIS_URL", None)
    child_env.pop("DATABASE_URL", None)
    if database_url:
        child_env["DATABASE_URL"] = database_url
    print(f"{label}: {runs} runs, {events} events", flush=True)
    try:
        return subprocess.call(
            [sys.executable, script, "--child", *child_args], env=child_env, cwd=ROOT
        )
    finally:
        subprocess.call(["rm", "-rf", str(var)])


def on_each_database(
    run: Callable[[str, str | None], int], *, name: str, sqlite_only: bool = False
) -> int:
    """Call `run(label, database_url)` for SQLite, then for PostgreSQL when DATABASE_URL names one.

    PostgreSQL gets a database of its own (`name` and this process's id),
    created before and dropped after. Return the children's statuses or'ed.
    """
    status = run("SQLite (embedded default)", None)
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")) and not sqlite_only:
        database = f"{name}_{os.getpid()}"
        try:
            status |= run("PostgreSQL", postgres_database(url, database, True))
        finally:
            postgres_database(url, database, False)
    else:
        print("PostgreSQL: skipped (set DATABASE_URL=postgres://... to measure it)")
    return status
