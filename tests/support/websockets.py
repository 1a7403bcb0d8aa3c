"""Websocket helpers: a Channels test client signed in as a user."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from agentos_site.asgi import application


def cookie_for(user) -> list[tuple[bytes, bytes]]:  # type: ignore[no-untyped-def]
    """Return the headers of a browser logged in as user (None: anonymous)."""
    headers = [(b"origin", b"http://127.0.0.1")]
    if user is not None:
        client = Client()
        client.force_login(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return headers


async def connect(path: str, user) -> tuple[WebsocketCommunicator, bool, object]:  # type: ignore[no-untyped-def]
    headers = await database_sync_to_async(cookie_for)(user)
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code
