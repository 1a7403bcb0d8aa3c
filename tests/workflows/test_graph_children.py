"""Child workflows: a `type: workflow` node starts a real child run.

Validation (unknown child, depth, recursion), the version pinned when the
parent starts, the parent waiting on its child and taking its outputs, a
failed or cancelled child failing the node, cancelling the parent
cancelling its children, and the child's requests naming the parent. Every
action runs in a real subprocess through the real engine.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from approvals.models import ApprovalRequest, RequestStatus
from approvals.services import approval_decide
from tests.support.children import child_run, child_spec, gated_child_spec, parent_spec
from tests.support.runs import advance, pending_request
from workflows import executor_config
from workflows.events import verify_all
from workflows.models import Event, Run, Workflow
from workflows.plans import PlanInvalid, validate_plan
from workflows.services import run_cancel, run_create, workflow_create, workflow_update
from workflows.states import RunStatus

pytestmark = pytest.mark.django_db


def errors_of(plan: dict, **kwargs: object) -> list[tuple[str, str, str]]:
    found = validate_plan(
        plan, registry=executor_config.registry(), policy=executor_config.policy(), **kwargs
    )
    return [(e.node, e.field, e.message) for e in found]


# --- validation ---------------------------------------------------------------


def test_validation_names_unknown_child_bad_inputs_and_outputs(tmp_path: Path, operator) -> None:  # type: ignore[no-untyped-def]
    workflow_create(raw_spec=child_spec("kid", tmp_path / "l"), actor=operator)
    plan = {
        "nodes": [
            {"id": "a", "type": "workflow", "workflow": "nobody", "inputs": {}},
            {
                "id": "b",
                "type": "workflow",
                "workflow": "kid",
                "version": 7,
                "inputs": {"who": "x"},
            },
            {
                "id": "c",
                "type": "workflow",
                "workflow": "kid",
                "inputs": {"whom": "x"},
                "outputs": {"got": "nothing_like_it"},
            },
        ]
    }
    found = errors_of(plan)
    assert ("a", "workflow", "no stored workflow 'nobody'") in found
    assert ("b", "version", "no version 7 of stored workflow 'kid'") in found
    assert ("c", "inputs.whom", "kid has no input 'whom'") in found
    assert ("c", "inputs", "kid requires the input 'who'") in found
    assert any(e[:2] == ("c", "outputs.got") for e in found)


def test_validation_checks_a_child_inside_a_block(tmp_path: Path, operator) -> None:  # type: ignore[no-untyped-def]
    """A child in a branch is checked like one at the top, by its path."""
    workflow_create(raw_spec=child_spec("kid", tmp_path / "l"), actor=operator)
    plan = {
        "nodes": [
            {
                "id": "p",
                "type": "parallel",
                "branches": [
                    {
                        "nodes": [
                            {
                                "id": "s",
                                "type": "workflow",
                                "workflow": "kid",
                                "inputs": {"who": "x"},
                                "outputs": {"wrote": "wrote"},
                            }
                        ]
                    },
                    {
                        "nodes": [
                            {
                                "id": "t",
                                "type": "workflow",
                                "workflow": "kid",
                                "inputs": {"whom": "x"},
                                "outputs": {"wrote": "wrote"},
                            }
                        ]
                    },
                ],
            }
        ]
    }
    fields = {(node, field) for node, field, _ in errors_of(plan)}
    assert fields == {("p/1/t", "inputs.whom"), ("p/1/t", "inputs"), ("p", "branches.1")}
    del plan["nodes"][0]["branches"][1]
    assert errors_of(plan) == []


def test_recursion_through_a_block_is_refused(tmp_path: Path, operator) -> None:  # type: ignore[no-untyped-def]
    """A child inside a block of the child's plan counts for recursion too."""
    workflow_create(raw_spec=child_spec("kid", tmp_path / "l"), actor=operator)
    looping = {
        "id": "each",
        "type": "map",
        "items": "{{ names }}",
        "as": "who",
        "nodes": [{"id": "again", "type": "workflow", "workflow": "kid", "inputs": {"who": "x"}}],
    }
    spec = child_spec("kid", tmp_path / "l")
    spec["inputs"]["properties"]["names"] = {"type": "array"}
    spec["plan"]["nodes"].insert(0, looping)
    with pytest.raises(PlanInvalid) as refused:
        workflow_update(workflow=Workflow.objects.get(slug="kid"), raw_spec=spec, actor=operator)
    assert any("recursion: kid → kid" in e.message for e in refused.value.errors)


