"""Signed checkpoints of every chain head, in an append-only file outside the database.

A database writer who holds no key can still delete a chain's newest events
and rewind its head, or delete a run with all its rows: what is left verifies.
The checkpoint file remembers where each chain's head stood. Each line is JSON:

    {"v": 1, "n": 7, "at": "...", "key_id": "...", "prev": "<mac of line 6>",
     "high_water": <largest event id seen>, "heads": {"<run id>"|"system": [seq, hash]},
     "mac": "<HMAC-SHA256 of the line without mac>"}

Line 1 records every chain's head (and seals the events written before the
log was keyed); each later line only the chains whose head moved. Lines chain
to each other through `prev`, so an edited, removed or reordered line shows.
A periodic task (`workflows.tasks.write_audit_checkpoint`) appends one line
when something moved: one small write and one fsync per interval, never one
per event.
"""

from __future__ import annotations

import fcntl
import hmac
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from agentos_common.canonical import canonical_json
from workflows.audit_keys import audit_keys
from workflows.events import _utc
from workflows.models import Event, Run, SystemChain

FILE_NAME = "checkpoints.jsonl"
SYSTEM_CHAIN = "system"
VERSION = 1
_TAIL_BLOCK = 64 * 1024
_HEAD_BATCH = 1000


@dataclass(frozen=True)
class Checkpoint:
    """Where a chain's head stood, and which line said so."""

    seq: int
    hash: str
    line: int


@dataclass
class Checkpoints:
    """What the checkpoint file says, as far as its lines verify."""

    lines: int = 0
    heads: dict[str, Checkpoint] = field(default_factory=dict)
    # The legacy boundary: up to which seq a chain may hold events without a
    # key id (those written before the log was keyed), as line 1 recorded.
    sealed: dict[str, int] = field(default_factory=dict)
    newest_at: str = ""
    problems: list[str] = field(default_factory=list)


def chain_name(run_id: int | None) -> str:
    """Return the name a chain has in the checkpoints: its run id, or "system"."""
    return SYSTEM_CHAIN if run_id is None else str(run_id)


def checkpoint_path() -> Path:
    """Return the checkpoint file (AGENTOS_AUDIT_CHECKPOINT_DIR/checkpoints.jsonl)."""
    return Path(settings.AGENTOS_AUDIT_CHECKPOINT_DIR) / FILE_NAME


def _signed_body(record: dict[str, Any]) -> bytes:
    return canonical_json({k: v for k, v in record.items() if k != "mac"}).encode()


def _well_formed(record: Any) -> bool:
    return (
        isinstance(record, dict)
        and isinstance(record.get("n"), int)
        and isinstance(record.get("key_id"), str)
        and isinstance(record.get("prev"), str)
        and isinstance(record.get("mac"), str)
        and isinstance(record.get("heads"), dict)
        and isinstance(record.get("high_water"), int)
        and all(
            isinstance(h, list) and len(h) == 2 and isinstance(h[0], int) and isinstance(h[1], str)
            for h in record["heads"].values()
        )
    )


