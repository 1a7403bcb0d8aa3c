"""Excel actions on real workbooks: health first, new files, formulas untouched."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from executors.actions.excel import ExcelChart, ExcelHealth, ExcelLookup, ExcelPivot
from executors.base import Action, ActionContext, ActionFailed
from executors.runner import Runner

from .conftest import MakeContext


def run(action: type[Action], params: dict[str, Any], ctx: ActionContext) -> Any:
    return action().run(action.Params.model_validate_json(json.dumps(params), strict=True), ctx)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def book(root: Path) -> Path:
    wb = Workbook()
    sales = wb.active
    sales.title = "Sales"
    sales.append(["region", "product", "amount", "customer_id"])
    for row in [
        ("North", "A", 10, 1),
        ("South", "A", 5, 2),
        ("North", "B", 7, 3),
        ("South", "B", 1, 9),
    ]:
        sales.append(list(row))
    customers = wb.create_sheet("Customers")
    customers.append(["customer_id", "email", "phone"])
    customers.append([1, "one@example.com", "111"])
    customers.append([2, "two@example.com", "222"])
    customers.append([3, "three@example.com", "333"])
    customers.append([1, "duplicate@example.com", "999"])
    totals = wb.create_sheet("Totals")
    totals.append(["total", "=SUM(Sales!C2:C5)"])
    totals.merge_cells("A3:B3")
    path = root / "sales.xlsx"
    wb.save(path)
    return path


def test_health_reports_formulas_merged_cells_and_protection(
    book: Path, make_ctx: MakeContext
) -> None:
    wb = load_workbook(book)
    wb["Customers"].protection.sheet = True
    wb.save(book)
    report = run(ExcelHealth, {"path": "sales.xlsx"}, make_ctx())
    assert report.formulas == 1
    totals = next(s for s in report.sheets if s.name == "Totals")
    assert totals.formula_cells == ["B1"] and totals.merged == ["A3:B3"]
    assert report.protected_sheets == ["Customers"]
    assert report.sha256 == digest(book)
    assert "Totals: 1 formula cell(s), never overwritten" in report.issues


def test_pivot_writes_a_new_sheet_in_a_new_file(
    book: Path, make_ctx: MakeContext, tmp_path: Path
) -> None:
    before = digest(book)
    out = run(
        ExcelPivot,
        {
            "path": "sales.xlsx",
            "sheet": "Sales",
            "index": ["region"],
            "values": "amount",
            "agg": "sum",
            "output": "out/pivot.xlsx",
        },
        make_ctx(),
    )
    assert digest(book) == before == out.sha256_source
    result = load_workbook(out.output)
    assert result.sheetnames == ["Sales", "Customers", "Totals", "Pivot"]
    assert [list(r) for r in result["Pivot"].iter_rows(values_only=True)] == [
        ["region", "amount"],
        ["North", 17],
        ["South", 6],
    ]
    assert result["Totals"]["B1"].value == "=SUM(Sales!C2:C5)"  # the formula survives
    assert out.sha256_output == digest(Path(out.output))
    assert json.loads((tmp_path / "evidence" / "health.json").read_text())["formulas"] == 1

    with pytest.raises(ActionFailed, match="already exists; set overwrite"):
        run(
            ExcelPivot,
            {
                "path": "sales.xlsx",
                "sheet": "Sales",
                "index": ["region"],
                "values": "amount",
                "output": "out/pivot.xlsx",
            },
            make_ctx(),
        )
    with pytest.raises(
        ActionFailed, match="has no column 'amountt'; it has amount, customer_id, product, region"
    ):
        run(
            ExcelPivot,
            {"path": "sales.xlsx", "index": ["region"], "values": "amountt", "output": "p2.xlsx"},
            make_ctx(),
        )
    with pytest.raises(ActionFailed, match="output must be a new file"):
        run(
            ExcelPivot,
            {
                "path": "sales.xlsx",
                "index": ["region"],
                "values": "amount",
                "output": "sales.xlsx",
                "overwrite": True,
            },
            make_ctx(),
        )


def test_pivot_refuses_merged_data_and_a_locked_workbook(
    book: Path, make_ctx: MakeContext
) -> None:
    with pytest.raises(ActionFailed, match="merged cells"):
        run(
            ExcelPivot,
            {
                "path": "sales.xlsx",
                "sheet": "Totals",
                "index": ["total"],
                "values": "total",
                "agg": "count",
                "output": "p.xlsx",
            },
            make_ctx(),
        )
    wb = load_workbook(book)
    wb.security.lockStructure = True
    wb.save(book)
    with pytest.raises(ActionFailed, match="workbook structure is protected"):
        run(
            ExcelPivot,
            {"path": "sales.xlsx", "index": ["region"], "values": "amount", "output": "p.xlsx"},
            make_ctx(),
        )
    assert not (book.parent / "p.xlsx").exists()


def test_lookup_copies_columns_by_key_like_vlookup(book: Path, make_ctx: MakeContext) -> None:
    out = run(
        ExcelLookup,
        {
            "path": "sales.xlsx",
            "sheet": "Sales",
            "key": "customer_id",
            "lookup_sheet": "Customers",
            "columns": ["email", "phone"],
            "not_found": "n/a",
            "output": "merged.xlsx",
        },
        make_ctx(),
    )
    assert (out.matched, out.unmatched) == (3, 1)
    rows = list(load_workbook(out.output)["Sales"].iter_rows(values_only=True))
    assert rows[0] == ("region", "product", "amount", "customer_id", "email", "phone")
    assert rows[1][4:] == ("one@example.com", "111")  # the first match wins
    assert rows[4][4:] == ("n/a", "n/a")


def test_lookup_never_overwrites_formulas_or_protected_sheets(
    book: Path, make_ctx: MakeContext
) -> None:
    wb = load_workbook(book)
    wb["Sales"]["E1"] = "email"
    wb["Sales"]["E3"] = '=B3&"@example.com"'
    wb.save(book)
    with pytest.raises(ActionFailed, match="refusing to overwrite formula cells in 'Sales': E3"):
        run(
            ExcelLookup,
            {
                "path": "sales.xlsx",
                "sheet": "Sales",
                "key": "customer_id",
                "lookup_sheet": "Customers",
                "columns": ["email"],
                "output": "m.xlsx",
            },
            make_ctx(),
        )
    wb = load_workbook(book)
    wb["Sales"].protection.sheet = True
    wb.save(book)
    with pytest.raises(ActionFailed, match="sheet 'Sales' is protected"):
        run(
            ExcelLookup,
            {
                "path": "sales.xlsx",
                "sheet": "Sales",
                "key": "customer_id",
                "lookup_sheet": "Customers",
                "columns": ["phone"],
                "output": "m.xlsx",
            },
            make_ctx(),
        )
    assert not (book.parent / "m.xlsx").exists()


def test_chart_from_a_range(book: Path, make_ctx: MakeContext) -> None:
    before = digest(book)
    out = run(
        ExcelChart,
        {
            "path": "sales.xlsx",
            "sheet": "Sales",
            "data_range": "A1:C5",
            "kind": "line",
            "title": "Sales",
            "output": "chart.xlsx",
        },
        make_ctx(),
    )
    assert digest(book) == before
    sheet = load_workbook(out.output)["Sales"]
    assert sheet["C2"].value == 10  # cells unchanged
    with pytest.raises(ActionFailed, match="needs a category column"):
        run(
            ExcelChart,
            {"path": "sales.xlsx", "data_range": "A1:A5", "output": "c2.xlsx"},
            make_ctx(),
        )
    import zipfile

    with zipfile.ZipFile(out.output) as archive:
        assert any(name.startswith("xl/charts/chart") for name in archive.namelist())


def test_excel_runs_in_the_child_and_refuses_paths_outside(
    book: Path, outside: Path, make_ctx: MakeContext, runner: Runner
) -> None:
    ok = runner.run(
        "excel.pivot",
        {
            "path": "sales.xlsx",
            "index": ["region", "product"],
            "values": "amount",
            "output": "p.xlsx",
        },
        make_ctx(),
        timeout_s=60,
    )
    assert ok.status == "succeeded", ok.error
    assert ok.output["rows"] == 4
    escaped = runner.run(
        "excel.pivot",
        {
            "path": "sales.xlsx",
            "index": ["region"],
            "values": "amount",
            "output": str(outside / "p.xlsx"),
        },
        make_ctx(),
        timeout_s=60,
    )
    assert escaped.status == "failed" and "outside the allowed file roots" in escaped.error
    assert not (outside / "p.xlsx").exists()
