"""API tokens: shown once, stored hashed, expiry, revocation, last use, rate limit."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import ApiToken
from accounts.services import token_create, token_digest, token_revoke
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
    ApiToken.objects.filter(pk=new.token.pk).update(expires_at=timezone.now()
                                                     - timedelta(seconds=1))

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
    for forged in (new.plain[:-1] + ("A" if new.plain[-1] != "A" else "B"), "agt_",
                   "nonsense", "x" * 500):
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


def test_token_clients_are_rate_limited_with_retry_after(operator, settings) -> None:
    from django.core.cache import cache

    cache.clear()
    settings.AGENTOS_API_RATE_LIMIT = 3
    api = Api(token_create(user=operator, name="busy").plain)
    other = Api(token_create(user=operator, name="quiet").plain)

    codes = [api.get("/runs").status_code for _ in range(4)]

    assert codes == [200, 200, 200, 429]
    limited = api.get("/runs")
    assert limited.status_code == 429 and 1 <= int(limited["Retry-After"]) <= 61
    assert limited.json()["detail"].startswith("too many requests")
    assert other.get("/runs").status_code == 200  # counted per token
    cache.clear()