def _lines(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        yield from handle


def checkpoints_read() -> Checkpoints:
    """Read and verify the checkpoint file; stop at the first line that does not verify.

    Lines before a bad one still count: they were signed and chained, so
    what they recorded stands.
    """
    found = Checkpoints()
    path = checkpoint_path()
    if not path.exists():
        return found
    keys = audit_keys()
    prev_mac, current_seen = "", False
    for number, raw in enumerate(_lines(path), start=1):
        where = f"checkpoint line {number} of {path}"
        try:
            record = json.loads(raw)
        except ValueError:
            record = None
        if not _well_formed(record):
            found.problems.append(f"{where}: unreadable (not a checkpoint)")
            break
        signer = record["key_id"]
        if signer not in keys.by_id:
            found.problems.append(f"{where}: signed with unknown key id {signer!r}")
            break
        if not hmac.compare_digest(record["mac"], keys.sign(_signed_body(record), signer)):
            found.problems.append(f"{where}: signature does not match: the line was edited")
            break
        if record["n"] != number or record["prev"] != prev_mac:
            found.problems.append(
                f"{where}: does not follow line {number - 1}: a line was "
                "removed, inserted or reordered"
            )
            break
        if signer == keys.current:
            current_seen = True
        elif current_seen:
            found.problems.append(
                f"{where}: signed with retired key {signer} after the current key took over"
            )
            break
        for name, (seq, digest) in record["heads"].items():
            found.heads[name] = Checkpoint(seq=seq, hash=digest, line=number)
            if number == 1:
                found.sealed[name] = seq
        found.lines, found.newest_at, prev_mac = number, str(record.get("at", "")), record["mac"]
    return found


def _tail(handle: IO[bytes], count: int) -> list[bytes]:
    """Return the last `count` complete lines of a file, oldest first."""
    end = handle.seek(0, os.SEEK_END)
    data, position = b"", end
    while position > 0 and data.count(b"\n") <= count:
        step = min(_TAIL_BLOCK, position)
        position -= step
        handle.seek(position)
        data = handle.read(step) + data
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:
        raise RuntimeError(
            f"{checkpoint_path()} ends in a partial line; fix it by hand "
            "(see docs/security.md) before more checkpoints can be written"
        )
    return lines[-count:]


def _moved_heads(lower: int) -> tuple[dict[str, list], int]:
    """Return the heads of every chain with an event of id > lower, and the largest id."""
    newest = Event.objects.filter(id__gt=lower).aggregate(m=Max("id"))["m"]
    if newest is None:
        return {}, lower
    chains = set(
        Event.objects.filter(id__gt=lower, id__lte=newest)
        .order_by()
        .values_list("run_id", flat=True)
        .distinct()
    )
    heads: dict[str, list] = {}
    if None in chains:
        chains.discard(None)
        system = SystemChain.objects.filter(pk=1).first()
        if system and system.last_seq:
            heads[SYSTEM_CHAIN] = [system.last_seq, system.last_hash]
    ids = sorted(chains)
    for start in range(0, len(ids), _HEAD_BATCH):
        for pk, seq, digest in (
            Run.objects.filter(pk__in=ids[start : start + _HEAD_BATCH])
            .order_by()
            .values_list("pk", "last_seq", "last_hash")
        ):
            if seq:
                heads[str(pk)] = [seq, digest]
    return heads, newest


def _all_heads() -> tuple[dict[str, list], int]:
    """Return every chain's head and the largest event id (line 1)."""
    newest = Event.objects.aggregate(m=Max("id"))["m"] or 0
    heads: dict[str, list] = {
        str(pk): [seq, digest]
        for pk, seq, digest in Run.objects.filter(last_seq__gt=0)
        .order_by()
        .values_list("pk", "last_seq", "last_hash")
        .iterator(chunk_size=5000)
    }
    system = SystemChain.objects.filter(pk=1).first()
    if system and system.last_seq:
        heads[SYSTEM_CHAIN] = [system.last_seq, system.last_hash]
    return heads, newest


def checkpoint_write() -> int | None:
    """Append a signed line with every chain head that moved; return its number.

    Return None when no head moved. Each call scans the events written since
    the line before the last one, so an event whose transaction committed
    after the previous call had read past its id is still seen.
    """
    path = checkpoint_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = audit_keys()
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # one writer at a time on this host
        tail = [json.loads(line) for line in _tail(handle, 2)]
        if not tail:
            heads, newest = _all_heads()
            number, prev = 1, ""
        else:
            last = tail[-1]
            lower = tail[0]["high_water"] if len(tail) == 2 else last["high_water"]
            heads, newest = _moved_heads(lower)
            heads = {name: head for name, head in heads.items() if last["heads"].get(name) != head}
            if not heads:
                return None
            number, prev = last["n"] + 1, last["mac"]
            newest = max(newest, last["high_water"])
        record: dict[str, Any] = {
            "v": VERSION,
            "n": number,
            "at": _utc(timezone.now()),
            "key_id": keys.current,
            "prev": prev,
            "high_water": newest,
            "heads": heads,
        }
        record["mac"] = keys.sign(_signed_body(record))
        handle.seek(0, os.SEEK_END)
        handle.write(canonical_json(record).encode() + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    return number
