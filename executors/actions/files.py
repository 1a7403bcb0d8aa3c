"""File actions confined to the run's ``files_roots``.

Every path is resolved (symlinks included) and must stay inside one of the
roots; relative paths start at the first root; ``..`` is refused outright.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from executors.actions.paths import (
    check_glob,
    confine,
    confined_policy_errors,
    is_root,
    regular_file,
    sha256_file,
)
from executors.base import Action, ActionContext, ActionFailed, Policy

__all__ = [
    "ACTIONS",
    "ConfinedAction",
    "FilesCopy",
    "FilesList",
    "FilesMove",
    "FilesSha256",
]

CHUNK = 1 << 20


class ConfinedAction(Action):
    """Base for actions whose ``path_fields`` must stay inside the roots."""

    path_fields: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def policy_errors(cls, params: dict[str, Any], policy: Policy) -> list[tuple[str, str]]:
        """Refuse literal paths that resolve outside the file roots."""
        return confined_policy_errors(params, policy, cls.path_fields)


class FilesList(ConfinedAction):
    """List the files in one directory under the roots (reads names only)."""

    name = "files.list"
    description = "List files in a directory matching a glob pattern."
    category = "files"
    risk = "low"
    idempotent = True
    path_fields = ("path",)

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        path: str = Field(description="Directory to list.")
        pattern: str = Field("*", description="Glob pattern, e.g. '*.csv'.")
        recursive: bool = Field(False, description="Also list subdirectories.")

        @field_validator("pattern")
        @classmethod
        def check_pattern(cls, value: str) -> str:
            return check_glob(value)

    class Output(BaseModel):
        files: list[str]
        count: int

    def run(self, params: Params, ctx: ActionContext) -> Output:
        """Return the matching files relative to the listed directory."""
        base = confine(params.path, ctx.files_roots)
        if not base.is_dir():
            raise ActionFailed(f"{params.path!r} is not a directory")
        found = base.rglob(params.pattern) if params.recursive else base.glob(params.pattern)
        files = sorted(
            entry.relative_to(base).as_posix()
            for entry in found
            if entry.is_file() and _inside(entry, ctx.files_roots)
        )
        return self.Output(files=files, count=len(files))


class FilesCopy(ConfinedAction):
    """Copy one file to another path under the roots (writes the copy)."""

    name = "files.copy"
    description = (
        "Copy a file. Refuses to replace a different existing file unless "
        "overwrite is set; an identical file already there counts as done."
    )
    category = "files"
    risk = "medium"
    idempotent = True
    path_fields = ("source", "destination")

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        source: str = Field(description="File to copy.")
        destination: str = Field(description="Path of the copy (a file path).")
        overwrite: bool = Field(False, description="Replace a different file.")
        create_dirs: bool = Field(True, description="Create missing parent folders.")

    class Output(BaseModel):
        destination: str
        sha256: str
        bytes: int

    def run(self, params: Params, ctx: ActionContext) -> Output:
        """Copy atomically and return the copy's path, hash and size."""
        roots = ctx.files_roots
        source = regular_file(confine(params.source, roots), "source")
        target = confine(params.destination, roots)
        _check_file_target(target, roots, params.destination)
        if target == source:
            raise ActionFailed("source and destination are the same file")
        if not target.parent.is_dir():
            if not params.create_dirs:
                raise ActionFailed(f"folder of {params.destination!r} does not exist")
            # The target was confined after resolving, so its parents are too.
            target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            existing, size = sha256_file(target)
            if existing == sha256_file(source)[0]:
                return self.Output(destination=str(target), sha256=existing, bytes=size)
            if not params.overwrite:
                raise ActionFailed(
                    f"{params.destination!r} already exists with different"
                    " content; set overwrite to replace it"
                )
        digest, size = _atomic_copy(source, target)
        return self.Output(destination=str(target), sha256=digest, bytes=size)


