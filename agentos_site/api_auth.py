"""API authentication: Bearer tokens (rate-limited) or the browser's session."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from ninja.security import HttpBearer, django_auth

from agentos_site.api_errors import RateLimited

WINDOW_S = 60


class BearerToken(HttpBearer):
    """`Authorization: Bearer agt_…`: the token's user, within the rate limit."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        from accounts.services import token_authenticate

        user = token_authenticate(token)
        if user is None:
            return None
        check_rate(user.api_token_id)
        request.user = user
        return user


def check_rate(token_id: int) -> None:
    """Count a request of a token in a fixed window; RateLimited when over the limit."""
    limit = int(settings.AGENTOS_API_RATE_LIMIT)
    if limit <= 0:
        return
    now = time.time()
    window = int(now // WINDOW_S)
    key = f"agentos:api-rate:{token_id}:{window}"
    cache.add(key, 0, timeout=WINDOW_S * 2)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=WINDOW_S * 2)
        count = 1
    if count > limit:
        raise RateLimited(retry_after=max(1, int((window + 1) * WINDOW_S - now) + 1))


AUTH = [BearerToken(), django_auth]
