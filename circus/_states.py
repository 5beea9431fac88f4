"""One state per object, as an Enum; the allowed moves are listed beside it."""

from __future__ import annotations

import enum


class ShowState(enum.Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    ACTIVE = "active"
    STOPPING = "stopping"
    FLAPPING = "flapping"  # flies died too fast; waiting retry_in before trying again
    FAILED = "failed"  # flapped max_retry times; stays stopped until started by hand

    def __str__(self) -> str:
        return self.value


class FlyState(enum.Enum):
    RUNNING = "running"
    STOPPING = "stopping"  # stop_signal sent, waiting for it to exit
    EXITED = "exited"  # died on its own (or was killed by someone else)
    STOPPED = "stopped"  # stopped by us

    def __str__(self) -> str:
        return self.value
