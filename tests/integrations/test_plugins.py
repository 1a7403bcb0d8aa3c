"""Actions from other packages: pip install → registry → zygote → a run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.conf import settings

from executors.base import ActionContext
from executors.registry import BUILTIN_MODULES, PLUGIN_GROUP, Registry, add_plugins
from executors.runner import Runner
from executors.scrubbing import PROJECT_DIR
from tests.api.conftest import api_for
from tests.support.review import approve_plan_review
from workflows import executor_config
from workflows.checks import check_actions
from workflows.engine import run_advance
from workflows.planner.llm import system_prompt
from workflows.services import run_create
from workflows.states import RunStatus

EXAMPLE_NAMES = {"text.greet", "text.slugify", "text.word_count"}
ROOT = Path(__file__).resolve().parents[2]


def write_broken_packages(site: Path) -> None:
    """Install, by hand, three packages whose actions cannot be loaded."""

    def dist(name: str, entry_points: str, modules: dict[str, str]) -> None:
        info = site / f"{name.replace('-', '_')}-0.3.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.3\n")
        (info / "entry_points.txt").write_text(f"[{PLUGIN_GROUP}]\n{entry_points}\n")
        for module, source in modules.items():
            (site / f"{module}.py").write_text(textwrap.dedent(source))

    dist(
        "broken-import", "boom = broken_import_mod", {"broken_import_mod": "import no_such_mod\n"}
    )
    dist("not-actions", "thing = not_actions_mod:VALUE", {"not_actions_mod": "VALUE = 42\n"})
    dist("exits", "bye = exits_mod", {"exits_mod": "import sys\nsys.exit(3)\n"})
    dist(
        "clashing-name",
        "copy = clashing_mod",
        {
            "clashing_mod": """
                from executors.actions.files import ACTIONS as FILES
                ACTIONS = [cls for cls in FILES if cls.name == "files.copy"]
            """
        },
    )


def test_the_example_package_adds_its_actions_with_package_and_version(
    example_plugin: str,
) -> None:
    """After pip install, the settings' registry lists the package's actions."""
    registry = executor_config.registry()
    assert EXAMPLE_NAMES <= set(registry.names())
    for name in EXAMPLE_NAMES:
        assert registry.origin(name) == ("agentos-example-actions", example_plugin)
    assert registry.origin("files.copy")[0] == "agentos"
    assert registry.plugin_problems == []


def test_a_broken_package_is_left_out_and_named_not_fatal(
    example_plugin: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Import errors, non-actions and name clashes each drop only their package."""
    write_broken_packages(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry()
    from executors.registry import build_registry

    for action_cls in build_registry(BUILTIN_MODULES):
        registry.register(action_cls)
    add_plugins(registry, PLUGIN_GROUP)

    problems = {p.package: p.message for p in registry.plugin_problems}
    assert set(problems) == {"broken-import", "not-actions", "clashing-name", "exits"}
    assert problems["exits"] == "SystemExit: 3"
    assert "No module named 'no_such_mod'" in problems["broken-import"]
    assert "not an Action subclass" in problems["not-actions"]
    assert "'files.copy' is already registered" in problems["clashing-name"]
    assert EXAMPLE_NAMES <= set(registry.names())
    assert registry.origin("files.copy")[0] == "agentos"

    monkeypatch.setattr(executor_config, "registry", lambda: registry)
    warnings = check_actions(None)
    assert {w.id for w in warnings} == {"agentos.W020"}
    assert any("broken-import 0.3" in w.msg for w in warnings)


def test_manage_check_reports_the_broken_package_and_still_passes(
    example_plugin: str, tmp_path: Path
) -> None:
    """`manage.py check` names the package (agentos.W020) and exits 0."""
    write_broken_packages(tmp_path)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout + done.stderr
    assert "agentos.W020" in out
    for package in ("broken-import", "not-actions", "clashing-name"):
        assert f"the package {package} 0.3 were not loaded" in out


def test_the_zygote_preloads_plugins_and_runs_one_in_a_child(
    example_plugin: str, tmp_path: Path
) -> None:
    """A runner with the plugin group forks the package's action like a built-in."""
    runner = Runner(BUILTIN_MODULES, python_path=(PROJECT_DIR,), plugin_group=PLUGIN_GROUP)
    try:
        assert EXAMPLE_NAMES <= set(runner.actions())
        ctx = ActionContext(
            run_id=1,
            step_id=1,
            node_id="count",
            attempt=1,
            idempotency_key="k",
            evidence_dir=str(tmp_path),
        )
        result = runner.run("text.word_count", {"text": "a b c d"}, ctx, timeout_s=20)
        assert result.status == "succeeded", result
        assert result.output == {"words": 4, "characters": 7}
    finally:
        runner.close()


def test_the_zygote_survives_a_broken_package(example_plugin: str, tmp_path: Path) -> None:
    """A broken package on the zygote's path does not stop the built-ins or the example."""
    write_broken_packages(tmp_path)
    runner = Runner(
        BUILTIN_MODULES, python_path=(str(tmp_path), PROJECT_DIR), plugin_group=PLUGIN_GROUP
    )
    try:
        names = set(runner.actions())
        assert EXAMPLE_NAMES <= names
        assert "files.copy" in names
    finally:
        runner.close()


@pytest.mark.django_db
def test_a_plan_runs_the_plugins_actions_end_to_end(
    example_plugin: str, workspace: Path, operator, reviewer
) -> None:
    """A plan using the example's actions is validated, reviewed and run."""
    run = run_create(
        mode="autonomous",
        requester=operator,
        plan={
            "nodes": [
                {
                    "id": "greet",
                    "action": "text.greet",
                    "params": {"name": "Ada", "path": "greetings/ada.txt"},
                    "outputs": {"greeting": "greeting"},
                },
                {
                    "id": "count",
                    "action": "text.word_count",
                    "params": {"text": "{{ greeting }}"},
                    "outputs": {"words": "words"},
                },
            ]
        },
    )
    run = approve_plan_review(run, reviewer)  # text.greet is medium risk
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.context == {"greeting": "Hello, Ada!", "words": 2}
    assert (workspace / "greetings" / "ada.txt").read_text() == "Hello, Ada!\n"


@pytest.mark.django_db
def test_get_actions_lists_package_version_and_searches(example_plugin: str, operator) -> None:
    """GET /actions shows where each action comes from; ?q= searches."""
    api = api_for(operator)
    items = api.get("/actions?limit=200").json()["items"]
    by_name = {item["name"]: item for item in items}
    assert by_name["text.slugify"]["package"] == "agentos-example-actions"
    assert by_name["text.slugify"]["version"] == example_plugin
    assert by_name["files.copy"]["package"] == "agentos"
    assert by_name["files.copy"]["version"] == "0.1.0"

    found = api.get("/actions?q=slug").json()["items"]
    assert [item["name"] for item in found] == ["text.slugify"]
    # Category ("text") and words of the description, in any case and order.
    found = {item["name"] for item in api.get("/actions?q=TEXT%20count").json()["items"]}
    assert found == {"text.word_count"}
    found = {item["name"] for item in api.get("/actions?q=text").json()["items"]}
    assert found >= EXAMPLE_NAMES
    assert api.get("/actions?q=nothing-has-this").json()["items"] == []

    response = api.get("/actions?q=" + "x" * 201)
    assert response.status_code == 422
    assert any("q" in str(e.get("field")) for e in response.json()["errors"])


@pytest.mark.django_db
def test_the_planner_prompt_lists_package_version_and_category(example_plugin: str) -> None:
    """The planner sees the registry as GET /actions shows it."""
    prompt = system_prompt(executor_config.registry())
    assert '"name": "text.greet"' in prompt
    assert '"package": "agentos-example-actions"' in prompt
    assert '"category": "text"' in prompt
    assert '"package": "agentos"' in prompt


def test_plugins_can_be_switched_off(example_plugin: str) -> None:
    """AGENTOS_ACTION_PLUGINS=0: only the configured modules are registered."""
    from executors.registry import build_registry

    registry = build_registry(tuple(settings.AGENTOS_ACTION_MODULES), plugin_group=None)
    assert not EXAMPLE_NAMES & set(registry.names())


def test_the_example_packages_own_tests_pass(example_plugin: str) -> None:
    """examples/agentos-example-actions/tests pass against the installed package."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "examples/agentos-example-actions/tests",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout
