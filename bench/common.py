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
from collections.abc import Iterator
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
