"""One show's panel: state badge, target vs running, scale and action buttons, fly table,
sparklines and a log tail. Its widgets are written by the model's flush; the buttons call the
model, and an error lands in the panel's error line."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from circus.models import ShowModel, in_flush

from ._fly_table import FlyTable
from ._log_tail import LogTail
from ._sparkline import Sparkline, human_bytes

STATE_COLOURS = {
    "stopped": "#757575", "starting": "#1565c0", "active": "#2e7d32", "stopping": "#ef6c00",
    "flapping": "#c62828", "failed": "#6a1b9a", "running": "#2e7d32",
    # the link to a remote trainer
    "connecting": "#1565c0", "connected": "#2e7d32", "lost": "#c62828", "closed": "#757575",
}  # fmt: skip


def badge(state: str) -> str:
    colour = STATE_COLOURS.get(state, "#000")
    return (f'<span style="background:{colour};color:white;border-radius:8px;padding:1px 8px;'
            f'font-size:12px">{html.escape(state)}</span>')


class ShowPanel(w.VBox):
    """The panel of one ShowModel. `close()` detaches it from the model."""

    def __init__(self, show: ShowModel, **kw: Any) -> None:
        self.model = show
        self.header = w.HTML()
        self.scale = w.IntText(value=show.numflies, layout=w.Layout(width="70px"))
        self.minus = w.Button(description="−", tooltip="one fly less",
                              layout=w.Layout(width="32px"))
        self.plus = w.Button(description="+", tooltip="one fly more",
                             layout=w.Layout(width="32px"))
        self.buttons = {name: w.Button(description=name, layout=w.Layout(width="72px"))
                        for name in ("start", "stop", "restart", "reload")}
        self.error = w.HTML()
        self.table = FlyTable()
        self.cpu = Sparkline("cpu", color="#1f77b4")
        self.mem = Sparkline("memory", color="#2ca02c")
        self.log_tail = LogTail()
        controls = w.HBox([self.minus, self.scale, self.plus, *self.buttons.values()])
        self.cpu.layout.margin = "0 16px 0 0"
        charts = w.HBox([self.cpu, self.mem])
        super().__init__(
            children=(self.header, controls, self.error, self.table, charts, self.log_tail),
            layout=w.Layout(border="1px solid #ddd", padding="4px", margin="2px 0"), **kw)
        self.minus.on_click(lambda _: self._act(show.decr))
        self.plus.on_click(lambda _: self._act(show.incr))
        for name, button in self.buttons.items():
            button.on_click(self._action(getattr(show, name)))
        self.scale.observe(self._on_scale, names="value")
        show.on_flush(self._on_flush, stats=True)
        self.render()

    def _action(self, fn: Callable[[], Any]) -> Callable[[Any], None]:
        return lambda _: self._act(fn)

    def _act(self, fn: Callable[[], Any]) -> None:
        """A button handler: do it through the model; show the error if it fails."""
        try:
            fn()
        except Exception as exc:
            self.error.value = (f'<span style="color:#c62828">{html.escape(type(exc).__name__)}'
                                f": {html.escape(str(exc))}</span>")
        else:
            self.error.value = ""

    def _on_scale(self, change: Any) -> None:
        if in_flush() or change.new == self.model.numflies:
            return

        def scale() -> None:
            self.model.numflies = change.new

        self._act(scale)
        if self.error.value and self.scale.value != self.model.numflies:
            self.scale.value = self.model.numflies  # put back what the show really has

    def _on_flush(self, model: Any, changed: frozenset[str]) -> None:
        self.render()

    def render(self) -> None:
        """Write the model's state into the widgets (the flush calls this)."""
        show = self.model
        with self.hold_sync():
            error = (f' <span style="color:#c62828">{html.escape(show.last_error)}</span>'
                     if show.last_error else "")
            self.header.value = (
                f"<b>{html.escape(show.name)}</b> {badge(show.state.value)} "
                f"<span>{show.running} running / {show.numflies} target · "
                f"{show.restarts} restarts</span>{error}")
            if self.scale.value != show.numflies:
                self.scale.value = show.numflies
            self.table.update(show.flies)
            self.cpu.update(show.cpu_history, f"{show.cpu:.1f}%")
            self.mem.update(show.rss_history, human_bytes(show.rss))
            self.log_tail.update(show)

    def close(self) -> None:
        self.model.on_flush(self._on_flush, remove=True)
        for child in (self.header, self.scale, self.minus, self.plus, *self.buttons.values(),
                      self.error, self.table, self.cpu, self.mem, self.log_tail.source,
                      self.log_tail.text, self.log_tail, *self.children):
            child.close()
        super().close()