def test_validation_refuses_recursion_with_its_path(tmp_path: Path, operator) -> None:  # type: ignore[no-untyped-def]
    workflow_create(raw_spec=child_spec("b-flow", tmp_path / "l"), actor=operator)
    workflow_create(raw_spec=parent_spec("a-flow", "b-flow"), actor=operator)
    b = Workflow.objects.get(slug="b-flow")
    # b-flow now calls a-flow, which calls b-flow: refused, nothing saved.
    looping = parent_spec("b-flow", "a-flow")
    with pytest.raises(PlanInvalid) as caught:
        workflow_update(workflow=b, raw_spec=looping, actor=operator)
    assert [(e.node, e.field) for e in caught.value.errors] == [("sub", "workflow")]
    assert "recursion: b-flow → a-flow → b-flow" in caught.value.errors[0].message
    b.refresh_from_db()
    assert b.version == 1
    # A workflow calling itself is refused when it is saved.
    with pytest.raises(PlanInvalid) as caught:
        workflow_update(workflow=b, raw_spec={**parent_spec("b-flow", "b-flow")}, actor=operator)
    assert any("recursion: b-flow → b-flow" in e.message for e in caught.value.errors)


def test_validation_refuses_children_deeper_than_five(tmp_path: Path, operator) -> None:  # type: ignore[no-untyped-def]
    workflow_create(raw_spec=child_spec("level-5", tmp_path / "l"), actor=operator)
    for level in range(4, 0, -1):
        workflow_create(
            raw_spec=parent_spec(f"level-{level}", f"level-{level + 1}"), actor=operator
        )
    # A plan calling level-1 nests five levels: allowed.
    ok = {
        "nodes": [{"id": "s", "type": "workflow", "workflow": "level-1", "inputs": {"name": "x"}}]
    }
    assert errors_of(ok) == []
    # A stored workflow calling level-1 is the same five levels when it runs.
    workflow_create(raw_spec=parent_spec("level-0", "level-1"), actor=operator)
    # One more level is refused, in a plan and in a stored workflow.
    six = {
        "nodes": [{"id": "s", "type": "workflow", "workflow": "level-0", "inputs": {"name": "x"}}]
    }
    found = errors_of(six)
    assert [(node, field) for node, field, _ in found] == [("s", "workflow")]
    assert "children nest deeper than 5 levels" in found[0][2]
    with pytest.raises(PlanInvalid) as caught:
        workflow_create(raw_spec=parent_spec("level-x", "level-0"), actor=operator)
    assert [(e.node, e.field) for e in caught.value.errors] == [("sub", "workflow")]
    assert not Workflow.objects.filter(slug="level-x").exists()


# --- running a child ----------------------------------------------------------


def test_a_child_runs_as_a_real_run_and_the_parent_takes_its_outputs(  # type: ignore[no-untyped-def]
    tmp_path: Path, operator, django_capture_on_commit_callbacks
) -> None:
    ledger = tmp_path / "ledger"
    workflow_create(raw_spec=child_spec("kid", ledger), actor=operator)
    boss = parent_spec("boss", "kid")
    boss["plan"]["nodes"].append(
        {
            "id": "after",
            "action": "test.ledger_append",
            "params": {"ledger": str(ledger), "line": "after-{{ wrote }}"},
        }
    )
    boss_flow = workflow_create(raw_spec=boss, actor=operator)
    parent = run_create(workflow=boss_flow, context={"name": "ann"}, requester=operator)
    parent = advance(parent)
    assert parent.status == RunStatus.WAITING
    assert parent.current_node == "sub"
    child = child_run(parent)
    assert (child.status, child.workflow.slug, child.workflow_version) == ("queued", "kid", 1)
    assert child.context == {"who": "ann"}
    assert child.requester == operator
    assert not ledger.exists()  # the parent's side ran nothing
    with django_capture_on_commit_callbacks(execute=True):
        child = advance(child)
    assert child.status == RunStatus.SUCCEEDED
    parent.refresh_from_db()
    assert parent.status == RunStatus.QUEUED  # woken by its child's end
    parent = advance(parent)
    assert parent.status == RunStatus.SUCCEEDED, parent.error
    assert parent.context["wrote"] == "child-ann"
    assert ledger.read_text().split() == ["child-ann", "after-child-ann"]
    types = list(Event.objects.filter(run=parent).values_list("type", flat=True))
    assert (
        types.index("child.started") < types.index("child.ended") < types.index("child.finished")
    )
    started = Event.objects.get(run=child, seq=1)
    assert started.data["parent"] == {"run": parent.pk, "node": "sub"}
    assert verify_all() == []


