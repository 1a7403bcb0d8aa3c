"""File actions work on real files and never leave the file roots."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from executors.actions.files import FilesCopy, FilesList, FilesMove, FilesSha256
from executors.base import Action, ActionContext, ActionFailed, Policy
from executors.registry import build_registry
from executors.runner import Runner

from .conftest import MakeContext


def run(action: type[Action], params: dict[str, Any], ctx: ActionContext) -> Any:
    """Run an action in-process, validating params as the child does."""
    return action().run(action.Params.model_validate(params), ctx)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- files.list ---------------------------------------------------------------


def test_list_returns_sorted_relative_files(root: Path, make_ctx: MakeContext) -> None:
    (root / "b.csv").write_text("b")
    (root / "a.csv").write_text("a")
    (root / "notes.txt").write_text("n")
    (root / "sub").mkdir()
    (root / "sub" / "c.csv").write_text("c")

    flat = run(FilesList, {"path": str(root), "pattern": "*.csv"}, make_ctx())
    assert (flat.files, flat.count) == (["a.csv", "b.csv"], 2)

    deep = run(FilesList, {"path": ".", "pattern": "*.csv", "recursive": True}, make_ctx())
    assert deep.files == ["a.csv", "b.csv", "sub/c.csv"]

    everything = run(FilesList, {"path": "."}, make_ctx())
    assert everything.files == ["a.csv", "b.csv", "notes.txt"]  # no directories


def test_list_leaves_out_links_that_escape(
    root: Path, outside: Path, make_ctx: MakeContext
) -> None:
    (root / "mine.txt").write_text("x")
    (root / "theirs.txt").symlink_to(outside / "secret.txt")
    assert run(FilesList, {"path": "."}, make_ctx()).files == ["mine.txt"]


def test_list_refuses_a_file_and_a_bad_pattern(root: Path, make_ctx: MakeContext) -> None:
    (root / "a.txt").write_text("a")
    with pytest.raises(ActionFailed, match="not a directory"):
        run(FilesList, {"path": "a.txt"}, make_ctx())
    for pattern in ("../*", "/etc/*", ""):
        with pytest.raises(ValidationError):
            FilesList.Params.model_validate({"path": ".", "pattern": pattern})


# -- files.copy ---------------------------------------------------------------


def test_copy_writes_the_file_and_reports_its_hash(root: Path, make_ctx: MakeContext) -> None:
    (root / "in.txt").write_bytes(b"hello\n")
    out = run(FilesCopy, {"source": "in.txt", "destination": "out.txt"}, make_ctx())
    assert (root / "out.txt").read_bytes() == b"hello\n"
    assert out.destination == str((root / "out.txt").resolve())
    assert (out.sha256, out.bytes) == (sha(b"hello\n"), 6)
    assert sorted(p.name for p in root.iterdir()) == ["in.txt", "out.txt"]  # no temp left


def test_copy_into_a_second_root_by_absolute_path(
    tmp_path: Path, root: Path, make_ctx: MakeContext
) -> None:
    second = tmp_path / "second"
    second.mkdir()
    (root / "in.txt").write_text("data")
    ctx = make_ctx(files_roots=[str(root), str(second)])
    run(FilesCopy, {"source": "in.txt", "destination": str(second / "copy.txt")}, ctx)
    assert (second / "copy.txt").read_text() == "data"


def test_copy_of_identical_content_is_a_success(root: Path, make_ctx: MakeContext) -> None:
    (root / "in.txt").write_text("same")
    (root / "out.txt").write_text("same")
    before = (root / "out.txt").stat().st_ino
    out = run(FilesCopy, {"source": "in.txt", "destination": "out.txt"}, make_ctx())
    assert out.sha256 == sha(b"same")
    assert (root / "out.txt").stat().st_ino == before  # not rewritten


def test_copy_refuses_to_overwrite_a_different_file(root: Path, make_ctx: MakeContext) -> None:
    (root / "in.txt").write_text("new")
    (root / "out.txt").write_text("old")
    with pytest.raises(ActionFailed, match="overwrite"):
        run(FilesCopy, {"source": "in.txt", "destination": "out.txt"}, make_ctx())
    assert (root / "out.txt").read_text() == "old"

    params = {"source": "in.txt", "destination": "out.txt", "overwrite": True}
    run(FilesCopy, params, make_ctx())
    assert (root / "out.txt").read_text() == "new"


@pytest.mark.parametrize(
    ("destination", "complaint"),
    [
        (".", "file root"),
        ("", "file root"),
        ("dir", "directory"),
        ("missing/out.txt", "does not exist"),
        ("in.txt", "same file"),
    ],
)
def test_copy_refuses_bad_destinations(
    root: Path, make_ctx: MakeContext, destination: str, complaint: str
) -> None:
    (root / "in.txt").write_text("x")
    (root / "dir").mkdir()
    dest = str(root) if destination == "" else destination
    with pytest.raises(ActionFailed, match=complaint):
        run(FilesCopy, {"source": "in.txt", "destination": dest, "create_dirs": False}, make_ctx())


def test_copy_creates_missing_folders_inside_the_root(root: Path, make_ctx: MakeContext) -> None:
    (root / "in.txt").write_text("x")
    run(FilesCopy, {"source": "in.txt", "destination": "a/b/out.txt"}, make_ctx())
    assert (root / "a" / "b" / "out.txt").read_text() == "x"


def test_copy_of_a_missing_source_fails(make_ctx: MakeContext) -> None:
    with pytest.raises(ActionFailed, match="does not exist"):
        run(FilesCopy, {"source": "nope.txt", "destination": "out.txt"}, make_ctx())


# -- files.move ---------------------------------------------------------------


def make_inbox(root: Path) -> Path:
    inbox = root / "inbox"
    inbox.mkdir()
    for name in ("a.pdf", "b.pdf", "c.pdf", "keep.txt"):
        (inbox / name).write_text(name)
    return inbox


def test_move_moves_matching_files_and_creates_the_folder(
    root: Path, make_ctx: MakeContext
) -> None:
    inbox = make_inbox(root)
    params = {"source_dir": "inbox", "pattern": "*.pdf", "destination_dir": "done/2026"}
    out = run(FilesMove, params, make_ctx())
    assert (out.moved, out.count) == (["a.pdf", "b.pdf", "c.pdf"], 3)
    assert sorted(p.name for p in inbox.iterdir()) == ["keep.txt"]
    assert (root / "done" / "2026" / "b.pdf").read_text() == "b.pdf"


def test_move_finishes_a_partial_move_when_rerun(root: Path, make_ctx: MakeContext) -> None:
    inbox = make_inbox(root)
    done = root / "done"
    done.mkdir()
    (inbox / "a.pdf").rename(done / "a.pdf")  # an earlier attempt got this far
    (done / "b.pdf").write_text("b.pdf")  # ...and copied b across devices
    params = {"source_dir": "inbox", "pattern": "*.pdf", "destination_dir": "done"}

    out = run(FilesMove, params, make_ctx())
    assert out.moved == ["b.pdf", "c.pdf"]
    assert sorted(p.name for p in done.iterdir()) == ["a.pdf", "b.pdf", "c.pdf"]
    assert run(FilesMove, params, make_ctx()).count == 0


def test_move_refuses_conflicts_before_moving_anything(root: Path, make_ctx: MakeContext) -> None:
    inbox = make_inbox(root)
    done = root / "done"
    done.mkdir()
    (done / "c.pdf").write_text("a different c")
    params = {"source_dir": "inbox", "pattern": "*.pdf", "destination_dir": "done"}
    with pytest.raises(ActionFailed, match=r"c\.pdf"):
        run(FilesMove, params, make_ctx())
    assert len(list(inbox.glob("*.pdf"))) == 3  # nothing half-applied

    out = run(FilesMove, {**params, "overwrite": True}, make_ctx())
    assert out.count == 3
    assert (done / "c.pdf").read_text() == "c.pdf"


def test_move_keeps_subfolders_of_a_recursive_pattern(root: Path, make_ctx: MakeContext) -> None:
    (root / "in" / "x").mkdir(parents=True)
    (root / "in" / "x" / "deep.csv").write_text("1")
    (root / "in" / "top.csv").write_text("2")
    params = {"source_dir": "in", "pattern": "**/*.csv", "destination_dir": "in/out"}
    assert run(FilesMove, params, make_ctx()).moved == ["top.csv", "x/deep.csv"]
    assert (root / "in" / "out" / "x" / "deep.csv").read_text() == "1"
    assert run(FilesMove, params, make_ctx()).count == 0  # moved files are not re-matched


def test_move_refusals(root: Path, outside: Path, make_ctx: MakeContext) -> None:
    inbox = make_inbox(root)
    base = {"source_dir": "inbox", "pattern": "*.pdf"}
    with pytest.raises(ActionFailed, match="does not exist"):
        run(FilesMove, {**base, "destination_dir": "nope", "create_dirs": False}, make_ctx())
    with pytest.raises(ActionFailed, match="the same"):
        run(FilesMove, {**base, "destination_dir": "inbox"}, make_ctx())
    (inbox / "link.pdf").symlink_to(outside / "secret.txt")
    with pytest.raises(ActionFailed, match="symlink"):
        run(FilesMove, {**base, "destination_dir": "done"}, make_ctx())
    assert len(list(inbox.glob("*.pdf"))) == 4


# -- files.sha256 -------------------------------------------------------------


def test_sha256_hashes_the_file(root: Path, make_ctx: MakeContext) -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)  # more than one read chunk
    (root / "blob.bin").write_bytes(data)
    out = run(FilesSha256, {"path": "blob.bin"}, make_ctx())
    assert (out.sha256, out.bytes) == (sha(data), len(data))


# -- confinement: policy check and run time ------------------------------------


def escapes(root: Path, outside: Path) -> dict[str, str]:
    """Create the escape routes and return a path through each."""
    (root / "inside.txt").write_text("inside")
    (root / "sub").mkdir()
    (root / "link.txt").symlink_to(outside / "secret.txt")
    (root / "linkdir").symlink_to(outside, target_is_directory=True)
    return {
        "dotdot": "sub/../../outside/secret.txt",
        "absolute": str(outside / "secret.txt"),
        "file_symlink": "link.txt",
        "dir_symlink": "linkdir/secret.txt",
    }


Build = Callable[[str], dict[str, Any]]

FILE_CASES: list[tuple[str, Build, str]] = [
    ("files.sha256", lambda p: {"path": p}, "path"),
    ("files.copy", lambda p: {"source": p, "destination": "copy.txt"}, "source"),
    (
        "files.copy",
        lambda p: {"source": "inside.txt", "destination": p, "overwrite": True},
        "destination",
    ),
    ("verify.file_exists", lambda p: {"path": p}, "path"),
    ("verify.file_absent", lambda p: {"path": p}, "path"),
    ("verify.file_contains", lambda p: {"path": p, "text": "outside"}, "path"),
]
DIR_CASES: list[tuple[str, Build, str]] = [
    ("files.list", lambda p: {"path": p}, "path"),
    (
        "files.move",
        lambda p: {"source_dir": p, "pattern": "*", "destination_dir": "in"},
        "source_dir",
    ),
    (
        "files.move",
        lambda p: {"source_dir": "sub", "pattern": "*", "destination_dir": p},
        "destination_dir",
    ),
]


def escape_params(
    kind: str, build: Callable[[str], dict[str, Any]], root: Path, outside: Path, directory: bool
) -> dict[str, Any]:
    path = escapes(root, outside)[kind]
    if directory:
        path = os.path.dirname(path) if kind != "file_symlink" else "link.txt"
    return build(path)


ALL_CASES = [
    pytest.param(name, build, field, kind, directory, id=f"{name}-{field}-{kind}")
    for cases, directory in ((FILE_CASES, False), (DIR_CASES, True))
    for name, build, field in cases
    for kind in ("dotdot", "absolute", "file_symlink", "dir_symlink")
]


@pytest.mark.parametrize(("name", "build", "field", "kind", "directory"), ALL_CASES)
def test_escapes_are_refused_at_policy_check_and_at_run_time(
    name: str,
    build: Callable[[str], dict[str, Any]],
    field: str,
    kind: str,
    directory: bool,
    root: Path,
    outside: Path,
    make_ctx: MakeContext,
    runner: Runner,
) -> None:
    action = build_registry().get(name)
    params = escape_params(kind, build, root, outside, directory)
    ctx = make_ctx()

    errors = action.policy_errors(params, ctx.policy())
    assert [f for f, _ in errors] == [field], errors

    with pytest.raises(ActionFailed):
        run(action, params, ctx)

    result = runner.run(name, params, ctx, timeout_s=30)
    assert result.status == "failed"
    assert "refused by policy" in (result.error or "")
    assert (outside / "secret.txt").read_text() == "outside data\n"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_templated_values_are_left_for_run_time() -> None:
    policy = Policy(files_roots=("/srv/data",))
    params = {"path": "{{ context.report_path }}"}
    assert FilesSha256.policy_errors(params, policy) == []
    assert FilesSha256.policy_errors({"path": "/etc/passwd"}, policy) == [
        ("path", "'/etc/passwd' is outside the allowed file roots")
    ]


def test_without_roots_every_path_is_refused(make_ctx: MakeContext) -> None:
    assert FilesSha256.policy_errors({"path": "a.txt"}, Policy()) == [
        ("path", "no file roots are configured for this run")
    ]
    with pytest.raises(ActionFailed, match="no file roots"):
        run(FilesSha256, {"path": "a.txt"}, make_ctx(files_roots=[]))


def test_links_that_stay_inside_are_followed(root: Path, make_ctx: MakeContext) -> None:
    (root / "real.txt").write_text("ok")
    (root / "alias.txt").symlink_to(root / "real.txt")
    assert run(FilesSha256, {"path": "alias.txt"}, make_ctx()).sha256 == sha(b"ok")


def test_outputs_validate_against_their_models(
    runner: Runner, root: Path, make_ctx: MakeContext
) -> None:
    """The action process validates what run() returns against its Output."""
    (root / "a.txt").write_text("a")
    result = runner.run("files.sha256", {"path": "a.txt"}, make_ctx(), timeout_s=60)
    assert result.status == "succeeded", result.error
    assert set(result.output) == set(FilesSha256.Output.model_fields)
    assert FilesSha256.Output.model_validate(result.output).sha256 == sha(b"a")

    for shape in ("model", "dict"):
        result = runner.run("test.output_shape", {"shape": shape}, make_ctx(), timeout_s=60)
        assert result.status == "succeeded", result.error
        assert result.output == {"count": 3, "label": "three"}

    # An output of the wrong shape is an action bug: a crash naming the fields.
    result = runner.run("test.output_shape", {"shape": "wrong"}, make_ctx(), timeout_s=60)
    assert result.status == "crashed"
    assert "validation errors for Output" in (result.error or "")
    assert "count" in result.error and "label" in result.error
