"""Fixtures for the executor tests: contexts, file roots and runners."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from executors.base import ActionContext
from executors.registry import BUILTIN_MODULES
from executors.runner import Runner
from executors.scrubbing import PROJECT_DIR

TEST_MODULES = (*BUILTIN_MODULES, "tests.support.actions")
PYTHON_PATH = (PROJECT_DIR,)

MakeContext = Callable[..., ActionContext]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Return an empty directory that is the run's only file root."""
    path = tmp_path / "root"
    path.mkdir()
    return path


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """Return a directory beside the root, which actions must not reach."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "secret.txt").write_text("outside data\n")
    return path


@pytest.fixture
def make_ctx(tmp_path: Path, root: Path) -> MakeContext:
    """Return a factory of contexts confined to ``root``."""
    evidence = tmp_path / "evidence"
    evidence.mkdir()

    def make(**overrides: Any) -> ActionContext:
        fields: dict[str, Any] = {
            "run_id": 1,
            "step_id": 2,
            "node_id": "node-1",
            "attempt": 1,
            "idempotency_key": "run1-step2-attempt1",
            "evidence_dir": str(evidence),
            "files_roots": [str(root)],
        }
        fields.update(overrides)
        return ActionContext(**fields)

    return make


@pytest.fixture(scope="session")
def runner() -> Iterator[Runner]:
    """Return a runner that also knows the test-only actions."""
    shared = Runner(TEST_MODULES, python_path=PYTHON_PATH)
    yield shared
    shared.close()
