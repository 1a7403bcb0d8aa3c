"""Release 3 of ``test.versioned`` (tests.support.upgrade_actions)."""

from tests.support.upgrade_actions import V3

ACTIONS = [V3]
