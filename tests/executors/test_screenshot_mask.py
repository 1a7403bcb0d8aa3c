"""Screenshot evidence never shows what was typed into a form (issue 10, item 15)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from tests.support.png import read_png

pytestmark = pytest.mark.browser

MAGENTA = (255, 0, 255)  # executors.actions.browser.session.MASK_COLOR
USER = "hr-agent"


def field_boxes(base_url: str) -> dict[str, dict[str, float]]:
    """Refuse a login like the action did, in a page of the action's size;
    return where the user name and password fields are."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=settings.AGENTOS_BROWSER_EXECUTABLE)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 800})
            page.goto(f"{base_url}/portals/hr/login/")
            page.fill("#id_username", USER)
            page.fill("#id_password", "not-the-password")
            with page.expect_navigation():
                page.click("#login")
            # The refused page shows the user name again: what must not leak.
            assert page.input_value("#id_username") == USER
            boxes = {
                name: page.locator(f"#id_{name}").bounding_box()
                for name in ("username", "password")
            }
        finally:
            browser.close()
    assert all(boxes.values())
    return boxes  # type: ignore[return-value]


def test_a_refused_logins_screenshot_masks_the_user_name(
    run_action,
    portals,
    tmp_path: Path,
) -> None:
    wrong = {"HR_PORTAL_USER": USER, "HR_PORTAL_PASSWORD": "not-the-password"}
    result = run_action(
        "hr.create_employee", {"name": "Ada", "department": "Engineering"}, secrets=wrong
    )
    assert result.status == "failed" and "refused the login" in (result.error or "")
    [shot] = tmp_path.glob("evidence-*/hr-login-refused.png")
    width, height, rows = read_png(shot.read_bytes())
    for name, box in field_boxes(portals).items():
        left, top = int(box["x"]) + 2, int(box["y"]) + 2
        right, bottom = int(box["x"] + box["width"]) - 2, int(box["y"] + box["height"]) - 2
        assert right <= width and bottom <= height
        seen = {rows[y][x] for y in range(top, bottom) for x in range(left, right)}
        # Painted over, every pixel of it: no glyph of the value is left.
        assert seen == {MAGENTA}, (name, sorted(seen)[:5])
