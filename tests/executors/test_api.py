"""HTTP API actions against a real local HTTP server on a free port."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import ValidationError

from executors.actions.api import ApiRequest
from executors.actions.hosts import Origin, parse_origins
from executors.runner import Runner

from .conftest import MakeContext

SECRET = "api-bearer-value-7f3a"


class Server:
    """A tiny JSON API that records the requests it received."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _reply(self, status: int, body: object, headers: dict[str, str] | None = None):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                outer.seen.append((self.command, self.path, dict(self.headers), body))
                if self.path == "/api/v1/health":
                    self._reply(200, {"status": "ok", "checks": [{"name": "db", "ok": True}]})
                elif self.path == "/echo":
                    self._reply(
                        201,
                        {
                            "auth": self.headers.get("Authorization"),
                            "json": json.loads(body or b"null"),
                        },
                    )
                elif self.path == "/redirect":
                    self._reply(302, {}, {"Location": "http://evil.example.com/steal"})
                else:
                    self._reply(404, {"error": "not found"})

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> Server:
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    with Server() as running:
        yield running


@pytest.fixture
def api_ctx(make_ctx: MakeContext, server: Server) -> MakeContext:
    def make(**extra: object):  # type: ignore[no-untyped-def]
        # The server listens on an ephemeral port: allow exactly its origin.
        return make_ctx(**{"allowed_hosts": [server.url], **extra})

    return make


def artifact(tmp_path: Path, name: str) -> dict:
    return json.loads((tmp_path / "evidence" / name).read_text())


def test_request_checks_status_and_json_paths_and_saves_the_response(
    server: Server, api_ctx: MakeContext, runner: Runner, tmp_path: Path
) -> None:
    result = runner.run(
        "api.request",
        {
            "url": f"{server.url}/api/v1/health",
            "expect_status": 200,
            "name": "health",
            "assertions": [
                {"path": "$.status", "equals": "ok"},
                {"path": "$.checks[0].ok", "equals": True},
                {"path": "$.missing", "exists": False},
            ],
        },
        api_ctx(),
        timeout_s=30,
    )
    assert result.status == "succeeded", result.error
    assert result.output["status"] == 200 and result.output["ok"]
    assert result.output["json_body"]["status"] == "ok"
    saved = artifact(tmp_path, result.output["artifact"])
    assert saved["response"]["status"] == 200 and saved["failures"] == []


def test_a_failed_check_fails_the_step_and_keeps_the_evidence(
    server: Server, api_ctx: MakeContext, runner: Runner, tmp_path: Path
) -> None:
    result = runner.run(
        "api.request",
        {
            "url": f"{server.url}/api/v1/health",
            "expect_status": 204,
            "assertions": [{"path": "$.status", "equals": "down"}],
        },
        api_ctx(),
        timeout_s=30,
    )
    assert result.status == "failed"
    assert result.error == (
        f"GET {server.url}/api/v1/health: status 200, expected 204; "
        '$.status: "ok", expected "down"'
    )
    assert artifact(tmp_path, "response-01-get.json")["failures"]


def test_secrets_are_sent_by_name_and_masked_in_evidence(
    server: Server, api_ctx: MakeContext, runner: Runner, tmp_path: Path
) -> None:
    ctx = api_ctx(
        secrets={"API_TEST_TOKEN": SECRET}, secret_hosts={"API_TEST_TOKEN": [server.url]}
    )
    result = runner.run(
        "api.request",
        {
            "method": "POST",
            "url": f"{server.url}/echo",
            "json_body": {"name": "Jane"},
            "bearer_secret": "API_TEST_TOKEN",
            "expect_status": 201,
            "assertions": [
                {"path": "$.json.name", "equals": "Jane"},
                {"path": "$.auth", "contains": "Bearer"},
            ],
        },
        ctx,
        timeout_s=30,
    )
    assert result.status == "succeeded", result.error
    assert server.seen[-1][2]["Authorization"] == f"Bearer {SECRET}"
    evidence = (tmp_path / "evidence" / result.output["artifact"]).read_text()
    assert SECRET not in evidence and "Bearer ***" in evidence
    assert SECRET not in json.dumps(result.output)


def test_hosts_off_the_allow_list_and_redirects_are_refused(
    server: Server, api_ctx: MakeContext, runner: Runner
) -> None:
    refused = runner.run(
        "api.request", {"url": "http://localhost.evil.example.com/x"}, api_ctx(), timeout_s=30
    )
    assert refused.status == "failed"
    assert "host 'localhost.evil.example.com' is not on AGENTOS_API_ALLOWED_HOSTS" in refused.error
    other_port_host = runner.run(
        "api.request",
        {"url": server.url.replace("127.0.0.1", "localhost")},
        api_ctx(),
        timeout_s=30,
    )
    assert other_port_host.status == "failed" and not server.seen
    redirect = runner.run(
        "api.request",
        {"url": f"{server.url}/redirect", "expect_status": 302},
        api_ctx(),
        timeout_s=30,
    )
    assert redirect.status == "succeeded" and [s[1] for s in server.seen] == ["/redirect"]
    with pytest.raises(ValidationError, match="only secrets named API_"):
        ApiRequest.Params.model_validate({"url": server.url, "bearer_secret": "TEST_TOKEN"})
    with pytest.raises(ValidationError, match="line break"):
        ApiRequest.Params.model_validate({"url": server.url, "headers": {"X": "a\r\nB: c"}})


