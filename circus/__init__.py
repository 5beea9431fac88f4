"""circus: a process and worker-pool manager that lives inside Jupyter.

The public names are re-exported here; `circus.fly`, `circus.show` and `circus.trainer` are the
modules of the seed's classes, and underscore modules hold the rest. Importing circus does not
import IPython, ipywidgets or zmq: a headless daemon starts fast.
"""

from __future__ import annotations

from typing import Any

from ._events import EventBus as EventBus
from ._events import Subscription as Subscription
from ._options import Action as Action
from ._states import FlyState as FlyState
from ._states import ShowState as ShowState
from .errors import CircusError as CircusError
from .errors import NotRunningError as NotRunningError
from .errors import OptionError as OptionError
from .errors import ShowExistsError as ShowExistsError
from .errors import UnknownShowError as UnknownShowError
from .fly import Fly as Fly
from .show import Show as Show
from .trainer import Trainer as Trainer
from .trainer import get_trainer as get_trainer

__version__ = "0.1.0"

__all__ = [
    "Action",
    "CircusError",
    "EventBus",
    "Fly",
    "FlyState",
    "NotRunningError",
    "OptionError",
    "Show",
    "ShowExistsError",
    "ShowState",
    "Subscription",
    "Trainer",
    "UnknownShowError",
    "connect",
    "default_trainer",
    "get_trainer",
    "load_ipython_extension",
    "unload_ipython_extension",
]


def __getattr__(name: str) -> Any:
    # `circus.connect` imports zmq only when it is first used.
    if name == "connect":
        from .remote import connect

        return connect
    raise AttributeError(f"module 'circus' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext circus`: register the %circus magics (IPython is imported only now)."""
    from ._ipython import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from ._ipython import unload_ipython_extension as unload

    unload(ipython)


def default_trainer() -> Trainer | None:
    """The notebook's default Trainer (the one `%circus start` made), or None before that."""
    from ._ipython import default_trainer as default

    return default()
