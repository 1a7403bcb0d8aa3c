"""AGENTOS_HTTPS and the Content-Security-Policy (issue 10, item 16)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fixtures import ROOT

CSP_DIRECTIVES = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "frame-ancestors 'none'",
)


def check_deploy(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run `manage.py check --deploy` as production would: DEBUG off, secrets set."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "AGENTOS_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="agentos_site.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        AGENTOS_AUDIT_KEY=secrets.token_urlsafe(48),
        AGENTOS_VAR_DIR=str(tmp_path / "var"),
        **extra,
    )
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_agentos_https_makes_check_deploy_clean(tmp_path: Path) -> None:
    result = check_deploy(tmp_path, AGENTOS_HTTPS="1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_without_agentos_https_check_deploy_names_what_is_missing(tmp_path: Path) -> None:
    result = check_deploy(tmp_path)
    assert result.returncode != 0
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in result.stderr + result.stdout, check


def test_a_proxy_header_is_trusted_only_when_asked(tmp_path: Path) -> None:
    code = (
        "from django.conf import settings; "
        "print(getattr(settings, 'SECURE_PROXY_SSL_HEADER', None))"
    )
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "AGENTOS_"))
    }
    base.update(
        DJANGO_SETTINGS_MODULE="agentos_site.settings",
        AGENTOS_VAR_DIR=str(tmp_path / "var"),
        AGENTOS_HTTPS="1",
    )
    for trust, expected in (("0", "None"), ("1", "('HTTP_X_FORWARDED_PROTO', 'https')")):
        out = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=ROOT,
            env={**base, "AGENTOS_TRUST_X_FORWARDED_PROTO": trust},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.stdout.strip().splitlines()[-1] == expected, out.stderr


@pytest.mark.django_db
def test_the_inbox_and_the_portals_send_a_content_security_policy(client, reviewer) -> None:
    client.force_login(reviewer)
    for path in ("/inbox/", "/portals/hr/login/", "/portals/procurement/login/"):
        response = client.get(path)
        assert response.status_code == 200, path
        policy = response.headers.get("Content-Security-Policy", "")
        for directive in CSP_DIRECTIVES:
            assert directive in policy, (path, directive)
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        # Nothing inline is left for the policy to refuse.
        html = response.content.decode()
        assert "<script>" not in html and "<style" not in html and "style=" not in html


def _violations_recorder(page) -> list[str]:  # type: ignore[no-untyped-def]
    seen: list[str] = []
    page.on(
        "console",
        lambda msg: seen.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    page.add_init_script("""document.addEventListener("securitypolicyviolation",
        e => console.error("Content Security Policy violation: " + e.violatedDirective
                           + " " + e.blockedURI));""")
    return seen


@pytest.mark.browser
def test_the_inbox_and_portals_work_in_chromium_under_the_policy(daphne, reviewer) -> None:
    from django.conf import settings
    from playwright.sync_api import sync_playwright

    from portals.demo import ensure_demo_data

    ensure_demo_data(settings.AGENTOS_SECRETS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=settings.AGENTOS_BROWSER_EXECUTABLE)
        try:
            page = browser.new_page(base_url=daphne.url)
            violations = _violations_recorder(page)
            page.goto("/admin/login/?next=/inbox/")
            page.fill("#id_username", "reviewer")
            page.fill("#id_password", "pw")
            page.click("input[type=submit]")
            page.wait_for_url("**/inbox/")
            assert "script-src 'self'" in (
                page.evaluate(
                    "fetch(location.href).then(r => r.headers.get('content-security-policy'))"
                )
                or ""
            )
            # The live view started from the static script: its socket is up.
            page.wait_for_selector("#live-state[data-state=live]")
            # The stylesheet applied (it was an inline <style> before).
            assert (
                page.evaluate("getComputedStyle(document.querySelector('header')).backgroundColor")
                == "rgb(38, 75, 93)"
            )
            page.goto("/portals/hr/login/")
            page.fill("#id_username", settings.AGENTOS_SECRETS["HR_PORTAL_USER"])
            page.fill("#id_password", settings.AGENTOS_SECRETS["HR_PORTAL_PASSWORD"])
            with page.expect_navigation():
                page.click("#login")
            assert page.locator("#login-form").count() == 0
            assert (
                page.evaluate("getComputedStyle(document.querySelector('header')).backgroundColor")
                == "rgb(39, 67, 95)"
            )
            assert violations == []
        finally:
            browser.close()
