"""Verify actions fail the step when the world is not as expected."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from executors.actions.verify import (
    VerifyFileAbsent,
    VerifyFileContains,
    VerifyFileExists,
    VerifyValueEquals,
)
from executors.base import ActionFailed
from executors.runner import ActionResult, Runner

from .conftest import MakeContext
from .test_files import run


def test_file_exists_reports_path_hash_and_size(root: Path, make_ctx: MakeContext) -> None:
    (root / "report.txt").write_bytes(b"total: 3\n")
    out = run(VerifyFileExists, {"path": "report.txt"}, make_ctx())
    assert out.path == str((root / "report.txt").resolve())
    assert out.sha256 == hashlib.sha256(b"total: 3\n").hexdigest()
    assert out.bytes == 9
    with pytest.raises(ActionFailed, match="does not exist"):
        run(VerifyFileExists, {"path": "missing.txt"}, make_ctx())
    (root / "folder").mkdir()
    with pytest.raises(ActionFailed, match="not a regular file"):
        run(VerifyFileExists, {"path": "folder"}, make_ctx())


def test_file_absent(root: Path, make_ctx: MakeContext) -> None:
    assert run(VerifyFileAbsent, {"path": "gone.txt"}, make_ctx()).path.endswith("gone.txt")
    (root / "here.txt").write_text("x")
    with pytest.raises(ActionFailed, match="should not"):
        run(VerifyFileAbsent, {"path": "here.txt"}, make_ctx())


def test_file_contains_returns_the_line(root: Path, make_ctx: MakeContext) -> None:
    (root / "log.txt").write_text("start\nuser created: ada\nend\n")
    ctx = make_ctx()
    assert run(VerifyFileContains, {"path": "log.txt", "text": "ada"}, ctx).line == 2
    assert run(VerifyFileContains, {"path": "log.txt", "text": "ada\nend"}, ctx).line == 2
    with pytest.raises(ActionFailed, match='does not contain "grace"'):
        run(VerifyFileContains, {"path": "log.txt", "text": "grace"}, ctx)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("ada", "ada"), (3, 3.0), ({"a": [1, True]}, {"a": [1, True]}), (None, None)],
)
def test_value_equals_passes(value: Any, expected: Any, make_ctx: MakeContext) -> None:
    out = run(VerifyValueEquals, {"value": value, "expected": expected}, make_ctx())
    assert out.value == value


@pytest.mark.parametrize(
    ("value", "expected"),
    [("ada", "grace"), (1, True), ("3", 3), ([1, 2], [2, 1]), ({"a": 0}, {"a": False})],
)
def test_value_equals_fails_showing_both(value: Any, expected: Any, make_ctx: MakeContext) -> None:
    with pytest.raises(ActionFailed) as caught:
        run(VerifyValueEquals, {"value": value, "expected": expected}, make_ctx())
    message = str(caught.value)
    assert "value" in message and "expected" in message


def test_value_equals_through_the_runner(runner: Runner, make_ctx: MakeContext) -> None:
    def check(value: str, expected: str) -> ActionResult:
        params = {"value": value, "expected": expected}
        return runner.run("verify.value_equals", params, make_ctx(), timeout_s=30)

    ok = check("x", "x")
    assert (ok.status, ok.output) == ("succeeded", {"value": "x"})
    bad = check("x", "y")
    assert (bad.status, bad.error) == ("failed", 'value "x" does not equal expected "y"')
