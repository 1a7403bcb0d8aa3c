"""API tokens: shown once, stored hashed, expiry, revocation, last use, rate limit."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import ApiToken
from accounts.services import token_create, token_digest, token_revoke
from agentos_site.api_auth import WINDOW_S
from tests.api.conftest import Api
from workflows.models import Event

pytestmark = pytest.mark.django_db


def test_create_token_prints_it_once_and_stores_only_its_hash(operator) -> None:
    out = io.StringIO()
    call_command("create_token", "operator", "--expires-days", "7", stdout=out)
    plain = out.getvalue().strip()

    token = ApiToken.objects.get(user=operator)
    assert plain.startswith("agt_") and token.digest == token_digest(plain)
    assert plain not in str(list(ApiToken.objects.values()))
    assert timedelta(days=6, hours=23) < token.expires_at - timezone.now() <= timedelta(days=7)
    event = Event.objects.get(type="token.created")
    assert event.data["user"] == "operator" and plain not in str(event.data)
    assert Api(plain).get("/runs").status_code == 200


def test_create_token_refuses_an_unknown_user(db) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no user"):
        call_command("create_token", "ghost")


def test_an_expired_token_is_refused(operator) -> None:
    new = token_create(user=operator, name="short", expires_days=1)
    assert Api(new.plain).get("/runs").status_code == 200
    ApiToken.objects.filter(pk=new.token.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    response = Api(new.plain).get("/runs")
    assert response.status_code == 401
    assert response.json()["errors"][0]["field"] == "Authorization"


def test_a_revoked_token_is_refused_and_the_revocation_audited(operator, superuser) -> None:
    new = token_create(user=operator, name="ci")
    assert Api(new.plain).get("/runs").status_code == 200

    token_revoke(token_id=new.token.pk, actor=superuser)

    assert Api(new.plain).get("/runs").status_code == 401
    event = Event.objects.get(type="token.revoked")
    assert event.actor_label == "admin" and event.data["prefix"] == new.token.prefix


def test_a_forged_or_garbled_token_is_refused(operator) -> None:
    new = token_create(user=operator, name="ci")
    for forged in (
        new.plain[:-1] + ("A" if new.plain[-1] != "A" else "B"),
        "agt_",
        "nonsense",
        "x" * 500,
    ):
        assert Api(forged).get("/runs").status_code == 401, forged


def test_a_token_of_an_inactive_user_is_refused(operator) -> None:
    new = token_create(user=operator, name="ci")
    operator.is_active = False
    operator.save()
    assert Api(new.plain).get("/runs").status_code == 401


def test_last_used_is_recorded(operator) -> None:
    new = token_create(user=operator, name="ci")
    assert new.token.last_used_at is None
    Api(new.plain).get("/runs")
    new.token.refresh_from_db()
    assert new.token.last_used_at is not None
    assert timezone.now() - new.token.last_used_at < timedelta(seconds=30)


def _fresh_window(*tokens: Any) -> None:
    """Start in a rate window with 5 s left at least, with no counts for these tokens.

    Token ids come back after a rollback; deleting their keys (not clearing
    the cache, which on Redis would flush what other suites keep there)
    forgets what an earlier test counted.
    """
    from django.core.cache import cache

    if time.time() % WINDOW_S > WINDOW_S - 5:
        time.sleep(WINDOW_S - time.time() % WINDOW_S)
    window = int(time.time() // WINDOW_S)
    cache.delete_many([f"agentos:api-rate:{t.token.pk}:{window}" for t in tokens])


def test_token_clients_are_rate_limited_with_retry_after(operator, settings) -> None:
    settings.AGENTOS_API_RATE_LIMIT = 3
    busy, quiet = (token_create(user=operator, name=name) for name in ("busy", "quiet"))
    _fresh_window(busy, quiet)
    api, other = Api(busy.plain), Api(quiet.plain)

    codes = [api.get("/runs").status_code for _ in range(4)]

    assert codes == [200, 200, 200, 429]
    limited = api.get("/runs")
    assert limited.status_code == 429 and 1 <= int(limited["Retry-After"]) <= 61
    assert limited.json()["detail"].startswith("too many requests")
    assert other.get("/runs").status_code == 200  # counted per token


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="runs in the PostgreSQL + Redis pass")
def test_with_redis_every_web_process_counts_against_one_limit(operator, settings) -> None:
    """Requests counted by another process (another daphne) use up the same limit."""
    settings.AGENTOS_API_RATE_LIMIT = 3
    shared = token_create(user=operator, name="shared")
    _fresh_window(shared)
    code = (
        "import django; django.setup()\n"
        "from agentos_site.api_auth import check_rate\n"
        f"for _ in range(2): check_rate({shared.token.pk})\n"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        cwd=settings.BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
    )

    api = Api(shared.plain)
    assert [api.get("/runs").status_code for _ in range(2)] == [200, 429]
