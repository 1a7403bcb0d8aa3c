"""A Playwright browser for one action: launch, origin guard, login, evidence.

Runs inside the action's forked child (sync API, no asyncio loop there).
Chromium is the system's (Debian's) build; Playwright detaches it into a
session of its own, and the runner's zygote adopts and kills whatever is
left when the action is killed.

:func:`warm_up` starts the driver and Chromium, and opens a fresh context
and page, in a child the zygote forked ahead of time, before any request;
the action that child then runs takes that browser and page (one child, one
browser, one action: nothing is shared between actions). Until the action
owns the page, every request it would make fails.
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

from playwright.sync_api import Browser, CDPSession, Page, Playwright, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from executors.attempt import killpg
from executors.base import ActionContext, ActionFailed
from executors.family import children_of

__all__ = [
    "MASK_COLOR",
    "BrowserSession",
    "open_browser",
    "origin_of",
    "resolve_executable",
    "warm_up",
]

DEFAULT_EXECUTABLE = "/usr/bin/chromium"
# Debian's /usr/bin/chromium is a shell wrapper around this binary.
DEBIAN_BINARY = "/usr/lib/chromium/chromium"
PAGE_TIMEOUT_MS = 20_000
DEFAULT_PORTS = {"http": 80, "https": 443}
LAUNCH_ARGS = ["--disable-gpu", "--no-first-run", "--disable-extensions"]
# What screenshots paint over: every field a value could be typed into.
MASKED_FIELDS = "input:not([type=hidden]):not([type=submit]):not([type=button]), textarea, select"
MASK_COLOR = "#FF00FF"


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
            "AGENTOS_BROWSER_EXECUTABLE"
        )
    return path


@dataclass
class BrowserSession:
    """A page confined to the allowed origins, and what it was refused."""

    page: Page
    ctx: ActionContext
    blocked: list[str] = field(default_factory=list)
    logged_in: bool = False
    # (what, ms) of each page load, submit and screenshot: kept in the log.
    timings: list[tuple[str, float]] = field(default_factory=list)

    @contextmanager
    def timed(self, what: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings.append((what, (time.perf_counter() - started) * 1000))

    def goto(self, url: str) -> None:
        """Open ``url``; fail clearly when it or a redirect leaves the origins."""
        self._check(url)
        try:
            with self.timed("open " + urlsplit(url).path):
                self.page.goto(url)
        except PlaywrightError as exc:
            self._raise_if_blocked()
            raise ActionFailed(f"could not open {url}: {_first_line(exc)}") from None
        self._raise_if_blocked()

    def submit(self, selector: str) -> None:
        """Click a submit button and wait for the page it leads to.

        Forced: the portals' own buttons need no wait for animations to
        settle (~40 ms a click); the page it leads to is what is checked.
        """
        try:
            with self.timed("submit " + selector), self.page.expect_navigation():
                self.page.click(selector, force=True)
        except PlaywrightError as exc:
            self._raise_if_blocked()
            raise ActionFailed(f"submitting the form failed: {_first_line(exc)}") from None
        self._raise_if_blocked()

    def login(self, *, portal: str, user_secret: str, password_secret: str) -> bool:
        """Log in if the current page is the portal's login form; say if it was."""
        if not self.page.locator("#login-form").count():
            return False
        self.fill(
            {
                "username": self.ctx.secret(user_secret),
                "password": self.ctx.secret(password_secret),
            }
        )
        self.submit("#login")
        if self.page.locator("#login-form").count():
            self.screenshot(f"{portal.lower()}-login-refused")
            raise ActionFailed(
                f"the {portal} portal refused the login: invalid username or password "
                f"(check the secrets {user_secret} and {password_secret})"
            )
        self.logged_in = True
        return True

    def fill(self, values: dict[str, str]) -> dict[str, list[str]]:
        """Fill the form fields ``#id_<name>`` in one round trip.

        Sets each value and fires the input and change events a person's
        typing would. Returns the fields whose select does not offer the
        value, each with what it offers; nothing is filled then.
        """
        problems = self.page.evaluate(_FILL_JS, values)
        missing = problems.get("missing") or []
        if missing:
            raise ActionFailed(f"the page has no field {', '.join(missing)}")
        return problems.get("unoffered") or {}

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
        """Save a full-page PNG into the step's evidence folder.

        Every form field is painted over (MASK_COLOR): a refused login
        re-renders the user name, and evidence must show no credential.
        """
        path = Path(self.ctx.evidence_dir) / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        with self.timed("screenshot " + name):
            self.page.screenshot(
                path=str(path),
                full_page=True,
                mask=[self.page.locator(MASKED_FIELDS)],
                mask_color=MASK_COLOR,
            )
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
                f"portal origins ({allowed})"
            )


# Check every field first, then fill them all: a refused select leaves the
# form untouched.
_FILL_JS = """(values) => {
  const found = {}, missing = [], unoffered = {};
  for (const name of Object.keys(values)) {
    const element = document.getElementById("id_" + name);
    if (!element) { missing.push(name); continue; }
    if (element.tagName === "SELECT") {
      const offered = Array.from(element.options).map(o => o.value).filter(v => v);
      if (!offered.includes(values[name])) { unoffered[name] = offered; continue; }
    }
    found[name] = element;
  }
  if (missing.length || Object.keys(unoffered).length) return {missing, unoffered};
  for (const [name, element] of Object.entries(found)) {
    element.focus();
    element.value = values[name];
    element.dispatchEvent(new Event("input", {bubbles: true}));
    element.dispatchEvent(new Event("change", {bubbles: true}));
  }
  return {missing, unoffered};
}"""


