"""The event log in the admin: nobody adds, changes or deletes an event, not even a superuser."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.admin.support import client_for
from workflows.events import verify_all
from workflows.models import Event

pytestmark = pytest.mark.django_db

LIST_URL = reverse("admin:workflows_event_changelist")
ADD_URL = reverse("admin:workflows_event_add")
EVERYONE = ["superuser", "operator", "auditor", "reviewer"]


def snapshot(event: Event) -> tuple:
    return tuple(
        Event.objects.filter(pk=event.pk)
        .values_list("run_id", "seq", "type", "actor_label", "data", "at", "prev_hash", "hash")
        .get()
    )


@pytest.mark.parametrize("who", EVERYONE)
def test_nobody_can_add_change_or_delete_an_event(request, who, waiting_run) -> None:
    client = client_for(request.getfixturevalue(who))
    event = Event.objects.filter(run=waiting_run).order_by("seq").first()
    before = snapshot(event)
    count = Event.objects.count()
    change = reverse("admin:workflows_event_change", args=[event.pk])
    delete = reverse("admin:workflows_event_delete", args=[event.pk])
    forged = {
        "run": waiting_run.pk,
        "seq": 99,
        "type": "run.succeeded",
        "actor_label": "x",
        "data": "{}",
        "at_0": "2024-01-01",
        "at_1": "00:00:00",
        "prev_hash": "0" * 64,
        "hash": "f" * 64,
    }

    assert client.get(ADD_URL).status_code == 403
    assert client.post(ADD_URL, forged).status_code == 403
    assert client.post(change, forged).status_code == 403
    assert client.get(delete).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403
    client.post(
        LIST_URL, {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"}
    )

    assert snapshot(event) == before
    assert Event.objects.count() == count
    assert verify_all() == []


@pytest.mark.parametrize("who", ["superuser", "auditor"])
def test_an_event_page_is_read_only(request, who, waiting_run) -> None:
    event = Event.objects.get(run=waiting_run, type="run.paused")
    page = client_for(request.getfixturevalue(who)).get(
        reverse("admin:workflows_event_change", args=[event.pk])
    )

    assert page.status_code == 200
    body = page.content.decode()
    assert event.hash in body and "run.paused" in body
    assert 'name="_save"' not in body and "deletelink" not in body


def test_the_event_list_filters_by_type_and_searches(
    auditor, waiting_run, django_assert_max_num_queries
) -> None:
    client = client_for(auditor)
    with django_assert_max_num_queries(10):
        everything = client.get(LIST_URL)
    assert everything.status_code == 200
    assert 'name="action"' not in everything.content.decode()  # no bulk actions at all

    paused = client.get(LIST_URL, {"type": "run.paused"})
    assert [e.type for e in paused.context["cl"].result_list] == ["run.paused"]

    by_run = client.get(LIST_URL, {"q": str(waiting_run.pk)})
    assert {e.run_id for e in by_run.context["cl"].result_list} == {waiting_run.pk}

    by_actor = client.get(LIST_URL, {"q": "operator"})
    assert {e.actor_label for e in by_actor.context["cl"].result_list} == {"operator"}


def test_an_event_is_found_by_its_hash_prefix(auditor, waiting_run) -> None:
    event = Event.objects.get(run=waiting_run, type="run.paused")
    found = client_for(auditor).get(LIST_URL, {"q": event.hash[:10]})
    assert list(found.context["cl"].result_list) == [event]


def test_the_run_page_links_to_its_events(auditor, waiting_run, input_run) -> None:
    listed = client_for(auditor).get(LIST_URL, {"run__id__exact": waiting_run.pk})
    assert listed.status_code == 200
    assert {e.run_id for e in listed.context["cl"].result_list} == {waiting_run.pk}