def test_the_child_version_is_pinned_when_the_parent_starts(  # type: ignore[no-untyped-def]
    tmp_path: Path, operator
) -> None:
    ledger = tmp_path / "ledger"
    kid = workflow_create(raw_spec=child_spec("kid", ledger, line="v1"), actor=operator)
    boss_flow = workflow_create(raw_spec=parent_spec("boss", "kid"), actor=operator)
    parent = run_create(workflow=boss_flow, context={"name": "ann"}, requester=operator)
    assert parent.plan["nodes"][0]["version"] == 1
    # A new version of the child saved after the parent started is not what runs.
    workflow_update(workflow=kid, raw_spec=child_spec("kid", ledger, line="v2"), actor=operator)
    parent = advance(parent)
    child = advance(child_run(parent))
    assert child.workflow_version == 1
    assert ledger.read_text().split() == ["v1-ann"]
    # A parent started now pins version 2.
    later = run_create(workflow=boss_flow, context={"name": "bo"}, requester=operator)
    assert later.plan["nodes"][0]["version"] == 2


def test_a_failed_child_fails_the_node_and_the_parent(  # type: ignore[no-untyped-def]
    tmp_path: Path, operator, django_capture_on_commit_callbacks
) -> None:
    ledger = tmp_path / "ledger"
    check = {
        "id": "check",
        "type": "branch",
        "cases": [{"when": "who == 'ann'", "next": "boom"}],
        "default": "write",
    }
    failing = {"id": "boom", "type": "fail", "message": "no laptop for {{ who }}"}
    workflow_create(raw_spec=child_spec("kid", ledger, extra=[check, failing]), actor=operator)
    boss_flow = workflow_create(raw_spec=parent_spec("boss", "kid"), actor=operator)
    parent = advance(run_create(workflow=boss_flow, context={"name": "ann"}, requester=operator))
    with django_capture_on_commit_callbacks(execute=True):
        child = advance(child_run(parent))
    assert child.status == RunStatus.FAILED
    parent = advance(parent)
    assert parent.status == RunStatus.FAILED
    assert parent.error == f"sub: child run #{child.pk} (kid) failed: no laptop for ann"
    assert not ledger.exists()


def test_a_lost_wake_up_is_found_by_the_stale_run_sweep(  # type: ignore[no-untyped-def]
    tmp_path: Path, operator
) -> None:
    """The child ended but its parent was never woken (a worker died after the commit)."""
    from workflows.engine import runs_requeue_stale

    workflow_create(raw_spec=child_spec("kid", tmp_path / "l"), actor=operator)
    boss_flow = workflow_create(raw_spec=parent_spec("boss", "kid"), actor=operator)
    parent = advance(run_create(workflow=boss_flow, context={"name": "ann"}, requester=operator))
    advance(child_run(parent))  # on_commit callbacks do not run here: no wake-up
    parent.refresh_from_db()
    assert parent.status == RunStatus.WAITING
    assert runs_requeue_stale() >= 1
    parent = advance(parent)
    assert parent.status == RunStatus.SUCCEEDED
    assert parent.context["wrote"] == "child-ann"


# --- cancelling ---------------------------------------------------------------


