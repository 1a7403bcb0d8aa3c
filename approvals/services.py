"""Open, close and decide approval requests; every interface decides through here."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import jsonschema
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, connections, router, transaction
from django.utils import timezone

from agentos_common.nul import NUL_MESSAGE, first_nul
from approvals import notifications, slack
from approvals.exceptions import AlreadyDecided, DecisionInvalid, DecisionRefused
from approvals.models import (
    ApprovalRequest,
    Decision,
    OnTimeout,
    RequestKind,
    RequestStatus,
    Resolution,
)
from approvals.permissions import decide_refusal, may_decide_at_all, self_approval_allowed
from approvals.slack.services import message_changed, slack_message_open
from workflows import graph
from workflows.engine.lane_results import lane_resume
from workflows.events import event_append
from workflows.guards import guards_digest
from workflows.models import Run, Step
from workflows.services import (
    missing_required,
    run_continue,
    run_fail,
    run_reroute,
)

DEFAULT_GROUP = "Reviewers"


def request_open(
    *,
    run: Run,
    step: Step | None,
    node_id: str,
    position: int,
    kind: str,
    purpose: str,
    node_path: str = "",
    title: str,
    description: str,
    fields: dict,
    state: dict,
    assign_to: str | None,
    guards: list[dict] | None = None,
    options: dict | None = None,
) -> ApprovalRequest:
    """Open the request a pausing run asks for (inside the engine's transaction)."""
    options = options or {}
    guards = guards or []
    group, _ = Group.objects.get_or_create(name=assign_to or DEFAULT_GROUP)
    due_in = options.get("due_in_s")
    request = ApprovalRequest.objects.create(
        run=run,
        step=step,
        node_id=node_id,
        node_path=node_path or node_id,
        position=position,
        kind=kind,
        purpose=purpose,
        title=title,
        description=description,
        fields=fields,
        state=dict(state),
        assigned_group=group,
        guards=guards,
        digest=guards_digest(guards),
        quorum=int(options.get("quorum") or 1),
        due_at=timezone.now() + timedelta(seconds=due_in) if due_in else None,
        on_timeout=options.get("on_timeout") or "",
        escalate_to=options.get("escalate_to") or "",
    )
    slack_message_open(request=request, options=options)
    transaction.on_commit(lambda: notifications.request_opened(request.pk))
    return request


def requests_close(*, run: Run, actor: Any, reason: str) -> None:
    """Cancel a run's pending requests when the run ends some other way."""
    closing = ApprovalRequest.objects.filter(run=run, status=RequestStatus.PENDING)
    if slack.enabled():
        shown = closing.filter(slack_message__isnull=False).values_list("pk", flat=True)
        for request_id in shown:
            transaction.on_commit(lambda pk=request_id: message_changed(pk))
    closing.update(
        status=RequestStatus.CANCELLED,
        decided_at=timezone.now(),
        comment=reason[:1000],
    )


def approved_guard(
    *, run: Run, node_id: str, position: int, gate: str | None = None, node_path: str = ""
) -> dict | None:
    """Return what was last approved for a run's step (digest, unresolved), or None.

    With `gate`, only an approval of that gate node counts: the gate's own
    request, or the gate asked again for this step (state["gate"]).
    """
    for node, state, guards in _approved(run):
        if gate is not None and gate not in (node, state.get("gate")):
            continue
        for guard in guards:
            if guard.get("node") == node_id and guard.get("position") == position:
                # Inside a block, node ids repeat (a map's items): the path decides.
                if node_path and guard.get("path", node_id) != node_path:
                    continue
                return dict(guard)
    return None


# Where a run instance keeps its approved requests for the rest of a transaction.
_APPROVED = "_approved_requests"


def _approved(run: Run) -> list[tuple[str, dict, list]]:
    """Return the run's approved requests (node, state, guards), newest first.

    Read once per transaction: the engine asks several times while it
    decides one step (is the gate approved, does what was approved still
    match), each time the same query. The engine holds the run's row locked
    and deciders lock it first, so no request of the run is approved before
    the commit, which drops what was kept (so does a new instance: each
    transaction locks the run afresh). Outside a transaction nothing is kept.
    """
    kept = run.__dict__.get(_APPROVED)
    if kept is not None:
        return kept
    found = [
        (request.node_id, request.state, request.guards)
        for request in ApprovalRequest.objects.filter(run=run, status=RequestStatus.APPROVED)
        .exclude(digest="")
        .order_by("-decided_at", "-id")
        .only("guards", "node_id", "state")
    ]
    if transaction.get_connection().in_atomic_block:
        run.__dict__[_APPROVED] = found
        transaction.on_commit(lambda: run.__dict__.pop(_APPROVED, None))
    return found


def validate_values(schema: dict, values: dict) -> dict[str, str]:
    """Return field -> message for values that break the request's schema."""
    errors: dict[str, str] = {}
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    for err in validator.iter_errors(values):
        if err.validator == "required":
            for name in missing_required(err):
                errors.setdefault(name, "This field is required.")
        elif err.validator == "additionalProperties":
            errors.setdefault("values", err.message)
        else:
            name = ".".join(str(p) for p in err.path) or "values"
            errors.setdefault(name, err.message)
    unknown = set(values) - set(schema.get("properties", {}))
    for name in sorted(unknown):
        errors.setdefault(name, "not a field of this request")
    return errors


def _locked_request(request_id: int) -> tuple[Run, ApprovalRequest]:
    """Lock the run first, then re-read the request: deciders queue on the run row."""
    # The run is found through its request and locked in one query (only
    # the run's row: `of`); the request is read again once the lock is held
    # (on PostgreSQL a join's other rows are not re-read after a lock wait).
    # Whom it is assigned to, and who decided it, are named only when a
    # decision is refused: loaded then, not joined into every decision.
    alias = router.db_for_write(Run)
    lock_sql, read_sql = _locked_request_sql(alias)
    found = list(Run.objects.raw(lock_sql, [request_id], using=alias))
    if not found:
        raise DecisionInvalid({"request": f"no request {request_id}"})
    return found[0], list(ApprovalRequest.objects.raw(read_sql, [request_id], using=alias))[0]


# The two statements of `_locked_request` by database alias and vendor (its
# FOR UPDATE is the vendor's): compiled once from the querysets they stand
# for, as the engine's re-lock is (`workflows.engine.base._relock_sql`),
# rather than at every decision.
_locked_sql: dict[tuple[str, str], tuple[str, str]] = {}


def _locked_request_sql(alias: str) -> tuple[str, str]:
    """Return the SQL that locks a request's run, and the SQL that reads the request.

    Compiled inside the caller's transaction (select_for_update refuses to
    compile outside one); the request's primary key is each one's only
    parameter.
    """
    vendor = connections[alias].vendor
    found = _locked_sql.get((alias, vendor))
    if found is None:
        queries = (
            Run.objects.select_for_update(of=("self",))
            .filter(approval_requests__pk=0)
            .order_by()
            .query,
            ApprovalRequest.objects.filter(pk=0).order_by().query,
        )
        compiled = []
        for query in queries:
            sql, params = query.get_compiler(alias).as_sql()
            if list(params) != [0]:
                raise RuntimeError(f"the decision's lock has parameters {params!r}, not a key")
            compiled.append(sql)
        found = _locked_sql[(alias, vendor)] = (compiled[0], compiled[1])
    return found


def approval_decide(
    *,
    request_id: int,
    actor: Any,
    decision: str,
    values: dict | None = None,
    comment: str = "",
    resolution: str = "",
    digest: str | None = None,
) -> ApprovalRequest:
    """Approve (with values) or reject (with a reason) a pending request.

    The run row is locked first, then the request is re-read, so of two
    people deciding at once exactly one wins and the other learns who did.
    `digest`, when given, is the digest of the parameters the person saw;
    a request that now guards something else refuses the decision. A
    request with a quorum stays pending until enough distinct people approve.
    """
    values = dict(values or {})
    comment = (comment or "").strip()
    if decision not in ("approve", "reject"):
        raise DecisionInvalid({"decision": "must be approve or reject"})
    nul = first_nul({"values": values, "comment": comment, "resolution": resolution})
    if nul is not None:
        raise DecisionInvalid({nul: NUL_MESSAGE})
    with transaction.atomic():
        run, request = _locked_request(request_id)
        if request.status != RequestStatus.PENDING:
            raise AlreadyDecided(request)
        refusal = decide_refusal(actor, request, run)
        if refusal:
            raise DecisionRefused(refusal)
        if digest is not None and digest != request.digest:
            raise DecisionInvalid(
                {"digest": "what this request guards changed since you opened it; review it again"}
            )
        # The request's votes so far, read once under the run's lock: whether
        # this person has voted, and (with this vote) who approved it.
        votes = _votes(request)
        if any(voter == actor.pk for voter, _, _ in votes):
            raise DecisionInvalid(
                {
                    "decision": "you already approved this request; another "
                    "person must add the next approval"
                }
            )
        if decision == "reject" and not comment:
            raise DecisionInvalid({"comment": "a reason is required to reject"})
        if decision == "approve":
            _check_approval(request, values, resolution)
        _record_vote(request, actor, decision, values, comment)
        approvers: list[str] = []
        if decision == "approve":
            # In the votes' order (Decision.Meta.ordering): this one is the newest.
            approvers = [label for _, vote, label in votes if vote == "approve"]
            approvers.append(actor.get_username())
            approvals = len(approvers)
            if approvals < request.quorum:
                event_append(
                    run=run,
                    type="approval.vote",
                    actor=actor,
                    data={
                        "request": request.pk,
                        "node": request.node_id,
                        "decision": "approve",
                        "approvals": approvals,
                        "quorum": request.quorum,
                        "digest": request.digest,
                        "comment": comment,
                    },
                )
                return request
        _apply(run, request, actor, decision, values, comment, resolution, approvers=approvers)
    return request


def _check_approval(request: ApprovalRequest, values: dict, resolution: str) -> None:
    if request.kind == RequestKind.UNKNOWN_OUTCOME:
        if resolution not in Resolution.values:
            raise DecisionInvalid({"resolution": "choose retry, mark_done or fail"})
    elif resolution:
        raise DecisionInvalid({"resolution": "only an unknown outcome takes a resolution"})
    if request.kind != RequestKind.UNKNOWN_OUTCOME or resolution == Resolution.MARK_DONE:
        schema = dict(request.fields)
        if resolution == Resolution.MARK_DONE:
            schema["required"] = list(schema.get("properties", {}))
        errors = validate_values(schema, values)
        if errors:
            raise DecisionInvalid(errors)
    elif values:
        raise DecisionInvalid({"values": "no values are asked for this resolution"})


def _votes(request: ApprovalRequest) -> list[tuple[int | None, str, str]]:
    """Return the request's votes so far (actor id, decision, label), oldest first."""
    return list(request.decisions.values_list("actor_id", "decision", "actor_label"))


def _record_vote(
    request: ApprovalRequest, actor: Any, decision: str, values: dict, comment: str
) -> None:
    # No savepoint of its own (two round trips): the caller checked under the
    # run's lock that this person has not decided it, and should the unique
    # constraint still refuse the vote, the error ends the whole decision,
    # whose transaction (or savepoint) is rolled back whole.
    try:
        Decision.objects.create(
            request=request,
            actor=actor,
            actor_label=actor.get_username(),
            decision=decision,
            values=values,
            comment=comment,
            digest=request.digest,
        )
    except IntegrityError:
        raise DecisionInvalid({"decision": "you already decided this request"}) from None


def _apply(
    run: Run,
    request: ApprovalRequest,
    actor: Any,
    decision: str,
    values: dict,
    comment: str,
    resolution: str = "",
    *,
    approvers: list[str] | None = None,
) -> None:
    """Close the request with the decision and move the run on (caller's transaction).

    `approvers`: the labels of the request's approvals when the caller has
    just read them (under the same lock); read here otherwise.
    """
    who = actor.get_username() if actor is not None else "the system"
    purpose = request.purpose
    if approvers is None and decision == "approve":  # a rejection names no approvers
        approvers = list(
            request.decisions.filter(decision="approve").values_list("actor_label", flat=True)
        )
    decided = None
    in_lane = request.state.get("lane") is not None
    if purpose == "approval_node":
        # Readable later as decisions.<node> (conditions, references). Inside
        # a block the lane records it (a map's items each keep their own).
        decided = graph.decision_entry(
            decision=decision, comment=comment, decided_by=who, at=timezone.now().isoformat()
        )
        if not in_lane:
            run.graph = dict(run.graph or {})
            run.graph.setdefault(graph.DECISIONS, {})[request.node_id] = decided
    where = {"node_path": request.node_path} if in_lane else {}
    # The decision's event moves the chain's head on the run instance only
    # (save_head=False): every path below saves the locked run (run_continue,
    # run_fail, run_reroute, lane_resume), head included, one UPDATE fewer;
    # one that raises instead rolls the whole decision back.
    # The webhook and the Slack update are registered last, after the run's
    # task (run_continue and the others queue it on commit): commit hooks run
    # in order, and the next step should not wait for them.
    if decision == "reject":
        _close(request, RequestStatus.REJECTED, actor, comment, values={})
        event_append(
            run=run,
            type="approval.decided",
            actor=actor,
            save_head=False,
            data={
                "request": request.pk,
                "node": request.node_id,
                **where,
                "decision": "reject",
                "comment": comment,
                "digest": request.digest,
                **({"decided": decided} if decided else {}),
            },
        )
        target = (
            graph.reject_target(run.nodes, request.position)
            if purpose == "approval_node" and not in_lane
            else None
        )
        if in_lane:
            lane_resume(
                run=run,
                actor=actor,
                request=request,
                decision="reject",
                values={},
                comment=comment,
                resolution="",
                decided=decided,
            )
        elif target is not None:
            run_reroute(
                run=run,
                actor=actor,
                node_id=request.node_id,
                position=request.position,
                target=target,
            )
        else:
            run_fail(
                run=run, actor=actor, node=request.node_id, error=f"rejected by {who}: {comment}"
            )
        transaction.on_commit(lambda: notifications.request_decided(request.pk))
        return
    _close(request, RequestStatus.APPROVED, actor, comment, values=values, resolution=resolution)
    event_append(
        run=run,
        type="approval.decided",
        actor=actor,
        save_head=False,
        data={
            "request": request.pk,
            "node": request.node_id,
            **where,
            "decision": "approve",
            "values": values,
            "comment": comment,
            "resolution": resolution,
            "digest": request.digest,
            "approvers": approvers,
            **({"decided": decided} if decided else {}),
        },
    )
    if resolution == Resolution.FAIL:
        run_fail(
            run=run,
            actor=actor,
            node=request.node_id,
            error=f"failed by {who} after an unknown outcome: {comment or 'no comment'}",
        )
    elif in_lane:
        lane_resume(
            run=run,
            actor=actor,
            request=request,
            decision="approve",
            values=values,
            comment=comment,
            resolution=resolution,
            decided=decided,
        )
    else:
        run_continue(
            run=run,
            actor=actor,
            node_id=request.node_id,
            position=request.position,
            purpose=purpose,
            values=values,
            state=dict(request.state),
            step_id=request.step_id,
            resolution=resolution,
        )
    transaction.on_commit(lambda: notifications.request_decided(request.pk))


def _close(
    request: ApprovalRequest,
    status: str,
    actor: Any,
    comment: str,
    *,
    values: dict,
    resolution: str = "",
) -> None:
    request.status, request.values, request.comment = status, values, comment
    request.resolution = resolution
    request.decided_by, request.decided_at = actor, timezone.now()
    # Only what deciding changes: not the request's plan-sized fields again.
    request.save(update_fields=_CLOSED_FIELDS)


_CLOSED_FIELDS = ("status", "values", "comment", "resolution", "decided_by", "decided_at")


# --- delegation and time -----------------------------------------------------


def approval_delegate(
    *, request_id: int, actor: Any, to_user: str = "", to_group: str = "", comment: str = ""
) -> ApprovalRequest:
    """Hand a pending request to another person or group (recorded as an event)."""
    if bool(to_user) == bool(to_group):
        raise DecisionInvalid({"to_user": "give either a person or a group"})
    with transaction.atomic():
        run, request = _locked_request(request_id)
        if request.status != RequestStatus.PENDING:
            raise AlreadyDecided(request)
        refusal = decide_refusal(actor, request, run)
        if refusal:
            raise DecisionRefused(refusal)
        if to_user:
            user = get_user_model().objects.filter(username=to_user, is_active=True).first()
            if user is None or not may_decide_at_all(user):
                raise DecisionInvalid(
                    {"to_user": f"{to_user!r} is not a person who may decide requests"}
                )
            if user.pk == run.requester_id and not self_approval_allowed(run):
                raise DecisionInvalid({"to_user": "the requester of a run cannot decide it"})
            request.assigned_user = user
        else:
            group = Group.objects.filter(name=to_group).first()
            if group is None:
                raise DecisionInvalid({"to_group": f"no group {to_group!r}"})
            request.assigned_group, request.assigned_user = group, None
        request.save(update_fields=["assigned_group", "assigned_user"])
        event_append(
            run=run,
            type="approval.delegated",
            actor=actor,
            data={
                "request": request.pk,
                "node": request.node_id,
                "to_user": to_user,
                "to_group": to_group,
                "comment": comment.strip(),
            },
        )
        transaction.on_commit(lambda: notifications.request_opened(request.pk, resend=True))
    return request


def _default_values(schema: dict) -> dict:
    return {
        name: prop["default"]
        for name, prop in schema.get("properties", {}).items()
        if isinstance(prop, dict) and "default" in prop
    }


def requests_expire(*, now: datetime | None = None) -> int:
    """Apply `on_timeout` to every overdue pending request; return how many."""
    now = now or timezone.now()
    due = list(
        ApprovalRequest.objects.filter(status=RequestStatus.PENDING, due_at__lt=now)
        .exclude(on_timeout="")
        .values_list("pk", flat=True)
    )
    for request_id in due:
        with transaction.atomic():
            run, request = _locked_request(request_id)
            if request.status != RequestStatus.PENDING or not request.on_timeout:
                continue
            _expire(run, request)
    return len(due)


def _expire(run: Run, request: ApprovalRequest) -> None:
    policy = request.on_timeout
    event_append(
        run=run,
        type="approval.timed_out",
        data={
            "request": request.pk,
            "node": request.node_id,
            "on_timeout": policy,
            "due_at": request.due_at.isoformat() if request.due_at else None,
        },
    )
    if policy == OnTimeout.ESCALATE:
        group, _ = Group.objects.get_or_create(name=request.escalate_to)
        request.assigned_group, request.assigned_user = group, None
        request.due_at, request.on_timeout = None, ""
        request.save(update_fields=["assigned_group", "assigned_user", "due_at", "on_timeout"])
        event_append(
            run=run,
            type="approval.escalated",
            data={"request": request.pk, "node": request.node_id, "to_group": group.name},
        )
        transaction.on_commit(lambda: notifications.request_opened(request.pk, resend=True))
        return
    if policy == OnTimeout.APPROVE and request.kind != RequestKind.UNKNOWN_OUTCOME:
        values = _default_values(request.fields)
        if not validate_values(request.fields, values):
            _apply(run, request, None, "approve", values, "approved with the defaults: timed out")
            return
    _apply(run, request, None, "reject", {}, "timed out: nobody decided in time")
