"""A trainer on another host (or in another process), driven over its control sockets.

    trainer = circus.connect("tcp://10.0.0.2:5555", keys="~/.circus/keys")
    trainer.snapshot()                   # the same dict a local Trainer.snapshot() gives
    trainer.subscribe("show.", print)    # events arrive over SUB, on a dispatcher thread
    trainer.command("incr", name="web")  # commands go over the ROUTER

`RemoteTrainer` offers what notebook models and the dashboard need from a trainer
(`subscribe`, `snapshot`, `command`), so they work on it unchanged, plus a few convenience
methods. Its `connection_state` is "connecting", "connected", "lost" or "closed"; each change
is published to subscribers as a `trainer.connection` event (`{"state", "endpoint", "time"}`),
and a model that sees "connected" after "lost" should take a fresh snapshot: events sent
while the link was down are gone.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import zmq
from zmq.utils.monitor import recv_monitor_message

from ._events import Callback, EventBus, Subscription
from ._keys import ClientKeys, keys_in
from .client import DEFAULT_TIMEOUT, Client, UnreachableError
from .errors import CircusError

CONNECTING, CONNECTED, LOST, CLOSED = "connecting", "connected", "lost", "closed"

# Heartbeats on the event link find a dead peer that closed no connection (a partition).
HEARTBEAT_IVL_MS = 1000
HEARTBEAT_TIMEOUT_MS = 3000


def _reachable_pubsub(endpoint: str, pubsub: str) -> str:
    """A daemon bound on tcp://0.0.0.0 or tcp://*: connect to the host we reached it at."""
    if not pubsub.startswith("tcp://") or not endpoint.startswith("tcp://"):
        return pubsub
    host, _, port = pubsub[len("tcp://"):].rpartition(":")
    if host in ("*", "0.0.0.0", "[::]", "::"):
        there = urlsplit(endpoint).hostname or "127.0.0.1"
        return f"tcp://{there}:{port}"
    return pubsub


