"""HTTP API actions: one request, or a suite of requests with assertions.

Every URL must be http(s) to an origin (scheme, host, port) on the run's
``allowed_hosts``, and the host must resolve to allowed addresses (see
``hosts``); redirects are not followed (a redirect to another host would
leave the allow-list). Secrets are named, never written: a plan says
``bearer_secret: API_TOKEN`` and the child receives that one secret's value
from settings. Only secrets whose names start with ``API_`` may be sent
over HTTP, and each only to the origins it is bound to
(``AGENTOS_SECRET_HOSTS_<NAME>``). Each response is saved as a JSON
artifact in the step's evidence folder, with secret values masked.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from executors.actions.hosts import (
    MISSING,
    Target,
    check_secret_hosts,
    check_url,
    json_path,
    resolve,
    target_request,
)
from executors.base import Action, ActionContext, ActionFailed, Policy, is_template
from executors.scrubbing import scrub

__all__ = ["ACTIONS", "ApiRequest", "ApiSuite"]

SECRET_NAME = re.compile(r"^API_[A-Z0-9_]{1,60}$")
HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,100}$")
MAX_BODY_BYTES = 1 << 20
MAX_OUTPUT_TEXT = 4000


class Assertion(BaseModel):
    """One check on a JSON response: a path, and what must hold there."""

    model_config = ConfigDict(extra="forbid")
    path: str = Field(max_length=300, description="JSONPath such as $.items[0].status.")
    equals: Any = Field(None, description="The value must equal this.")
    exists: bool | None = Field(None, description="The path must (not) exist.")
    contains: str | None = Field(None, description="The value (as text) must contain this.")

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        try:
            json_path({}, value)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _one_check(self) -> Assertion:
        if "equals" not in self.model_fields_set and self.exists is None and self.contains is None:
            raise ValueError("give equals, exists or contains")
        return self


class RequestSpec(BaseModel):
    """Method, URL, headers, JSON body, expected status and assertions."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field("", max_length=100, description="Label in the report.")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    url: str = Field(max_length=2000)
    headers: dict[str, str] = Field(default_factory=dict, max_length=30)
    json_body: Any = Field(None, description="Sent as the JSON body.")
    bearer_secret: str | None = Field(
        None, description="Name of a secret (API_...) sent as 'Authorization: Bearer ...'."
    )
    secret_headers: dict[str, str] = Field(
        default_factory=dict,
        max_length=10,
        description="Header name -> name of a secret (API_...) sent as its value.",
    )
    expect_status: int | None = Field(None, ge=100, le=599)
    assertions: list[Assertion] = Field(default_factory=list, max_length=50)
    timeout_s: float = Field(10.0, gt=0, le=120)

    @field_validator("headers", "secret_headers")
    @classmethod
    def _header_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if "\r" in text or "\n" in text:
                raise ValueError(f"header {name!r} must not contain a line break")
        return value

    @model_validator(mode="after")
    def _secret_names(self) -> RequestSpec:
        names = list(self.secret_headers.values())
        if self.bearer_secret is not None:
            names.append(self.bearer_secret)
        for name in names:
            if not SECRET_NAME.match(name):
                raise ValueError(
                    f"secret {name!r}: HTTP actions may use only secrets named API_... "
                    "(configured as AGENTOS_SECRET_API_...)"
                )
        return self

    def secret_names(self) -> list[str]:
        return [
            *([self.bearer_secret] if self.bearer_secret else []),
            *self.secret_headers.values(),
        ]


class Result(BaseModel):
    name: str
    method: str
    url: str
    status: int | None
    ok: bool
    failures: list[str]
    elapsed_ms: float
    artifact: str


def _url_errors(requests: list[tuple[str, Any]], policy: Policy) -> list[tuple[str, str]]:
    """Check each literal URL's origin, and that its secrets are bound to it."""
    errors = []
    bound = dict(policy.secret_hosts)
    for prefix, request in requests:
        if not isinstance(request, dict):
            continue
        url = request.get("url")
        if not isinstance(url, str) or is_template(url):
            continue
        try:
            origin = check_url(url, policy.allowed_hosts)
        except ActionFailed as exc:
            errors.append((f"{prefix}url", str(exc)))
            continue
        named = [("bearer_secret", request.get("bearer_secret"))]
        headers = request.get("secret_headers")
        if isinstance(headers, dict):
            named += [(f"secret_headers.{header}", name) for header, name in headers.items()]
        for field, name in named:
            if isinstance(name, str) and name:
                try:
                    check_secret_hosts([name], origin, bound)
                except ActionFailed as exc:
                    errors.append((f"{prefix}{field}", str(exc)))
    return errors


