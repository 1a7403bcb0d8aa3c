"""Create, revoke and authenticate API tokens; every change is an audit event."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import ApiToken
from workflows.events import system_event_append

TOKEN_PREFIX = "agt_"
# last_used_at is written at most this often per token, so a busy
# integration does not turn every read into a write.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def token_digest(plain: str) -> str:
    """Return the stored form of a token: its SHA-256 in hex."""
    return hashlib.sha256(plain.encode()).hexdigest()


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    plain: str


def token_create(
    *, user: Any, name: str, expires_days: int | None = None, actor: Any = None
) -> NewToken:
    """Create a token for `user`; the plain value exists only in the result."""
    if expires_days is not None and expires_days < 1:
        raise ValueError("expires_days must be at least 1")
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = timezone.now() + timedelta(days=expires_days) if expires_days else None
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name[:100],
            prefix=plain[:12],
            digest=token_digest(plain),
            expires_at=expires_at,
            created_by=actor,
        )
        system_event_append(
            type="token.created",
            actor=actor,
            data={
                "token": token.pk,
                "prefix": token.prefix,
                "user": user.get_username(),
                "name": token.name,
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
        )
    return NewToken(token=token, plain=plain)


def token_revoke(*, token_id: int, actor: Any) -> ApiToken:
    """Revoke a token; revoking twice changes nothing and logs nothing."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().select_related("user").get(pk=token_id)
        if token.revoked_at is not None:
            return token
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        system_event_append(
            type="token.revoked",
            actor=actor,
            data={
                "token": token.pk,
                "prefix": token.prefix,
                "user": token.user.get_username(),
                "name": token.name,
            },
        )
    return token


def token_authenticate(plain: str) -> Any | None:
    """Return the active user a presented token belongs to, or None."""
    if not plain.startswith(TOKEN_PREFIX) or len(plain) > 200:
        return None
    token = ApiToken.objects.select_related("user").filter(digest=token_digest(plain)).first()
    if token is None or not token.is_active or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    user = token.user
    user.api_token_id = token.pk
    return user
