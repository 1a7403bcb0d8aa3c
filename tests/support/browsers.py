"""Browser fixtures: a real Chromium through Playwright's sync API.

Registered in tests/conftest.py (`pytest_plugins`), so any test may ask for
`browser` (Debian's Chromium, one per test) and `orm` (database calls on a
thread of their own). `logged_in` opens a page signed in as a demo user.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest
from django.conf import settings
from django.db import connections

T = TypeVar("T")


@pytest.fixture
def orm() -> Iterator[Callable[[Callable[[], T]], T]]:
    """Run database calls on a thread of their own.

    Playwright's sync API keeps an event loop running on the test's thread,
    where Django (rightly) refuses synchronous database access.
    """
    pool = ThreadPoolExecutor(max_workers=1)
    yield lambda fn: pool.submit(fn).result()
    pool.submit(connections.close_all).result()
    pool.shutdown()


@pytest.fixture
def browser(orm) -> Iterator[object]:  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=settings.AGENTOS_BROWSER_EXECUTABLE)
        yield chromium
        chromium.close()


def logged_in(browser, base: str, username: str):  # type: ignore[no-untyped-def]
    """Sign in as ``username`` (password "pw") and return a page on the inbox."""
    context = browser.new_context(base_url=base)
    page = context.new_page()
    page.goto("/admin/login/?next=/inbox/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_url("**/inbox/")
    return page
