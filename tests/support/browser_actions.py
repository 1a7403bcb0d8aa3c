"""A test-only browser action: open any portal path in the guarded browser.

Import as module ``tests.support.browser_actions``; never list it in
production settings.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from executors.actions.browser.session import open_browser
from executors.base import Action, ActionContext

__all__ = ["ACTIONS"]


class PortalVisit(Action):
    """Open a path below the portal base URL and report the page title."""

    name = "test.portal_visit"
    description = "Open a portal path in Chromium; return the page title."
    category = "test"
    risk = "low"
    idempotent = True
    memory_limit_mb = None

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        path: str = Field(description="Path below the portal base URL, with its query.")

    class Output(BaseModel):
        title: str

    def run(self, params: Any, ctx: ActionContext) -> BaseModel:
        with open_browser(ctx) as session:
            session.goto(ctx.portal_base_url.rstrip("/") + params.path)
            session.screenshot("visit")
            return self.Output(title=session.page.title())


ACTIONS = [PortalVisit]
