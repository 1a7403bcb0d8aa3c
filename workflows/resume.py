"""What a paused run needs to resume: a person's decision the engine honours once."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any


@dataclass(frozen=True)
class ResumeGrant:
    """A decision about one node (at one position) that its next move honours.

    Stored as JSON on the run (`Run.resume_grant`) and, inside a block, on
    each lane; an empty grant is `{}`. It holds:

    - ``approved``: the mode's review of this step passed;
    - ``retry``: a person checked an unknown outcome and asked for another
      attempt (cleared once it is taken);
    - ``resume`` with ``state`` and ``values``: the paused action's own state
      and the values a person gave, handed to its next attempt;
    - ``plan_review``: ``"pending"`` while the plan waits for its review, and
      ``plan_digest``: the digest of the plan a person approved.
    """

    node: str = ""
    position: int | None = None
    approved: bool = False
    retry: bool = False
    resume: bool = False
    state: dict[str, Any] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    plan_review: str = ""
    plan_digest: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ResumeGrant:
        """Read a stored grant; keys it does not know are ignored."""
        data = data or {}
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        for name in ("state", "values"):
            if values.get(name) is None:
                values.pop(name, None)
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """Return the grant as stored: only what differs from an empty grant."""
        empty = ResumeGrant()
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) != getattr(empty, f.name)
        }

    def at(self, node: str, position: int) -> bool:
        """Return whether the grant is about this node at this position."""
        return (self.node, self.position) == (node, position)

    def for_node(self, node: str, position: int) -> ResumeGrant:
        """Return this grant if it is about the node, else a new one for it."""
        return self if self.at(node, position) else ResumeGrant(node=node, position=position)

    def with_(self, **changes: Any) -> ResumeGrant:
        """Return a copy with some fields changed."""
        return replace(self, **changes)
