"""Plan a batch of file changes, preview it, then apply it all or nothing.

The bulk file actions (organize, move by criteria, rename, clean up) first
compute every change, check every conflict, and only then touch the disk.
A dry run stops after the check and returns the same list, so what an
approval shows is what the real run does. Each change carries the file's
SHA-256 before and after, and the whole batch is written as a manifest
into the step's evidence folder.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from executors.actions.paths import confine, sha256_file
from executors.base import ActionContext, ActionFailed

__all__ = ["Batch", "Change", "ChangeOut", "BatchOutput"]

Kind = Literal["move", "rename", "delete", "rmdir"]
MAX_CHANGES = 10_000


class ChangeOut(BaseModel):
    """One change as the step's output and the approval's preview show it."""

    op: Kind
    source: str
    target: str = ""
    sha256_before: str = ""
    sha256_after: str = ""


class BatchOutput(BaseModel):
    """What every bulk file action returns."""

    dry_run: bool
    count: int
    changes: list[ChangeOut]


@dataclass
class Change:
    op: Kind
    source: Path
    target: Path | None = None
    sha256_before: str = ""
    sha256_after: str = ""
    replace: bool = False


class Batch:
    """Collect changes under a base folder, refuse conflicts, then apply."""

    def __init__(self, base: Path, roots: list[str], *, overwrite: bool) -> None:
        self.base = base
        self.roots = roots
        self.overwrite = overwrite
        self.changes: list[Change] = []
        self._targets: dict[Path, Path] = {}
        self.conflicts: list[str] = []

    def rel(self, path: Path) -> str:
        """Return ``path`` relative to the batch's base folder."""
        try:
            return path.relative_to(self.base).as_posix()
        except ValueError:
            return str(path)

    def move(self, source: Path, target: Path, op: Kind = "move") -> None:
        """Plan moving (or renaming) a regular file; note any conflict."""
        if source.is_symlink():
            raise ActionFailed(f"refusing to move symlink {self.rel(source)!r}")
        source = confine(str(source), self.roots)
        target = confine(str(target), self.roots)
        if source == target:
            return
        if len(self.changes) >= MAX_CHANGES:
            raise ActionFailed(f"more than {MAX_CHANGES} changes; narrow the selection")
        digest = sha256_file(source)[0]
        if target in self._targets:
            self.conflicts.append(
                f"{self.rel(source)} and {self.rel(self._targets[target])} would both "
                f"become {self.rel(target)}"
            )
            return
        self._targets[target] = source
        replace = False
        if target.exists() or target.is_symlink():
            if not target.is_file() or target.is_symlink():
                self.conflicts.append(f"{self.rel(target)} exists and is not a regular file")
                return
            if sha256_file(target)[0] != digest:
                if not self.overwrite:
                    self.conflicts.append(f"{self.rel(target)} already exists")
                    return
                replace = True
        self.changes.append(Change(op, source, target, digest, digest, replace))

    def delete(self, path: Path) -> None:
        """Plan deleting a regular file."""
        path = confine(str(path), self.roots)
        self.changes.append(Change("delete", path, None, sha256_file(path)[0]))

    def rmdir(self, path: Path) -> None:
        """Plan removing an empty folder."""
        self.changes.append(Change("rmdir", confine(str(path), self.roots)))

    def check(self) -> None:
        """Refuse the whole batch when any change conflicts."""
        if self.conflicts:
            shown = "; ".join(self.conflicts[:10])
            more = f" (and {len(self.conflicts) - 10} more)" if len(self.conflicts) > 10 else ""
            raise ActionFailed(
                f"{len(self.conflicts)} conflict(s), nothing was changed: {shown}{more}. "
                "Set overwrite to replace existing files with different content."
            )

    def apply(self) -> None:
        """Make every change; hash each moved file again where it landed."""
        for change in self.changes:
            if change.op in ("move", "rename"):
                assert change.target is not None
                change.target.parent.mkdir(parents=True, exist_ok=True)
                if change.target.exists() and not change.replace:
                    if sha256_file(change.target)[0] != change.sha256_before:
                        raise ActionFailed(f"{self.rel(change.target)} appeared meanwhile")
                    change.source.unlink()  # an identical file is already there
                elif _same_device(change.source, change.target.parent):
                    os.replace(change.source, change.target)
                else:
                    shutil.move(change.source, change.target)
                change.sha256_after = sha256_file(change.target)[0]
                if change.sha256_after != change.sha256_before:
                    raise ActionFailed(f"{self.rel(change.target)} changed while moving")
            elif change.op == "delete":
                change.source.unlink()
            elif change.op == "rmdir":
                try:
                    change.source.rmdir()
                except OSError:
                    pass  # something landed in it meanwhile: keep it

    def output(self, *, dry_run: bool, ctx: ActionContext) -> BatchOutput:
        """Return the output and write the manifest into the evidence folder."""
        out = BatchOutput(
            dry_run=dry_run,
            count=len(self.changes),
            changes=[
                ChangeOut(
                    op=c.op,
                    source=self.rel(c.source),
                    target=self.rel(c.target) if c.target else "",
                    sha256_before=c.sha256_before,
                    sha256_after="" if dry_run else c.sha256_after,
                )
                for c in self.changes
            ],
        )
        if ctx.evidence_dir and os.path.isdir(ctx.evidence_dir):
            name = "preview.json" if dry_run else "changes.json"
            Path(ctx.evidence_dir, name).write_text(
                json.dumps(out.model_dump(mode="json"), indent=1, sort_keys=True)
            )
        return out

    def run(self, *, dry_run: bool, ctx: ActionContext) -> BatchOutput:
        """Check, then apply unless this is a dry run, and report."""
        self.check()
        if not dry_run:
            self.apply()
        return self.output(dry_run=dry_run, ctx=ctx)


def _same_device(a: Path, b: Path) -> bool:
    return a.stat().st_dev == b.stat().st_dev
