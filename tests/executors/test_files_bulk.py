"""Bulk file actions on real files: preview, no overwrite, hashes as evidence."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from executors.actions.files_bulk import FilesCleanup, FilesMoveWhere, FilesOrganize, FilesRename
from executors.base import Action, ActionContext, ActionFailed
from executors.runner import Runner

from .conftest import MakeContext


def run(action: type[Action], params: dict[str, Any], ctx: ActionContext) -> Any:
    return action().run(action.Params.model_validate_json(json.dumps(params), strict=True), ctx)


def tree(base: Path) -> list[str]:
    return sorted(p.relative_to(base).as_posix() for p in base.rglob("*"))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def downloads(root: Path) -> Path:
    folder = root / "Downloads"
    folder.mkdir()
    for name, data in {
        "a.pdf": b"pdf a",
        "b.PNG": b"png b",
        "c.xlsx": b"xlsx c",
        "d.weird": b"?",
    }.items():
        (folder / name).write_bytes(data)
    return folder


def test_organize_by_type_previews_then_moves_with_hashes(
    downloads: Path, make_ctx: MakeContext, tmp_path: Path
) -> None:
    before = tree(downloads)
    preview = run(FilesOrganize, {"path": "Downloads", "by": "type", "dry_run": True}, make_ctx())
    assert tree(downloads) == before  # a dry run changes nothing
    assert preview.dry_run and preview.count == 4
    assert {(c.source, c.target) for c in preview.changes} == {
        ("a.pdf", "Documents/a.pdf"),
        ("b.PNG", "Images/b.PNG"),
        ("c.xlsx", "Spreadsheets/c.xlsx"),
        ("d.weird", "Other/d.weird"),
    }
    assert json.loads((tmp_path / "evidence" / "preview.json").read_text())["count"] == 4

    done = run(FilesOrganize, {"path": "Downloads", "by": "type"}, make_ctx())
    assert not done.dry_run
    assert [(c.source, c.target) for c in done.changes] == [
        (c.source, c.target) for c in preview.changes
    ]
    assert tree(downloads) == [
        "Documents",
        "Documents/a.pdf",
        "Images",
        "Images/b.PNG",
        "Other",
        "Other/d.weird",
        "Spreadsheets",
        "Spreadsheets/c.xlsx",
    ]
    pdf = next(c for c in done.changes if c.source == "a.pdf")
    assert pdf.sha256_before == pdf.sha256_after == sha(b"pdf a")
    manifest = json.loads((tmp_path / "evidence" / "changes.json").read_text())
    assert manifest["changes"][0]["sha256_after"]


def test_organize_by_date_uses_the_modification_month(
    downloads: Path, make_ctx: MakeContext
) -> None:
    stamp = time.mktime((2025, 3, 15, 12, 0, 0, 0, 0, -1))
    for entry in downloads.iterdir():
        os.utime(entry, (stamp, stamp))
    out = run(FilesOrganize, {"path": "Downloads", "by": "date"}, make_ctx())
    assert {c.target for c in out.changes} == {
        f"2025-03/{n}" for n in ("a.pdf", "b.PNG", "c.xlsx", "d.weird")
    }


def test_a_conflict_refuses_the_whole_batch_unless_overwrite(
    downloads: Path, make_ctx: MakeContext
) -> None:
    (downloads / "Documents").mkdir()
    (downloads / "Documents" / "a.pdf").write_bytes(b"a different pdf")
    before = tree(downloads)
    with pytest.raises(
        ActionFailed,
        match=r"1 conflict\(s\), nothing was changed: "
        r"Documents/a.pdf already exists",
    ):
        run(FilesOrganize, {"path": "Downloads"}, make_ctx())
    assert tree(downloads) == before

    out = run(FilesOrganize, {"path": "Downloads", "overwrite": True}, make_ctx())
    assert out.count == 4
    assert (downloads / "Documents" / "a.pdf").read_bytes() == b"pdf a"


def test_move_where_selects_by_pattern_age_and_size(root: Path, make_ctx: MakeContext) -> None:
    inbox = root / "inbox"
    inbox.mkdir()
    old = time.time() - 40 * 86400
    for name, data in {
        "old.pdf": b"x" * 10,
        "new.pdf": b"y" * 10,
        "big-old.pdf": b"z" * 5000,
        "old.txt": b"t",
    }.items():
        (inbox / name).write_bytes(data)
    for name in ("old.pdf", "big-old.pdf", "old.txt"):
        os.utime(inbox / name, (old, old))
    out = run(
        FilesMoveWhere,
        {
            "source_dir": "inbox",
            "destination_dir": "archive/2025",
            "pattern": "*.pdf",
            "older_than_days": 30,
            "max_bytes": 1000,
        },
        make_ctx(),
    )
    assert [(c.source, c.target) for c in out.changes] == [
        ("old.pdf", str(root / "archive/2025/old.pdf"))
    ]
    assert tree(root / "archive") == ["2025", "2025/old.pdf"]
    assert sorted(p.name for p in inbox.iterdir()) == ["big-old.pdf", "new.pdf", "old.txt"]


def test_rename_by_template_and_by_find_replace(root: Path, make_ctx: MakeContext) -> None:
    notes = root / "Notes"
    notes.mkdir()
    for name in ("b.txt", "a.txt", "keep.md"):
        (notes / name).write_text(name)
    preview = run(
        FilesRename,
        {"path": "Notes", "pattern": "*.txt", "template": "note-{n:03d}{ext}", "dry_run": True},
        make_ctx(),
    )
    assert [(c.source, c.target) for c in preview.changes] == [
        ("a.txt", "note-001.txt"),
        ("b.txt", "note-002.txt"),
    ]
    assert sorted(p.name for p in notes.iterdir()) == ["a.txt", "b.txt", "keep.md"]
    run(
        FilesRename,
        {"path": "Notes", "pattern": "*.txt", "template": "note-{n:03d}{ext}"},
        make_ctx(),
    )
    assert (notes / "note-001.txt").read_text() == "a.txt"
    run(FilesRename, {"path": "Notes", "find": "note-", "replace": "memo-"}, make_ctx())
    assert sorted(p.name for p in notes.iterdir()) == ["keep.md", "memo-001.txt", "memo-002.txt"]


def test_rename_refuses_clashes_and_template_injection(root: Path, make_ctx: MakeContext) -> None:
    notes = root / "Notes"
    notes.mkdir()
    (notes / "a.txt").write_text("a")
    (notes / "b.txt").write_text("b")
    with pytest.raises(ActionFailed, match="would both become same.txt"):
        run(FilesRename, {"path": "Notes", "template": "same{ext}"}, make_ctx())
    for template, message in [
        ("{stem.__class__}", "unknown placeholder"),
        ("{0}", "unknown placeholder"),
        ("{n!r}", "no conversion"),
        ("../{name}", "must name a file"),
    ]:
        with pytest.raises(ValidationError, match=message):
            FilesRename.Params.model_validate({"path": "Notes", "template": template})
    assert sorted(p.name for p in notes.iterdir()) == ["a.txt", "b.txt"]


def test_cleanup_deletes_temp_files_and_empty_folders_only(
    root: Path, make_ctx: MakeContext
) -> None:
    work = root / "work"
    (work / "empty" / "deeper").mkdir(parents=True)
    (work / "only-temp").mkdir()
    (work / "only-temp" / "x.tmp").write_text("t")
    (work / "kept").mkdir()
    (work / "kept" / "report.docx").write_text("r")
    (work / "~$report.docx").write_text("lock")
    preview = run(FilesCleanup, {"path": "work", "dry_run": True}, make_ctx())
    assert {(c.op, c.source) for c in preview.changes} == {
        ("delete", "only-temp/x.tmp"),
        ("delete", "~$report.docx"),
        ("rmdir", "empty/deeper"),
        ("rmdir", "empty"),
        ("rmdir", "only-temp"),
    }
    assert (work / "~$report.docx").exists()
    run(FilesCleanup, {"path": "work"}, make_ctx())
    assert tree(work) == ["kept", "kept/report.docx"]
    with pytest.raises(ValidationError, match="not a name pattern"):
        FilesCleanup.Params.model_validate({"path": "work", "temp_patterns": ["*"]})


def test_cleanup_patterns_are_an_allow_list_in_the_child_too(
    root: Path, make_ctx: MakeContext, runner: Runner
) -> None:
    """Patterns that match every file are refused where the action runs, too."""
    work = root / "work"
    work.mkdir()
    (work / "report.docx").write_text("r")
    (work / "x.tmp").write_text("t")
    for pattern in ("?*", "[!x]*", "**", "*.docx"):
        with pytest.raises(ValidationError, match="not a name pattern for temporary files"):
            FilesCleanup.Params.model_validate({"path": "work", "temp_patterns": [pattern]})
        result = runner.run(
            "files.cleanup", {"path": "work", "temp_patterns": [pattern]}, make_ctx(), timeout_s=30
        )
        assert result.status == "failed", (pattern, result)
        assert "not a name pattern for temporary files" in result.error
        # Built without validation, the action itself still refuses.
        unchecked = FilesCleanup.Params.model_construct(
            path="work",
            temp_patterns=[pattern],
            remove_empty_dirs=True,
            dry_run=False,
            overwrite=False,
        )
        with pytest.raises(ActionFailed, match="temp_patterns"):
            FilesCleanup().run(unchecked, make_ctx())
    assert sorted(p.name for p in work.iterdir()) == ["report.docx", "x.tmp"]
    run(FilesCleanup, {"path": "work", "temp_patterns": ["*.tmp", "*.bak"]}, make_ctx())
    assert sorted(p.name for p in work.iterdir()) == ["report.docx"]


def test_bulk_actions_stay_inside_the_roots_in_the_child(
    root: Path, outside: Path, make_ctx: MakeContext, runner: Runner
) -> None:
    (root / "link").symlink_to(outside)
    (root / "d").mkdir()
    (root / "d" / "escape").symlink_to(outside)
    for action, params in [
        ("files.organize", {"path": "link"}),
        ("files.organize", {"path": str(outside)}),
        ("files.move_where", {"source_dir": "d", "destination_dir": "../x"}),
        ("files.cleanup", {"path": "link/"}),
        ("files.rename", {"path": "d/escape", "template": "{n}{ext}"}),
    ]:
        result = runner.run(action, params, make_ctx(), timeout_s=30)
        assert result.status == "failed", (action, result)
        assert "outside the allowed file roots" in result.error or "'..'" in result.error
    assert (outside / "secret.txt").read_text() == "outside data\n"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_type_confusion_is_refused_in_the_child(
    root: Path, make_ctx: MakeContext, runner: Runner
) -> None:
    (root / "d").mkdir()
    result = runner.run(
        "files.organize", {"path": "d", "dry_run": "yes"}, make_ctx(), timeout_s=30
    )
    assert result.status == "failed"
    assert result.error == "invalid params: dry_run: Input should be a valid boolean"
