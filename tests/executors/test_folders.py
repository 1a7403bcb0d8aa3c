"""Emptied folders are parked and handed out again; anything with content is removed."""

from __future__ import annotations

import os
from pathlib import Path

from agentos_common.folders import FolderPool, claim, is_empty


def test_an_empty_folder_is_parked_and_renamed_into_place(tmp_path: Path) -> None:
    pool = FolderPool(str(tmp_path / "park"))
    first = tmp_path / "a"
    pool.take(str(first))
    assert first.is_dir() and is_empty(str(first))
    inode = first.stat().st_ino
    pool.give(str(first))
    assert not first.exists()
    second = tmp_path / "b"
    pool.take(str(second))
    assert second.is_dir() and is_empty(str(second))
    assert second.stat().st_ino == inode  # the same folder, not a new one
    assert os.listdir(tmp_path / "park") == []


def test_a_folder_with_content_is_removed_not_parked(tmp_path: Path) -> None:
    pool = FolderPool(str(tmp_path / "park"))
    used = tmp_path / "used"
    (used / "sub").mkdir(parents=True)
    (used / "sub" / "file.txt").write_text("evidence")
    pool.give(str(used))
    assert not used.exists()
    assert not (tmp_path / "park").exists() or os.listdir(tmp_path / "park") == []


def test_the_park_is_bounded(tmp_path: Path) -> None:
    pool = FolderPool(str(tmp_path / "park"), limit=2)
    for index in range(4):
        folder = tmp_path / f"f{index}"
        folder.mkdir()
        pool.give(str(folder))
        assert not folder.exists()
    assert len(os.listdir(tmp_path / "park")) == 2


def test_a_reserved_folder_goes_to_one_claimant_only(tmp_path: Path) -> None:
    pool = FolderPool(str(tmp_path / "park"))
    parked = tmp_path / "p"
    parked.mkdir()
    pool.give(str(parked))
    reserved = pool.reserve()
    assert reserved is not None
    assert pool.reserve() is None  # nothing else is parked
    claim(reserved, str(tmp_path / "child-1"))
    claim(None, str(tmp_path / "child-2"))
    assert (tmp_path / "child-1").is_dir() and (tmp_path / "child-2").is_dir()
    assert os.listdir(tmp_path / "park") == []


def test_a_link_in_a_folders_place_is_removed_never_parked(tmp_path: Path) -> None:
    pool = FolderPool(str(tmp_path / "park"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = tmp_path / "tmp-of-a-child"
    link.symlink_to(elsewhere)
    pool.give(str(link))
    assert not link.exists() and not link.is_symlink()
    assert elsewhere.is_dir()
    assert not (tmp_path / "park").exists() or os.listdir(tmp_path / "park") == []
