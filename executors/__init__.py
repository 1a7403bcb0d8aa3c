"""Registered, deterministic actions and the process runner that runs them.

Knows nothing of Django: the engine in ``workflows`` imports this package,
never the reverse. Start from ``executors.base`` (the action contract),
``executors.registry`` (the closed catalogue) and ``executors.runner``
(one child process per action run).
"""
