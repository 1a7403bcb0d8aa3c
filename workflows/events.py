"""Append to and verify the event log, chained with HMAC-SHA256 under the audit key.

Only this module builds events (the scale seeder bulk-inserts what
`build_event` returns). An append must run inside the transaction
that changes the state it records, with the chain head (the run row, or the
system chain row) locked, so the log and the projection never disagree.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.db import router, transaction
from django.utils import timezone

from agentos_common.canonical import canonical_json
from workflows import hooks, sql
from workflows.audit_keys import LEGACY, AuditKeys, audit_keys
from workflows.models import Event, Run, SystemChain

if TYPE_CHECKING:
    from workflows.checkpoints import Checkpoint, Checkpoints

GENESIS = "0" * 64
# Where a run instance keeps the events staged on it until its save.
STAGED = "_staged_events"
SYSTEM_ACTOR = "system"


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _hashed_body(
    *,
    run_id: int | None,
    seq: int,
    type: str,
    actor_label: str,
    data: Any,
    at: datetime,
    correlation_id: str,
    prev_hash: str,
) -> bytes:
    return canonical_json(
        {
            "run": run_id,
            "seq": seq,
            "type": type,
            "actor": actor_label,
            "data": data,
            "at": _utc(at),
            "correlation_id": correlation_id,
            "prev_hash": prev_hash,
        }
    ).encode()


def event_hash(
    *,
    run_id: int | None,
    seq: int,
    type: str,
    actor_label: str,
    data: Any,
    at: datetime,
    correlation_id: str,
    prev_hash: str,
    key_id: str | None = None,
) -> str:
    """Return the HMAC-SHA256 of an event's stored fields under an audit key.

    `key_id` names the key (the current one when None); `LEGACY` ("") gives
    the plain SHA-256 that events written before the log was keyed carry.
    The actor foreign key is left out on purpose: deleting a user sets it to
    NULL, which is legitimate; the denormalised `actor_label` is covered.
    """
    body = _hashed_body(
        run_id=run_id,
        seq=seq,
        type=type,
        actor_label=actor_label,
        data=data,
        at=at,
        correlation_id=correlation_id,
        prev_hash=prev_hash,
    )
    if key_id == LEGACY:
        return hashlib.sha256(body).hexdigest()
    return audit_keys().sign(body, key_id)


def build_event(
    *,
    run_id: int | None,
    seq: int,
    prev_hash: str,
    type: str,
    actor_id: int | None,
    actor_label: str,
    data: dict,
    at: datetime,
    correlation_id: str,
) -> Event:
    """Return an unsaved event that extends a chain at `seq`, signed with the current key.

    Every writer of events goes through here (appends, the scale seeder),
    so there is one way to compute a link of the chain.
    """
    keys = audit_keys()
    digest = event_hash(
        run_id=run_id,
        seq=seq,
        type=type,
        actor_label=actor_label,
        data=data,
        at=at,
        correlation_id=correlation_id,
        prev_hash=prev_hash,
        key_id=keys.current,
    )
    return Event(
        run_id=run_id,
        seq=seq,
        type=type,
        actor_id=actor_id,
        actor_label=actor_label,
        data=data,
        at=at,
        correlation_id=correlation_id,
        prev_hash=prev_hash,
        hash=digest,
        key_id=keys.current,
    )


def _actor_label(actor: Any) -> str:
    if actor is None:
        return SYSTEM_ACTOR
    return actor.get_username()


def _normalise(data: dict) -> dict:
    # Store exactly what was hashed: a JSON round trip turns tuples into lists
    # and rejects values that would not survive the database.
    return json.loads(canonical_json(data))


def event_append(
    *,
    run: Run,
    type: str,
    data: dict | None = None,
    actor: Any = None,
    at: datetime | None = None,
    save_head: bool = True,
) -> Event:
    """Append an event to a run's chain; the caller holds the run row.

    The run's `last_seq`/`last_hash` are updated on the passed instance and,
    with `save_head`, saved at once by a conditional UPDATE. A caller that
    locked the run and saves it afterwards in the same transaction (the
    engine, the run services) passes `save_head=False` and saves one query
    per event. Either way the unique (run, seq) constraint refuses a forked
    chain.
    """
    assert transaction.get_connection().in_atomic_block, "append inside the state change"
    seq = run.last_seq + 1
    event = build_event(
        run_id=run.pk,
        seq=seq,
        prev_hash=run.last_hash or GENESIS,
        type=type,
        actor_id=actor.pk if actor is not None else None,
        actor_label=_actor_label(actor),
        data=_normalise(data or {}),
        at=at or timezone.now(),
        correlation_id=str(run.correlation_id),
    )
    event.run = run  # the caller's instance, not a query for it
    if actor is not None:
        event.actor = actor
    event.save(force_insert=True)
    digest = event.hash
    if save_head:
        # A concurrent append on another connection (PostgreSQL without the
        # row lock) cannot fork the chain: its event with the same seq fails
        # the unique (run, seq) constraint. The head only ever moves forward.
        moved = Run.objects.filter(pk=run.pk, last_seq__lt=seq).update(
            last_seq=seq, last_hash=digest
        )
        if moved != 1:
            raise RuntimeError(f"run {run.pk}: event chain moved underneath seq {seq}")
    run.last_seq, run.last_hash = seq, digest
    _publish_on_commit(event, run)
    return event


def _publish_on_commit(event: Event, run: Run) -> None:
    publish = hooks.event_publisher()
    if publish is not None:  # live clients hear of it once it is committed
        transaction.on_commit(lambda: publish(event=event, run=run))


def event_stage(*, run: Run, type: str, data: dict | None = None) -> Event:
    """Extend a run's chain by a system event that is written with the run.

    For the engine, which holds the run row locked and always saves it
    before its transaction ends: the event is built, hashed and linked
    now (the run's `last_seq`/`last_hash` move on the instance), and
    inserted by the run's next `save()`, together with the other events
    staged meanwhile, in one INSERT (`flush_staged`). The chain, the unique
    (run, seq) guard and the commit are those of `event_append`; only the
    round trips are fewer. A transaction that commits with events still
    staged (a path that forgot to save its run) raises, loudly.
    """
    assert transaction.get_connection().in_atomic_block, "append inside the state change"
    seq = run.last_seq + 1
    event = build_event(
        run_id=run.pk,
        seq=seq,
        prev_hash=run.last_hash or GENESIS,
        type=type,
        actor_id=None,
        actor_label=SYSTEM_ACTOR,
        data=_normalise(data or {}),
        at=timezone.now(),
        correlation_id=str(run.correlation_id),
    )
    event.run = run
    staged = run.__dict__.setdefault(STAGED, [])
    if not staged:
        transaction.on_commit(lambda: _check_flushed(run))
    staged.append(event)
    run.last_seq, run.last_hash = seq, event.hash
    return event


def flush_staged(run: Run) -> None:
    """Insert the run's staged events in one statement (called by `Run.save`)."""
    staged = staged_take(run)
    if not staged:
        return
    alias = router.db_for_write(Event)
    if sql.usable(Event, alias):
        # The same INSERT as `bulk_create`'s, written once (the engine's hot path).
        sql.insert(staged, using=alias)
    else:
        Event.objects.bulk_create(staged)
    staged_written(run, staged)


def staged_take(run: Run) -> list[Event]:
    """Take the run's staged events, for its save to insert (then `staged_written`)."""
    staged: list[Event] = run.__dict__.pop(STAGED, None) or []
    return staged


def staged_written(run: Run, events: list[Event]) -> None:
    """Publish the run's inserted staged events once their transaction commits."""
    for event in events:
        _publish_on_commit(event, run)


def _check_flushed(run: Run) -> None:
    if run.__dict__.get(STAGED):
        raise RuntimeError(f"run {run.pk}: events staged but never saved with the run")


def system_event_append(
    *, type: str, data: dict | None = None, actor: Any = None, correlation_id: str = ""
) -> Event:
    """Append an event to the system chain (events outside any run)."""
    with transaction.atomic():
        head, _ = SystemChain.objects.select_for_update().get_or_create(pk=1)
        seq = head.last_seq + 1
        event = build_event(
            run_id=None,
            seq=seq,
            prev_hash=head.last_hash or GENESIS,
            type=type,
            actor_id=actor.pk if actor is not None else None,
            actor_label=_actor_label(actor),
            data=_normalise(data or {}),
            at=timezone.now(),
            correlation_id=correlation_id,
        )
        event.save(force_insert=True)
        digest = event.hash
        moved = SystemChain.objects.filter(pk=1, last_seq=head.last_seq).update(
            last_seq=seq, last_hash=digest
        )
        if moved != 1:
            raise RuntimeError(f"system chain moved underneath seq {seq}")
        return event


@dataclass(frozen=True)
class ChainProblem:
    """The first place where a chain stops verifying."""

    run_id: int | None
    seq: int | None
    event_id: int | None
    message: str

    def __str__(self) -> str:
        chain = f"run {self.run_id}" if self.run_id is not None else "system chain"
        where = (
            f"event id {self.event_id} (seq {self.seq})" if self.event_id else f"seq {self.seq}"
        )
        return f"{chain}: {where}: {self.message}"


@dataclass(frozen=True)
class CheckpointProblem:
    """A disagreement between the checkpoints and the database, or a bad checkpoint."""

    message: str
    run_id: int | None = None

    def __str__(self) -> str:
        return self.message


def _key_problem(
    event: Event, keys: AuditKeys, *, keyed_before: bool, legacy_upto: int, pinned_upto: int
) -> str | None:
    """Return why the event's key id is not acceptable where it stands, if it is not."""
    if event.key_id == LEGACY:
        if keyed_before:
            return "carries no key id after keyed events: rewritten with a plain SHA-256"
        if not legacy_upto:
            return (
                "carries no key id (a plain SHA-256) and no checkpoint sealed a legacy "
                "boundary for its chain: written without the audit key, or from before "
                "the key and not sealed yet (after upgrading, run manage.py "
                "audit_checkpoint once)"
            )
        if event.seq > legacy_upto:
            return (
                "carries no key id (a plain SHA-256) but lies beyond the legacy boundary "
                f"(seq {legacy_upto}, sealed by the first checkpoint): rewritten or "
                "inserted without the audit key"
            )
        return None
    if event.key_id not in keys.by_id:
        return (
            f"signed with unknown key id {event.key_id!r} (not AGENTOS_AUDIT_KEY or "
            "AGENTOS_AUDIT_OLD_KEYS)"
        )
    if event.key_id != keys.current and event.seq > pinned_upto:
        return (
            f"signed with retired key {event.key_id} beyond the last checkpoint "
            f"(seq {pinned_upto})"
        )
    return None


def verify_chain(
    events: list[Event],
    *,
    run_id: int | None,
    head_seq: int,
    head_hash: str,
    legacy_upto: int = 0,
    pinned_upto: int = 0,
) -> ChainProblem | None:
    """Check one chain's events (ordered by seq) against each other and the head.

    Each event must carry the HMAC of its content under the key its key id
    names. Events without a key id (written before the log was keyed) are
    accepted only up to `legacy_upto`, the seq the first checkpoint sealed;
    events under a retired key only up to `pinned_upto`, the newest
    checkpointed seq. Anyone without the key can write neither past them.
    """
    keys = audit_keys()
    prev = GENESIS
    expected_seq = 1
    keyed_before = False
    for event in events:
        if event.seq != expected_seq:
            return ChainProblem(
                run_id,
                event.seq,
                event.pk,
                f"expected seq {expected_seq}: an event is missing or reordered",
            )
        if event.prev_hash != prev:
            return ChainProblem(
                run_id, event.seq, event.pk, "prev_hash does not match the previous event"
            )
        refused = _key_problem(
            event,
            keys,
            keyed_before=keyed_before,
            legacy_upto=legacy_upto,
            pinned_upto=pinned_upto,
        )
        if refused:
            return ChainProblem(run_id, event.seq, event.pk, refused)
        keyed_before = keyed_before or event.key_id != LEGACY
        digest = event_hash(
            run_id=event.run_id,
            seq=event.seq,
            type=event.type,
            actor_label=event.actor_label,
            data=event.data,
            at=event.at,
            correlation_id=event.correlation_id,
            prev_hash=event.prev_hash,
            key_id=event.key_id,
        )
        if not hmac.compare_digest(digest, event.hash):
            return ChainProblem(
                run_id,
                event.seq,
                event.pk,
                "hash does not match the event's content (changed, or signed with another key)",
            )
        prev = event.hash
        expected_seq += 1
    if expected_seq - 1 != head_seq or (head_seq and prev != head_hash):
        return ChainProblem(
            run_id,
            expected_seq,
            None,
            f"the chain ends at seq {expected_seq - 1} but its head says "
            f"{head_seq}: events were removed at the end",
        )
    return None


def _against_checkpoint(
    events: list[Event], *, run_id: int | None, mark: Checkpoint | None
) -> CheckpointProblem | None:
    """Compare a chain with the newest checkpoint of its head."""
    if mark is None:
        return None
    chain = f"run {run_id}" if run_id is not None else "system chain"
    at = events[mark.seq - 1] if len(events) >= mark.seq else None
    if at is None or at.seq != mark.seq:
        at = next((e for e in events if e.seq == mark.seq), None)
    if at is None:
        last = max((e.seq for e in events if e.seq < mark.seq), default=0)
        return CheckpointProblem(
            f"{chain}: {mark.seq - last} events missing after seq {last} (checkpoint line "
            f"{mark.line} recorded the chain at seq {mark.seq}): the newest events were "
            "deleted and the head rewound",
            run_id,
        )
    if not hmac.compare_digest(at.hash, mark.hash):
        return CheckpointProblem(
            f"{chain}: seq {mark.seq} differs from checkpoint line {mark.line}: the events up "
            f"to seq {mark.seq} were rewritten",
            run_id,
        )
    return None


@dataclass
class LogReport:
    """What `verify_log` found: the problems, and what was checked."""

    problems: list[ChainProblem | CheckpointProblem]
    events: int
    checkpoints: Checkpoints


def _verify_one(
    events: list[Event], *, run_id: int | None, head_seq: int, head_hash: str, marks: Checkpoints
) -> list[ChainProblem | CheckpointProblem]:
    from workflows.checkpoints import chain_name

    name = chain_name(run_id)
    mark = marks.heads.get(name)
    found: list[ChainProblem | CheckpointProblem] = []
    against = _against_checkpoint(events, run_id=run_id, mark=mark)
    if against:
        found.append(against)
    problem = verify_chain(
        events,
        run_id=run_id,
        head_seq=head_seq,
        head_hash=head_hash,
        legacy_upto=marks.sealed.get(name, 0),
        pinned_upto=mark.seq if mark else 0,
    )
    if problem:
        found.append(problem)
    return found


def verify_log() -> LogReport:
    """Verify every chain, and every chain against the checkpoints outside the database."""
    from workflows.checkpoints import SYSTEM_CHAIN, chain_name, checkpoints_read

    marks = checkpoints_read()
    problems: list[ChainProblem | CheckpointProblem] = [
        CheckpointProblem(text) for text in marks.problems
    ]
    present: set[str] = set()
    count = 0
    for run in Run.objects.only("pk", "last_seq", "last_hash").order_by("pk").iterator():
        present.add(chain_name(run.pk))
        events = list(Event.objects.filter(run_id=run.pk).order_by("seq", "id"))
        count += len(events)
        problems += _verify_one(
            events, run_id=run.pk, head_seq=run.last_seq, head_hash=run.last_hash, marks=marks
        )
    head = SystemChain.objects.filter(pk=1).first()
    system_events = list(Event.objects.filter(run__isnull=True).order_by("seq", "id"))
    count += len(system_events)
    problems += _verify_one(
        system_events,
        run_id=None,
        head_seq=head.last_seq if head else 0,
        head_hash=head.last_hash if head else "",
        marks=marks,
    )
    for name, mark in marks.heads.items():
        if name != SYSTEM_CHAIN and name not in present:
            problems.append(
                CheckpointProblem(
                    f"run {name} deleted: checkpoint line {mark.line} recorded its chain at seq "
                    f"{mark.seq}, but the run is gone from the database",
                    int(name),
                )
            )
    orphans = Event.objects.exclude(run__isnull=True).exclude(run__in=Run.objects.all())
    for event in orphans[:1]:
        problems.append(ChainProblem(event.run_id, event.seq, event.pk, "event of no run"))
    return LogReport(problems=problems, events=count, checkpoints=marks)


def verify_all() -> list[ChainProblem | CheckpointProblem]:
    """Verify every chain; return the first problem of each broken chain."""
    return verify_log().problems
