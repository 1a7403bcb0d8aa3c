"""HTTP actions at validation: origins (scheme, host, port) and bound secrets.

The same checks run again in the action's process (tests/executors/test_api.py),
where the host's addresses are resolved and checked too.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import override_settings

from agentos_site.env import allowed_origins, origin_of
from workflows import executor_config
from workflows.engine import run_advance
from workflows.models import Run, Workflow
from workflows.plans import validate_plan
from workflows.services import run_create
from workflows.states import RunStatus


def errors_of(*nodes: dict) -> list[tuple[str, str, str]]:
    found = validate_plan(
        {"nodes": list(nodes)},
        registry=executor_config.registry(),
        policy=executor_config.policy(),
    )
    return [(e.node, e.field, e.message) for e in found]


def request(url: str, **params: object) -> dict:
    return {"id": "n", "action": "api.request", "params": {"url": url, **params}}


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:6379/",
        "http://127.0.0.1:5432/",
        "https://127.0.0.1:8000/",
        "http://localhost:6379/",
    ],
)
def test_other_ports_and_schemes_of_an_allowed_host_are_refused(url: str) -> None:
    [(node, field, message)] = errors_of(request(url))
    assert (node, field) == ("n", "params.url")
    assert "is not on AGENTOS_API_ALLOWED_HOSTS: that host is allowed only at" in message


def test_allowed_origins_pass_and_suites_are_checked_per_request() -> None:
    assert (
        errors_of(
            request("http://127.0.0.1:8000/api/v1/health"),
            {**request("http://127.0.0.1/x"), "id": "m"},
        )
        == []
    )
    suite = {
        "id": "s",
        "action": "api.suite",
        "params": {
            "requests": [{"url": "http://127.0.0.1:8000/"}, {"url": "http://127.0.0.1:6379/"}]
        },
    }
    assert [(f, "6379" in m) for _, f, m in errors_of(suite)] == [("params.requests.1.url", True)]


def test_a_secret_named_for_a_host_it_is_not_bound_to_is_refused() -> None:
    # tests/settings.py binds API_TEST_TOKEN to http://127.0.0.1 only.
    assert errors_of(request("http://127.0.0.1/", bearer_secret="API_TEST_TOKEN")) == []
    [(_, field, message)] = errors_of(
        request("http://127.0.0.1:8000/", bearer_secret="API_TEST_TOKEN")
    )
    assert field == "params.bearer_secret"
    assert message == (
        "secret 'API_TEST_TOKEN' may not be sent to http://127.0.0.1:8000: it "
        "is bound to http://127.0.0.1:80 (AGENTOS_SECRET_HOSTS_API_TEST_TOKEN)"
    )
    suite = {
        "id": "s",
        "action": "api.suite",
        "params": {
            "requests": [
                {"url": "http://127.0.0.1:8000/", "secret_headers": {"X-Key": "API_TEST_TOKEN"}}
            ]
        },
    }
    assert [f for _, f, _ in errors_of(suite)] == ["params.requests.0.secret_headers.X-Key"]
    with override_settings(AGENTOS_SECRET_HOSTS={}):
        [(_, field, message)] = errors_of(
            request("http://127.0.0.1/", bearer_secret="API_TEST_TOKEN")
        )
        assert field == "params.bearer_secret" and "it is bound to no host" in message


def test_allow_list_settings_are_checked_at_start_up(monkeypatch) -> None:
    monkeypatch.setenv("AGENTOS_X_HOSTS", "http://ok.example.com:8443, api.example.com")
    assert allowed_origins("AGENTOS_X_HOSTS", []) == [
        "http://ok.example.com:8443",
        "api.example.com",
    ]
    monkeypatch.setenv("AGENTOS_X_HOSTS", "http://x/path")
    with pytest.raises(ImproperlyConfigured, match="AGENTOS_X_HOSTS"):
        allowed_origins("AGENTOS_X_HOSTS", [])
    assert origin_of("http://127.0.0.1:8000/portal/") == "http://127.0.0.1:8000"
    assert origin_of("https://portal.example.com") == "https://portal.example.com:443"


class Site(BaseHTTPRequestHandler):
    """Stands in for this site on an ephemeral port: every page answers 200."""

    def do_GET(self) -> None:
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.django_db
def test_the_api_health_demo_runs_against_the_sites_own_origin(operator) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    site = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        # What start.sh does on another port: the site's origin is the
        # default allow-list, and seed_demo points the demo at it.
        with override_settings(
            AGENTOS_PORTAL_BASE_URL=site, AGENTOS_API_ALLOWED_HOSTS=[origin_of(site)]
        ):
            call_command("seed_demo", "--password", "pw", stdout=StringIO())
            workflow = Workflow.objects.get(slug="api-health")
            assert workflow.inputs_schema["properties"]["base_url"]["default"] == site
            run = run_create(workflow=workflow, requester=operator)
            run_advance(run_id=run.pk)
    finally:
        server.shutdown()
        server.server_close()
    run = Run.objects.get(pk=run.pk)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.context["passed"] == 2
