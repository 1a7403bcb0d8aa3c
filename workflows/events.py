"""Append to and verify the hash-chained event log.

Only this module writes events. An append must run inside the transaction
that changes the state it records, with the chain head (the run row, or the
system chain row) locked, so the log and the projection never disagree.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from workflows import hooks
from workflows.models import Event, Run, SystemChain

GENESIS = "0" * 64
SYSTEM_ACTOR = "system"


def canonical_json(value: Any) -> str:
    """Return the one JSON encoding the hash covers: sorted keys, no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
) -> str:
    """Return the SHA-256 of an event's stored fields.

    The actor foreign key is left out on purpose: deleting a user sets it to
    NULL, which is legitimate; the denormalised `actor_label` is covered.
    """
    body = canonical_json(
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
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _actor_label(actor: Any) -> str:
    if actor is None:
        return SYSTEM_ACTOR
    return actor.get_username()


def _normalise(data: dict) -> dict:
    # Store exactly what was hashed: a JSON round trip turns tuples into lists
    # and rejects values that would not survive the database.
    return json.loads(canonical_json(data))


def event_append(
    *, run: Run, type: str, data: dict | None = None, actor: Any = None,
    at: datetime | None = None, save_head: bool = True,
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
    data = _normalise(data or {})
    at = at or timezone.now()
    seq = run.last_seq + 1
    label = _actor_label(actor)
    correlation = str(run.correlation_id)
    digest = event_hash(
        run_id=run.pk, seq=seq, type=type, actor_label=label, data=data, at=at,
        correlation_id=correlation, prev_hash=run.last_hash or GENESIS,
    )
    event = Event.objects.create(
        run=run, seq=seq, type=type, actor=actor if actor is not None else None,
        actor_label=label, data=data, at=at, correlation_id=correlation,
        prev_hash=run.last_hash or GENESIS, hash=digest,
    )
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
    publish = hooks.event_publisher()
    if publish is not None:  # live clients hear of it once it is committed
        transaction.on_commit(lambda: publish(event=event, run=run))
    return event


def system_event_append(
    *, type: str, data: dict | None = None, actor: Any = None, correlation_id: str = ""
) -> Event:
    """Append an event to the system chain (events outside any run)."""
    with transaction.atomic():
        head, _ = SystemChain.objects.select_for_update().get_or_create(pk=1)
        data = _normalise(data or {})
        at = timezone.now()
        seq = head.last_seq + 1
        label = _actor_label(actor)
        prev = head.last_hash or GENESIS
        digest = event_hash(
            run_id=None, seq=seq, type=type, actor_label=label, data=data, at=at,
            correlation_id=correlation_id, prev_hash=prev,
        )
        event = Event.objects.create(
            run=None, seq=seq, type=type, actor=actor, actor_label=label, data=data, at=at,
            correlation_id=correlation_id, prev_hash=prev, hash=digest,
        )
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
        where = f"event id {self.event_id} (seq {self.seq})" if self.event_id else f"seq {self.seq}"
        return f"{chain}: {where}: {self.message}"


def verify_chain(events: list[Event], *, run_id: int | None, head_seq: int, head_hash: str
                 ) -> ChainProblem | None:
    """Check one chain's events (ordered by seq) against each other and the head."""
    prev = GENESIS
    expected_seq = 1
    for event in events:
        if event.seq != expected_seq:
            return ChainProblem(run_id, event.seq, event.pk,
                                f"expected seq {expected_seq}: an event is missing or reordered")
        if event.prev_hash != prev:
            return ChainProblem(run_id, event.seq, event.pk,
                                "prev_hash does not match the previous event")
        digest = event_hash(
            run_id=event.run_id, seq=event.seq, type=event.type, actor_label=event.actor_label,
            data=event.data, at=event.at, correlation_id=event.correlation_id,
            prev_hash=event.prev_hash,
        )
        if digest != event.hash:
            return ChainProblem(run_id, event.seq, event.pk,
                                "hash does not match the event's content (changed)")
        prev = event.hash
        expected_seq += 1
    if expected_seq - 1 != head_seq or (head_seq and prev != head_hash):
        return ChainProblem(run_id, expected_seq, None,
                            f"the chain ends at seq {expected_seq - 1} but its head says "
                            f"{head_seq}: events were removed at the end")
    return None


def verify_all() -> list[ChainProblem]:
    """Verify every chain; return the first problem of each broken chain."""
    problems: list[ChainProblem] = []
    for run in Run.objects.only("pk", "last_seq", "last_hash").order_by("pk").iterator():
        events = list(Event.objects.filter(run_id=run.pk).order_by("seq", "id"))
        problem = verify_chain(events, run_id=run.pk, head_seq=run.last_seq,
                               head_hash=run.last_hash)
        if problem:
            problems.append(problem)
    head = SystemChain.objects.filter(pk=1).first()
    system_events = list(Event.objects.filter(run__isnull=True).order_by("seq", "id"))
    problem = verify_chain(
        system_events, run_id=None,
        head_seq=head.last_seq if head else 0, head_hash=head.last_hash if head else "",
    )
    if problem:
        problems.append(problem)
    orphans = Event.objects.exclude(run__isnull=True).exclude(run__in=Run.objects.all())
    for event in orphans[:1]:
        problems.append(ChainProblem(event.run_id, event.seq, event.pk, "event of no run"))
    return problems
