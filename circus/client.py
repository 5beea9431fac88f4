"""A Python client of a circus controller (or of a Circus 0.19 circusd: same wire format).

    from circus.client import Client
    with Client("ipc:///run/circus/ctl.sock") as client:
        client.command("incr", name="web", nb=2)      # the result, as run_command gives it
        client.call("status")                          # the whole reply

Calls are thread-safe and may overlap (each in-flight call has a socket of its own). A call
that gets no answer within `timeout` raises `UnreachableError`, whose message says why when
ZeroMQ can tell: nothing listens there, the daemon refused our key, or it just did not answer.
An error reply raises `circus._commands.CommandError` (with Circus 0.19's errno), the same
exception a local trainer raises.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from ._commands import CommandError
from ._keys import ClientKeys, keys_in
from .errors import CircusError

DEFAULT_TIMEOUT = 5.0


class UnreachableError(CircusError, ConnectionError):
    """No reply from the daemon in time: it is down, or it refused us."""


def _diagnose(endpoint: str, events: set[int], secure: bool) -> str:
    if zmq.EVENT_HANDSHAKE_FAILED_AUTH in events:
        return (f"the daemon at {endpoint} refused this client's key: add the client's public "
                "key to the daemon's authorized_keys directory")
    if zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL in events or (
        zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL in events
    ):
        return (f"the security handshake with {endpoint} failed: "
                + ("wrong server public key, or the daemon does not use CurveZMQ" if secure
                   else "the daemon requires CurveZMQ keys (give keys= or --keys)"))
    if endpoint.startswith("ipc://") and not os.path.exists(endpoint[len("ipc://"):]):
        return f"no socket at {endpoint[len('ipc://'):]}: is the daemon running?"
    if zmq.EVENT_CONNECTED not in events:
        return f"cannot connect to {endpoint}: is the daemon running there?"
    if secure and zmq.EVENT_HANDSHAKE_SUCCEEDED not in events:
        return (f"connected to {endpoint} but the CurveZMQ handshake did not complete: wrong "
                "server public key, or the daemon does not use CurveZMQ")
    return f"connected to {endpoint} but it did not answer"


class _Link:
    """One DEALER and the monitor that tells us what happened to its connection."""

    def __init__(self, ctx: zmq.Context[Any], endpoint: str, keys: ClientKeys | None) -> None:
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        if keys is not None:
            self.sock.curve_secretkey = keys.secret
            self.sock.curve_publickey = keys.public
            self.sock.curve_serverkey = keys.server_public
        self.monitor = self.sock.get_monitor_socket()
        self.events: set[int] = set()
        self.sock.connect(endpoint)

    def drain_monitor(self) -> None:
        while self.monitor.poll(0):
            self.events.add(recv_monitor_message(self.monitor)["event"])

    def close(self) -> None:
        try:
            self.sock.disable_monitor()
        except zmq.ZMQError:
            pass
        self.monitor.close(0)
        self.sock.close(0)


class Client:
    """Send commands to one controller endpoint."""

    def __init__(
        self,
        endpoint: str,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        keys: ClientKeys | str | os.PathLike[str] | None = None,
        context: zmq.Context[Any] | None = None,
    ) -> None:
        if not isinstance(endpoint, str) or "://" not in endpoint:
            raise ValueError(f"endpoint {endpoint!r} is not valid: use ipc://PATH or "
                             "tcp://HOST:PORT")
        if keys is not None and not isinstance(keys, ClientKeys):
            _, found = keys_in(keys)
            if found is None:
                raise ValueError(f"no client keys in {os.fspath(keys)!r}: it needs "
                                 "client.key_secret and server.key (circusd --gen-keys)")
            keys = found
        self.endpoint = endpoint
        self.timeout = timeout
        self.keys: ClientKeys | None = keys
        self._own_ctx = context is None
        self._ctx: zmq.Context[Any] = context if context is not None else zmq.Context()
        self._free: list[_Link] = []
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Client {self.endpoint}{' (curve)' if self.keys else ''}>"

    def _take(self) -> _Link:
        with self._lock:
            if self._closed:
                raise CircusError(f"client of {self.endpoint} is closed")
            if self._free:
                return self._free.pop()
        return _Link(self._ctx, self.endpoint, self.keys)

    def _give(self, link: _Link) -> None:
        with self._lock:
            if not self._closed:
                self._free.append(link)
                return
        link.close()

    def call(self, command: str, /, timeout: float | None = None, **props: Any) -> dict[str, Any]:
        """Send one command and return the whole reply (status "ok" or not)."""
        cid = uuid.uuid4().hex
        data = json.dumps({"id": cid, "command": command, "properties": props}).encode()
        wait = self.timeout if timeout is None else timeout
        link = self._take()
        try:
            link.sock.send(data)
            deadline = time.monotonic() + wait
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not link.sock.poll(left * 1000):
                    if time.monotonic() < deadline:
                        continue
                    link.drain_monitor()
                    why = _diagnose(self.endpoint, link.events, self.keys is not None)
                    link.close()
                    link = None  # type: ignore[assignment]
                    raise UnreachableError(f"no reply to {command!r} within {wait:g} s: {why}")
                try:
                    reply = json.loads(link.sock.recv())
                except ValueError:
                    continue
                if isinstance(reply, dict) and reply.get("id") == cid:
                    return reply
        finally:
            if link is not None:
                self._give(link)

    def command(
        self, command: str, /, timeout: float | None = None, **props: Any
    ) -> dict[str, Any]:
        """Run a command; return its result (the reply without id/time) or raise CommandError."""
        reply = self.call(command, timeout=timeout, **props)
        status = reply.get("status")
        if status == "error":
            exc = CommandError(str(reply.get("reason")), int(reply.get("errno") or 0))
            exc.reply = reply  # type: ignore[attr-defined]
            raise exc
        result = {k: v for k, v in reply.items() if k not in ("id", "time", "status")}
        if status != "ok":  # `status NAME` puts the show's state there, as Circus 0.19 does
            result["status"] = status
        return result

    def cast(self, command: str, /, **props: Any) -> None:
        """Send a command and don't wait for (or get) a reply."""
        data = json.dumps({"id": uuid.uuid4().hex, "command": command, "properties": props,
                           "msg_type": "cast"}).encode()
        link = self._take()
        try:
            link.sock.send(data)
        finally:
            self._give(link)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            links, self._free = self._free, []
        for link in links:
            link.close()
        if self._own_ctx:
            self._ctx.term()


__all__ = ["Client", "DEFAULT_TIMEOUT", "UnreachableError"]
