"""Tamper with the event log behind the ORM's back, and read what verify_events says."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from workflows.models import Event, Run

TABLE = Event._meta.db_table


def sql(statement: str, *params: object) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def verify() -> str:
    with pytest.raises(CommandError) as caught:
        call_command("verify_events")
    return str(caught.value)


def event(run: Run | None, seq: int) -> Event:
    return Event.objects.get(run=run, seq=seq)
