"""The control plane of a Trainer: a ZeroMQ ROUTER for commands and a PUB for events.

Both sockets live on the trainer's own asyncio loop (zmq.asyncio). Requests and replies use
Circus 0.19's wire format, so its stock `circusctl` drives us:

    request  {"id": HEX, "command": NAME, "properties": {...}}       ("msg_type": "cast": no reply)
    reply    {"id", "status": "ok", "time", ...result}
             {"id", "status": "error", "reason", "errno", "time", "tb"}

Every request runs as its own task through `circus._commands.run_command` (the one explicit
command table), so a slow command never blocks the socket and overlapping commands queue on
the shows' locks instead of failing. Malformed messages get an error reply (or, past the
size cap, are dropped by ZeroMQ) and the controller keeps serving.

Each bus event goes out as `show.<name>.<event>` with our payload and, for Circus 0.19's
subscribers, as `watcher.<name>.<event>` with theirs.

Security: no socket unless an endpoint is given; ipc:// binds only inside a private (0700)
directory; tcp:// needs CurveZMQ keys (clients allowed by public key) unless `insecure`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import time
import traceback
from typing import TYPE_CHECKING, Any

import zmq
import zmq.asyncio

from ._commands import CommandError, run_command
from ._keys import ServerKeys
from .errors import CircusError

if TYPE_CHECKING:
    from .trainer import Trainer

log = logging.getLogger("circus.controller")

#: Requests larger than this are refused (ZeroMQ drops the connection of a larger frame).
MAX_MESSAGE = 1 << 20

# Circus 0.19's errno values.
E_JSON, E_UNKNOWN, E_MESSAGE, E_OS, E_COMMAND, E_DATA = 1, 2, 3, 4, 5, 6

# Which of our show events Circus 0.19 subscribers know, and how their payloads look.
_WATCHER_EVENTS = {"spawn", "reap", "kill", "start", "stop", "reload", "updated"}


class ControllerError(CircusError):
    """A control endpoint can't be opened as asked (bad transport, unsafe place, no keys)."""


