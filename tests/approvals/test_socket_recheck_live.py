"""A real daphne closes the socket of a user deactivated while watching a run."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from approvals.consumers import FORBIDDEN


@pytest.fixture
def quick_recheck(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Daphne re-checks open sockets often (it reads the variable at start)."""
    monkeypatch.setenv("AGENTOS_WS_RECHECK_S", "0.5")


def test_daphne_disconnects_a_user_deactivated_mid_feed(
    quick_recheck, daphne, gated_run, reviewer
) -> None:
    run = gated_run()
    browser = Client()
    browser.force_login(reviewer)
    headers = {"Cookie": f"sessionid={browser.cookies['sessionid'].value}", "Origin": daphne.url}
    url = f"ws://127.0.0.1:{daphne.port}/ws/runs/{run.pk}/"
    with connect(url, additional_headers=headers, open_timeout=10) as socket:
        while json.loads(socket.recv(timeout=10))["type"] != "caught_up":
            pass
        # Deactivated here, in another process: daphne's periodic re-check
        # (or, with Redis, the user.changed message) must notice.
        reviewer.is_active = False
        reviewer.save(update_fields=["is_active"])
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                socket.recv(timeout=30)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == FORBIDDEN
