"""HTTP actions at validation: origins (scheme, host, port) and bound secrets.

The same checks run again in the action's process (tests/executors/test_api.py),
where the host's addresses are resolved and checked too.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from agentos_site.env import allowed_origins, origin_of
from workflows import actions
from workflows.plans import validate_plan


def errors_of(*nodes: dict) -> list[tuple[str, str, str]]:
    found = validate_plan({"nodes": list(nodes)}, registry=actions.registry(),
                          policy=actions.policy())
    return [(e.node, e.field, e.message) for e in found]


def request(url: str, **params: object) -> dict:
    return {"id": "n", "action": "api.request", "params": {"url": url, **params}}


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379/", "http://127.0.0.1:5432/",
                                 "https://127.0.0.1:8000/", "http://localhost:6379/"])
def test_other_ports_and_schemes_of_an_allowed_host_are_refused(url: str) -> None:
    [(node, field, message)] = errors_of(request(url))
    assert (node, field) == ("n", "params.url")
    assert "is not on AGENTOS_API_ALLOWED_HOSTS: that host is allowed only at" in message


def test_allowed_origins_pass_and_suites_are_checked_per_request() -> None:
    assert errors_of(request("http://127.0.0.1:8000/api/v1/health"),
                     {**request("http://127.0.0.1/x"), "id": "m"}) == []
    suite = {"id": "s", "action": "api.suite", "params": {"requests": [
        {"url": "http://127.0.0.1:8000/"}, {"url": "http://127.0.0.1:6379/"}]}}
    assert [(f, "6379" in m) for _, f, m in errors_of(suite)] == [("params.requests.1.url", True)]


def test_a_secret_named_for_a_host_it_is_not_bound_to_is_refused() -> None:
    # tests/settings.py binds API_TEST_TOKEN to http://127.0.0.1 only.
    assert errors_of(request("http://127.0.0.1/", bearer_secret="API_TEST_TOKEN")) == []
    [(_, field, message)] = errors_of(request("http://127.0.0.1:8000/",
                                              bearer_secret="API_TEST_TOKEN"))
    assert field == "params.bearer_secret"
    assert message == ("secret 'API_TEST_TOKEN' may not be sent to http://127.0.0.1:8000: it "
                       "is bound to http://127.0.0.1:80 (AGENTOS_SECRET_HOSTS_API_TEST_TOKEN)")
    suite = {"id": "s", "action": "api.suite", "params": {"requests": [
        {"url": "http://127.0.0.1:8000/", "secret_headers": {"X-Key": "API_TEST_TOKEN"}}]}}
    assert [f for _, f, _ in errors_of(suite)] == ["params.requests.0.secret_headers.X-Key"]
    with override_settings(AGENTOS_SECRET_HOSTS={}):
        [(_, field, message)] = errors_of(request("http://127.0.0.1/",
                                                  bearer_secret="API_TEST_TOKEN"))
        assert field == "params.bearer_secret" and "it is bound to no host" in message


def test_allow_list_settings_are_checked_at_start_up(monkeypatch) -> None:
    monkeypatch.setenv("AGENTOS_X_HOSTS", "http://ok.example.com:8443, api.example.com")
    assert allowed_origins("AGENTOS_X_HOSTS", []) == ["http://ok.example.com:8443",
                                                     "api.example.com"]
    monkeypatch.setenv("AGENTOS_X_HOSTS", "http://x/path")
    with pytest.raises(ImproperlyConfigured, match="AGENTOS_X_HOSTS"):
        allowed_origins("AGENTOS_X_HOSTS", [])
    assert origin_of("http://127.0.0.1:8000/portal/") == "http://127.0.0.1:8000"
    assert origin_of("https://portal.example.com") == "https://portal.example.com:443"
