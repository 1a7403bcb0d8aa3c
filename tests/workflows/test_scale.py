"""1,000 runs across three qcluster processes on PostgreSQL: each step exactly once."""

from __future__ import annotations

import time

import pytest

from tests.support.scale import ON_POSTGRES, audit_runs, finished, start_ledger_runs
from tests.support.waiting import wait_for

pytestmark = [
    pytest.mark.worker,
    pytest.mark.postgres,
    pytest.mark.skipif(
        not ON_POSTGRES,
        reason="runs in the PostgreSQL + Redis pass (AGENTOS_TEST_BACKENDS=postgres)",
    ),
]

RUNS, STEPS, CLUSTERS = 1000, 5, 3


def test_a_thousand_runs_on_three_clusters_run_every_step_exactly_once(
    cluster, operator, tmp_path, monkeypatch, record_property
) -> None:
    """No deadlock, no stuck run, no step twice: the ledger outside the database agrees."""
    monkeypatch.setenv("AGENTOS_WORKERS", "2")
    ledger = tmp_path / "ledger"
    clusters = [cluster() for _ in range(CLUSTERS)]
    began = time.monotonic()
    run_ids = start_ledger_runs(RUNS, requester=operator, ledger=ledger, steps=STEPS)
    created = time.monotonic() - began
    wait_for(
        lambda: finished(run_ids) == RUNS, timeout=900, every=1.0, message=f"{RUNS} runs to finish"
    )
    wall = time.monotonic() - began

    audit = audit_runs(run_ids, ledger, steps=STEPS)
    assert audit["problems"] == []
    assert audit["steps"] == audit["ledger_lines"] == RUNS * STEPS, "each step ran once"
    assert audit["retried_attempts"] == 0
    for c in clusters:
        log = c.output()
        assert "deadlock" not in log.lower(), log[-2000:]
        assert "Traceback" not in log, log[-4000:]
    figures = {
        "runs": RUNS,
        "steps": RUNS * STEPS,
        "wall_s": round(wall, 1),
        "create_s": round(created, 1),
        "steps_per_s": round(RUNS * STEPS / wall, 1),
    }
    record_property("figures", figures)
    print("scale figures:", figures)