class RemoteTrainer:
    """The client side of one daemon: events over SUB, commands over DEALER."""

    def __init__(
        self,
        endpoint: str,
        pubsub_endpoint: str | None = None,
        *,
        keys: ClientKeys | str | os.PathLike[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        command_timeout: float = 60.0,
        name: str | None = None,
    ) -> None:
        if keys is not None and not isinstance(keys, ClientKeys):
            path = os.path.expanduser(os.fspath(keys))
            _, found = keys_in(path)
            if found is None:
                raise ValueError(f"no client keys in {path!r}: it needs client.key_secret and "
                                 "server.key (circusd --gen-keys makes them)")
            keys = found
        self.endpoint = endpoint
        self.keys: ClientKeys | None = keys
        self.timeout = timeout
        self.command_timeout = command_timeout
        self.name = name or endpoint
        self.events = EventBus("circus-remote")
        self.connection_state = CONNECTING
        self._state_lock = threading.Lock()
        self._client = Client(endpoint, timeout, keys=keys)
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        try:
            if pubsub_endpoint is None:
                options = self._client.command("globaloptions")["options"]
                pubsub_endpoint = options.get("pubsub_endpoint")
                if not pubsub_endpoint:
                    raise CircusError(f"the daemon at {endpoint} publishes no events (it has no "
                                      "pubsub_endpoint)")
            self._set_state(CONNECTED)
        except BaseException:
            self._client.close()
            self.events.close()
            raise
        self.pubsub_endpoint = _reachable_pubsub(endpoint, pubsub_endpoint)
        ready = threading.Event()
        self._thread = threading.Thread(target=self._listen, args=(ready,), daemon=True,
                                        name=f"circus-remote-{self.name}")
        self._thread.start()
        ready.wait(timeout)

    # --- the backend protocol of the models ---------------------------------------------

    def subscribe(self, prefix: str, callback: Callback, **kw: Any) -> Subscription:
        """Follow events whose topic starts with `prefix` (from the daemon, and our own
        `trainer.connection` events)."""
        kw.pop("on_loop", None)  # there is no loop here: always the dispatcher thread
        return self.events.subscribe(prefix, callback)

    def snapshot(self) -> dict[str, Any]:
        snap = dict(self.command("snapshot")["snapshot"])
        snap["connection"] = self.connection_state
        return snap

    def command(self, name: str, /, **props: Any) -> dict[str, Any]:
        """Run a command on the daemon; its result, or CommandError / UnreachableError."""
        try:
            result = self._client.command(name, timeout=self.command_timeout, **props)
        except UnreachableError:
            self._set_state(LOST)
            raise
        if self.connection_state == LOST:
            self._set_state(CONNECTED)
        return result

    # --- connection state -------------------------------------------------------------

    def _set_state(self, state: str) -> None:
        with self._state_lock:
            if self.connection_state == state or self.connection_state == CLOSED:
                return
            self.connection_state = state
        self.events.publish("trainer.connection", {"state": state, "endpoint": self.endpoint,
                                                   "time": time.time()})

    def _listen(self, ready: threading.Event) -> None:
        ctx: zmq.Context[Any] = zmq.Context()
        sub = ctx.socket(zmq.SUB)
        sub.linger = 0
        if self.keys is not None:
            sub.curve_secretkey = self.keys.secret
            sub.curve_publickey = self.keys.public
            sub.curve_serverkey = self.keys.server_public
        sub.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
        sub.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
        sub.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        for prefix in (b"show.", b"trainer."):
            sub.subscribe(prefix)
        monitor = sub.get_monitor_socket()
        sub.connect(self.pubsub_endpoint)
        up = zmq.EVENT_HANDSHAKE_SUCCEEDED if self.keys is not None else zmq.EVENT_CONNECTED
        poller = zmq.Poller()
        poller.register(sub, zmq.POLLIN)
        poller.register(monitor, zmq.POLLIN)
        try:
            while not self._closing.is_set():
                for sock, _ in poller.poll(100):
                    if sock is monitor:
                        event = recv_monitor_message(monitor)["event"]
                        if event == up:
                            self._set_state(CONNECTED)
                            ready.set()
                        elif event in (zmq.EVENT_DISCONNECTED, zmq.EVENT_HANDSHAKE_FAILED_AUTH,
                                       zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL):
                            self._set_state(LOST)
                        continue
                    frames = sub.recv_multipart()
                    if len(frames) != 2:
                        continue
                    try:
                        payload = json.loads(frames[1])
                        topic = frames[0].decode()
                    except ValueError:
                        continue
                    if isinstance(payload, dict):
                        self.events.publish(topic, payload)
        finally:
            ready.set()
            try:
                sub.disable_monitor()
            except zmq.ZMQError:
                pass
            monitor.close(0)
            sub.close(0)
            ctx.term()

    def close(self) -> None:
        """Stop following events and close the sockets. Safe to call twice."""
        self._set_state(CLOSED)
        self._closing.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(5)
            self._client.close()
        self.events.close()

    def __enter__(self) -> RemoteTrainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RemoteTrainer {self.endpoint} {self.connection_state}>"

    # --- conveniences -----------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.connection_state == CONNECTED

    def statuses(self) -> dict[str, str]:
        return dict(self.command("status")["statuses"])

    def status(self, name: str) -> str:
        return str(self.command("status", name=name)["status"])

    def numshows(self) -> int:
        return int(self.command("numshows")["numshows"])

    def numflies(self, name: str | None = None) -> int:
        props = {} if name is None else {"name": name}
        return int(self.command("numflies", **props)["numflies"])

    def incr(self, name: str, nb: int = 1) -> int:
        return int(self.command("incr", name=name, nb=nb)["numflies"])

    def decr(self, name: str, nb: int = 1) -> int:
        return int(self.command("decr", name=name, nb=nb)["numflies"])

    def start(self, name: str | None = None) -> None:
        self.command("start", **({} if name is None else {"name": name}))

    def stop(self, name: str | None = None, graceful: bool = True) -> None:
        self.command("stop", graceful=graceful, **({} if name is None else {"name": name}))

    def restart(self, name: str | None = None) -> None:
        self.command("restart", **({} if name is None else {"name": name}))

    def reload(self, name: str | None = None, graceful: bool = True) -> None:
        self.command("reload", graceful=graceful, **({} if name is None else {"name": name}))

    def add_show(self, name: str, cmd: str, start: bool = True, **options: Any) -> None:
        self.command("addshow", name=name, cmd=cmd, start=start, options=options)

    def rm_show(self, name: str, graceful: bool = True) -> None:
        self.command("rmshow", name=name, graceful=graceful)

    def options(self, name: str) -> dict[str, Any]:
        return dict(self.command("options", name=name)["options"])

    def set_opts(self, name: str, **options: Any) -> None:
        self.command("set", name=name, options=options)

    def signal(self, name: str, signum: int | str, **props: Any) -> None:
        self.command("signal", name=name, signum=signum, **props)

    def stats(self, name: str | None = None) -> dict[str, Any]:
        return self.command("stats", **({} if name is None else {"name": name}))

    def logs(self, name: str, lines: int = 50, stream: str = "stdout") -> dict[str, list[str]]:
        return dict(self.command("logs", name=name, lines=lines, stream=stream)["logs"])

    def quit(self) -> None:
        """Stop the daemon (and every fly it runs)."""
        self.command("quit")

    def list(self, name: str | None = None) -> list[Any]:  # last: it shadows `list` below it
        """The show names, or the pids of one show's flies."""
        if name is None:
            return [*self.command("list")["shows"]]
        return [*self.command("list", name=name)["pids"]]


def connect(
    endpoint: str,
    pubsub_endpoint: str | None = None,
    *,
    keys: ClientKeys | str | os.PathLike[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    command_timeout: float = 60.0,
    name: str | None = None,
) -> RemoteTrainer:
    """Attach to the daemon at `endpoint`: a RemoteTrainer that looks like a local Trainer.

    `pubsub_endpoint` is asked of the daemon when not given. `keys` is a `circusd --gen-keys`
    directory (or ClientKeys) for a tcp:// daemon using CurveZMQ.
    """
    return RemoteTrainer(endpoint, pubsub_endpoint, keys=keys, timeout=timeout,
                         command_timeout=command_timeout, name=name)


__all__ = ["CLOSED", "CONNECTED", "CONNECTING", "LOST", "RemoteTrainer", "connect"]
