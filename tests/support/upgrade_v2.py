"""Release 2 of ``test.versioned`` (tests.support.upgrade_actions)."""

from tests.support.upgrade_actions import V2

ACTIONS = [V2]
