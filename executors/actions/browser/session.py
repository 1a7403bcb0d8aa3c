"""A Playwright browser for one action: launch, origin guard, login, evidence.

Runs inside the action's forked child (sync API, no asyncio loop there).
Chromium is the system's (Debian's) build; Playwright detaches it into a
session of its own, and the runner's zygote adopts and kills whatever is
left when the action is killed.

:func:`warm_up` starts the driver and Chromium in a child the zygote forked
ahead of time, before any request; the action that child then runs takes
that browser (one child, one browser, one action: nothing is shared between
actions) and only opens a fresh context and page in it.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Browser, CDPSession, Page, Playwright, sync_playwright

from executors.base import ActionContext, ActionFailed

__all__ = ["BrowserSession", "open_browser", "origin_of", "resolve_executable", "warm_up"]

DEFAULT_EXECUTABLE = "/usr/bin/chromium"
# Debian's /usr/bin/chromium is a shell wrapper around this binary.
DEBIAN_BINARY = "/usr/lib/chromium/chromium"
PAGE_TIMEOUT_MS = 20_000
DEFAULT_PORTS = {"http": 80, "https": 443}
LAUNCH_ARGS = ["--disable-gpu", "--no-first-run", "--disable-extensions"]


def origin_of(url: str) -> tuple[str, str, int] | None:
    """Return (scheme, host, port) of an http(s) URL, or None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def resolve_executable(configured: str) -> str:
    """Return the Chromium binary to launch, skipping Debian's wrapper."""
    path = configured or DEFAULT_EXECUTABLE
    if path == DEFAULT_EXECUTABLE and os.access(DEBIAN_BINARY, os.X_OK):
        return DEBIAN_BINARY
    if not os.access(path, os.X_OK):
        raise ActionFailed(
            f"no Chromium at {path}: install it (scripts/setup.sh does) or set "
            "AGENTOS_BROWSER_EXECUTABLE")
    return path


@dataclass
class BrowserSession:
    """A page confined to the allowed origins, and what it was refused."""

    page: Page
    ctx: ActionContext
    blocked: list[str] = field(default_factory=list)

    def goto(self, url: str) -> None:
        """Open ``url``; fail clearly when it or a redirect leaves the origins."""
        self._check(url)
        try:
            self.page.goto(url)
        except PlaywrightError as exc:
            self._raise_if_blocked()
            raise ActionFailed(f"could not open {url}: {_first_line(exc)}") from None
        self._raise_if_blocked()

    def submit(self, selector: str) -> None:
        """Click a submit button and wait for the page it leads to."""
        try:
            with self.page.expect_navigation():
                self.page.click(selector)
        except PlaywrightError as exc:
            self._raise_if_blocked()
            raise ActionFailed(f"submitting the form failed: {_first_line(exc)}") from None
        self._raise_if_blocked()

    def login(self, *, portal: str, user_secret: str, password_secret: str) -> None:
        """Log in if the current page is the portal's login form."""
        if not self.page.locator("#login-form").count():
            return
        self.page.fill("#id_username", self.ctx.secret(user_secret))
        self.page.fill("#id_password", self.ctx.secret(password_secret))
        self.submit("#login")
        if self.page.locator("#login-form").count():
            self.screenshot(f"{portal.lower()}-login-refused")
            raise ActionFailed(
                f"the {portal} portal refused the login: invalid username or password "
                f"(check the secrets {user_secret} and {password_secret})")

    def text(self, selector: str) -> str:
        """Return the stripped text of the first match, or ''."""
        locator = self.page.locator(selector)
        if not locator.count():
            return ""
        return (locator.first.text_content() or "").strip()

    def texts(self, selector: str) -> list[str]:
        """Return the stripped texts of every match."""
        return [t.strip() for t in self.page.locator(selector).all_text_contents()]

    def form_errors(self) -> dict[str, str]:
        """Return field -> message for the errors a portal form shows."""
        errors = {}
        for block in self.page.locator("[data-errors-for]").all():
            message = " ".join((block.text_content() or "").split())
            if message:
                errors[block.get_attribute("data-errors-for") or "form"] = message
        general = " ".join(self.texts("#record-form > .errorlist li"))
        if general:
            errors["form"] = general
        return errors

    def screenshot(self, name: str) -> str:
        """Save a full-page PNG into the step's evidence folder."""
        path = Path(self.ctx.evidence_dir) / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=True)
        return str(path)

    def _check(self, url: str) -> None:
        if not _allowed(url, self.ctx.allowed_origins):
            self.blocked.append(url)
            self._raise_if_blocked()

    def _raise_if_blocked(self) -> None:
        if self.blocked:
            allowed = ", ".join(self.ctx.allowed_origins) or "none"
            raise ActionFailed(
                f"navigation to {self.blocked[0]} was blocked: it is outside the allowed "
                f"portal origins ({allowed})")


