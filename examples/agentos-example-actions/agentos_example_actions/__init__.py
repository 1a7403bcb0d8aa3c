"""Example actions another package adds to AgentOS (docs/actions.md)."""