def _allowed(url: str, allowed_origins: list[str]) -> bool:
    if url.startswith(("data:", "about:", "blob:")):
        return True
    origin = origin_of(url)
    return origin is not None and origin in {origin_of(o) for o in allowed_origins}


def _first_line(exc: Exception) -> str:
    message = str(exc).strip().splitlines()
    return re.sub(r"\s+", " ", message[0]) if message else type(exc).__name__


@dataclass
class _Page:
    """A fresh context and page; until a session owns it, every request fails."""

    page: Page
    owner: BrowserSession | None = None


def _new_page(browser: Browser) -> _Page:
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    prepared = _Page(page)
    _guard_origins(context.new_cdp_session(page), prepared)
    return prepared


def _guard_origins(cdp: CDPSession, prepared: _Page) -> None:
    """Pause every request of the page and let only the allowed origins through.

    Chromium's Fetch domain, not Playwright's ``route``: route lets the
    hops of a redirect through unseen, and a portal redirecting the browser
    elsewhere is exactly what must be stopped. The allowed origins are the
    owning session's; a page nobody owns yet allows none.
    """

    def paused(event: dict[str, Any]) -> None:
        url = event["request"]["url"]
        session = prepared.owner
        if session is not None and _allowed(url, session.ctx.allowed_origins):
            cdp.send("Fetch.continueRequest", {"requestId": event["requestId"]})
            return
        # A refused image is just missing; a refused page fails the step,
        # naming where the browser was being sent.
        if session is not None and event.get("resourceType") == "Document":
            session.blocked.append(url)
        cdp.send(
            "Fetch.failRequest",
            {"requestId": event["requestId"], "errorReason": "BlockedByClient"},
        )

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
    # A context and page opened ahead of the request too (spares only).
    page: _Page | None = None

    def stop(self) -> None:
        try:
            self.browser.close()
        finally:
            self.playwright.stop()

    def kill(self) -> None:
        """End the browser at once, at the end of this process's one action.

        SIGKILL to Chromium's process group (Playwright makes it a session
        leader, a child of the driver, which is our child): it has nothing to
        save (a throwaway profile in the child's own temporary directory),
        and a graceful close costs ~150 ms on every action's path. The
        driver goes with this process's group when it exits; the zygote
        kills anything else left over.
        """
        browsers = [
            pid
            for driver in children_of(os.getpid())
            for pid in children_of(driver)
            if _is_chromium(pid)
        ]
        if not browsers:
            self.stop()  # not where Playwright puts it: close it the slow way
            return
        for pid in browsers:
            killpg(pid)


def _is_chromium(pid: int) -> bool:
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
        return b"chrom" in os.path.basename(argv0) and os.getpgid(pid) == pid
    except OSError:
        return False


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
    return _Started(
        playwright, browser, executable, (driver - started) * 1000, (launched - driver) * 1000
    )


def warm_up() -> None:
    """Start the driver and Chromium, and open a page, before this process's
    request arrives.

    Runs in a spare child of the zygote, which has no request yet and so no
    configured executable: it starts the one the default settings name
    (``chromium`` on PATH). An action configured for another binary closes
    this one and starts its own.
    """
    global _warm
    if _warm is None:
        _warm = _start(resolve_executable(shutil.which("chromium") or ""))
        _warm.page = _new_page(_warm.browser)


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

    In Chromium started ahead of time by :func:`warm_up`, with the page it
    opened then, when there is one; else in one launched now.
    """
    executable = resolve_executable(ctx.browser_executable)
    started = time.perf_counter()
    own = _take_warm(executable)
    ahead = own is not None
    if own is None:
        try:
            own = _start(executable)
        except PlaywrightError as exc:
            raise ActionFailed(
                f"cannot start Chromium ({executable}): {_first_line(exc)}"
            ) from None
    ready = (time.perf_counter() - started) * 1000
    # Kept in the step's log (its evidence): where a slow step's time went.
    print(
        f"browser started in {ready:.0f} ms "
        f"({'pre-started ahead of the request: ' if ahead else ''}"
        f"driver {own.driver_ms:.0f} ms, chromium {own.chromium_ms:.0f} ms)",
        flush=True,
    )
    session = None
    try:
        opening = time.perf_counter()
        prepared = own.page
        if prepared is None or prepared.page.is_closed():
            prepared = _new_page(own.browser)
        session = BrowserSession(page=prepared.page, ctx=ctx)
        prepared.owner = session
        session.timings.append(("new page", (time.perf_counter() - opening) * 1000))
        yield session
    finally:
        if session is not None:
            print(
                "page work: " + "; ".join(f"{what} {ms:.0f} ms" for what, ms in session.timings),
                flush=True,
            )
        closing = time.perf_counter()
        own.kill()
        print(f"browser closed in {(time.perf_counter() - closing) * 1000:.0f} ms", flush=True)
