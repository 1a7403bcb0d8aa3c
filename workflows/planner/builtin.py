"""The built-in planner: documented phrasings, deterministic, no network.

Each phrasing is a regular expression over the whole request and a builder
of the plan it means. A request that matches none gets an answer listing
every phrasing known, never a guess. Folder and file names are taken as
written (relative paths start at the first file root; quote names with
spaces); the plan validator then applies the red lines to them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from workflows.planner.base import PlannerError

__all__ = ["PHRASINGS", "plan_for"]

PATH = r'(?:"[^"]+"|\'[^\']+\'|[^\s"\']+)'
KIND_WORDS = {"files": "*", "all": "*", "everything": "*"}


@dataclass(frozen=True)
class Phrasing:
    family: str
    example: str
    pattern: re.Pattern[str]
    build: Callable[[dict[str, str]], dict[str, Any]]


def _path(value: str) -> str:
    return value.strip().strip("\"'").rstrip(".,;")


def _glob(kind: str | None) -> str:
    """Turn 'PDFs', 'pdf', '*.csv' or 'files' into a glob."""
    if not kind:
        return "*"
    word = kind.strip().lower()
    if word in KIND_WORDS:
        return KIND_WORDS[word]
    if "*" in word:
        return word
    word = word.lstrip(".")
    if word.endswith("s") and len(word) > 3:
        word = word[:-1]
    return f"*.{word}"


def _preview_apply(action: str, params: dict[str, Any], what: str) -> dict[str, Any]:
    """Preview (dry run), a gate that shows the count, then the real change."""
    return {
        "nodes": [
            {
                "id": "preview",
                "title": f"Preview: {what}",
                "action": action,
                "params": {**params, "dry_run": True},
                "outputs": {"preview_changes": "changes", "preview_count": "count"},
            },
            {
                "id": "confirm",
                "type": "approval",
                "title": f"{what}: apply {{{{ preview_count }}}} change(s)?",
                "description": "The preview step's output lists every change.",
            },
            {
                "id": "apply",
                "title": what,
                "action": action,
                "params": {**params, "dry_run": False},
                "outputs": {"changes": "changes", "changed_count": "count"},
            },
        ]
    }


def _move(m: dict[str, str]) -> dict[str, Any]:
    params: dict[str, Any] = {
        "source_dir": _path(m["src"]),
        "destination_dir": _path(m["dst"]),
        "pattern": _glob(m.get("kind")),
    }
    if m.get("days"):
        params["older_than_days"] = float(m["days"])
    what = f"move {params['pattern']} from {params['source_dir']} to {params['destination_dir']}"
    return _preview_apply("files.move_where", params, what)


def _organize(m: dict[str, str]) -> dict[str, Any]:
    path = _path(m["path"])
    return _preview_apply(
        "files.organize",
        {"path": path, "by": m["by"].lower()},
        f"organize {path} by {m['by'].lower()}",
    )


def _rename(m: dict[str, str]) -> dict[str, Any]:
    path = _path(m["path"])
    params = {"path": path, "pattern": _glob(m.get("kind")), "template": _path(m["template"])}
    return _preview_apply("files.rename", params, f"rename {params['pattern']} in {path}")


def _cleanup(m: dict[str, str]) -> dict[str, Any]:
    path = _path(m["path"])
    return _preview_apply(
        "files.cleanup", {"path": path}, f"delete temporary files and empty folders in {path}"
    )


def _onboard(m: dict[str, str]) -> dict[str, Any]:
    name, department = m["name"].strip(), m["dept"].strip()
    return {
        "nodes": [
            {
                "id": "hr",
                "action": "hr.create_employee",
                "params": {"name": name, "department": department},
                "outputs": {"employee_id": "employee_id"},
            },
            {
                "id": "it",
                "action": "it.create_account",
                "params": {"employee_id": "{{ employee_id }}"},
                "outputs": {"it_email": "email"},
            },
            {"id": "manager", "type": "approval", "title": f"Order a laptop for {name}?"},
            {
                "id": "laptop",
                "action": "procurement.order_laptop",
                "params": {"email": "{{ it_email }}", "model": "{{ laptop_model }}"},
                "outputs": {"order_id": "order_id"},
            },
        ]
    }


def _onboard_many(m: dict[str, str]) -> dict[str, Any]:
    """Several hires at once: a parallel block with a branch per hire."""
    names = [n.strip() for n in re.split(r"\s*,\s*|\s+and\s+", m["names"]) if n.strip()]
    department = m["dept"].strip()

    def branch(index: int, name: str) -> dict[str, Any]:
        return {
            "nodes": [
                {
                    "id": f"hr{index}",
                    "action": "hr.create_employee",
                    "params": {"name": name, "department": department},
                    "outputs": {f"employee_id_{index}": "employee_id"},
                },
                {
                    "id": f"it{index}",
                    "action": "it.create_account",
                    "params": {"employee_id": f"{{{{ employee_id_{index} }}}}"},
                    "outputs": {f"it_email_{index}": "email"},
                },
            ]
        }

    return {
        "nodes": [
            {
                "id": "accounts",
                "type": "parallel",
                "branches": [branch(i, name) for i, name in enumerate(names)],
            },
            {
                "id": "manager",
                "type": "approval",
                "title": f"Order laptops for {', '.join(names)}?",
            },
            {
                "id": "laptops",
                "type": "parallel",
                "branches": [
                    {
                        "nodes": [
                            {
                                "id": f"laptop{i}",
                                "action": "procurement.order_laptop",
                                "params": {
                                    "email": f"{{{{ it_email_{i} }}}}",
                                    "model": "{{ laptop_model }}",
                                },
                            }
                        ]
                    }
                    for i in range(len(names))
                ],
            },
        ]
    }


def _purchase(m: dict[str, str]) -> dict[str, Any]:
    """A purchase asked for, routed by amount; a rejection ends the run as failed."""
    limit = int(m["limit"])
    group = m["group"].strip()
    return {
        "nodes": [
            {
                "id": "purchase",
                "type": "input",
                "title": "What should be bought, and for how much?",
                "fields": {
                    "item": {"type": "string", "title": "Item"},
                    "amount": {"type": "number", "title": "Amount", "minimum": 0},
                },
            },
            {
                "id": "route",
                "type": "branch",
                "cases": [{"when": f"amount > {limit}", "next": "large"}],
                "default": "small",
            },
            {
                "id": "small",
                "type": "approval",
                "title": "Buy {{ item }} for {{ amount }}? (a manager decides)",
                "on_reject": "rejected",
                "next": "end",
            },
            {
                "id": "large",
                "type": "approval",
                "title": "Buy {{ item }} for {{ amount }}? " + f"({group} decides: over {limit})",
                "on_reject": "rejected",
                "next": "end",
            },
            {
                "id": "rejected",
                "type": "fail",
                "message": "The purchase of {{ item }} was rejected.",
            },
        ]
    }


def _child(m: dict[str, str]) -> dict[str, Any]:
    """Run a stored workflow as a child, with the inputs named as key=value."""
    inputs: dict[str, Any] = {}
    for pair in re.split(r"\s*,\s*|\s+and\s+", m.get("inputs", "")):
        if "=" in pair:
            key, value = pair.split("=", 1)
            inputs[key.strip()] = value.strip().strip("\"'")
    node: dict[str, Any] = {"id": "child", "type": "workflow", "workflow": m["slug"]}
    if inputs:
        node["inputs"] = inputs
    return {"nodes": [node]}


def _output_name(path: str, suffix: str) -> str:
    pure = PurePosixPath(path)
    return str(pure.with_name(f"{pure.stem}-{suffix}{pure.suffix}"))


AGG = {
    "summing": "sum",
    "averaging": "mean",
    "counting": "count",
    "totalling": "sum",
    "totaling": "sum",
}


def _pivot(m: dict[str, str]) -> dict[str, Any]:
    path = _path(m["path"])
    index = [part.strip() for part in re.split(r",|\band\b", m["index"]) if part.strip()]
    return {
        "nodes": [
            {"id": "check", "action": "excel.health", "params": {"path": path}},
            {
                "id": "pivot",
                "action": "excel.pivot",
                "params": {
                    "path": path,
                    "index": index,
                    "values": m["values"].strip(),
                    "agg": AGG[m["agg"].lower()],
                    "output": _output_name(path, "pivot"),
                },
                "outputs": {"pivot_file": "output", "pivot_sha256": "sha256_output"},
            },
        ]
    }


def _health(m: dict[str, str]) -> dict[str, Any]:
    return {
        "nodes": [
            {
                "id": "check",
                "action": "excel.health",
                "params": {"path": _path(m["path"])},
                "outputs": {"formulas": "formulas", "issues": "issues"},
            }
        ]
    }


def _chart(m: dict[str, str]) -> dict[str, Any]:
    path = _path(m["path"])
    params: dict[str, Any] = {
        "path": path,
        "data_range": m["range"].upper(),
        "kind": (m.get("kind") or "bar").lower(),
        "output": _output_name(path, "chart"),
    }
    if m.get("sheet"):
        params["sheet"] = _path(m["sheet"])
    return {
        "nodes": [
            {
                "id": "chart",
                "action": "excel.chart",
                "params": params,
                "outputs": {"chart_file": "output"},
            }
        ]
    }


def _lookup(m: dict[str, str]) -> dict[str, Any]:
    path = _path(m["path"])
    columns = [c.strip() for c in re.split(r",|\band\b", m["cols"]) if c.strip()]
    return {
        "nodes": [
            {
                "id": "lookup",
                "action": "excel.lookup",
                "params": {
                    "path": path,
                    "sheet": _path(m["sheet"]),
                    "lookup_sheet": _path(m["lsheet"]),
                    "key": m["key"].strip(),
                    "columns": columns,
                    "output": _output_name(path, "merged"),
                },
                "outputs": {"merged_file": "output", "unmatched": "unmatched"},
            }
        ]
    }


def _http_check(m: dict[str, str]) -> dict[str, Any]:
    return {
        "nodes": [
            {
                "id": "check",
                "action": "api.request",
                "params": {
                    "method": (m.get("method") or "GET").upper(),
                    "url": m["url"].rstrip(".,;"),
                    "expect_status": int(m["status"]),
                },
                "outputs": {"status": "status"},
            }
        ]
    }


def _p(regex: str) -> re.Pattern[str]:
    return re.compile(r"^\s*(?:please\s+)?" + regex + r"\s*[.!]?\s*$", re.IGNORECASE)


PHRASINGS: tuple[Phrasing, ...] = (
    Phrasing(
        "files",
        "move the PDFs in Downloads to Reports",
        _p(
            rf"move\s+(?:the\s+|all\s+)?(?:(?P<kind>[\w.*]+)\s+)?(?:files\s+)?(?:in|from)\s+"
            rf"(?P<src>{PATH})\s+(?:to|into)\s+(?P<dst>{PATH})"
            r"(?:\s+(?:if|when)?\s*older\s+than\s+(?P<days>\d+)\s+days?)?"
        ),
        _move,
    ),
    Phrasing(
        "files",
        "organize Downloads by type   (or: by date)",
        _p(rf"organi[sz]e\s+(?P<path>{PATH})\s+by\s+(?P<by>type|date)"),
        _organize,
    ),
    Phrasing(
        "files",
        "rename the txt files in Notes to note-{n:03d}{ext}",
        _p(
            rf"rename\s+(?:the\s+|all\s+)?(?:(?P<kind>[\w.*]+)\s+)?(?:files\s+)?in\s+"
            rf"(?P<path>{PATH})\s+(?:to|as)\s+(?P<template>{PATH})"
        ),
        _rename,
    ),
    Phrasing("files", "clean up Downloads", _p(rf"clean\s*up\s+(?P<path>{PATH})"), _cleanup),
    Phrasing(
        "portals",
        "onboard Ada Byron, Alan Kay and Grace Hopper in Engineering",
        _p(
            r"onboard\s+(?P<names>[A-Za-z][\w' -]*(?:\s*,\s*[A-Za-z][\w' -]*)*\s+and\s+"
            r"[A-Za-z][\w' -]*?)\s+(?:in|to|into)\s+(?:the\s+)?(?P<dept>[A-Za-z]+)"
            r"(?:\s+department)?"
        ),
        _onboard_many,
    ),
    Phrasing(
        "portals",
        "onboard Jane Roe in Engineering",
        _p(
            r"onboard\s+(?P<name>[A-Za-z][\w'-]*(?:\s+[A-Za-z][\w'-]*){0,3})\s+(?:in|to|into)\s+"
            r"(?:the\s+)?(?P<dept>[A-Za-z]+)(?:\s+department)?"
        ),
        _onboard,
    ),
    Phrasing(
        "graphs",
        "route purchases over 5000 to Finance",
        _p(
            r"route\s+(?:a\s+|the\s+)?purchases?\s+(?:over|above)\s+(?P<limit>\d{1,9})\s+"
            r"to\s+(?P<group>[A-Za-z][\w -]{0,60}?)"
        ),
        _purchase,
    ),
    Phrasing(
        "graphs",
        "run the workflow employee-onboarding with employee_name=Ada Byron",
        _p(
            r"run\s+(?:the\s+)?workflow\s+(?P<slug>[a-z0-9][a-z0-9_-]{0,63})"
            r"(?:\s+with\s+(?P<inputs>\w+\s*=.+))?"
        ),
        _child,
    ),
    Phrasing(
        "excel",
        "pivot sales.xlsx by region summing amount",
        _p(
            rf"pivot\s+(?P<path>{PATH}\.xlsx)\s+by\s+(?P<index>[\w ,]+?)\s+"
            r"(?P<agg>summing|averaging|counting|totall?ing)\s+(?P<values>\w+)"
        ),
        _pivot,
    ),
    Phrasing(
        "excel",
        "check the workbook sales.xlsx",
        _p(rf"(?:health[-\s]?)?check\s+(?:the\s+)?(?:workbook\s+)?(?P<path>{PATH}\.xlsx)"),
        _health,
    ),
    Phrasing(
        "excel",
        "chart A1:B13 of sales.xlsx as a line chart",
        _p(
            rf"chart\s+(?P<range>[A-Za-z]+\d+:[A-Za-z]+\d+)\s+(?:of|in|from)\s+"
            rf"(?:sheet\s+(?P<sheet>{PATH})\s+(?:of|in)\s+)?(?P<path>{PATH}\.xlsx)"
            r"(?:\s+as\s+an?\s+(?P<kind>bar|line|pie)\s+chart)?"
        ),
        _chart,
    ),
    Phrasing(
        "excel",
        "look up email, phone from Customers into Orders by customer_id in book.xlsx",
        _p(
            rf"look\s*up\s+(?P<cols>[\w ,]+?)\s+from\s+(?P<lsheet>{PATH})\s+into\s+"
            rf"(?P<sheet>{PATH})\s+by\s+(?P<key>\w+)\s+in\s+(?P<path>{PATH}\.xlsx)"
        ),
        _lookup,
    ),
    Phrasing(
        "api",
        "check that http://127.0.0.1:8000/api/v1/health returns 200",
        _p(
            r"check\s+that\s+(?:(?P<method>GET|POST|PUT|PATCH|DELETE|HEAD)\s+)?"
            r"(?P<url>https?://\S+)\s+(?:returns|gives|answers)\s+(?:status\s+)?(?P<status>\d{3})"
        ),
        _http_check,
    ),
)


def known_phrasings() -> list[str]:
    """Return one example per phrasing, for help texts."""
    return [p.example for p in PHRASINGS]


def plan_for(text: str) -> dict[str, Any]:
    """Return the plan a request means, or raise PlannerError listing phrasings."""
    for phrasing in PHRASINGS:
        match = phrasing.pattern.match(text)
        if match:
            return phrasing.build({k: v for k, v in match.groupdict().items() if v})
    raise PlannerError(
        "the built-in planner did not recognise this request and does not guess. "
        "It understands: "
        + "; ".join(f'"{example}"' for example in known_phrasings())
        + ". (Configure AGENTOS_PLANNER=openai for free-form requests.)"
    )
