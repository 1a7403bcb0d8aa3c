"""The audit trail: logins, group changes, exports for a time range."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.api.conftest import api_for
from workflows.events import event_hash, system_event_append
from workflows.models import Event

pytestmark = pytest.mark.django_db


def test_logins_and_failed_logins_are_events(operator, client) -> None:
    assert client.login(username="operator", password="pw")
    assert not client.login(username="operator", password="wrong-password")
    login = Event.objects.get(type="auth.login")
    failed = Event.objects.get(type="auth.login_failed")
    assert login.actor_label == "operator" and failed.data["user"] == "operator"
    assert "wrong-password" not in json.dumps(failed.data)


def test_group_membership_changes_are_events(roles, operator) -> None:
    operator.groups.add(roles["Auditors"])
    roles["Reviewers"].user_set.add(operator)
    operator.groups.remove(roles["Auditors"])
    operator.groups.clear()
    changes = [
        (e.type, e.data["groups"])
        for e in Event.objects.filter(type__startswith="group.").order_by("id")
    ]
    assert changes[-4:] == [
        ("group.member_added", ["Auditors"]),
        ("group.member_added", ["Reviewers"]),
        ("group.member_removed", ["Auditors"]),
        ("group.member_removed", ["Operators", "Reviewers"]),
    ]


def test_export_for_a_time_range_in_jsonl_and_csv(auditor) -> None:
    before = system_event_append(type="test.before")
    start = timezone.now()
    inside = [system_event_append(type="test.inside", data={"n": n}) for n in range(3)]
    end = timezone.now() + timedelta(microseconds=1)
    api = api_for(auditor)
    query = f"since={start.isoformat()}&until={end.isoformat()}".replace("+", "%2B")

    lines = b"".join(api.get(f"/audit/export?format=jsonl&{query}").streaming_content)
    records = [json.loads(line) for line in lines.decode().splitlines()]
    assert [r["id"] for r in records if r["type"].startswith("test.")] == [e.pk for e in inside]
    assert before.pk not in [r["id"] for r in records]
    first = records[0]
    assert first["hash"] == event_hash(
        run_id=None,
        seq=first["seq"],
        type=first["type"],
        actor_label=first["actor"],
        data=first["data"],
        at=inside[0].at,
        correlation_id="",
        prev_hash=first["prev_hash"],
    )

    text = b"".join(api.get(f"/audit/export?format=csv&{query}").streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["id"]) for r in rows if r["type"] == "test.inside"] == [e.pk for e in inside]
    assert json.loads(rows[0]["data"]) == {"n": 0}

    page = api.get(f"/audit?after={before.pk}&limit=2").json()
    assert page["items"][0]["id"] > before.pk and len(page["items"]) == 2


def test_the_admin_exports_for_auditors_only(auditor, operator, client) -> None:
    system_event_append(type="test.note")
    client.force_login(auditor)
    response = client.get("/admin/workflows/event/export/", {"format": "csv"})
    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    assert "test.note" in b"".join(response.streaming_content).decode()
    client.force_login(operator)
    assert client.get("/admin/workflows/event/export/", {"format": "csv"}).status_code == 403


def test_the_api_offers_no_way_to_change_an_event(superuser) -> None:
    from agentos_site.api import api

    paths = api.get_openapi_schema()["paths"]
    for path, item in paths.items():
        if "event" in path or "audit" in path:
            assert set(item) == {"get"}, path


def test_an_api_export_is_recorded_like_an_admin_export(auditor) -> None:
    """GET /audit/export is an event of the system chain, with what was asked for."""
    api = api_for(auditor)
    response = api.get("/audit/export?format=csv&after=0&since=2026-01-01T00:00:00Z")
    assert response.status_code == 200
    exported = Event.objects.get(type="audit.exported")
    assert exported.run_id is None and exported.actor_label == "auditor"
    assert exported.data["format"] == "csv" and exported.data["since"].startswith("2026-01-01")
    assert exported.data["until"] is None


def test_exports_carry_the_key_id_that_signed_each_event(auditor) -> None:
    from workflows.audit_keys import audit_keys

    system_event_append(type="test.note")
    lines = b"".join(api_for(auditor).get("/audit/export").streaming_content)
    records = [json.loads(line) for line in lines.decode().splitlines()]
    assert records and {r["key_id"] for r in records} == {audit_keys().current}