def test_cancelling_the_parent_cancels_children_and_their_requests(  # type: ignore[no-untyped-def]
    tmp_path: Path, operator
) -> None:
    ledger = tmp_path / "ledger"
    workflow_create(raw_spec=gated_child_spec("kid", ledger), actor=operator)
    middle_spec = parent_spec("middle", "kid", inputs={"who": "{{ who }}"})
    workflow_create(raw_spec=middle_spec, actor=operator)
    top_flow = workflow_create(raw_spec=parent_spec("top", "middle"), actor=operator)
    top = advance(run_create(workflow=top_flow, context={"name": "ann"}, requester=operator))
    middle = advance(child_run(top))
    assert middle.status == RunStatus.WAITING, middle.error
    kid = advance(child_run(middle))
    assert (top.status, middle.status, kid.status) == ("waiting", "waiting", "waiting")
    request = pending_request(kid)
    assert request.title == "Go on for ann?"

    run_cancel(run_id=top.pk, actor=operator, reason="not needed")
    for run in (top, middle, kid):
        run.refresh_from_db()
        assert run.status == RunStatus.CANCELLED
    request.refresh_from_db()
    assert request.status == RequestStatus.CANCELLED
    cancelled = Event.objects.get(run=kid, type="run.cancelled")
    assert cancelled.data["parent"] == middle.pk
    assert "parent run" in cancelled.data["reason"]
    assert not ledger.exists()
    assert verify_all() == []


def test_cancelling_a_child_fails_its_parent_naming_it(  # type: ignore[no-untyped-def]
    tmp_path: Path, operator, django_capture_on_commit_callbacks
) -> None:
    workflow_create(raw_spec=gated_child_spec("kid", tmp_path / "l"), actor=operator)
    boss_flow = workflow_create(raw_spec=parent_spec("boss", "kid"), actor=operator)
    parent = advance(run_create(workflow=boss_flow, context={"name": "ann"}, requester=operator))
    child = advance(child_run(parent))
    with django_capture_on_commit_callbacks(execute=True):
        run_cancel(run_id=child.pk, actor=operator, reason="wrong person")
    parent = advance(parent)
    assert parent.status == RunStatus.FAILED
    assert parent.error.startswith(f"sub: child run #{child.pk} (kid) cancelled")


# --- a gate before a child ------------------------------------------------------


def test_a_gate_before_a_child_shows_and_binds_what_the_child_runs(  # type: ignore[no-untyped-def]
    tmp_path: Path, operator, reviewer
) -> None:
    ledger = tmp_path / "ledger"
    workflow_create(raw_spec=child_spec("kid", ledger), actor=operator)
    boss = parent_spec("boss", "kid")
    boss["plan"]["nodes"].insert(0, {"id": "gate", "type": "approval", "title": "Start kid?"})
    boss_flow = workflow_create(raw_spec=boss, actor=operator)
    parent = advance(run_create(workflow=boss_flow, context={"name": "ann"}, requester=operator))
    request = pending_request(parent)
    shown = {g["node"]: g for g in request.guards}
    assert shown["sub"]["action"] == "workflow:kid@1"
    assert shown["sub"]["params"] == {"who": "ann"}
    assert shown["sub/write"]["action"] == "test.ledger_append"
    assert shown["sub/write"]["params"] == {"ledger": str(ledger), "line": "child-ann"}
    assert request.digest

    # The value changes after the approval: the child does not start; the gate asks again.
    approval_decide(request_id=request.pk, actor=reviewer, decision="approve")
    Run.objects.filter(pk=parent.pk).update(context={"name": "mallory"})
    parent = advance(parent)
    assert parent.status == RunStatus.WAITING
    assert not Run.objects.filter(parent=parent, parent_node="sub").exists()
    again = pending_request(parent)
    assert again.state.get("gate") == "gate"
    assert {g["node"]: g["params"] for g in again.guards}["sub/write"]["line"] == "child-mallory"
    assert Event.objects.filter(run=parent, type="approval.digest_mismatch").exists()
    approval_decide(request_id=again.pk, actor=reviewer, decision="approve")
    parent = advance(parent)
    child = advance(child_run(parent))
    assert child.status == RunStatus.SUCCEEDED
    assert ledger.read_text().split() == ["child-mallory"]


# --- the inbox and the API name the parent --------------------------------------


def test_the_inbox_and_the_api_name_the_parent(  # type: ignore[no-untyped-def]
    tmp_path: Path, operator, reviewer, client
) -> None:
    workflow_create(raw_spec=gated_child_spec("kid", tmp_path / "l"), actor=operator)
    boss_flow = workflow_create(raw_spec=parent_spec("boss", "kid"), actor=operator)
    parent = advance(run_create(workflow=boss_flow, context={"name": "ann"}, requester=operator))
    child = advance(child_run(parent))
    request = pending_request(child)
    client.force_login(reviewer)
    line = f"part of Boss run #{parent.pk}"
    inbox = client.get("/inbox/").content.decode()
    assert line in inbox
    page = client.get(f"/inbox/requests/{request.pk}/")
    assert page.status_code == 200
    assert line in page.content.decode()

    client.force_login(operator)
    body = client.get(f"/api/v1/runs/{child.pk}").json()
    assert (body["parent"], body["parent_node"], body["forked_at_seq"]) == (parent.pk, "sub", None)
    body = client.get(f"/api/v1/runs/{parent.pk}").json()
    assert body["children"] == [child.pk]
    assert body["forks"] == []
    assert body["status"] == "waiting"
    assert body["parent"] is None


