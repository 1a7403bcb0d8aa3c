"""Daphne's requests cross into a thread once for the middleware, not at each one."""

from __future__ import annotations

import asgiref.sync
import pytest
from django.test import AsyncClient
from django.urls import reverse

from tests.admin.support import client_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_middleware_runs_in_one_thread_under_asgi(reviewer, monkeypatch) -> None:
    """Each sync_to_async is a hand-over between daphne's event loop and a thread.

    With one middleware that can only run synchronously (whitenoise) in the
    middle of the chain, Django ran those inside it in async mode: each of
    their process_request and process_response was its own hand-over (about
    a dozen per request, every one a wake-up of another thread on the
    path of the inbox's approve). The chain is synchronous throughout now.
    """
    cookie = client_for(reviewer).cookies["sessionid"].value
    hand_overs = []
    real = asgiref.sync.SyncToAsync.__call__

    async def counted(self: asgiref.sync.SyncToAsync, *args: object, **kwargs: object) -> object:
        hand_overs.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(asgiref.sync.SyncToAsync, "__call__", counted)
    client = AsyncClient()
    client.cookies["sessionid"] = cookie
    response = asgiref.sync.async_to_sync(client.get)(reverse("inbox:list"))
    assert response.status_code == 200
    # Django's own: request_started's receivers, the chain, CSRF's
    # process_view, the view, the response's close (request_finished).
    # Before: 15.
    assert len(hand_overs) <= 5, hand_overs
