"""Excel actions (openpyxl, pandas): health check, pivot, lookup, chart.

Workbooks are confined to the run's file roots. The source is never
changed: every writing action copies the workbook into a new file
(``output``; an existing one is replaced only with ``overwrite``), after a
health check (formulas, merged cells, protection) that refuses to write
into protected sheets, over formula cells, or from merged data. The
SHA-256 of the source (before and after) and of the output are evidence.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Literal

from openpyxl import load_workbook
from openpyxl.chart import BarChart, LineChart, PieChart, Reference
from openpyxl.utils import get_column_letter, range_boundaries
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet.worksheet import Worksheet
from pydantic import BaseModel, ConfigDict, Field, field_validator

from executors.actions.files import ConfinedAction
from executors.actions.paths import confine, regular_file, sha256_file
from executors.base import Action, ActionContext, ActionFailed

__all__ = ["ACTIONS", "ExcelChart", "ExcelHealth", "ExcelLookup", "ExcelPivot", "health"]

SUFFIXES = (".xlsx", ".xlsm")
MAX_ROWS = 200_000


def _is_formula(cell: Any) -> bool:
    value = cell.value
    return (
        cell.data_type == "f"
        or (isinstance(value, str) and value.startswith("="))
        or type(value).__name__ in ("ArrayFormula", "DataTableFormula")
    )


class SheetHealth(BaseModel):
    name: str
    dimensions: str
    rows: int
    columns: int
    formulas: int
    formula_cells: list[str]
    merged: list[str]
    protected: bool


class HealthReport(BaseModel):
    path: str
    sha256: str
    sheets: list[SheetHealth]
    workbook_protected: bool
    formulas: int
    merged: int
    protected_sheets: list[str]
    issues: list[str]


def health(wb: Workbook, path: Path) -> HealthReport:
    """Describe a workbook's formulas, merged cells and protection."""
    sheets, issues = [], []
    for ws in wb.worksheets:
        formulas = [c.coordinate for row in ws.iter_rows() for c in row if _is_formula(c)]
        merged = [str(r) for r in ws.merged_cells.ranges]
        sheets.append(
            SheetHealth(
                name=ws.title,
                dimensions=ws.dimensions,
                rows=ws.max_row,
                columns=ws.max_column,
                formulas=len(formulas),
                formula_cells=formulas[:50],
                merged=merged[:50],
                protected=bool(ws.protection.sheet),
            )
        )
        if formulas:
            issues.append(f"{ws.title}: {len(formulas)} formula cell(s), never overwritten")
        if merged:
            issues.append(f"{ws.title}: merged cells {', '.join(merged[:5])}")
        if ws.protection.sheet:
            issues.append(f"{ws.title}: the sheet is protected")
    locked = bool(wb.security and (wb.security.lockStructure or wb.security.lockWindows))
    if locked:
        issues.append("the workbook structure is protected")
    return HealthReport(
        path=path.name,
        sha256=sha256_file(path)[0],
        sheets=sheets,
        workbook_protected=locked,
        formulas=sum(s.formulas for s in sheets),
        merged=sum(len(s.merged) for s in sheets),
        protected_sheets=[s.name for s in sheets if s.protected],
        issues=issues,
    )


def _workbook_path(value: str, roots: list[str], label: str) -> Path:
    path = confine(value, roots)
    if path.suffix.lower() not in SUFFIXES:
        raise ActionFailed(f"{label} {value!r} must be an .xlsx or .xlsm workbook")
    return path


def _load(path: Path) -> Workbook:
    try:
        return load_workbook(path, keep_vba=path.suffix.lower() == ".xlsm")
    except Exception as exc:  # openpyxl raises many kinds for a bad file
        raise ActionFailed(
            f"{path.name} is not a readable workbook: {type(exc).__name__}"
        ) from None


def _sheet(wb: Workbook, name: str | None) -> Worksheet:
    if name is None:
        return wb.worksheets[0]
    if name not in wb.sheetnames:
        raise ActionFailed(f"no sheet {name!r}; the workbook has {', '.join(wb.sheetnames)}")
    return wb[name]