def test_the_time_machine_folds_a_child_node(  # type: ignore[no-untyped-def]
    tmp_path: Path, operator, django_capture_on_commit_callbacks
) -> None:
    from workflows.replay import state_at

    workflow_create(raw_spec=child_spec("kid", tmp_path / "l"), actor=operator)
    boss_flow = workflow_create(raw_spec=parent_spec("boss", "kid"), actor=operator)
    parent = advance(run_create(workflow=boss_flow, context={"name": "ann"}, requester=operator))
    with django_capture_on_commit_callbacks(execute=True):
        advance(child_run(parent))
    parent = advance(parent)
    seqs = dict(Event.objects.filter(run=parent).values_list("type", "seq"))
    waiting = state_at(parent, seqs["child.started"])
    assert (waiting.status, waiting.current_node) == ("waiting", "sub")
    assert "wrote" not in waiting.context
    after = state_at(parent, seqs["child.finished"])
    assert after.context["wrote"] == "child-ann"
    assert state_at(parent, parent.last_seq).status == "succeeded"


# --- durability: a worker killed while a child runs ------------------------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_kill_9_while_a_child_runs_loses_nothing(cluster, operator, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Real qclusters: SIGKILL while the child's slow step is in flight, then recover.

    The child's completed step is never run again, its interrupted one is
    retried, the parent is woken by the child's end and takes its outputs.
    """
    from tests.support.scale import counts, recover
    from tests.support.waiting import wait_for

    ledger = tmp_path / "ledger"
    slow = {
        "id": "slow",
        "action": "test.slow_first",
        "params": {"ledger": str(ledger), "seconds": 60},
        "retry": {"max_attempts": 3, "backoff_s": 0},
        "outputs": {"attempts": "attempt"},
    }
    kid = child_spec("kid", ledger)
    kid["plan"]["nodes"].append(slow)
    workflow_create(raw_spec=kid, actor=operator)
    boss = parent_spec("boss", "kid")
    boss["plan"]["nodes"][0]["outputs"] = {"wrote": "wrote", "attempts": "attempts"}
    boss["plan"]["nodes"].append(
        {
            "id": "after",
            "action": "test.ledger_append",
            "params": {"ledger": str(ledger), "line": "after"},
        }
    )
    boss_flow = workflow_create(raw_spec=boss, actor=operator)
    parent = run_create(workflow=boss_flow, context={"name": "ann"}, requester=operator)
    first = cluster()
    wait_for(
        lambda: counts(ledger)["start slow 1"] == 1,
        timeout=90,
        message="the child's slow step in flight",
    )
    first.kill()
    cluster()
    child = child_run(parent)
    recover([child.pk, parent.pk], timeout=180)
    parent.refresh_from_db()
    child.refresh_from_db()
    assert child.status == RunStatus.SUCCEEDED, child.error
    assert parent.status == RunStatus.SUCCEEDED, parent.error
    seen = counts(ledger)
    assert seen["child-ann"] == 1, seen  # completed before the kill: never again
    assert seen["end slow 1"] == 0 and seen["end slow 2"] == 1, seen
    assert seen["after"] == 1, seen
    assert parent.context == {"name": "ann", "wrote": "child-ann", "attempts": 2}
    assert Run.objects.filter(parent=parent).count() == 1  # no second child
    assert verify_all() == []


# --- in real Chromium -------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_reviewer_sees_the_parent_in_chromium(  # type: ignore[no-untyped-def]
    daphne,
    operator,
    reviewer,
    tmp_path,
    orm,
    browser,
) -> None:
    """The inbox card and the request page name the parent, at desktop and phone widths."""
    from tests.support.browsers import logged_in

    def setup() -> tuple[Run, ApprovalRequest]:
        workflow_create(raw_spec=gated_child_spec("kid", tmp_path / "l"), actor=operator)
        boss = parent_spec("boss", "kid")
        boss["title"] = "Purchase approval"
        boss_flow = workflow_create(raw_spec=boss, actor=operator)
        parent = advance(
            run_create(workflow=boss_flow, context={"name": "ann"}, requester=operator)
        )
        return parent, pending_request(advance(child_run(parent)))

    parent, request = orm(setup)
    line = f"part of Purchase approval run #{parent.pk}"
    page = logged_in(browser, daphne.url, "reviewer")
    for width, height in ((1280, 800), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto("/inbox/")
        card = page.locator(f"tr[data-request='{request.pk}'] .part-of")
        assert card.text_content() == line
        assert card.is_visible()
        page.screenshot(path=str(tmp_path / f"inbox-{width}.png"), full_page=True)
        page.goto(f"/inbox/requests/{request.pk}/")
        assert line in (page.text_content("#part-of") or "")
        assert page.is_visible("#part-of")
        page.screenshot(path=str(tmp_path / f"request-{width}.png"), full_page=True)
    keep = os.environ.get("AGENTOS_KEEP_SCREENSHOTS")  # a folder to look at them later
    if keep:
        for shot in tmp_path.glob("*.png"):
            shutil.copy(shot, keep)


def test_a_bare_plan_with_a_child_shows_it_in_the_plan_review(  # type: ignore[no-untyped-def]
    tmp_path: Path, operator, reviewer
) -> None:
    """A planner's plan naming a stored workflow: the review shows the child and its inputs."""
    workflow_create(raw_spec=child_spec("kid", tmp_path / "l"), actor=operator)
    plan = {
        "nodes": [
            {"id": "sub", "type": "workflow", "workflow": "kid", "inputs": {"who": "{{ name }}"}}
        ]
    }
    run = run_create(
        plan=plan, context={"name": "ann"}, requester=operator, mode="assisted", review_plan=True
    )
    assert run.plan["nodes"][0]["version"] == 1  # pinned at the start
    run = advance(run)
    review = pending_request(run)
    assert review.purpose == "plan_review"
    assert 'workflow:kid@1 | - | who="{{ name }}"' in review.description
    approval_decide(request_id=review.pk, actor=reviewer, decision="approve")
    run = advance(run)
    assert run.status == RunStatus.WAITING
    assert advance(child_run(run)).status == RunStatus.SUCCEEDED


