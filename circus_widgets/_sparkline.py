"""Sparklines: a polyline in inline SVG, in a stock HTML widget (no plotting dependency)."""

from __future__ import annotations

import html
from collections.abc import Sequence

import ipywidgets as w


def sparkline_svg(values: Sequence[float], width: int = 120, height: int = 24,
                  color: str = "#1f77b4") -> str:
    """An SVG polyline of `values` scaled to the box (flat when there are fewer than 2)."""
    vals = [float(v) for v in values] or [0.0]
    if len(vals) == 1:
        vals = vals * 2
    top = max(max(vals), 1e-9)
    step = width / (len(vals) - 1)
    points = " ".join(f"{i * step:.1f},{height - 1 - (v / top) * (height - 2):.1f}"
                      for i, v in enumerate(vals))
    return (f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'xmlns="http://www.w3.org/2000/svg"><polyline fill="none" stroke="{color}" '
            f'stroke-width="1.5" points="{points}"/></svg>')


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class Sparkline(w.HTML):
    """A labelled sparkline; `update(values, text)` redraws it."""

    def __init__(self, label: str, color: str = "#1f77b4", **kw: object) -> None:
        super().__init__(**kw)
        self._label, self._color = label, color
        self.update((), "")

    def update(self, values: Sequence[float], text: str) -> None:
        value = (f'<span style="font-size:11px">{html.escape(self._label)} '
                 f'<b>{html.escape(text)}</b></span><br>'
                 + sparkline_svg(values, color=self._color))
        if value != self.value:
            self.value = value
