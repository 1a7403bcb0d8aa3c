"""Child workflows for the tests: a child that writes a ledger line, a parent that calls it."""

from __future__ import annotations

from pathlib import Path

from workflows.models import Run


def child_spec(slug: str, ledger: Path, *, line: str = "child", extra: list | None = None) -> dict:
    """A stored workflow with one input `who` that writes a ledger line and outputs `wrote`."""
    return {
        "slug": slug,
        "title": slug.title(),
        "mode": "autonomous",
        "inputs": {
            "type": "object",
            "properties": {"who": {"type": "string"}},
            "required": ["who"],
        },
        "plan": {
            "nodes": [
                *(extra or []),
                {
                    "id": "write",
                    "action": "test.ledger_append",
                    "params": {"ledger": str(ledger), "line": line + "-{{ who }}"},
                    "outputs": {"wrote": "line"},
                },
            ]
        },
    }


def parent_spec(slug: str, child: str, **node: object) -> dict:
    return {
        "slug": slug,
        "title": slug.title(),
        "mode": "autonomous",
        "inputs": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "who": {"type": "string"}},
        },
        "plan": {
            "nodes": [
                {
                    "id": "sub",
                    "type": "workflow",
                    "workflow": child,
                    "inputs": {"who": "{{ name }}"},
                    "outputs": {"wrote": "wrote"},
                    **node,
                }
            ]
        },
    }


def child_run(parent: Run) -> Run:
    return Run.objects.get(parent=parent, parent_node="sub")


def gated_child_spec(slug: str, ledger: Path) -> dict:
    """A child that asks Reviewers before it writes."""
    gate = {"id": "ok", "type": "approval", "title": "Go on for {{ who }}?"}
    return child_spec(slug, ledger, extra=[gate])
