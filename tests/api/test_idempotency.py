"""Idempotency-Key under concurrent POSTs against a real HTTP server."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from accounts.services import token_create
from tests.api.conftest import PEOPLE_SPEC
from workflows.models import Event, Run
from workflows.services import workflow_create

CONCURRENT = 8


def _post(url: str, token: str, key: str) -> tuple[int, int]:
    body = json.dumps({"workflow": "people", "context": {"name": "Ada"}}).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Idempotency-Key": key,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())["id"]
    except urllib.error.HTTPError as exc:
        return exc.code, -1


@pytest.mark.django_db(transaction=True)
def test_concurrent_posts_with_one_key_start_exactly_one_run(live_server, operator) -> None:
    workflow_create(raw_spec=PEOPLE_SPEC, actor=operator)
    token = token_create(user=operator, name="ci").plain
    url = f"{live_server.url}/api/v1/runs"

    for key in ("first-key", "second-key"):
        with ThreadPoolExecutor(CONCURRENT) as pool:
            results = list(pool.map(lambda _, key=key: _post(url, token, key), range(CONCURRENT)))

        statuses = sorted(status for status, _ in results)
        assert statuses == [200] * (CONCURRENT - 1) + [201], results
        assert len({run_id for _, run_id in results}) == 1
        assert Run.objects.filter(idempotency_key=key).count() == 1

    assert Event.objects.filter(type="run.created").count() == 2
