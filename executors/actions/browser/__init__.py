"""Browser actions that drive the enterprise portals in a real Chromium."""

from executors.actions.browser.portals import ACTIONS

__all__ = ["ACTIONS"]
