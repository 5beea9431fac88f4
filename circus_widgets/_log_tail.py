"""A live log tail of a show (every fly, prefixed with its wid) or of one fly."""

from __future__ import annotations

import html
import threading
from typing import Any

import ipywidgets as w

ALL = "all flies"


class LogTail(w.VBox):
    """A source picker and the last lines, in a <pre>; `update(show_model)` redraws."""

    def __init__(self, lines: int = 12, **kw: Any) -> None:
        self.lines = lines
        self.source = w.Dropdown(options=(ALL,), value=ALL, description="log",
                                 layout=w.Layout(width="180px"))
        self.text = w.HTML(value=self._pre([]))
        self._show: Any = None
        self._wids: tuple[int, ...] = ()
        self._render_lock = threading.Lock()  # the flush and the user's pick take turns
        super().__init__(children=(self.source, self.text), **kw)
        self.source.observe(self._on_source, names="value")

    @staticmethod
    def _pre(lines: list[str]) -> str:
        body = html.escape("\n".join(lines)) or "(no output yet)"
        return ('<pre style="font-size:11px;max-height:14em;overflow:auto;margin:0;'
                f'background:#f7f7f7;padding:4px">{body}</pre>')

    def _on_source(self, change: Any) -> None:
        if self._show is not None:
            self.update(self._show)

    def update(self, show: Any) -> None:
        with self._render_lock:
            self._show = show
            wids = tuple(f.wid for f in show.flies)
            if wids != self._wids:
                self._wids = wids
                with self.source.hold_trait_notifications():
                    keep = self.source.value
                    self.source.options = (ALL, *(f"fly {wid}" for wid in wids))
                    if keep in self.source.options:
                        self.source.value = keep
            pick = self.source.value
            if pick == ALL or pick is None:
                lines = list(show.output)
            else:
                wid = int(str(pick).split()[1])
                lines = next((list(f.output) for f in show.flies if f.wid == wid), [])
            value = self._pre(lines[-self.lines:])
            if value != self.text.value:
                self.text.value = value
