"""Login throttling: django-axes in front of Django's model backend."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend


class LoginThrottleBackend(AxesStandaloneBackend):
    """Refuse logins from a locked-out user name or address (django-axes).

    Only logins that come with a request (every login page) are throttled:
    a call to ``authenticate()`` without one (management commands, the
    test client's ``login()``) is no attempt from the network, and axes
    would raise on it instead of letting the next backend decide.
    """

    def authenticate(
        self, request: Any, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any:
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
