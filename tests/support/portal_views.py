"""Test-only pages the browser tests need and a product must never serve.

Mounted by tests/urls.py (ROOT_URLCONF in tests/settings.py) under the
portals' prefix, so the product's own URLs have no trace of them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect

# Bounds the never-finishing page, should the browser never go away.
HANG_MAX_S = 60.0


def hang(request: HttpRequest) -> StreamingHttpResponse:
    """Start a page and never finish it (until the browser goes away)."""

    def trickle() -> Iterator[bytes]:
        yield b"<!doctype html><html><head><title>Loading</title></head><body>Loading"
        deadline = time.monotonic() + HANG_MAX_S
        while time.monotonic() < deadline:
            time.sleep(0.5)
            yield b" "  # a write to a browser that was killed ends this loop

    return StreamingHttpResponse(trickle(), content_type="text/html")


def go(request: HttpRequest) -> HttpResponse:
    """Redirect anywhere: lets tests lead a browser off the portal's origin."""
    return redirect(request.GET.get("to", "/"))