def test_suite_reports_each_request(
    server: Server, api_ctx: MakeContext, runner: Runner, tmp_path: Path
) -> None:
    requests = [
        {"name": "health", "url": f"{server.url}/api/v1/health", "expect_status": 200},
        {"name": "missing", "url": f"{server.url}/nope", "expect_status": 200},
        {
            "name": "echo",
            "method": "PUT",
            "url": f"{server.url}/echo",
            "json_body": [1, 2],
            "expect_status": 201,
            "assertions": [{"path": "$.json[1]", "equals": 2}],
        },
    ]
    report = runner.run(
        "api.suite", {"requests": requests, "fail_on_mismatch": False}, api_ctx(), timeout_s=30
    )
    assert report.status == "succeeded", report.error
    assert (report.output["passed"], report.output["failed"]) == (2, 1)
    assert report.output["results"][1]["failures"] == ["status 404, expected 200"]
    assert sorted(p.name for p in (tmp_path / "evidence").iterdir()) == [
        "response-01-health.json",
        "response-02-missing.json",
        "response-03-echo.json",
    ]
    failing = runner.run("api.suite", {"requests": requests}, api_ctx(), timeout_s=30)
    assert failing.status == "failed"
    assert failing.error == "1 of 3 checks failed: missing: status 404, expected 200"
    mixed = runner.run(
        "api.suite",
        {"requests": [requests[0], {"url": "http://evil.example.com/"}]},
        api_ctx(),
        timeout_s=30,
    )
    assert mixed.status == "failed" and "evil.example.com" in mixed.error
    assert len(server.seen) == 6  # the suite with a bad host sent nothing at all


def test_allow_list_entries_are_origins_and_bare_hosts_mean_default_ports() -> None:
    assert parse_origins("http://127.0.0.1:8000") == [Origin("http", "127.0.0.1", 8000)]
    assert parse_origins("https://API.example.com") == [Origin("https", "api.example.com", 443)]
    assert parse_origins("api.example.com") == [
        Origin("http", "api.example.com", 80),
        Origin("https", "api.example.com", 443),
    ]
    for bad in ("ftp://x", "http://x/path", "http://u:p@x", "x:6379", "http://x:port"):
        with pytest.raises(ValueError):
            parse_origins(bad)


def test_other_ports_of_an_allowed_host_are_refused_in_the_child(
    server: Server, make_ctx: MakeContext, runner: Runner
) -> None:
    legacy = make_ctx(allowed_hosts=["127.0.0.1", "localhost"])  # ports 80 and 443 only
    for url in (server.url, "http://127.0.0.1:6379/", "http://127.0.0.1:5432/"):
        result = runner.run("api.request", {"url": url}, legacy, timeout_s=30)
        assert result.status == "failed"
        assert (
            "is not on AGENTOS_API_ALLOWED_HOSTS: that host is allowed only at "
            "http://127.0.0.1:80, https://127.0.0.1:443" in result.error
        )
    assert not server.seen


def test_a_name_resolving_to_an_address_not_allowed_is_refused_in_the_child(
    server: Server, make_ctx: MakeContext, runner: Runner
) -> None:
    port = server.url.rsplit(":", 1)[1]
    # 2130706433 is a name the resolver turns into 127.0.0.1, which this
    # allow-list does not name: the origin passes, the address does not.
    ctx = make_ctx(allowed_hosts=[f"http://2130706433:{port}"])
    result = runner.run(
        "api.request", {"url": f"http://2130706433:{port}/api/v1/health"}, ctx, timeout_s=30
    )
    assert result.status == "failed"
    assert "host '2130706433' resolves to 127.0.0.1, which is not allowed" in result.error
    suite = runner.run(
        "api.suite",
        {"requests": [{"url": f"http://2130706433:{port}/api/v1/health"}]},
        ctx,
        timeout_s=30,
    )
    assert suite.status == "failed" and "resolves to 127.0.0.1" in suite.error
    assert not server.seen
    # The same server by a name that may be loopback, and by its listed address.
    for host in ("localhost", "127.0.0.1"):
        ok = runner.run(
            "api.request",
            {"url": f"http://{host}:{port}/api/v1/health", "expect_status": 200},
            make_ctx(allowed_hosts=[f"http://{host}:{port}"]),
            timeout_s=30,
        )
        assert ok.status == "succeeded", ok.error
    assert [s[2]["Host"] for s in server.seen] == [f"localhost:{port}", f"127.0.0.1:{port}"]


def test_a_secret_goes_only_to_the_origins_it_is_bound_to(
    server: Server, api_ctx: MakeContext, runner: Runner
) -> None:
    params = {"url": f"{server.url}/echo", "bearer_secret": "API_TEST_TOKEN"}
    for bound in (
        {},
        {"API_TEST_TOKEN": ["http://127.0.0.1"]},
        {"API_TEST_TOKEN": ["https://api.example.com"]},
    ):
        ctx = api_ctx(secrets={"API_TEST_TOKEN": SECRET}, secret_hosts=bound)
        result = runner.run("api.request", params, ctx, timeout_s=30)
        assert result.status == "failed"
        assert "secret 'API_TEST_TOKEN' may not be sent to " in result.error
        suite = runner.run("api.suite", {"requests": [params]}, ctx, timeout_s=30)
        assert suite.status == "failed" and "may not be sent" in suite.error
    assert not server.seen
