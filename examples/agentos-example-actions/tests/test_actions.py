"""The example actions keep the AgentOS action contract and do what they say.

Run from the AgentOS checkout: ``.venv/bin/python -m pytest
examples/agentos-example-actions/tests``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from agentos_example_actions.slug import Slugify
from agentos_example_actions.text import ACTIONS, Greet, WordCount

from executors.base import ActionContext, ActionFailed, Policy
from executors.registry import Registry


def context(root: Path) -> ActionContext:
    return ActionContext(
        run_id=1,
        step_id=1,
        node_id="n",
        attempt=1,
        idempotency_key="k",
        evidence_dir=str(root),
        files_roots=[str(root)],
    )


def test_every_action_passes_the_registry_contract() -> None:
    registry = Registry()
    for action in [*ACTIONS, Slugify]:
        registry.register(action, package="agentos-example-actions", version="1.0.0")
    assert registry.names() == ["text.greet", "text.slugify", "text.word_count"]


def test_word_count_counts_words_and_characters(tmp_path: Path) -> None:
    out = WordCount().run(WordCount.Params(text="one two  three"), context(tmp_path))
    assert (out.words, out.characters) == (3, 14)


def test_slugify_makes_an_ascii_slug(tmp_path: Path) -> None:
    out = Slugify().run(Slugify.Params(text="Café Déjà Vu!"), context(tmp_path))
    assert out.slug == "cafe-deja-vu"


def test_greet_writes_a_new_file_and_never_overwrites(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    out = Greet().run(Greet.Params(name="Ada", path="out/hello.txt"), ctx)
    assert (tmp_path / "out" / "hello.txt").read_text() == "Hello, Ada!\n"
    assert out.greeting == "Hello, Ada!"
    with pytest.raises(ActionFailed, match="already exists"):
        Greet().run(Greet.Params(name="Bob", path="out/hello.txt"), ctx)
    assert (tmp_path / "out" / "hello.txt").read_text() == "Hello, Ada!\n"


@pytest.mark.parametrize("path", ["../escape.txt", "/etc/passwd", "a/../../b"])
def test_greet_refuses_paths_outside_the_root(tmp_path: Path, path: str) -> None:
    assert Greet.policy_errors({"name": "x", "path": path}, Policy()) == [
        ("path", "must be a relative path inside the files root")
    ]
    with pytest.raises(ActionFailed, match="inside the files root"):
        Greet().run(Greet.Params(name="x", path=path), context(tmp_path))
