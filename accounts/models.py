"""API tokens: hashed, expirable, revocable secrets that act as their user."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiToken(models.Model):
    """A bearer token of one user; only its SHA-256 is stored.

    The plain token is shown once when it is created. `prefix` (its first
    characters) lets people tell their tokens apart without revealing them.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, help_text="What the token is for.")
    prefix = models.CharField(max_length=12, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"
        permissions = [("revoke_apitoken", "Can revoke API tokens")]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user}: {self.name})"

    @property
    def is_active(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class LoginFailureWindow(models.Model):
    """Failed logins from one address in the current audit window.

    The first failure of a window is an audit event; later ones only count
    here and are summarised in one event when the window closes, so a
    flood of failures cannot flood the hash-chained log (see
    accounts.login_audit). Throttling itself is django-axes'.
    """

    address = models.CharField(max_length=64, unique=True)
    started_at = models.DateTimeField()
    last_at = models.DateTimeField()
    failures = models.PositiveIntegerField(default=0)
    users = models.JSONField(default=list)
    locked_logged = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{self.address}: {self.failures} since {self.started_at:%Y-%m-%d %H:%M:%S}"