def test_the_admin_run_page_links_a_child_to_its_parent(  # type: ignore[no-untyped-def]
    tmp_path: Path, operator, superuser, client
) -> None:
    workflow_create(raw_spec=gated_child_spec("kid", tmp_path / "l"), actor=operator)
    boss_flow = workflow_create(raw_spec=parent_spec("boss", "kid"), actor=operator)
    parent = advance(run_create(workflow=boss_flow, context={"name": "ann"}, requester=operator))
    child = child_run(parent)
    client.force_login(superuser)
    page = client.get(f"/admin/workflows/run/{child.pk}/change/")
    assert page.status_code == 200
    assert f">Run {parent.pk}</a> (its node sub)" in page.content.decode()
    page = client.get(f"/admin/workflows/run/{parent.pk}/change/")
    assert page.status_code == 200


# --- children inside blocks -----------------------------------------------------


def mapped_spec(slug: str, child: str, *, before: list | None = None) -> dict:
    """A parent whose map runs the child once per name; results collect its outputs."""
    return {
        "slug": slug,
        "title": slug.title(),
        "mode": "autonomous",
        "inputs": {"type": "object", "properties": {"names": {"type": "array"}}},
        "plan": {
            "nodes": [
                *(before or []),
                {
                    "id": "each",
                    "type": "map",
                    "items": "{{ names }}",
                    "as": "name",
                    "results": "wrote_all",
                    "nodes": [
                        {
                            "id": "sub",
                            "type": "workflow",
                            "workflow": child,
                            "inputs": {"who": "{{ name }}"},
                            "outputs": {"wrote": "wrote"},
                        }
                    ],
                },
            ]
        },
    }


