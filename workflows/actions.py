"""TEMPORARY alias of ``workflows.executor_config`` (issue 15's rename).

Kept only so the engine being rewritten on the graph branch (issue 11) keeps
importing ``from workflows import actions`` until it is merged; the lead
points the engine at ``executor_config`` and deletes this file then.
"""

from workflows.executor_config import (  # noqa: F401
    all_secret_values,
    policy,
    registry,
    runner,
    sandbox,
    secrets_for,
)
