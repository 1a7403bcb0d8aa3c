"""The direction of the imports between the project's packages.

Parsed with ``ast`` from the source (every import, including those inside
functions), so a boundary holds whether or not a module is loaded:

    agentos_common  <-  executors  <-  workflows  <-  approvals, accounts
                                                          <-  agentos_site (urls, asgi, api)
    portals: nothing of ours

``agentos_site.policy`` and the other site modules the apps import name no
app's models; the admin is a leaf (only admin modules import admin modules);
a private module (``_name``) is imported only inside its own package.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("agentos_common", "agentos_site", "accounts", "workflows", "approvals", "executors")
OURS = (*PACKAGES, "portals", "tests", "bench")


def modules() -> Iterator[tuple[str, Path]]:
    for package in (*PACKAGES, "portals"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join(parts), path


def imports(name: str, path: Path) -> set[str]:
    """Return the modules `name` imports, anywhere in its source."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # `from workflows import actions` imports workflows.actions too.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


GRAPH = {name: imports(name, path) for name, path in modules()}


def top(module: str) -> str:
    return module.split(".")[0]


def offenders(source: str, rule) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        if name == source or name.startswith(source + ".")
        for target in targets
        if rule(target)
    )


def test_the_graph_is_read() -> None:
    """A sanity check: the scan sees the modules and their imports."""
    assert "workflows.engine.decide" in GRAPH
    assert "agentos_common.nul" in GRAPH["agentos_site.middleware"]


def test_relative_and_function_level_imports_are_seen(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text("from . import sibling\n\ndef f():\n    from ..up import _name\n")
    found = imports("pkg.sub.mod", source)
    assert {"pkg.sub.sibling", "pkg.up._name"} <= found


def test_agentos_common_imports_only_the_standard_library() -> None:
    stdlib = sys.stdlib_module_names | {"__future__"}
    assert (
        offenders("agentos_common", lambda t: top(t) not in stdlib and top(t) != "agentos_common")
        == []
    )


def test_executors_import_no_django_and_no_app() -> None:
    """Action processes stay light: no Django, nothing above them."""
    allowed = {"executors", "agentos_common"}
    assert offenders("executors", lambda t: top(t) == "django") == []
    assert offenders("executors", lambda t: top(t) in OURS and top(t) not in allowed) == []


def test_portals_import_nothing_of_ours() -> None:
    assert offenders("portals", lambda t: top(t) in OURS and top(t) != "portals") == []


@pytest.mark.parametrize("app", ["executors", "workflows"])
def test_lower_apps_import_no_higher_app(app: str) -> None:
    higher = {"approvals", "accounts"}
    assert offenders(app, lambda t: top(t) in higher) == []


@pytest.mark.parametrize(
    "module",
    ["agentos_site.policy", "agentos_site.middleware", "agentos_site.roles"],
)
def test_site_modules_the_apps_use_import_no_app(module: str) -> None:
    """The apps import these, so they import none of the apps (no cycle)."""
    apps = {"accounts", "workflows", "approvals", "executors", "portals"}
    assert offenders(module, lambda t: top(t) in apps) == []


def test_the_admin_is_a_leaf() -> None:
    """Only admin modules import admin modules: nothing else depends on the admin."""

    def is_admin(module: str) -> bool:
        return any(part == "admin" for part in module.split(".")[1:])

    found = [
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        if not is_admin(name) and top(name) in PACKAGES
        for target in targets
        if top(target) in PACKAGES and is_admin(target)
    ]
    assert found == []


def is_module(parts: list[str]) -> bool:
    path = ROOT.joinpath(*parts)
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def test_private_modules_stay_inside_their_package() -> None:
    found = []
    for name, targets in GRAPH.items():
        for target in targets:
            parts = target.split(".")
            private = [
                i
                for i, part in enumerate(parts)
                if i > 0
                and part.startswith("_")
                and not part.startswith("__")
                and is_module(parts[: i + 1])
            ]
            if top(target) not in OURS or not private:
                continue
            owner = ".".join(parts[: private[0]])
            if not (name == owner or name.startswith(owner + ".")):
                found.append(f"{name} imports {target}")
    assert found == []


# The engine's modules, lowest first: each imports only those before it
# (docs/architecture.md, "The engine's modules"); the package's __init__
# (the loop) sits on top.
ENGINE = (
    "base",
    "flow",
    "asks",
    "steps",
    "lanes",
    "children",
    "lane_nodes",
    "blocks",
    "lane_results",
    "decide",
    "record",
)


def test_the_engine_modules_import_one_way() -> None:
    prefix = "workflows.engine."
    on_disk = {
        path.stem
        for path in (ROOT / "workflows" / "engine").glob("*.py")
        if path.stem != "__init__"
    }
    assert on_disk == set(ENGINE), "a new engine module takes its place in ENGINE"
    found = []
    for rank, module in enumerate(ENGINE):
        for target in GRAPH[prefix + module]:
            # `from workflows.engine import flow` names the package too.
            if not target.startswith(prefix):
                continue
            other = target[len(prefix) :].split(".")[0]
            if other in ENGINE and ENGINE.index(other) >= rank:
                found.append(f"{module} imports {other}")
    assert found == []