def test_a_child_per_map_item_runs_at_once_and_the_items_wait_for_theirs(  # type: ignore[no-untyped-def]
    tmp_path: Path, operator, django_capture_on_commit_callbacks
) -> None:
    ledger = tmp_path / "ledger"
    workflow_create(raw_spec=child_spec("kid", ledger), actor=operator)
    boss_flow = workflow_create(raw_spec=mapped_spec("boss", "kid"), actor=operator)
    parent = run_create(workflow=boss_flow, context={"names": ["ann", "bob"]}, requester=operator)
    # Pinned when the parent started, inside the map too.
    assert parent.plan["nodes"][0]["nodes"][0]["version"] == 1
    workflow_update(
        workflow=Workflow.objects.get(slug="kid"),
        raw_spec=child_spec("kid", ledger, line="v2"),
        actor=operator,
    )
    parent = advance(parent)
    # Both items started their child; nothing else can go on: the parent waits.
    assert parent.status == RunStatus.WAITING
    kids = list(Run.objects.filter(parent=parent).exclude(parent_node="").order_by("parent_node"))
    assert [(k.parent_node, k.context, k.workflow_version) for k in kids] == [
        ("each[0]/sub", {"who": "ann"}, 1),
        ("each[1]/sub", {"who": "bob"}, 1),
    ]
    started = Event.objects.get(run=kids[1], seq=1).data["parent"]
    assert started == {"run": parent.pk, "node": "sub", "node_path": "each[1]/sub"}
    from workflows.selectors import run_detail

    assert sorted(run_detail(parent)["active_nodes"]) == ["each[0]/sub", "each[1]/sub"]
    paused = Event.objects.filter(run=parent, type="run.paused").last()
    assert sorted(paused.data["waiting"]) == ["each[0]/sub", "each[1]/sub"]
    from workflows.replay import state_at

    assert sorted(state_at(parent, paused.seq).active) == ["each[0]/sub", "each[1]/sub"]
    with django_capture_on_commit_callbacks(execute=True):
        advance(kids[1])
    parent.refresh_from_db()
    assert parent.status == RunStatus.QUEUED  # woken by its item's child
    ended = Event.objects.get(run=parent, type="child.ended")
    assert ended.data["node_path"] == "each[1]/sub"
    parent = advance(parent)
    assert parent.status == RunStatus.WAITING  # item 0 still waits for its child
    with django_capture_on_commit_callbacks(execute=True):
        advance(kids[0])
    parent = advance(parent)
    assert parent.status == RunStatus.SUCCEEDED, parent.error
    finished = Event.objects.filter(run=parent, type="child.finished").last()
    assert state_at(parent, finished.seq).active == []
    # The pinned version ran (v1 writes "child-"), each item took its own child's outputs.
    assert parent.context["wrote_all"] == [{"wrote": "child-ann"}, {"wrote": "child-bob"}]
    assert "wrote" not in parent.context
    assert sorted(ledger.read_text().split()) == ["child-ann", "child-bob"]
    assert verify_all() == []


def test_a_lane_child_lost_wake_up_is_found_by_the_sweep(  # type: ignore[no-untyped-def]
    tmp_path: Path, operator
) -> None:
    from workflows.engine import runs_requeue_stale

    workflow_create(raw_spec=child_spec("kid", tmp_path / "l"), actor=operator)
    boss_flow = workflow_create(raw_spec=mapped_spec("boss", "kid"), actor=operator)
    parent = advance(
        run_create(workflow=boss_flow, context={"names": ["ann"]}, requester=operator)
    )
    advance(Run.objects.get(parent=parent, parent_node="each[0]/sub"))  # no on_commit: no wake-up
    parent.refresh_from_db()
    assert parent.status == RunStatus.WAITING
    assert runs_requeue_stale() >= 1
    parent = advance(parent)
    assert parent.status == RunStatus.SUCCEEDED, parent.error
    assert parent.context["wrote_all"] == [{"wrote": "child-ann"}]


