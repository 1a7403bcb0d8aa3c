"""The safe router: bad plans are refused with every problem, and nothing runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflows import executor_config
from workflows.models import Run, Workflow
from workflows.plans import PlanInvalid, validate_plan
from workflows.services import run_create, workflow_create, workflow_update


def problems(plan: object, **kwargs: object) -> set[tuple[str, str]]:
    errors = validate_plan(
        plan, registry=executor_config.registry(), policy=executor_config.policy(), **kwargs
    )
    return {(e.node, e.field) for e in errors}


def test_a_good_plan_has_no_problems(workspace: Path) -> None:
    assert (
        problems(
            {
                "nodes": [
                    {"id": "ls", "action": "files.list", "params": {"path": "."}},
                    {"id": "ok", "type": "approval", "title": "Fine?"},
                    {
                        "id": "ask",
                        "type": "input",
                        "title": "Name?",
                        "fields": {"n": {"type": "string"}},
                    },
                ]
            }
        )
        == set()
    )


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        ("not a plan", {("", "plan")}),
        ({"nodes": []}, {("", "nodes")}),
        ({"nodes": [{"id": "x", "action": "shell.exec", "params": {}}]}, {("x", "action")}),
        (
            {"nodes": [{"id": "x", "action": "files.copy", "params": {"source": "a"}}]},
            {("x", "params.destination")},
        ),
        (
            {"nodes": [{"id": "x", "action": "files.list", "params": {"path": ".", "rm": True}}]},
            {("x", "params.rm")},
        ),
        (
            {
                "nodes": [
                    {
                        "id": "x",
                        "action": "files.list",
                        "params": {"path": ".", "recursive": "very"},
                    }
                ]
            },
            {("x", "params.recursive")},
        ),
        (
            {
                "nodes": [
                    {"id": "x", "action": "files.list", "params": {"path": "."}},
                    {"id": "x", "type": "approval", "title": "t"},
                ]
            },
            {("x", "id")},
        ),
        (
            {"nodes": [{"id": "x", "action": "files.list", "params": {"path": "/etc"}}]},
            {("x", "params.path")},
        ),
        (
            {"nodes": [{"id": "x", "action": "files.list", "params": {"path": "../.."}}]},
            {("x", "params.path")},
        ),
        (
            {
                "nodes": [
                    {"id": "x", "action": "files.list", "params": {"path": "{{ p | upper }}"}}
                ]
            },
            {("x", "params.path")},
        ),
        (
            {"nodes": [{"id": "x", "action": "files.list", "params": {"path": "{% load os %}"}}]},
            {("x", "params.path")},
        ),
        (
            {
                "nodes": [
                    {
                        "id": "x",
                        "action": "files.list",
                        "params": {"path": "."},
                        "outputs": {"n": "nonexistent"},
                    }
                ]
            },
            {("x", "outputs.n")},
        ),
        ({"nodes": [{"id": "x", "type": "gate", "title": "t"}]}, {("x", "type")}),
        (
            {"nodes": [{"id": "x", "type": "approval", "title": "t", "sudo": True}]},
            {("x", "sudo")},
        ),
        (
            {
                "nodes": [
                    {
                        "id": "x",
                        "action": "files.list",
                        "params": {"path": "."},
                        "timeout_s": 100000,
                    }
                ]
            },
            {("x", "timeout_s")},
        ),
        ({"nodes": [{"action": "files.list", "params": {"path": "."}}]}, {("#1", "id")}),
    ],
)
def test_each_kind_of_bad_plan_is_named(
    workspace: Path, plan: object, expected: set[tuple[str, str]]
) -> None:
    assert problems(plan) == expected


def test_every_problem_is_reported_at_once(workspace: Path) -> None:
    found = problems(
        {
            "nodes": [
                {"id": "a", "action": "no.such", "params": {}},
                {"id": "b", "action": "files.copy", "params": {"source": "/etc/passwd", "x": 1}},
                {"id": "a", "type": "approval", "title": "dup"},
            ]
        }
    )
    assert found == {
        ("a", "action"),
        ("b", "params.source"),
        ("b", "params.destination"),
        ("b", "params.x"),
        ("a", "id"),
    }


def test_a_referenced_parameter_is_checked_when_it_is_resolved(workspace: Path) -> None:
    assert (
        problems(
            {"nodes": [{"id": "x", "action": "files.list", "params": {"path": "{{ folder }}"}}]}
        )
        == set()
    )


def test_a_stored_workflow_catches_reference_typos(db, workspace: Path) -> None:
    spec = {
        "slug": "typo",
        "title": "Typo",
        "inputs": {"type": "object", "properties": {"folder": {"type": "string"}}},
        "plan": {
            "nodes": [
                {
                    "id": "ls",
                    "action": "files.list",
                    "params": {"path": "{{ folder }}"},
                    "outputs": {"n": "count"},
                },
                {"id": "ok", "type": "approval", "title": "{{ n }} files in {{ fodler }}?"},
                {
                    "id": "ask",
                    "type": "input",
                    "title": "?",
                    "fields": {"why": {"type": "string"}},
                },
                {
                    "id": "v",
                    "action": "verify.value_equals",
                    "params": {"value": "{{ why }}", "expected": "{{ later }}"},
                },
                {
                    "id": "w",
                    "action": "files.list",
                    "params": {"path": "{{ later }}"},
                    "outputs": {"later": "count"},
                },
            ]
        },
    }
    with pytest.raises(PlanInvalid) as refused:
        workflow_create(raw_spec=spec)
    assert {(e.node, e.field) for e in refused.value.errors} == {
        ("ok", "title"),
        ("v", "params.expected"),
        ("w", "params.path"),
    }
    assert not Workflow.objects.exists()


def test_an_invalid_plan_never_creates_a_run(db, workspace: Path, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    with pytest.raises(PlanInvalid):
        run_create(
            plan={
                "nodes": [
                    {
                        "id": "ok",
                        "action": "test.ledger_append",
                        "params": {"ledger": str(ledger), "line": "x"},
                    },
                    {"id": "bad", "action": "files.list", "params": {"path": "/"}},
                ]
            }
        )
    assert not Run.objects.exists() and not ledger.exists()


def test_a_run_checks_its_context_against_the_inputs(db, workspace: Path) -> None:
    workflow = workflow_create(
        raw_spec={
            "slug": "typed",
            "title": "Typed",
            "inputs": {
                "type": "object",
                "required": ["n"],
                "properties": {"n": {"type": "integer"}},
            },
            "plan": {"nodes": [{"id": "ok", "type": "approval", "title": "{{ n }}?"}]},
        }
    )
    with pytest.raises(PlanInvalid) as missing:
        run_create(workflow=workflow, context={})
    assert [e.field for e in missing.value.errors] == ["context.n"]
    with pytest.raises(PlanInvalid) as wrong:
        run_create(workflow=workflow, context={"n": "three"})
    assert [e.field for e in wrong.value.errors] == ["context.n"]
    assert not Run.objects.exists()


def test_a_changed_spec_is_a_new_version_and_runs_keep_theirs(db, workspace: Path) -> None:
    spec = {
        "slug": "v",
        "title": "V",
        "plan": {"nodes": [{"id": "one", "type": "approval", "title": "first"}]},
    }
    workflow = workflow_create(raw_spec=spec)
    run = run_create(workflow=workflow)
    same = workflow_update(workflow=workflow, raw_spec=spec)
    assert same.version == 1
    spec["plan"]["nodes"][0]["title"] = "second"
    changed = workflow_update(workflow=workflow, raw_spec=spec)
    assert changed.version == 2 and changed.versions.count() == 2
    run.refresh_from_db()
    assert run.workflow_version == 1 and run.plan["nodes"][0]["title"] == "first"
    assert run_create(workflow=changed).plan["nodes"][0]["title"] == "second"