def _secret_values(spec: RequestSpec, ctx: ActionContext) -> dict[str, str]:
    headers = {}
    if spec.bearer_secret:
        headers["Authorization"] = f"Bearer {ctx.secret(spec.bearer_secret)}"
    for header, secret in spec.secret_headers.items():
        headers[header] = ctx.secret(secret)
    return headers


def _check(spec: RequestSpec, status: int, body: Any) -> list[str]:
    failures = []
    if spec.expect_status is not None and status != spec.expect_status:
        failures.append(f"status {status}, expected {spec.expect_status}")
    for check in spec.assertions:
        if body is MISSING:
            failures.append(f"{check.path}: the response is not JSON")
            continue
        found = json_path(body, check.path)
        if check.exists is not None and (found is not MISSING) != check.exists:
            failures.append(f"{check.path}: {'missing' if check.exists else 'present'}")
        if "equals" in check.model_fields_set and found != check.equals:
            shown = "missing" if found is MISSING else json.dumps(found)[:200]
            failures.append(f"{check.path}: {shown}, expected {json.dumps(check.equals)[:200]}")
        if check.contains is not None and (
            found is MISSING
            or check.contains not in (found if isinstance(found, str) else json.dumps(found))
        ):
            failures.append(f"{check.path}: does not contain {check.contains!r}")
    return failures


def _send(
    client: httpx.Client, spec: RequestSpec, target: Target, headers: dict[str, str]
) -> httpx.Response:
    """Send to the checked addresses in turn until one accepts the connection."""
    for index, address in enumerate(target.addresses):
        url, host_header, extensions = target_request(spec.url, target, address)
        try:
            return client.request(
                spec.method,
                url,
                headers={**headers, **host_header},
                json=spec.json_body if "json_body" in spec.model_fields_set else None,
                timeout=spec.timeout_s,
                extensions=extensions,
            )
        except httpx.ConnectError:
            if index == len(target.addresses) - 1:
                raise
    raise AssertionError("resolve() returns at least one address")


def perform(
    spec: RequestSpec, ctx: ActionContext, index: int, client: httpx.Client
) -> tuple[Result, Any, str]:
    """Send one request, save its artifact and check it; return (result, json, text)."""
    origin = check_url(spec.url, ctx.allowed_hosts)
    check_secret_hosts(spec.secret_names(), origin, ctx.secret_hosts)
    target = resolve(origin, ctx.allowed_hosts)
    secret_headers = _secret_values(spec, ctx)
    secrets = [v for v in ctx.secrets.values() if v]
    plain = {k: v for k, v in spec.headers.items() if k.lower() != "host"}
    if ctx.correlation_id and not any(k.lower() == "x-correlation-id" for k in plain):
        # The run's correlation id, so the called system's logs can be joined
        # with ours (docs/observability.md).
        plain["X-Correlation-ID"] = ctx.correlation_id
    started = time.perf_counter()
    try:
        response = _send(client, spec, target, {**plain, **secret_headers})
        content = response.content[:MAX_BODY_BYTES]
    except httpx.TimeoutException:
        raise ActionFailed(
            f"{spec.method} {spec.url}: no response within {spec.timeout_s}s"
        ) from None
    except httpx.HTTPError as exc:
        raise ActionFailed(
            f"{spec.method} {spec.url}: {type(exc).__name__}: {scrub(str(exc), secrets)}"
        ) from None
    elapsed = round((time.perf_counter() - started) * 1000, 2)
    text = content.decode(response.encoding or "utf-8", errors="replace")
    try:
        body: Any = json.loads(text) if text.strip() else MISSING
    except ValueError:
        body = MISSING
    failures = _check(spec, response.status_code, body)
    label = re.sub(r"[^A-Za-z0-9_-]+", "-", spec.name or spec.method.lower()).strip("-")
    artifact = f"response-{index:02d}-{label or 'request'}.json"
    record = {
        "request": {
            "method": spec.method,
            "url": spec.url,
            "headers": {**spec.headers, **{k: "***" for k in secret_headers}},
            "json": spec.json_body,
        },
        "response": {
            "status": response.status_code,
            "headers": {
                k: v
                for k, v in response.headers.items()
                if k.lower() not in ("set-cookie", "authorization")
            },
            "json": None if body is MISSING else body,
            "text": None if body is not MISSING else text,
        },
        "elapsed_ms": elapsed,
        "failures": failures,
    }
    if ctx.evidence_dir and Path(ctx.evidence_dir).is_dir():
        Path(ctx.evidence_dir, artifact).write_text(
            scrub(json.dumps(record, indent=1, sort_keys=True, default=str), secrets)
        )
    result = Result(
        name=spec.name,
        method=spec.method,
        url=spec.url,
        status=response.status_code,
        ok=not failures,
        failures=failures,
        elapsed_ms=elapsed,
        artifact=artifact,
    )
    return result, body, scrub(text[:MAX_OUTPUT_TEXT], secrets)


