"""The event bus: the loop publishes `show.<name>.<event>` topics, subscribers follow prefixes.

Subscribers run off the loop thread, on one dispatcher thread per bus, through a bounded
queue: a slow subscriber delays only other subscribers, a failing one is logged and kept, and
the loop never waits. Subscribers that are themselves on the loop (the ZeroMQ publisher) may
ask for `on_loop=True` and are then called inline; they must not block.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("circus.events")

Callback = Callable[[str, dict[str, Any]], None]

# Events are dropped (oldest first) past this many waiting for the dispatcher.
QUEUE_LIMIT = 100_000


class Subscription:
    """A handle returned by `EventBus.subscribe`; `close()` stops delivery."""

    def __init__(self, bus: EventBus, prefix: str, callback: Callback, on_loop: bool) -> None:
        self.bus, self.prefix, self.callback, self.on_loop = bus, prefix, callback, on_loop

    def matches(self, topic: str) -> bool:
        return topic.startswith(self.prefix)

    def close(self) -> None:
        self.bus.unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    def __init__(self, name: str = "circus") -> None:
        self._name = name
        self._subs: tuple[Subscription, ...] = ()
        self._queue: collections.deque[tuple[Subscription, str, dict[str, Any]]] = (
            collections.deque(maxlen=QUEUE_LIMIT)
        )
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._busy = False
        self.dropped = 0

    def subscribe(self, prefix: str, callback: Callback, *, on_loop: bool = False) -> Subscription:
        """Call `callback(topic, payload)` for every event whose topic starts with `prefix`."""
        if not callable(callback):
            raise TypeError(f"callback must be callable, not {callback!r}")
        sub = Subscription(self, prefix, callback, on_loop)
        with self._wake:
            self._subs = (*self._subs, sub)
            if not on_loop and self._thread is None:
                self._closing = False
                self._thread = threading.Thread(
                    target=self._dispatch, name=f"{self._name}-events", daemon=True
                )
                self._thread.start()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._wake:
            self._subs = tuple(s for s in self._subs if s is not sub)

    def wants(self, topic: str) -> bool:
        """Whether anybody listens to `topic` (lets the loop skip building costly payloads)."""
        return any(s.matches(topic) for s in self._subs)

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        subs = self._subs
        queued = False
        for sub in subs:
            if not sub.matches(topic):
                continue
            if sub.on_loop:
                self._deliver(sub, topic, payload)
            else:
                if len(self._queue) == QUEUE_LIMIT:
                    self.dropped += 1
                self._queue.append((sub, topic, payload))
                queued = True
        if queued:
            with self._wake:
                self._wake.notify()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued event was delivered; True if it was within `timeout`."""
        deadline = time.monotonic() + timeout
        while self._queue or self._busy:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)
        return True

    def close(self, timeout: float = 2.0) -> None:
        """Deliver what is queued (for up to `timeout`), then stop the dispatcher thread."""
        with self._wake:
            thread, self._thread = self._thread, None
            self._closing = True
            self._wake.notify()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():  # a slow subscriber: drop the rest, end after its call
                self.dropped += len(self._queue)
                self._queue.clear()
                thread.join()

    def _dispatch(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._closing:
                    self._wake.wait()
                if not self._queue and self._closing:
                    return
            while self._queue:
                self._busy = True
                try:
                    sub, topic, payload = self._queue.popleft()
                except IndexError:
                    break
                if sub in self._subs:
                    self._deliver(sub, topic, payload)
                self._busy = False

    @staticmethod
    def _deliver(sub: Subscription, topic: str, payload: dict[str, Any]) -> None:
        try:
            sub.callback(topic, payload)
        except Exception:
            log.exception("event subscriber %r failed on %s", sub.callback, topic)
