"""The workflow editor in a real Chromium: the plan's picture is redrawn as
the spec validates, with a problem on the box it concerns; 390 px has no
sideways scroll; axe finds no serious or critical violation."""

from __future__ import annotations

import json

import pytest

from tests.support.axe import violations

pytestmark = [pytest.mark.browser]

SPEC = """\
slug: checks
title: Checks
mode: autonomous
inputs:
  type: object
  properties:
    base: {type: string}
plan:
  nodes:
    - id: both
      type: parallel
      branches:
        - nodes:
            - id: left
              action: api.request
              params: {url: "http://127.0.0.1:8000/a"}
              outputs: {a: status}
        - nodes:
            - id: right
              action: api.request
              params: {url: "http://127.0.0.1:8000/b"}
              outputs: {b: status}
    - id: gate
      type: approval
      title: Both answered?
      on_reject: stop
      next: end
    - id: stop
      type: fail
      message: stopped
"""


def login(browser, base: str, width: int = 1280):  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=base, viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto("/admin/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_load_state()
    return page


def checked_after(page, before: str) -> None:  # type: ignore[no-untyped-def]
    """Wait until the editor has answered a check newer than `before`."""
    page.wait_for_function(
        "b => { const box = document.getElementById('spec-picture');"
        " return box.dataset.checked && box.dataset.checked !== b; }",
        arg=before,
    )


def test_the_editor_redraws_the_plan_and_shows_a_problem_on_its_node(
    daphne, roles, browser, orm
) -> None:
    from tests.support.fixtures import make_user

    orm(lambda: make_user(roles, "root", None, superuser=True))
    page = login(browser, daphne.url)
    page.goto("/admin/workflows/workflow/add/")
    page.wait_for_selector("#spec-picture[data-checked]")
    assert page.locator('#spec-picture-graph [data-path="confirm"]').count() == 1
    assert page.text_content("#spec-picture-state").startswith("Valid")

    before = page.get_attribute("#spec-picture", "data-checked") or ""
    page.fill("#id_source", SPEC)
    checked_after(page, before)
    graph = page.locator("#spec-picture-graph")
    assert graph.locator('[data-path="both/0/left"]').count() == 1
    assert graph.locator('[data-path="both/1/right"]').count() == 1
    assert graph.locator('[data-path="gate"]').inner_text().count("if rejected → stop") == 1
    assert page.text_content("#spec-picture-state").startswith("Valid")
    assert page.locator(".has-error").count() == 0

    # A typo in an action inside the second branch: the problem is on that box.
    before = page.get_attribute("#spec-picture", "data-checked") or ""
    page.fill(
        "#id_source",
        SPEC.replace(
            "- id: right\n              action: api.request",
            "- id: right\n              action: api.reqest",
        ),
    )
    checked_after(page, before)
    bad = page.locator('#spec-picture-graph [data-path="both/1/right"]')
    assert "has-error" in (bad.get_attribute("class") or "")
    assert "unknown action 'api.reqest'" in bad.locator(".agentos-node-errors").inner_text()
    assert page.locator(".has-error").count() == 1
    assert page.text_content("#spec-picture-state").startswith("1 problem")
    assert page.get_attribute("#id_source", "aria-invalid") == "true"

    # A problem no box holds (the slug) is listed beside the picture.
    before = page.get_attribute("#spec-picture", "data-checked") or ""
    page.fill("#id_source", SPEC.replace("slug: checks", "slug: Bad Slug"))
    checked_after(page, before)
    assert "slug:" in page.inner_text("#spec-problems")
    assert page.is_visible("#spec-problems")
    assert page.locator(".has-error").count() == 0

    # Saving the valid spec leads to its page, drawn the same way.
    page.fill("#id_source", SPEC)
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    assert page.locator('#spec-picture-graph [data-path="both/1/right"]').count() == 1
    bad = violations(page, page.url.replace(daphne.url, ""))
    assert bad == [], json.dumps(bad, indent=1)

    phone = login(browser, daphne.url, width=390)
    phone.goto(page.url.replace(daphne.url, ""))
    phone.wait_for_selector("#spec-picture[data-checked]")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the workflow page is {width} px wide at 390 px"
    add = violations(phone, "/admin/workflows/workflow/add/")
    assert add == [], json.dumps(add, indent=1)