def _client() -> httpx.Client:
    # No proxies from the environment and no redirects: both could take a
    # request to a host that is not on the allow-list.
    return httpx.Client(follow_redirects=False, trust_env=False)


class ApiRequest(Action):
    """Send one HTTP request to an allowed host; save the response as evidence."""

    name = "api.request"
    description = (
        "Send one HTTP request (method, URL, headers, JSON body) to an allowed host, check the "
        "expected status and JSON-path assertions, and save the response as evidence."
    )
    category = "api"
    risk = "medium"
    idempotent = False
    default_timeout_s = 130

    class Params(RequestSpec):
        fail_on_mismatch: bool = Field(True, description="Fail the step when a check fails.")

    class Output(BaseModel):
        status: int | None
        ok: bool
        failures: list[str]
        json_body: Any = None
        text: str = ""
        elapsed_ms: float
        artifact: str

    @classmethod
    def policy_errors(cls, params: dict[str, Any], policy: Policy) -> list[tuple[str, str]]:
        """Refuse a literal URL whose origin is not allowed, or unbound secrets."""
        return _url_errors([("", params)], policy)

    @classmethod
    def secret_names(cls, params: dict[str, Any]) -> tuple[str, ...]:
        """Return the secrets this step names (bearer_secret, secret_headers)."""
        try:
            return tuple(cls.Params.model_validate(params).secret_names())
        except ValueError:
            return ()

    def run(self, params: Params, ctx: ActionContext) -> Output:
        """Send the request and report what came back."""
        with _client() as client:
            result, body, text = perform(params, ctx, 1, client)
        if params.fail_on_mismatch and not result.ok:
            raise ActionFailed(f"{params.method} {params.url}: " + "; ".join(result.failures))
        return self.Output(
            status=result.status,
            ok=result.ok,
            failures=result.failures,
            json_body=None if body is MISSING else body,
            text="" if body is not MISSING else text,
            elapsed_ms=result.elapsed_ms,
            artifact=result.artifact,
        )


class ApiSuite(Action):
    """Run a list of HTTP checks against allowed hosts; save every response."""

    name = "api.suite"
    description = (
        "Run a suite of HTTP requests, each with an expected status and JSON-path assertions; "
        "save every response as evidence and report which passed."
    )
    category = "api"
    risk = "medium"
    idempotent = False
    default_timeout_s = 300

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        requests: list[RequestSpec] = Field(min_length=1, max_length=100)
        stop_on_failure: bool = Field(False, description="Stop at the first failing request.")
        fail_on_mismatch: bool = Field(True, description="Fail the step when a check fails.")

    class Output(BaseModel):
        passed: int
        failed: int
        results: list[Result]

    @classmethod
    def policy_errors(cls, params: dict[str, Any], policy: Policy) -> list[tuple[str, str]]:
        """Refuse every literal URL whose origin is not allowed, or unbound secrets."""
        requests = params.get("requests")
        if not isinstance(requests, list):
            return []
        return _url_errors([(f"requests.{i}.", r) for i, r in enumerate(requests)], policy)

    @classmethod
    def secret_names(cls, params: dict[str, Any]) -> tuple[str, ...]:
        """Return the secrets the suite's requests name."""
        try:
            parsed = cls.Params.model_validate(params)
        except ValueError:
            return ()
        return tuple(dict.fromkeys(n for r in parsed.requests for n in r.secret_names()))

    def run(self, params: Params, ctx: ActionContext) -> Output:
        """Run each request in order and report."""
        for spec in params.requests:  # every URL is checked before anything is sent
            origin = check_url(spec.url, ctx.allowed_hosts)
            check_secret_hosts(spec.secret_names(), origin, ctx.secret_hosts)
            resolve(origin, ctx.allowed_hosts)
        results = []
        with _client() as client:
            for index, spec in enumerate(params.requests, start=1):
                result = perform(spec, ctx, index, client)[0]
                results.append(result)
                if not result.ok and params.stop_on_failure:
                    break
        failed = [r for r in results if not r.ok]
        if failed and params.fail_on_mismatch:
            raise ActionFailed(
                f"{len(failed)} of {len(params.requests)} checks failed: "
                + "; ".join(f"{r.name or r.url}: {', '.join(r.failures)}" for r in failed[:5])
            )
        return self.Output(passed=len(results) - len(failed), failed=len(failed), results=results)


ACTIONS: list[type[Action]] = [ApiRequest, ApiSuite]