class FilesMove(ConfinedAction):
    """Move files matching a glob from one directory to another."""

    name = "files.move"
    description = (
        "Move the files matching a glob from one directory to another, "
        "keeping their relative paths. Re-running finishes a partial move."
    )
    category = "files"
    risk = "medium"
    idempotent = True
    path_fields = ("source_dir", "destination_dir")

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        source_dir: str = Field(description="Directory to move files from.")
        pattern: str = Field(description="Glob pattern, e.g. '*.pdf'.")
        destination_dir: str = Field(description="Directory to move files to.")
        overwrite: bool = Field(False, description="Replace different files.")
        create_dirs: bool = Field(True, description="Create destination_dir.")

        @field_validator("pattern")
        @classmethod
        def check_pattern(cls, value: str) -> str:
            return check_glob(value)

    class Output(BaseModel):
        moved: list[str]
        count: int

    def run(self, params: Params, ctx: ActionContext) -> Output:
        """Move every match, or nothing when a conflict is found first.

        ``moved`` lists the files this attempt moved; after a partial move
        a retry reports only the rest.
        """
        roots = ctx.files_roots
        source_dir = confine(params.source_dir, roots)
        if not source_dir.is_dir():
            raise ActionFailed(f"{params.source_dir!r} is not a directory")
        dest_dir = confine(params.destination_dir, roots)
        if dest_dir == source_dir:
            raise ActionFailed("source_dir and destination_dir are the same")
        if not dest_dir.exists():
            if not params.create_dirs:
                raise ActionFailed(f"{params.destination_dir!r} does not exist")
            dest_dir.mkdir(parents=True)
        elif not dest_dir.is_dir():
            raise ActionFailed(f"{params.destination_dir!r} is not a directory")

        # Plan every move before making any, so a predictable conflict
        # refuses the whole step instead of half-applying it.
        plan: list[tuple[Path, Path, str, bool]] = []
        conflicts: list[str] = []
        for entry in sorted(source_dir.glob(params.pattern)):
            if entry.is_relative_to(dest_dir):
                continue  # already moved into a destination below the source
            rel = entry.relative_to(source_dir).as_posix()
            if entry.is_symlink():
                raise ActionFailed(f"refusing to move symlink {rel!r}")
            if not entry.is_file():
                continue
            source = confine(str(entry), roots)
            target = confine(str(dest_dir / rel), roots)
            same = False
            if target.exists():
                if not target.is_file():
                    raise ActionFailed(f"destination {rel!r} is not a file")
                same = sha256_file(target)[0] == sha256_file(source)[0]
                if not same and not params.overwrite:
                    conflicts.append(rel)
            plan.append((source, target, rel, same))
        if conflicts:
            raise ActionFailed(
                f"{len(conflicts)} file(s) already exist in the destination with"
                f" different content: {', '.join(conflicts[:10])}; set overwrite"
                " to replace them"
            )

        moved = []
        for source, target, rel, same in plan:
            if same:
                # An earlier attempt copied it across devices and died
                # before unlinking: only the removal is left to do.
                source.unlink()
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(source, target)
            moved.append(rel)
        return self.Output(moved=moved, count=len(moved))


class FilesSha256(ConfinedAction):
    """Hash one file under the roots (reads it)."""

    name = "files.sha256"
    description = "Return the SHA-256 and size of a file."
    category = "files"
    risk = "low"
    idempotent = True
    path_fields = ("path",)

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        path: str = Field(description="File to hash.")

    class Output(BaseModel):
        sha256: str
        bytes: int

    def run(self, params: Params, ctx: ActionContext) -> Output:
        """Return the file's hash and size."""
        path = regular_file(confine(params.path, ctx.files_roots), "file")
        digest, size = sha256_file(path)
        return self.Output(sha256=digest, bytes=size)


def _inside(entry: Path, roots: list[str]) -> bool:
    try:
        confine(str(entry), roots)
    except ActionFailed:
        return False
    return True


def _check_file_target(target: Path, roots: list[str], given: str) -> None:
    if is_root(target, roots):
        raise ActionFailed(f"{given!r} is a file root, not a file path")
    if target.is_dir():
        raise ActionFailed(f"{given!r} is a directory; give a file path")


def _atomic_copy(source: Path, target: Path) -> tuple[str, int]:
    """Copy through a temp file and rename, hashing what was written.

    A crash mid-copy leaves the old file (or none), never half a file.
    """
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with open(fd, "wb") as out, source.open("rb") as src:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        shutil.copymode(source, tmp_name)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return digest.hexdigest(), size


ACTIONS: list[type[Action]] = [FilesList, FilesCopy, FilesMove, FilesSha256]