def _headers(ws: Worksheet) -> dict[str, int]:
    """Return header text -> column number from row 1."""
    return {str(c.value).strip(): c.column for c in ws[1] if c.value is not None}


def _column(headers: dict[str, int], name: str, sheet: str) -> int:
    if name not in headers:
        raise ActionFailed(
            f"sheet {sheet!r} has no column {name!r}; it has " + ", ".join(sorted(headers))
        )
    return headers[name]


class _Write(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    path: str = Field(description="Source workbook (never changed).")
    output: str = Field(description="New workbook to write.")
    overwrite: bool = Field(False, description="Replace an existing output file.")


class _WriteAction(ConfinedAction):
    """Shared steps of every writing Excel action."""

    path_fields: ClassVar[tuple[str, ...]] = ("path", "output")

    def prepare(
        self, params: _Write, ctx: ActionContext, sheet: str | None, *, adds_sheet: bool
    ) -> tuple[Path, Path, Workbook, Worksheet, HealthReport]:
        """Check paths and health before anything is written."""
        source = regular_file(_workbook_path(params.path, ctx.files_roots, "path"), "path")
        target = _workbook_path(params.output, ctx.files_roots, "output")
        if target == source:
            raise ActionFailed("output must be a new file, not the source workbook")
        if target.exists() and not params.overwrite:
            raise ActionFailed(f"{params.output!r} already exists; set overwrite to replace it")
        if target.suffix.lower() != source.suffix.lower():
            raise ActionFailed("output must have the same extension as the source")
        wb = _load(source)
        report = health(wb, source)
        _evidence(ctx, "health.json", report.model_dump(mode="json"))
        ws = _sheet(wb, sheet)
        if adds_sheet and report.workbook_protected:
            raise ActionFailed("the workbook structure is protected: no sheet can be added")
        if not adds_sheet and ws.protection.sheet:
            raise ActionFailed(f"sheet {ws.title!r} is protected; nothing was written")
        return source, target, wb, ws, report

    def save(self, wb: Workbook, source: Path, target: Path, before: str) -> dict[str, Any]:
        """Write the new workbook atomically; prove the source is unchanged."""
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=target.suffix
        )
        os.close(fd)
        try:
            wb.save(tmp)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        after = sha256_file(source)[0]
        if after != before:
            raise ActionFailed("the source workbook changed while it was read")
        digest, size = sha256_file(target)
        return {
            "output": str(target),
            "sha256_source": before,
            "sha256_output": digest,
            "bytes": size,
        }


def _evidence(ctx: ActionContext, name: str, data: Any) -> None:
    if ctx.evidence_dir and Path(ctx.evidence_dir).is_dir():
        Path(ctx.evidence_dir, name).write_text(json.dumps(data, indent=1, default=str))


class WriteOutput(BaseModel):
    output: str
    sha256_source: str
    sha256_output: str
    bytes: int
    rows: int
    sheet: str


class ExcelHealth(ConfinedAction):
    """Read a workbook and report formulas, merged cells and protection."""

    name = "excel.health"
    description = "Check a workbook: sheets, formula cells, merged cells and protection."
    category = "excel"
    risk = "low"
    idempotent = True
    path_fields = ("path",)

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        path: str = Field(description="Workbook to check.")

    Output = HealthReport

    def run(self, params: Params, ctx: ActionContext) -> HealthReport:
        """Return the health report (also saved as evidence)."""
        path = regular_file(_workbook_path(params.path, ctx.files_roots, "path"), "path")
        report = health(_load(path), path)
        _evidence(ctx, "health.json", report.model_dump(mode="json"))
        return report


