"""ipywidgets dashboards for circus trainers, shows and flies.

Stock ipywidgets only (VBox, HBox, HTML, Button, IntText, Dropdown), no custom JavaScript.
Every widget here is written by its model's flush (circus.models) from the model thread;
buttons call the model. `dashboard(trainer)` is the entry point; `Dashboard(...)` builds an
uncached one.
"""

from ._dashboard import Dashboard as Dashboard
from ._dashboard import close_all as close_all
from ._dashboard import dashboard as dashboard
from ._dashboard import mimebundle as mimebundle
from ._dashboard import static_html as static_html
from ._fly_table import FlyTable as FlyTable
from ._log_tail import LogTail as LogTail
from ._show_panel import ShowPanel as ShowPanel
from ._sparkline import Sparkline as Sparkline
from ._sparkline import sparkline_svg as sparkline_svg

__all__ = [
    "Dashboard",
    "FlyTable",
    "LogTail",
    "ShowPanel",
    "Sparkline",
    "close_all",
    "dashboard",
    "mimebundle",
    "sparkline_svg",
    "static_html",
]
