"""Release 1 of ``test.versioned`` (tests.support.upgrade_actions)."""

from tests.support.upgrade_actions import V1

ACTIONS = [V1]