class ExcelPivot(_WriteAction):
    """Pivot a sheet's table with pandas into a new sheet of a new workbook."""

    name = "excel.pivot"
    description = (
        "Pivot a sheet's table (header row 1) by one or more columns, aggregating a value column "
        "(sum, mean, count, min, max), into a new sheet of a new workbook."
    )
    category = "excel"
    risk = "low"
    idempotent = True

    class Params(_Write):
        sheet: str | None = Field(None, description="Data sheet (default: the first).")
        index: list[str] = Field(min_length=1, max_length=5, description="Group-by columns.")
        values: str = Field(description="Column to aggregate.")
        agg: Literal["sum", "mean", "count", "min", "max"] = "sum"
        columns: str | None = Field(None, description="Column whose values become columns.")
        output_sheet: str = Field("Pivot", min_length=1, max_length=31)

        @field_validator("output_sheet")
        @classmethod
        def _sheet_name(cls, value: str) -> str:
            if any(ch in value for ch in "[]:*?/\\"):
                raise ValueError("a sheet name cannot contain [ ] : * ? / \\")
            return value

    Output = WriteOutput

    def run(self, params: Params, ctx: ActionContext) -> WriteOutput:
        """Read with pandas, pivot, write the result as a new sheet."""
        import pandas as pd

        source, target, wb, ws, _ = self.prepare(params, ctx, params.sheet, adds_sheet=True)
        before = sha256_file(source)[0]
        if ws.merged_cells.ranges:
            raise ActionFailed(
                f"sheet {ws.title!r} has merged cells "
                f"({', '.join(map(str, list(ws.merged_cells.ranges)[:5]))}); "
                "unmerge them before pivoting"
            )
        if params.output_sheet in wb.sheetnames:
            raise ActionFailed(f"the workbook already has a sheet {params.output_sheet!r}")
        if ws.max_row > MAX_ROWS:
            raise ActionFailed(f"sheet {ws.title!r} has more than {MAX_ROWS} rows")
        frame = pd.read_excel(source, sheet_name=ws.title, engine="openpyxl")
        frame.columns = [str(c).strip() for c in frame.columns]
        headers = {c: i for i, c in enumerate(frame.columns)}
        for name in [*params.index, params.values, *([params.columns] if params.columns else [])]:
            _column(headers, name, ws.title)
        if params.agg != "count" and not pd.api.types.is_numeric_dtype(frame[params.values]):
            raise ActionFailed(f"column {params.values!r} is not numeric; use agg=count")
        table = pd.pivot_table(
            frame,
            index=params.index,
            values=params.values,
            columns=params.columns,
            aggfunc=params.agg,
        ).reset_index()
        if params.columns:
            table.columns = [
                str(c)
                if not isinstance(c, tuple)
                else " ".join(str(p) for p in c if p != "").strip()
                for c in table.columns
            ]
        out = wb.create_sheet(params.output_sheet)
        out.append([str(c) for c in table.columns])
        for row in table.itertuples(index=False):
            out.append([_plain(v) for v in row])
        result = self.save(wb, source, target, before)
        return WriteOutput(**result, rows=len(table), sheet=params.output_sheet)