def watcher_payload(event: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    """Circus 0.19's payload for one of our show events, or None if it has no such event."""
    if event not in _WATCHER_EVENTS:
        return None
    out: dict[str, Any] = {"time": payload.get("time", time.time())}
    if event in ("spawn", "reap", "kill"):
        out["process_pid"] = payload.get("fly_pid")
        out["process_id"] = payload.get("fly_id")
    if event == "reap":
        # Popen's returncode is already minus the signal number for a killed process.
        rc = payload.get("returncode")
        out["exit_code"] = rc if rc is not None else payload.get("exit_code")
    return out


def check_endpoint(endpoint: str, keys: ServerKeys | None, insecure: bool) -> str | None:
    """Refuse an endpoint that would let other users in; make an ipc directory if needed
    (and return it if it was made)."""
    transport, sep, address = endpoint.partition("://")
    if not sep or not address:
        raise ControllerError(f"endpoint {endpoint!r} is not valid: use ipc://PATH or "
                              "tcp://HOST:PORT")
    if transport == "ipc":
        folder = os.path.dirname(os.path.abspath(address))
        return folder if private_dir(folder) else None
    elif transport == "tcp":
        if keys is None and not insecure:
            raise ControllerError(
                f"endpoint {endpoint!r}: tcp:// needs CurveZMQ keys (server_secret_key and "
                "authorized_keys; `circusd --gen-keys DIR` makes them) or insecure = true"
            )
    elif transport != "inproc":
        raise ControllerError(f"endpoint {endpoint!r}: transport {transport!r} is not "
                              "supported; use ipc://, tcp:// or inproc://")
    return None


def private_dir(path: str) -> bool:
    """Make `path` a fresh 0700 directory (True), or check that an existing one is private to
    us (False)."""
    try:
        os.mkdir(path, 0o700)
        os.chmod(path, 0o700)  # mkdir's mode passes through the umask; be exact
        return True
    except FileExistsError:
        pass
    except OSError as exc:
        raise ControllerError(f"cannot create socket directory {path!r}: {exc.strerror}") from None
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise ControllerError(f"socket directory {path!r} is not a directory")
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise ControllerError(
            f"ipc socket directory {path!r} is open to other users (mode "
            f"{stat.S_IMODE(st.st_mode):04o}, owner uid {st.st_uid}): put the socket in a "
            "directory of its own (circus creates it 0700 if it does not exist)"
        )
    return False


class Controller:
    """A Trainer plugin: `start(trainer)` binds the sockets, `stop(trainer)` closes them."""

    is_controller = True

    def __init__(
        self,
        endpoint: str | None = None,
        pubsub_endpoint: str | None = None,
        *,
        keys: ServerKeys | None = None,
        insecure: bool = False,
        max_message: int = MAX_MESSAGE,
    ) -> None:
        self.endpoint = endpoint
        self.pubsub_endpoint = pubsub_endpoint
        self.keys = keys
        self.insecure = insecure
        self.max_message = max_message
        self.trainer: Trainer | None = None
        self._ctx: zmq.asyncio.Context | None = None
        self._own_ctx = False
        self._auth: Any = None
        self._router: zmq.asyncio.Socket | None = None
        self._pub: zmq.Socket[Any] | None = None
        self._serving: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._sub: Any = None
        self._made_dirs: list[str] = []
        self.bound: dict[str, str] = {}  # "endpoint"/"pubsub_endpoint" -> the address bound

    # --- life ------------------------------------------------------------------------------

    async def start(self, trainer: Trainer) -> None:
        self.trainer = trainer
        endpoint = self.endpoint or trainer.endpoint
        pubsub = self.pubsub_endpoint or trainer.pubsub_endpoint
        for address in (endpoint, pubsub):
            if address:
                made = check_endpoint(address, self.keys, self.insecure)
                if made:
                    self._made_dirs.append(made)
        given = trainer.context
        if given is None:
            self._ctx, self._own_ctx = zmq.asyncio.Context(), True
        else:
            self._ctx = zmq.asyncio.Context.shadow(given.underlying)
        try:
            if self.keys is not None and any(
                a and a.startswith("tcp://") for a in (endpoint, pubsub)
            ):
                from zmq.auth.asyncio import AsyncioAuthenticator

                self._auth = AsyncioAuthenticator(self._ctx, log=log)
                self._auth.start()
                self._auth.configure_curve(domain="*", location=self.keys.authorized)
            if endpoint:
                self._router = self._ctx.socket(zmq.ROUTER)
                self._secure(self._router, endpoint)
                self._router.setsockopt(zmq.MAXMSGSIZE, self.max_message)
                self._router.setsockopt(zmq.LINGER, 500)
                self.bound["endpoint"] = self._bind(self._router, endpoint)
                self._serving = asyncio.ensure_future(self._serve())
            if pubsub:
                sync_ctx: zmq.Context[Any] = zmq.Context.shadow(self._ctx.underlying)
                self._pub = sync_ctx.socket(zmq.PUB)
                self._secure(self._pub, pubsub)
                self._pub.setsockopt(zmq.LINGER, 200)
                self._pub.setsockopt(zmq.SNDHWM, 100_000)
                self.bound["pubsub_endpoint"] = self._bind(self._pub, pubsub)
                self._sub = trainer.subscribe("", self._on_event, on_loop=True)
        except BaseException:
            await self.stop(trainer)
            raise
        log.info("controller listening: %s", ", ".join(f"{k}={v}" for k, v in self.bound.items()))

    def _secure(self, sock: zmq.Socket[Any], endpoint: str) -> None:
        if endpoint.startswith("tcp://") and self.keys is not None:
            sock.curve_server = True
            sock.curve_secretkey = self.keys.secret
            sock.curve_publickey = self.keys.public

    @staticmethod
    def _bind(sock: zmq.Socket[Any], endpoint: str) -> str:
        try:
            sock.bind(endpoint)
        except zmq.ZMQError as exc:
            raise ControllerError(f"cannot bind {endpoint!r}: {exc}") from None
        return str(sock.getsockopt_string(zmq.LAST_ENDPOINT))

    async def stop(self, trainer: Trainer) -> None:
        if self._sub is not None:
            self._sub.close()
            self._sub = None
        if self._serving is not None:
            self._serving.cancel()
            await asyncio.gather(self._serving, return_exceptions=True)
            self._serving = None
        if self._tasks:  # commands still running while the trainer stops: give them a moment
            done, pending = await asyncio.wait(list(self._tasks), timeout=1.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for sock in (self._router, self._pub):
            if sock is not None:
                sock.close()
        self._router = self._pub = None
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        if self._ctx is not None and self._own_ctx:
            self._ctx.term()
        self._ctx = None
        for address in self.bound.values():
            if address.startswith("ipc://"):
                try:
                    os.unlink(address[len("ipc://"):])
                except OSError:
                    pass
        self.bound = {}
        for folder in self._made_dirs:
            try:
                os.rmdir(folder)  # only if empty: somebody else's files stay
            except OSError:
                pass
        self._made_dirs = []

    def reload_keys(self) -> None:
        """Re-read the authorized client keys (circusd does this on SIGHUP)."""
        if self._auth is not None and self.keys is not None:
            self._auth.configure_curve(domain="*", location=self.keys.authorized)

    # --- commands --------------------------------------------------------------------------

    async def _serve(self) -> None:
        assert self._router is not None
        router = self._router
        while True:
            frames = await router.recv_multipart()
            task = asyncio.ensure_future(self._handle(frames))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _handle(self, frames: list[bytes]) -> None:
        if len(frames) == 2:
            envelope, body = frames[:1], frames[1]
        elif len(frames) == 3 and frames[1] == b"":  # a REQ client's delimiter
            envelope, body = frames[:2], frames[2]
        else:
            await self._reply(frames[:1], error(None, f"expected one JSON frame, got "
                                                      f"{len(frames) - 1}", E_DATA))
            return
        reply = await self.respond(body)
        if reply is not None:
            await self._reply(envelope, reply)

    async def respond(self, body: bytes) -> dict[str, Any] | None:
        """The reply to one request frame (None for a cast)."""
        if len(body) > self.max_message:
            return error(None, f"message of {len(body)} bytes is over the {self.max_message}"
                               "-byte limit", E_DATA)
        try:
            msg = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            return error(None, f"invalid JSON: {exc}", E_JSON)
        if not isinstance(msg, dict):
            return error(None, f"a request must be a JSON object, not {type(msg).__name__}",
                         E_DATA)
        cid = msg.get("id")
        if cid is not None and not isinstance(cid, str | int) or isinstance(cid, bool):
            return error(None, f"'id' must be a string, not {cid!r}", E_DATA)
        cast = msg.get("msg_type") == "cast"
        if "command" not in msg:
            return None if cast else error(cid, "the request has no 'command'", E_DATA)
        try:
            assert self.trainer is not None
            result = await run_command(self.trainer, msg["command"], msg.get("properties"))
        except CommandError as exc:
            reply = error(cid, str(exc), exc.errno)
        except OSError as exc:
            reply = error(cid, str(exc), E_OS, traceback.format_exc())
        except CircusError as exc:
            reply = error(cid, str(exc), E_COMMAND)
        except Exception as exc:
            log.exception("command %r failed", msg.get("command"))
            reply = error(cid, f"{type(exc).__name__}: {exc}", E_COMMAND, traceback.format_exc())
        else:
            reply = {"status": "ok", "time": time.time(), **result, "id": cid}
        return None if cast else reply

    async def _reply(self, envelope: list[bytes], reply: dict[str, Any]) -> None:
        router = self._router
        if router is None or router.closed:
            return
        data = json.dumps(reply, default=repr).encode()
        try:
            await router.send_multipart([*envelope, data], flags=zmq.NOBLOCK)
        except zmq.ZMQError as exc:  # the client went away (or its queue is full): drop it
            log.debug("reply not sent: %s", exc)

    # --- events ----------------------------------------------------------------------------

    def _on_event(self, topic: str, payload: dict[str, Any]) -> None:
        pub = self._pub
        if pub is None:
            return
        frames = [(topic, payload)]
        kind, _, rest = topic.partition(".")
        if kind == "show":
            name, _, event = rest.rpartition(".")
            theirs = watcher_payload(event, payload)
            if theirs is not None and name:
                frames.append((f"watcher.{name.lower()}.{event}", theirs))
        for t, p in frames:
            try:
                pub.send_multipart([t.encode(), json.dumps(p, default=repr).encode()],
                                   flags=zmq.NOBLOCK)
            except zmq.ZMQError:
                pass  # no room: PUB drops for slow subscribers anyway


def error(cid: Any, reason: str, errno: int, tb: str | None = None) -> dict[str, Any]:
    return {"id": cid, "status": "error", "reason": reason, "errno": errno, "time": time.time(),
            "tb": tb}


def ensure_controller(trainer: Trainer) -> None:
    """Give `trainer` a Controller plugin for its endpoints, unless it has one already."""
    if not any(getattr(p, "is_controller", False) for p in trainer.plugins):
        trainer.plugins.append(Controller())


__all__ = ["Controller", "ControllerError", "MAX_MESSAGE", "check_endpoint", "ensure_controller",
           "private_dir", "watcher_payload"]
