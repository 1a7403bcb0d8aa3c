"""What a fault test does in a database other than the test database.

The PostgreSQL restart test runs its own server, so it works there through
`manage.py shell -c "from tests.support.probe import ...; ..."` processes
whose DATABASE_URL points at it; each function prints one JSON line.
"""

from __future__ import annotations

import json
from pathlib import Path


def create(count: int, ledger: str, pause_s: float, max_attempts: int) -> None:
    """Create an operator and `count` ledger runs; print their ids."""
    from django.contrib.auth import get_user_model

    from agentos_site.roles import ensure_roles
    from tests.support.scale import start_ledger_runs

    roles = ensure_roles()
    operator, _ = get_user_model().objects.get_or_create(
        username="operator", defaults={"is_staff": True}
    )
    operator.groups.add(roles["Operators"])
    print(
        json.dumps(
            start_ledger_runs(
                count,
                requester=operator,
                ledger=ledger,
                pause_s=pause_s,
                max_attempts=max_attempts,
            )
        )
    )


def finished(ids_file: str) -> None:
    """Print how many of the runs have ended."""
    from tests.support.scale import finished as count

    print(json.dumps(count(json.loads(Path(ids_file).read_text()))))


def fire() -> None:
    """Make the re-queue schedule due and let django-q2's scheduler queue it."""
    from tests.support.scale import fire_requeue_schedule

    fire_requeue_schedule()
    print(json.dumps(True))


def audit(ids_file: str, ledger: str) -> None:
    """Print `audit_runs` for the runs."""
    from tests.support.scale import audit_runs

    print(json.dumps(audit_runs(json.loads(Path(ids_file).read_text()), ledger)))
