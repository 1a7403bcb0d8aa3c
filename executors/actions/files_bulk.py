"""Bulk file actions: organize, move by criteria, rename, clean up.

Each one plans every change first, refuses the whole batch on a conflict
(an existing file is replaced only with ``overwrite``), can stop there
(``dry_run``: the preview an approval shows) and records the SHA-256 of
every file before and after. Paths are confined to the run's roots like
every file action.
"""

from __future__ import annotations

import fnmatch
import string
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from executors.actions._changes import Batch, BatchOutput
from executors.actions.files import ConfinedAction
from executors.actions.paths import check_glob, confine
from executors.base import Action, ActionContext, ActionFailed

__all__ = [
    "ACTIONS",
    "ALLOWED_TEMP_PATTERNS",
    "FilesCleanup",
    "FilesMoveWhere",
    "FilesOrganize",
    "FilesRename",
]

TYPE_FOLDERS: dict[str, tuple[str, ...]] = {
    "Documents": (".pdf", ".doc", ".docx", ".odt", ".txt", ".md", ".rtf", ".ppt", ".pptx"),
    "Spreadsheets": (".xlsx", ".xls", ".ods", ".csv", ".tsv"),
    "Images": (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".bmp", ".tiff", ".heic"),
    "Audio": (".mp3", ".wav", ".flac", ".ogg", ".m4a"),
    "Video": (".mp4", ".mov", ".avi", ".mkv", ".webm"),
    "Archives": (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar"),
    "Code": (".py", ".js", ".ts", ".html", ".css", ".json", ".yaml", ".yml", ".sh", ".sql"),
}
FOLDER_OF = {ext: folder for folder, exts in TYPE_FOLDERS.items() for ext in exts}
TEMP_PATTERNS = [
    "*.tmp",
    "*.temp",
    "~$*",
    ".~lock.*#",
    "*.part",
    "*.crdownload",
    ".DS_Store",
    "Thumbs.db",
]
# What a temporary file may look like: an allow-list, not a deny-list. A
# deny-list of "*" and "*.*" let "?*", "[!x]*" and "**" through, which match
# every file; a pattern a plan gives must be one of these.
ALLOWED_TEMP_PATTERNS = frozenset(
    [*TEMP_PATTERNS, "*.bak", "*.swp", "*.swo", "*~", "desktop.ini", "*.download", "*.partial"]
)


def check_temp_patterns(patterns: list[str]) -> list[str]:
    """Raise ValueError unless every pattern is an allowed temporary-file pattern."""
    for pattern in patterns:
        if pattern not in ALLOWED_TEMP_PATTERNS:
            raise ValueError(
                f"{pattern!r} is not a name pattern for temporary files; allowed: "
                + ", ".join(sorted(ALLOWED_TEMP_PATTERNS))
            )
    return patterns


RENAME_FIELDS = frozenset({"stem", "ext", "n", "date", "name"})
Glob = Annotated[str, AfterValidator(check_glob)]


class _Bulk(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    dry_run: bool = Field(False, description="Only preview: list the changes, make none.")
    overwrite: bool = Field(False, description="Replace existing files with other content.")


def _files(base: Path, pattern: str, recursive: bool, roots: list[str]) -> list[Path]:
    found = base.rglob(pattern) if recursive else base.glob(pattern)
    result = []
    for entry in sorted(found):
        if entry.is_symlink() or not entry.is_file():
            continue
        confine(str(entry), roots)  # a folder link in the tree must not lead out
        result.append(entry)
    return result


def _folder(path: str, roots: list[str], label: str) -> Path:
    base = confine(path, roots)
    if not base.is_dir():
        raise ActionFailed(f"{label} {path!r} is not a directory")
    return base


class FilesOrganize(ConfinedAction):
    """Sort the files of one folder into sub-folders by type or by date."""

    name = "files.organize"
    description = (
        "Sort the files in a folder into sub-folders by type (Documents, Images, ...) or by "
        "modification date (e.g. 2026-03). dry_run previews; nothing is overwritten unless asked."
    )
    category = "files"
    risk = "medium"
    idempotent = True
    path_fields = ("path",)

    class Params(_Bulk):
        path: str = Field(description="Folder to organize.")
        by: Literal["type", "date"] = Field("type", description="Group by type or by date.")
        date_format: Literal["%Y", "%Y-%m", "%Y/%m", "%Y-%m-%d"] = Field(
            "%Y-%m", description="Folder name for by=date."
        )
        pattern: Glob = Field("*", description="Only files matching this glob.")

    Output = BatchOutput

    def run(self, params: Params, ctx: ActionContext) -> BatchOutput:
        """Plan one move per file into its group's folder, then apply."""
        base = _folder(params.path, ctx.files_roots, "path")
        batch = Batch(base, ctx.files_roots, overwrite=params.overwrite)
        for entry in _files(base, params.pattern, False, ctx.files_roots):
            if params.by == "type":
                group = FOLDER_OF.get(entry.suffix.lower(), "Other")
            else:
                mtime = datetime.fromtimestamp(entry.stat().st_mtime, tz=UTC)
                group = mtime.strftime(params.date_format)
            batch.move(entry, base / group / entry.name)
        return batch.run(dry_run=params.dry_run, ctx=ctx)


class FilesMoveWhere(ConfinedAction):
    """Move the files of one folder that meet criteria into another folder."""

    name = "files.move_where"
    description = (
        "Move files matching a glob and optional criteria (age in days, size in bytes) from one "
        "folder to another. dry_run previews; nothing is overwritten unless asked."
    )
    category = "files"
    risk = "medium"
    idempotent = True
    path_fields = ("source_dir", "destination_dir")

    class Params(_Bulk):
        source_dir: str = Field(description="Folder to move files from.")
        destination_dir: str = Field(description="Folder to move files to.")
        pattern: Glob = Field("*", description="Glob pattern, e.g. '*.pdf'.")
        recursive: bool = Field(False, description="Also look in sub-folders (kept).")
        older_than_days: float | None = Field(None, ge=0, description="Modified before.")
        newer_than_days: float | None = Field(None, ge=0, description="Modified within.")
        min_bytes: int | None = Field(None, ge=0)
        max_bytes: int | None = Field(None, ge=0)

    Output = BatchOutput

    def run(self, params: Params, ctx: ActionContext) -> BatchOutput:
        """Select by the criteria, plan the moves, then apply."""
        source = _folder(params.source_dir, ctx.files_roots, "source_dir")
        dest = confine(params.destination_dir, ctx.files_roots)
        if dest == source:
            raise ActionFailed("source_dir and destination_dir are the same")
        if dest.exists() and not dest.is_dir():
            raise ActionFailed(f"{params.destination_dir!r} is not a directory")
        now = time.time()
        batch = Batch(source, ctx.files_roots, overwrite=params.overwrite)
        for entry in _files(source, params.pattern, params.recursive, ctx.files_roots):
            if entry.is_relative_to(dest):
                continue
            info = entry.stat()
            age_days = (now - info.st_mtime) / 86400
            if params.older_than_days is not None and age_days < params.older_than_days:
                continue
            if params.newer_than_days is not None and age_days > params.newer_than_days:
                continue
            if params.min_bytes is not None and info.st_size < params.min_bytes:
                continue
            if params.max_bytes is not None and info.st_size > params.max_bytes:
                continue
            batch.move(entry, dest / entry.relative_to(source))
        return batch.run(dry_run=params.dry_run, ctx=ctx)


def _check_template(template: str) -> str:
    """Allow only plain ``{field}`` / ``{n:03d}`` placeholders from a fixed set.

    ``str.format`` would otherwise follow ``{stem.__class__}`` or
    ``{0[...]}`` into Python objects: a template is data, never code.
    """
    if "/" in template or "\\" in template or template in (".", ".."):
        raise ValueError("template must name a file, not a path")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"template is malformed: {exc}") from None
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in RENAME_FIELDS:
            raise ValueError(
                f"unknown placeholder {{{field}}}; use {', '.join(sorted(RENAME_FIELDS))}"
            )
        if conversion or "{" in (spec or ""):
            raise ValueError("placeholders take no conversion or nested fields")
    return template


class FilesRename(ConfinedAction):
    """Rename the files of one folder after a pattern, in place."""

    name = "files.rename"
    description = (
        "Rename files matching a glob in a folder after a template with {stem}, {ext}, {name}, "
        "{n} (1, 2, ... in name order, e.g. {n:03d}) and {date} (modified, YYYY-MM-DD); or "
        "replace text in names with find/replace. dry_run previews; no overwrite unless asked."
    )
    category = "files"
    risk = "medium"
    idempotent = False
    path_fields = ("path",)

    class Params(_Bulk):
        path: str = Field(description="Folder whose files to rename.")
        pattern: Glob = Field("*", description="Glob of the files to rename.")
        template: str | None = Field(
            None, max_length=255, description="New name, e.g. 'invoice-{n:03d}{ext}'."
        )
        find: str | None = Field(
            None, min_length=1, max_length=255, description="Text to replace in each name."
        )
        replace: str = Field("", max_length=255, description="Replacement for find.")
        start: int = Field(1, ge=0, description="First value of {n}.")

        @field_validator("template")
        @classmethod
        def _template(cls, value: str | None) -> str | None:
            return None if value is None else _check_template(value)

        @field_validator("replace")
        @classmethod
        def _replace(cls, value: str) -> str:
            if "/" in value or "\\" in value:
                raise ValueError("replace must not contain a path separator")
            return value

    Output = BatchOutput

    def run(self, params: Params, ctx: ActionContext) -> BatchOutput:
        """Compute every new name, refuse clashes, then rename."""
        if (params.template is None) == (params.find is None):
            raise ActionFailed("give either template or find (with replace)")
        base = _folder(params.path, ctx.files_roots, "path")
        batch = Batch(base, ctx.files_roots, overwrite=params.overwrite)
        for n, entry in enumerate(
            _files(base, params.pattern, False, ctx.files_roots), start=params.start
        ):
            if params.template is not None:
                mtime = datetime.fromtimestamp(entry.stat().st_mtime, tz=UTC)
                new = params.template.format(
                    stem=entry.stem,
                    ext=entry.suffix,
                    n=n,
                    name=entry.name,
                    date=mtime.strftime("%Y-%m-%d"),
                )
            else:
                assert params.find is not None
                new = entry.name.replace(params.find, params.replace)
            if not new or new in (".", "..") or "/" in new:
                raise ActionFailed(f"{entry.name!r} would be renamed to {new!r}")
            batch.move(entry, base / new, op="rename")
        return batch.run(dry_run=params.dry_run, ctx=ctx)


class FilesCleanup(ConfinedAction):
    """Delete temporary files and remove empty folders below one folder."""

    name = "files.cleanup"
    description = (
        "Delete temporary files (*.tmp, ~$*, .DS_Store, ...) and remove empty folders below a "
        "folder (never the folder itself). dry_run previews."
    )
    category = "files"
    risk = "high"
    idempotent = True
    path_fields = ("path",)

    class Params(_Bulk):
        path: str = Field(description="Folder to clean up.")
        temp_patterns: list[str] = Field(
            default_factory=lambda: list(TEMP_PATTERNS),
            max_length=50,
            description="Names of temporary files, each one of: "
            + ", ".join(sorted(ALLOWED_TEMP_PATTERNS))
            + ".",
        )
        remove_empty_dirs: bool = Field(True, description="Also remove empty folders.")

        @field_validator("temp_patterns")
        @classmethod
        def _patterns(cls, value: list[str]) -> list[str]:
            return check_temp_patterns(value)

    Output = BatchOutput

    def run(self, params: Params, ctx: ActionContext) -> BatchOutput:
        """Plan deletions (files first, then folders that end up empty)."""
        try:
            # Checked again here, in the action's own process: whatever built
            # the parameters, only allow-listed patterns ever delete a file.
            check_temp_patterns(params.temp_patterns)
        except ValueError as exc:
            raise ActionFailed(f"temp_patterns: {exc}") from None
        base = _folder(params.path, ctx.files_roots, "path")
        batch = Batch(base, ctx.files_roots, overwrite=False)
        deleted: set[Path] = set()
        for entry in _files(base, "*", True, ctx.files_roots):
            if any(fnmatch.fnmatchcase(entry.name, p) for p in params.temp_patterns):
                batch.delete(entry)
                deleted.add(entry)
        if params.remove_empty_dirs:
            emptied: set[Path] = set()
            # Deepest first, so a folder holding only empty folders goes too.
            folders = sorted(
                (p for p in base.rglob("*") if p.is_dir() and not p.is_symlink()),
                key=lambda p: len(p.parts),
                reverse=True,
            )
            for folder in folders:
                left = [c for c in folder.iterdir() if c not in deleted and c not in emptied]
                if not left:
                    batch.rmdir(folder)
                    emptied.add(folder)
        return batch.run(dry_run=params.dry_run, ctx=ctx)


ACTIONS: list[type[Action]] = [FilesOrganize, FilesMoveWhere, FilesRename, FilesCleanup]
