"""Built-in actions; each module exposes ``ACTIONS`` for the registry."""