def _allowed(url: str, allowed_origins: list[str]) -> bool:
    if url.startswith(("data:", "about:", "blob:")):
        return True
    origin = origin_of(url)
    return origin is not None and origin in {origin_of(o) for o in allowed_origins}


def _first_line(exc: Exception) -> str:
    message = str(exc).strip().splitlines()
    return re.sub(r"\s+", " ", message[0]) if message else type(exc).__name__


def _guard_origins(cdp: CDPSession, session: BrowserSession) -> None:
    """Pause every request of the page and let only the allowed origins through.

    Chromium's Fetch domain, not Playwright's ``route``: route lets the
    hops of a redirect through unseen, and a portal redirecting the browser
    elsewhere is exactly what must be stopped.
    """
    allowed = session.ctx.allowed_origins

    def paused(event: dict[str, Any]) -> None:
        url = event["request"]["url"]
        if _allowed(url, allowed):
            cdp.send("Fetch.continueRequest", {"requestId": event["requestId"]})
            return
        # A refused image is just missing; a refused page fails the step,
        # naming where the browser was being sent.
        if event.get("resourceType") == "Document":
            session.blocked.append(url)
        cdp.send("Fetch.failRequest", {"requestId": event["requestId"],
                                       "errorReason": "BlockedByClient"})

    cdp.on("Fetch.requestPaused", paused)
    cdp.send("Fetch.enable", {"patterns": [{"urlPattern": "*", "requestStage": "Request"}]})


@dataclass
class _Started:
    """A driver and browser started by this process, and what that cost."""

    playwright: Playwright
    browser: Browser
    executable: str
    driver_ms: float
    chromium_ms: float

    def stop(self) -> None:
        try:
            self.browser.close()
        finally:
            self.playwright.stop()


# The browser this process started ahead of its request; taken at most once.
_warm: _Started | None = None


def _start(executable: str) -> _Started:
    started = time.perf_counter()
    playwright = sync_playwright().start()
    driver = time.perf_counter()
    try:
        browser = playwright.chromium.launch(executable_path=executable, args=LAUNCH_ARGS)
    except BaseException:
        playwright.stop()
        raise
    launched = time.perf_counter()
    return _Started(playwright, browser, executable,
                    (driver - started) * 1000, (launched - driver) * 1000)


def warm_up() -> None:
    """Start the driver and Chromium before this process's request arrives.

    Runs in a spare child of the zygote, which has no request yet and so no
    configured executable: it starts the one the default settings name
    (``chromium`` on PATH). An action configured for another binary closes
    this one and starts its own.
    """
    global _warm
    if _warm is None:
        _warm = _start(resolve_executable(shutil.which("chromium") or ""))


def _take_warm(executable: str) -> _Started | None:
    """Return the browser started ahead of time, if it is the one wanted."""
    global _warm
    warm, _warm = _warm, None
    if warm is None:
        return None
    if warm.executable == executable and warm.browser.is_connected():
        return warm
    try:
        warm.stop()
    except PlaywrightError:
        pass  # it died while waiting; the zygote reaps what is left
    return None


@contextmanager
def open_browser(ctx: ActionContext) -> Iterator[BrowserSession]:
    """Open a fresh page with every request outside the origins aborted.

    In Chromium started ahead of time by :func:`warm_up` when there is one,
    else in one launched now.
    """
    executable = resolve_executable(ctx.browser_executable)
    started = time.perf_counter()
    own = _take_warm(executable)
    ahead = own is not None
    if own is None:
        try:
            own = _start(executable)
        except PlaywrightError as exc:
            raise ActionFailed(f"cannot start Chromium ({executable}): "
                               f"{_first_line(exc)}") from None
    ready = (time.perf_counter() - started) * 1000
    # Kept in the step's log (its evidence): where a slow step's time went.
    print(f"browser started in {ready:.0f} ms "
          f"({'pre-started ahead of the request: ' if ahead else ''}"
          f"driver {own.driver_ms:.0f} ms, chromium {own.chromium_ms:.0f} ms)", flush=True)
    try:
        context = own.browser.new_context(viewport={"width": 1100, "height": 800})
        page = context.new_page()
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        session = BrowserSession(page=page, ctx=ctx)
        _guard_origins(context.new_cdp_session(page), session)
        yield session
    finally:
        closing = time.perf_counter()
        own.stop()
        print(f"browser closed in {(time.perf_counter() - closing) * 1000:.0f} ms",
              flush=True)
