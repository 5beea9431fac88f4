"""The fly table of a show panel: one HTML table, rewritten by the model's flush."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import ipywidgets as w

from ._sparkline import human_bytes

COLUMNS = ("wid", "pid", "state", "age", "restarts", "exit", "cpu %", "RSS")

FLY_COLOURS = {"running": "#2e7d32", "stopping": "#ef6c00", "exited": "#c62828",
               "stopped": "#757575"}


def exit_text(fly: Any) -> str:
    if fly.exit_signal is not None:
        return f"signal {fly.exit_signal}"
    if fly.exit_code is not None:
        return str(fly.exit_code)
    return ""


def fly_rows(flies: Sequence[Any]) -> list[tuple[str, ...]]:
    """The table's cells, as text, one tuple per fly (what the HTML shows)."""
    return [(str(f.wid), str(f.pid), f.state.value, f"{f.age:.0f}s", str(f.restarts),
             exit_text(f), f"{f.cpu:.1f}", human_bytes(f.rss) if f.rss else "")
            for f in flies]


def table_html(rows: Sequence[Sequence[str]], columns: Sequence[str] = COLUMNS) -> str:
    head = "".join(f'<th style="padding:0 8px;text-align:left">{c}</th>' for c in columns)
    body = []
    for row in rows:
        cells = []
        for col, cell in zip(columns, row, strict=False):
            style = "padding:0 8px"
            if col == "state":
                style += f";color:{FLY_COLOURS.get(cell, '#000')}"
            cells.append(f'<td style="{style}">{html.escape(cell)}</td>')
        body.append(f"<tr>{''.join(cells)}</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(columns)}" style="padding:0 8px;color:#757575">'
                    "no flies</td></tr>")
    return (f'<table style="font-family:monospace;font-size:12px;border-collapse:collapse">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


class FlyTable(w.HTML):
    """wid, pid, state, age, restarts, exit code, cpu %, RSS of each fly of a show."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.add_class("circus-fly-table")
        self.rows: tuple[tuple[str, ...], ...] = ()
        self.value = table_html(())

    def update(self, flies: Sequence[Any]) -> None:
        rows = tuple(fly_rows(flies))
        if rows != self.rows:
            self.rows = rows
            self.value = table_html(rows)
