"""Trainer: runs several shows on one asyncio loop, which owns every process.

In a script, `start()` runs the loop in the calling (main) thread until `stop()`, SIGINT or
SIGTERM. Inside IPython or Jupyter it starts the loop on a daemon thread and returns at once;
the kernel's own signals are never touched. Either way every public method of the Trainer and
of its Shows may be called from any thread: the work runs on the loop, the result (or the
exception) comes back to the caller.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import resource
import shlex
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

# Imported here, not when first used: a lazy import opens files, and a trainer must still
# answer when the process is out of file descriptors (tests/test_reliability.py, EMFILE).
from ._commands import run_command, snapshot
from ._events import EventBus, Subscription
from ._sentinel import SENTINEL
from .errors import NotRunningError, ShowExistsError, UnknownShowError
from .show import Show, check_name

log = logging.getLogger("circus.trainer")

# At interpreter exit flies get at most this long to stop before SIGKILL.
EXIT_GRACE = 1.0

_RUNNING: weakref.WeakSet[Trainer] = weakref.WeakSet()


def in_ipython() -> bool:
    """True inside an IPython shell or a Jupyter kernel (without importing IPython)."""
    ipython = sys.modules.get("IPython")
    try:
        return ipython is not None and ipython.get_ipython() is not None
    except Exception:
        return False


def run_offline(result: Any, owner: object) -> Any:
    """Run a loop-side method when no loop runs: fine as long as it never has to wait."""
    if not asyncio.iscoroutine(result):
        return result
    try:
        result.send(None)
    except StopIteration as done:
        return done.value
    result.close()
    raise NotRunningError(f"{owner!r} is not running: start its trainer first")


def _raise_fd_limit() -> None:
    # Each fly holds three fds (two pipes and a pidfd); 1024 would cap us near 330 flies.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 16
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, 1 << 20), hard))
        except (ValueError, OSError):
            pass


class Trainer:
    """Run several shows. `start()` starts them, `stop()` stops every fly."""

    #: The class `add_show(name, cmd, ...)` builds shows with.
    show_class: type[Show] = Show

    def __init__(
        self,
        shows: Iterable[Show] = (),
        endpoint: str | None = None,
        pubsub_endpoint: str | None = None,
        check_delay: float = 1.0,
        prereload_fn: Callable[[Trainer], Any] | None = None,
        context: Any = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if isinstance(check_delay, bool) or not isinstance(check_delay, int | float) or not (
            check_delay > 0
        ):
            raise ValueError(f"check_delay={check_delay!r} is not valid: it must be a number > 0")
        self.endpoint = endpoint
        self.pubsub_endpoint = pubsub_endpoint
        self.check_delay = float(check_delay)
        self.prereload_fn = prereload_fn
        self.context = context
        self.events = EventBus()
        self._shows: dict[str, Show] = {}
        for show in shows:
            self._adopt(show)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._given_loop = loop
        self._thread: threading.Thread | None = None
        self._thread_id: int | None = None
        self._stopping: asyncio.Future[None] | None = None
        self._housekeeping: asyncio.Task[None] | None = None
        self._state_lock = threading.Lock()
        self.started_at: float | None = None
        self.plugins: list[Any] = []  # things that live as long as the loop (the controller)

    # --- thread plumbing ------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.loop is not None

    def _on_loop(self) -> bool:
        return self._thread_id == threading.get_ident()

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(*args)` on the loop and return its result in the caller's thread."""
        loop = self.loop
        if loop is None:
            return run_offline(fn(*args), self)
        if self._on_loop():
            result = fn(*args)
            # On the loop itself we can't wait for the loop: hand back the task.
            return loop.create_task(result) if asyncio.iscoroutine(result) else result

        async def call() -> Any:
            result = fn(*args)
            return (await result) if asyncio.iscoroutine(result) else result

        return asyncio.run_coroutine_threadsafe(call(), loop).result()

    # --- start and stop -------------------------------------------------------------------

    def start(self, background: bool | None = None) -> None:
        """Start every show that is not `stopped`.

        Blocks until stop() in a script; returns at once inside IPython/Jupyter, or when
        `background=True`, with the loop on a daemon thread.
        """
        with self._state_lock:
            if self.loop is not None:
                return
            main = threading.current_thread() is threading.main_thread()
            if background is None:
                background = in_ipython() or not main or self._given_loop is not None
            loop = self._given_loop or asyncio.new_event_loop()
            self.loop = loop
            _raise_fd_limit()
            SENTINEL.hold()
            _RUNNING.add(self)
        if self._given_loop is not None:
            self._thread_id = None  # we don't know it until our first callback runs
            asyncio.run_coroutine_threadsafe(self._astart(), loop).result()
            return
        if background:
            ready = threading.Event()
            self._thread = threading.Thread(
                target=self._run_loop, args=(ready,), name="circus-trainer", daemon=True
            )
            self._thread.start()
            ready.wait()
            try:
                asyncio.run_coroutine_threadsafe(self._astart(), loop).result()
            except BaseException:  # e.g. the controller can't bind: nothing stays half-started
                self.stop()
                raise
            return
        self._thread_id = threading.get_ident()
        asyncio.set_event_loop(loop)
        signals = (signal.SIGINT, signal.SIGTERM) if main else ()
        try:
            for sig in signals:
                loop.add_signal_handler(sig, self._on_signal, sig)
            loop.run_until_complete(self._astart())
            loop.run_forever()
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            asyncio.set_event_loop(None)
            self._teardown()

    def _run_loop(self, ready: threading.Event) -> None:
        assert self.loop is not None
        self._thread_id = threading.get_ident()
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(ready.set)
        self.loop.run_forever()

    def _on_signal(self, sig: int) -> None:
        # A second Ctrl-C while stopping means: don't wait for graceful exits.
        graceful = self._stopping is None
        self._begin_stop(graceful=graceful)

    async def _astart(self) -> None:
        self._thread_id = threading.get_ident()
        self.started_at = time.time()
        for show in self._shows.values():
            show._attach()
        if self.endpoint or self.pubsub_endpoint:  # zmq is imported only when asked for
            from ._controller import ensure_controller

            ensure_controller(self)
        for plugin in self.plugins:
            await plugin.start(self)
        self.events.publish("trainer.start", {"time": time.time()})
        await asyncio.gather(*(s._start() for s in self._shows.values() if not s.stopped))
        self._housekeeping = asyncio.ensure_future(self._housekeep())

    async def _housekeep(self) -> None:
        # Deaths are seen through pidfds at once; this only re-checks counts now and then.
        while True:
            await asyncio.sleep(self.check_delay)
            for show in list(self._shows.values()):
                show._manage()

    def stop(self, graceful: bool = True) -> None:
        """Stop every fly of every show, and the loop. Safe to call twice."""
        loop = self.loop
        if loop is None:
            return
        if self._on_loop():
            self._begin_stop(graceful)
            return
        asyncio.run_coroutine_threadsafe(self._astop(graceful), loop).result()
        self._end_loop()

    def _begin_stop(self, graceful: bool = True) -> None:
        assert self.loop is not None
        task = self.loop.create_task(self._astop(graceful))
        task.add_done_callback(lambda _: self._end_loop())

    def _end_loop(self) -> None:
        """After _astop: stop our loop, and tear down unless its thread will."""
        loop = self.loop
        if loop is None:
            return
        if self._given_loop is not None:
            self._teardown()
        elif self._on_loop():
            loop.stop()  # start() (or the loop thread) returns and tears down
        else:
            loop.call_soon_threadsafe(loop.stop)
            thread = self._thread
            if thread is not None:
                thread.join()
                self._teardown()

    async def _astop(self, graceful: bool = True, timeout: float | None = None) -> None:
        if self._stopping is not None:
            if not graceful:
                for show in self._shows.values():
                    await show._kill_flies(graceful=False)
            await asyncio.shield(self._stopping)
            return
        assert self.loop is not None
        self._stopping = self.loop.create_future()
        try:
            if self._housekeeping is not None:
                self._housekeeping.cancel()
            saved = {}
            if timeout is not None:  # interpreter exit: cap the graceful wait
                for show in self._shows.values():
                    saved[show] = show.graceful_timeout
                    show._opts["graceful_timeout"] = min(show.graceful_timeout, timeout)
            await asyncio.gather(*(s._stop(graceful) for s in self._shows.values()))
            for show, value in saved.items():
                show._opts["graceful_timeout"] = value
            for plugin in reversed(self.plugins):
                try:
                    await plugin.stop(self)
                except Exception:  # one plugin's failure must not keep the loop alive
                    log.exception("plugin %r failed to stop", plugin)
            self.events.publish("trainer.stop", {"time": time.time()})
        finally:
            self._stopping.set_result(None)

    def _teardown(self) -> None:
        """After the loop stopped: close it and let go of the sentinel."""
        with self._state_lock:
            loop, self.loop = self.loop, None
            if loop is None:
                return
            self._thread = None
            self._thread_id = None
            self._stopping = None
            self._housekeeping = None
            _RUNNING.discard(self)
            if self._given_loop is None:  # the caller's loop is the caller's to close
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in pending:
                    task.cancel()
                if pending and not loop.is_running():
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                if not loop.is_running():
                    loop.close()
            SENTINEL.release()
        self.events.close()

    def _exit_stop(self) -> None:
        """At interpreter exit: stop flies within EXIT_GRACE, without stalling the exit."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        try:
            if self._thread is not None and not self._on_loop():
                coro = self._astop(True, timeout=EXIT_GRACE)
                asyncio.run_coroutine_threadsafe(coro, loop).result(EXIT_GRACE + 2)
                self._end_loop()
        except Exception:  # never let our cleanup break the host's exit
            pass

    # --- the seed's members ---------------------------------------------------------------

    def reload(self, graceful: bool = True) -> None:
        """Reload every show (prereload_fn first)."""
        return self._call(self._reload, graceful)

    async def _reload(self, graceful: bool = True) -> None:
        if self.prereload_fn is not None:
            self.prereload_fn(self)
        for show in list(self._shows.values()):
            await show._reload(graceful)

    def numflies(self) -> int:
        """Live flies over all shows."""
        return sum(len(show) for show in self._shows.values())

    def numshows(self) -> int:
        return len(self._shows)

    @property
    def shows(self) -> tuple[Show, ...]:
        return tuple(self._shows.values())

    def get_show(self, name: str) -> Show:
        try:
            return self._shows[name]
        except KeyError:
            known = ", ".join(sorted(self._shows)) or "none"
            raise UnknownShowError(f"no show named {name!r}; known shows: {known}") from None

    def add_show(self, name: str | Show, cmd: str | None = None, **options: Any) -> Show:
        """Add a show (a Show, or the name, cmd and options of one); started if we run."""
        if isinstance(name, Show):
            show = name
        else:
            check_name(name)
            if name in self._shows:
                raise ShowExistsError(f"a show named {name!r} already exists")
            if cmd is None:
                raise ValueError(f"add_show({name!r}) needs a cmd")
            show = self.show_class(name, cmd, **options)  # validates everything first
        return self._call(self._add_show, show)

    async def _add_show(self, show: Show) -> Show:
        self._adopt(show)
        self.events.publish("trainer.add_show", {"show": show.name, "time": time.time()})
        if self.loop is not None:
            show._attach()
            if not show.stopped:
                await show._start()
        return show

    def _adopt(self, show: Show) -> None:
        if not isinstance(show, Show):
            raise TypeError(f"shows must be Show instances, not {show!r}")
        if show.name in self._shows:
            raise ShowExistsError(f"a show named {show.name!r} already exists")
        if show.trainer is not None and show.trainer is not self:
            raise ValueError(f"show {show.name!r} already belongs to another trainer")
        show.trainer = self
        self._shows[show.name] = show

    def rm_show(self, name: str, graceful: bool = True) -> None:
        """Stop a show's flies and remove it."""
        self.get_show(name)
        return self._call(self._rm_show, name, graceful)

    async def _rm_show(self, name: str, graceful: bool = True) -> None:
        show = self.get_show(name)
        await show._stop(graceful)
        del self._shows[name]
        show.trainer = None
        self.events.publish("trainer.rm_show", {"show": name, "time": time.time()})

    def command(self, command: str, /, **props: Any) -> dict[str, Any]:
        """Run one command of the control protocol (see circus._commands.COMMANDS)."""
        return self._call(run_command, self, command, props)

    def snapshot(self) -> dict[str, Any]:
        """Everything about every show and fly, as one JSON-serialisable dict."""
        return self._call(snapshot, self)

    def statuses(self) -> dict[str, str]:
        return {name: show.status() for name, show in self._shows.items()}

    def subscribe(self, prefix: str, callback: Callable[[str, dict[str, Any]], None],
                  **kw: Any) -> Subscription:
        """Follow events whose topic starts with `prefix` (e.g. "show.web.")."""
        return self.events.subscribe(prefix, callback, **kw)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        shows = ", ".join(f"{s.name}:{s.state}({len(s)}/{s.numflies})" for s in self.shows)
        return f"<Trainer {state} [{shows}]>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        # The live dashboard in a kernel, static HTML and this summary elsewhere.
        from circus_widgets import mimebundle

        return mimebundle(self, include, exclude)

    def summary(self) -> str:
        """A readable text table of shows and flies."""
        lines = [f"Trainer ({'running' if self.running else 'stopped'}), "
                 f"{self.numshows()} show(s), {self.numflies()} fly(ies)"]
        for show in self.shows:
            cmd = show.cmd if len(show.cmd) <= 60 else show.cmd[:57] + "..."
            lines.append(f"  {show.name}: {show.state}  {len(show)}/{show.numflies} flies  "
                         f"cmd={cmd!r}" + (f"  error: {show.last_error}"
                                           if show.last_error else ""))
            for fly in show.flies:
                lines.append(f"    wid {fly.wid}  pid {fly.pid}  {fly.state}  "
                             f"age {fly.age():.1f}s")
        return "\n".join(lines)