def test_a_failed_child_in_a_branch_fails_the_run_and_cancels_the_others(  # type: ignore[no-untyped-def]
    tmp_path: Path, operator, django_capture_on_commit_callbacks
) -> None:
    ledger = tmp_path / "ledger"
    check = {
        "id": "check",
        "type": "branch",
        "cases": [{"when": "who == 'ann'", "next": "boom"}],
        "default": "write",
    }
    failing = {"id": "boom", "type": "fail", "message": "no laptop for {{ who }}"}
    workflow_create(raw_spec=child_spec("bad", ledger, extra=[check, failing]), actor=operator)
    workflow_create(raw_spec=gated_child_spec("slow", ledger), actor=operator)

    def sub(node_id: str, slug: str) -> dict:
        return {"id": node_id, "type": "workflow", "workflow": slug, "inputs": {"who": "ann"}}

    spec = parent_spec("boss", "bad")
    spec["plan"]["nodes"] = [
        {
            "id": "both",
            "type": "parallel",
            "branches": [{"nodes": [sub("a", "bad")]}, {"nodes": [sub("b", "slow")]}],
        }
    ]
    parent = advance(
        run_create(
            workflow=workflow_create(raw_spec=spec, actor=operator), context={}, requester=operator
        )
    )
    bad = Run.objects.get(parent=parent, parent_node="both/0/a")
    slow = advance(Run.objects.get(parent=parent, parent_node="both/1/b"))
    assert slow.status == RunStatus.WAITING
    request = pending_request(slow)
    with django_capture_on_commit_callbacks(execute=True):
        bad = advance(bad)
    assert bad.status == RunStatus.FAILED
    parent = advance(parent)
    assert parent.status == RunStatus.FAILED
    assert parent.error == f"both/0/a: child run #{bad.pk} (bad) failed: no laptop for ann"
    slow.refresh_from_db()
    request.refresh_from_db()
    assert slow.status == RunStatus.CANCELLED and request.status == RequestStatus.CANCELLED
    assert not ledger.exists()


def test_cancelling_the_parent_cancels_the_children_of_its_lanes(  # type: ignore[no-untyped-def]
    tmp_path: Path, operator
) -> None:
    workflow_create(raw_spec=gated_child_spec("kid", tmp_path / "l"), actor=operator)
    boss_flow = workflow_create(raw_spec=mapped_spec("boss", "kid"), actor=operator)
    parent = advance(
        run_create(workflow=boss_flow, context={"names": ["ann", "bob"]}, requester=operator)
    )
    kids = [advance(k) for k in Run.objects.filter(parent=parent).exclude(parent_node="")]
    assert [k.status for k in kids] == [RunStatus.WAITING, RunStatus.WAITING]
    run_cancel(run_id=parent.pk, actor=operator, reason="not needed")
    for kid in kids:
        kid.refresh_from_db()
        assert kid.status == RunStatus.CANCELLED
        assert pending_or_none(kid) is None


def pending_or_none(run: Run) -> ApprovalRequest | None:
    return ApprovalRequest.objects.filter(run=run, status=RequestStatus.PENDING).first()


def test_a_gate_before_a_map_binds_each_items_child_by_path(  # type: ignore[no-untyped-def]
    tmp_path: Path, operator, reviewer
) -> None:
    ledger = tmp_path / "ledger"
    workflow_create(raw_spec=child_spec("kid", ledger), actor=operator)
    gate = {"id": "gate", "type": "approval", "title": "Start them?"}
    boss_flow = workflow_create(raw_spec=mapped_spec("boss", "kid", before=[gate]), actor=operator)
    parent = advance(
        run_create(workflow=boss_flow, context={"names": ["ann", "bob"]}, requester=operator)
    )
    request = pending_request(parent)
    shown = {g["path"]: g for g in request.guards}
    assert shown["each[0]/sub"]["action"] == "workflow:kid@1"
    assert shown["each[1]/sub"]["params"] == {"who": "bob"}
    assert shown["each[1]/sub/write"]["params"]["line"] == "child-bob"
    approval_decide(request_id=request.pk, actor=reviewer, decision="approve")
    # Item 1's name changes after the approval: only its child is held back.
    Run.objects.filter(pk=parent.pk).update(context={"names": ["ann", "mallory"]})
    parent = advance(parent)
    started = sorted(Run.objects.filter(parent=parent).values_list("parent_node", flat=True))
    assert started == ["each[0]/sub"]
    again = pending_request(parent)
    assert again.node_path == "each[1]/sub" and again.purpose == "gate_again"
    mismatch = Event.objects.get(run=parent, type="approval.digest_mismatch")
    assert mismatch.data["node_path"] == "each[1]/sub"
    approval_decide(request_id=again.pk, actor=reviewer, decision="approve")
    parent = advance(parent)
    kids = Run.objects.filter(parent=parent).order_by("parent_node")
    assert [k.context["who"] for k in kids] == ["ann", "mallory"]
