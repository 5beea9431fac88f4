"""Small helpers shared by the tests: poll with a deadline, build child commands."""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.005, what: str = ""
) -> T:
    """Poll `predicate` until it returns something true; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)


def alive(procs: list[Any]) -> list[Any]:
    """The psutil processes of `procs` that still run (zombies count as gone)."""
    import psutil

    out = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.NoSuchProcess:
            pass
    return out


def py(code: str) -> str:
    """A command line that runs `code` in a fresh, unbuffered Python."""
    return shlex.join([sys.executable, "-u", "-c", code])


def collect(trainer: Any, prefix: str = "show.") -> list[tuple[str, dict[str, Any]]]:
    """Subscribe to `prefix`; the returned list fills with (topic, payload) as events come."""
    events: list[tuple[str, dict[str, Any]]] = []
    trainer.subscribe(prefix, lambda topic, payload: events.append((topic, payload)))
    return events


# A fly that prints a line every 0.2 s and never exits.
SLEEPER = py("import time\nwhile True:\n    print('tick', flush=True)\n    time.sleep(0.2)")