def _default_name(cmd: str) -> str:
    try:
        first = shlex.split(cmd)[0]
    except (ValueError, IndexError):
        return "main"
    base = os.path.basename(first)
    if base.startswith("python") and len(shlex.split(cmd)) > 1:
        base = os.path.basename(shlex.split(cmd)[1])
    name = "".join(c if c.isalnum() or c in "_-" else "_" for c in base.rsplit(".", 1)[0])
    return name.lstrip("-") or "main"


def get_trainer(
    cmd: str,
    numflies: int = 1,
    warmup_delay: float = 0.0,
    controller: str | None = None,
    pubsub_endpoint: str | None = None,
    shell: bool = False,
    working_dir: str | None = None,
    uid: int | str | None = None,
    gid: int | str | None = None,
    env: dict[str, str] | None = None,
    name: str | None = None,
    context: Any = None,
    **options: Any,
) -> Trainer:
    """A Trainer running one Show of `numflies` flies of `cmd`.

    Unlike early Circus, no control socket is opened unless `controller` is given.
    Other Show options (graceful_timeout, stdout_file, ...) may be passed by keyword.
    """
    show = Show(
        name or _default_name(cmd) if isinstance(cmd, str) else "main", cmd, numflies=numflies,
        warmup_delay=warmup_delay, shell=shell, working_dir=working_dir, uid=uid, gid=gid,
        env=env, **options,
    )  # fmt: skip
    return Trainer([show], endpoint=controller, pubsub_endpoint=pubsub_endpoint, context=context)


def _stop_all_at_exit() -> None:
    for trainer in list(_RUNNING):
        trainer._exit_stop()


atexit.register(_stop_all_at_exit)

__all__ = ["Trainer", "get_trainer", "in_ipython"]
