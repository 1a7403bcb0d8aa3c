"""Logs and errors lose secrets and local paths before they are stored."""

from __future__ import annotations

import os

from agentos_common.redaction import scrub_secrets_in
from executors.runner import scrub
from executors.scrubbing import PROJECT_DIR


def test_secrets_are_masked_longest_first() -> None:
    text = "pw=hunter2 token=hunter2-extended"
    assert scrub(text, ["hunter2", "hunter2-extended", ""]) == "pw=*** token=***"


def test_project_and_home_paths_become_placeholders() -> None:
    home = os.path.expanduser("~")
    text = f'File "{PROJECT_DIR}/executors/child.py", cache {home}/.cache/x'
    scrubbed = scrub(text, [])
    assert PROJECT_DIR not in scrubbed
    assert '"<project>/executors/child.py"' in scrubbed
    if home not in ("/", ""):
        assert "~/.cache/x" in scrubbed


def test_output_secrets_are_masked_but_paths_kept() -> None:
    data = {"path": f"{PROJECT_DIR}/x", "items": ["a-hunter2", 3, None], "hunter2": True}
    assert scrub_secrets_in(data, ["hunter2"]) == {
        "path": f"{PROJECT_DIR}/x",
        "items": ["a-***", 3, None],
        "***": True,
    }
