"""The dashboard of a trainer: one ShowPanel per show, added and removed live.

`dashboard(trainer)` returns the (cached) Dashboard of a Trainer, a TrainerModel or a remote
backend; `mimebundle(obj)` is what `Trainer._repr_mimebundle_` and `Show._repr_mimebundle_`
return: the widget view in a kernel, static HTML and a text summary everywhere.
"""

from __future__ import annotations

import html
import weakref
from typing import Any

import ipywidgets as w

from circus.models import TrainerModel

from ._fly_table import table_html
from ._show_panel import ShowPanel, badge

_CACHE: weakref.WeakKeyDictionary[Any, dict[str | None, Dashboard]] = weakref.WeakKeyDictionary()


class Dashboard(w.VBox):
    """Panels for every show of a trainer (or just `show`)."""

    def __init__(self, source: Any, show: str | None = None, **kw: Any) -> None:
        self._own_model = not isinstance(source, TrainerModel)
        self.model = TrainerModel(source) if self._own_model else source
        self.only = show
        self.header = w.HTML()
        self.panels: dict[str, ShowPanel] = {}
        self.body = w.VBox()
        super().__init__(children=(self.header, self.body), **kw)
        self.add_class("circus-dashboard")  # a stable hook for the browser tests and CSS
        self.model.on_flush(self._on_flush)
        self.render()

    def _on_flush(self, model: Any, changed: frozenset[str]) -> None:
        self.render()

    def render(self) -> None:
        """Add panels of new shows, drop those of removed ones (the flush calls this)."""
        shows = [s for s in self.model.shows if self.only is None or s.name == self.only]
        names = [s.name for s in shows]
        with self.hold_sync():
            for name in [n for n in self.panels if n not in names]:
                self.panels.pop(name).close()
            for show in shows:
                if show.name not in self.panels:
                    self.panels[show.name] = ShowPanel(show)
            self.header.value = header_html(self.model, len(shows))
            children = tuple(self.panels[n] for n in names)
            if children != self.body.children:
                self.body.children = children

    def close(self) -> None:
        self.model.on_flush(self._on_flush, remove=True)
        for panel in self.panels.values():
            panel.close()
        self.panels = {}
        self.header.close()
        self.body.close()
        super().close()
        if self._own_model:
            self.model.close()


def header_html(model: TrainerModel, nshows: int) -> str:
    """The trainer line: its state, the link's state for a remote one, the show count."""
    state = "running" if model.running else "stopped"
    link = ""
    if model.connection is not None:
        where = html.escape(str(getattr(model.backend, "name", "") or ""))
        link = f" · {where} {badge(model.connection)}" if where else f" · {badge(model.connection)}"
    return f"<b>circus</b> trainer {badge(state)}{link} · {nshows} show(s)"


def dashboard(source: Any, show: str | None = None) -> Dashboard:
    """The Dashboard of `source` (a Trainer, TrainerModel or backend), one per source/show."""
    try:
        by_show = _CACHE.setdefault(source, {})
    except TypeError:
        return Dashboard(source, show)
    board = by_show.get(show)
    if board is None or board.comm is None:  # closed
        board = by_show[show] = Dashboard(source, show)
    return board


def close_dashboards(source: Any) -> None:
    """Close the cached dashboards of `source` (and the models they own)."""
    try:
        by_show = _CACHE.pop(source, {})
    except TypeError:
        return
    for board in by_show.values():
        board.close()


def close_all() -> None:
    """Close every cached dashboard and the models they own."""
    for by_show in list(_CACHE.values()):
        for board in by_show.values():
            board.close()
        by_show.clear()


def static_html(snapshot: dict[str, Any], only: str | None = None) -> str:
    """A plain HTML view of a snapshot, for frontends without the widget extension."""
    state = "running" if snapshot.get("running") else "stopped"
    parts = [f"<div><b>circus</b> trainer {badge(state)}</div>"]
    for name, show in snapshot.get("shows", {}).items():
        if only is not None and name != only:
            continue
        rows = [(str(f["wid"]), str(f["pid"]), f["state"], f"{f['age']:.0f}s", "",
                 "" if f["returncode"] is None else str(f["returncode"]), "", "")
                for f in show["flies"]]
        error = (f' <span style="color:#c62828">{html.escape(show["last_error"])}</span>'
                 if show.get("last_error") else "")
        parts.append(f'<div style="margin-top:4px"><b>{html.escape(name)}</b> '
                     f'{badge(show["state"])} {show["running"]} running / {show["numflies"]} '
                     f'target · {show["restarts"]} restarts{error}</div>' + table_html(rows))
    return "".join(parts)


def show_summary(show: Any) -> str:
    lines = [f"Show {show.name}: {show.state}  {len(show)}/{show.numflies} flies  "
             f"cmd={show.cmd!r}" + (f"  error: {show.last_error}" if show.last_error else "")]
    for fly in show.flies:
        lines.append(f"  wid {fly.wid}  pid {fly.pid}  {fly.state}  age {fly.age():.1f}s")
    return "\n".join(lines)


def _in_kernel() -> bool:
    import sys

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def mimebundle(obj: Any, include: Any = None, exclude: Any = None) -> dict[str, Any]:
    """text/plain summary, text/html static view, and the live widget inside a kernel."""
    from circus.show import Show

    if isinstance(obj, Show):
        trainer, only, text = obj.trainer, obj.name, show_summary(obj)
    else:
        trainer, only, text = obj, None, obj.summary()
    bundle: dict[str, Any] = {"text/plain": text}
    if trainer is None:
        return bundle
    try:
        bundle["text/html"] = static_html(trainer.snapshot(), only)
    except Exception:
        pass
    if _in_kernel():
        view = dashboard(trainer, only)._repr_mimebundle_()
        if view:
            bundle.update({k: v for k, v in view.items() if k != "text/plain"})
    return bundle