def _plain(value: Any) -> Any:
    """Turn numpy and pandas scalars into plain Python for openpyxl."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


class ExcelLookup(_WriteAction):
    """Bring columns from one sheet into another by a key (VLOOKUP in code)."""

    name = "excel.lookup"
    description = (
        "For each row of a sheet, find the row of another sheet with the same key and copy the "
        "chosen columns next to it (VLOOKUP done in code), into a new workbook. Formula cells are "
        "never overwritten."
    )
    category = "excel"
    risk = "low"
    idempotent = True

    class Params(_Write):
        sheet: str = Field(description="Sheet to fill.")
        key: str = Field(description="Key column in that sheet.")
        lookup_sheet: str = Field(description="Sheet to look values up in.")
        lookup_key: str | None = Field(None, description="Key column there (default: key).")
        columns: list[str] = Field(
            min_length=1, max_length=50, description="Columns to copy from the lookup sheet."
        )
        not_found: str | None = Field(None, description="Value written when a key is absent.")

    class Output(WriteOutput):
        matched: int
        unmatched: int

    def run(self, params: Params, ctx: ActionContext) -> Output:
        """Index the lookup sheet by key, then fill the target columns."""
        source, target, wb, ws, _ = self.prepare(params, ctx, params.sheet, adds_sheet=False)
        before = sha256_file(source)[0]
        lookup = _sheet(wb, params.lookup_sheet)
        for sheet in (ws, lookup):
            if sheet.merged_cells.ranges:
                raise ActionFailed(f"sheet {sheet.title!r} has merged cells; unmerge them first")
        headers, lookup_headers = _headers(ws), _headers(lookup)
        key_col = _column(headers, params.key, ws.title)
        lookup_key_col = _column(lookup_headers, params.lookup_key or params.key, lookup.title)
        sources = [_column(lookup_headers, name, lookup.title) for name in params.columns]
        index: dict[Any, tuple[Any, ...]] = {}
        for row in lookup.iter_rows(min_row=2, values_only=True):
            key = row[lookup_key_col - 1]
            if key is not None and key not in index:  # the first match wins, like VLOOKUP
                index[key] = row
        next_col = ws.max_column + 1
        targets = []
        for name in params.columns:
            if name in headers:
                targets.append(headers[name])
            else:
                targets.append(next_col)
                ws.cell(row=1, column=next_col, value=name)
                next_col += 1
        formulas = [
            ws.cell(row=r, column=c).coordinate
            for c in targets
            for r in range(2, ws.max_row + 1)
            if _is_formula(ws.cell(row=r, column=c))
        ]
        if formulas:
            raise ActionFailed(
                f"refusing to overwrite formula cells in {ws.title!r}: " + ", ".join(formulas[:10])
            )
        matched = unmatched = 0
        for r in range(2, ws.max_row + 1):
            key = ws.cell(row=r, column=key_col).value
            if key is None:
                continue
            found = index.get(key)
            matched, unmatched = (matched + 1, unmatched) if found else (matched, unmatched + 1)
            for col, src in zip(targets, sources, strict=True):
                ws.cell(row=r, column=col, value=found[src - 1] if found else params.not_found)
        result = self.save(wb, source, target, before)
        return self.Output(
            **result,
            rows=matched + unmatched,
            sheet=ws.title,
            matched=matched,
            unmatched=unmatched,
        )


class ExcelChart(_WriteAction):
    """Draw a chart from a cell range into a new workbook."""

    name = "excel.chart"
    description = (
        "Add a bar, line or pie chart of a range (first column: categories, first row: series "
        "names) to a sheet, in a new workbook; cells are not changed."
    )
    category = "excel"
    risk = "low"
    idempotent = True

    class Params(_Write):
        sheet: str | None = Field(None, description="Sheet holding the range.")
        data_range: str = Field(
            pattern=r"^[A-Z]{1,3}[0-9]{1,7}:[A-Z]{1,3}[0-9]{1,7}$", description="e.g. A1:B13"
        )
        kind: Literal["bar", "line", "pie"] = "bar"
        title: str = Field("", max_length=200)
        anchor: str | None = Field(
            None, pattern=r"^[A-Z]{1,3}[0-9]{1,7}$", description="Top-left cell of the chart."
        )

    Output = WriteOutput

    def run(self, params: Params, ctx: ActionContext) -> WriteOutput:
        """Build the chart from the range and anchor it beside the data."""
        source, target, wb, ws, _ = self.prepare(params, ctx, params.sheet, adds_sheet=False)
        before = sha256_file(source)[0]
        min_col, min_row, max_col, max_row = range_boundaries(params.data_range)
        if max_col <= min_col or max_row <= min_row:
            raise ActionFailed(
                "the range needs a category column and at least one series "
                "column, with a header row"
            )
        chart = {"bar": BarChart, "line": LineChart, "pie": PieChart}[params.kind]()
        chart.title = params.title or None
        data = Reference(
            ws, min_col=min_col + 1, min_row=min_row, max_col=max_col, max_row=max_row
        )
        chart.add_data(data, titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=min_col, min_row=min_row + 1, max_row=max_row))
        ws.add_chart(chart, params.anchor or f"{get_column_letter(max_col + 2)}{min_row}")
        result = self.save(wb, source, target, before)
        return WriteOutput(**result, rows=max_row - min_row, sheet=ws.title)


ACTIONS: list[type[Action]] = [ExcelHealth, ExcelPivot, ExcelLookup, ExcelChart]
