"""Show: N flies of one command. It keeps them alive, and stops, reloads and scales them.

All of a Show's process state belongs to its Trainer's loop thread. The public methods may be
called from any thread: they run on the loop and return (or raise) in the caller. Names with
a leading underscore are the loop-side halves and must only run on the loop.
"""

from __future__ import annotations

import asyncio
import collections
import re
import signal
import sys
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ._options import OPTIONS, Action, defaults, spec, validate
from ._output import RotatingFile
from ._sentinel import SENTINEL
from ._states import FlyState, ShowState
from .errors import NotRunningError, OptionError
from .fly import STREAMS, Fly

if TYPE_CHECKING:
    from .trainer import Trainer

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$")

# A fly in a slot that keeps dying young is respawned after this backoff (seconds), doubling
# from the second young death on, so a command that exits at once never spins the CPU even
# with flapping detection set loose.
BACKOFF_FIRST = 0.05
BACKOFF_MAX = 5.0

# A fly killed by one of these was stopped by someone (a user, a script, the OOM killer):
# it is respawned at once and does not count as flapping, which is about a command that
# can't stay up by itself (it exits, or crashes with SIGSEGV, SIGABRT ...).
EXTERNAL_SIGNALS = frozenset({signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP})


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise OptionError(
            f"show name {name!r} is not valid: use letters, digits, '_' and '-' "
            "(it becomes part of event topics such as show.<name>.spawn)"
        )
    return name


class Show:
    """Run `numflies` instances of `cmd` and manage their life and death."""

    #: The class of the flies a show makes; subclass Fly and set this to change how.
    fly_class: type[Fly] = Fly

    def __init__(
        self,
        name: str,
        cmd: str,
        numflies: int = 1,
        warmup_delay: float = 0.0,
        working_dir: str | None = None,
        shell: bool = False,
        uid: int | str | None = None,
        gid: int | str | None = None,
        send_hup: bool = False,
        env: dict[str, str] | None = None,
        stopped: bool = False,
        times: int = 2,
        within: float = 1.0,
        retry_in: float = 7.0,
        max_retry: int = 5,
        graceful_timeout: float = 30.0,
        prereload_fn: Callable[[Show], Any] | None = None,
        **options: Any,
    ) -> None:
        given = dict(
            cmd=cmd, numflies=numflies, warmup_delay=warmup_delay, working_dir=working_dir,
            shell=shell, uid=uid, gid=gid, send_hup=send_hup, env=env, stopped=stopped,
            times=times, within=within, retry_in=retry_in, max_retry=max_retry,
            graceful_timeout=graceful_timeout, prereload_fn=prereload_fn, **options,
        )  # fmt: skip
        self._name = check_name(name)
        self._opts = defaults()
        for key, value in given.items():
            self._opts[key] = validate(key, value)
        self.trainer: Trainer | None = None
        self.state = ShowState.STOPPED
        self.restarts = 0  # flies respawned after dying on their own
        self.retries = 0  # flapping rounds in a row
        self.last_error: str | None = None
        self._flies: dict[int, Fly] = {}  # by pid: during a reload two flies share a wid
        self._live: tuple[Fly, ...] = ()  # the running ones, for readers on other threads
        self._deaths: collections.deque[float] = collections.deque()
        self._young: dict[int, int] = {}  # wid -> young deaths in a row
        self._not_before: dict[int, float] = {}  # wid -> monotonic time of next spawn
        self._files: dict[str, RotatingFile] = {}
        self._lock: asyncio.Lock | None = None
        self._wake: asyncio.Event | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._spawner: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Future[Any]] = set()

    # --- plain attributes ---------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def numflies(self) -> int:
        """How many flies the show keeps alive; setting it scales the show."""
        return int(self._opts["numflies"])

    @numflies.setter
    def numflies(self, value: int) -> None:
        self.set_opt("numflies", value)

    @property
    def cmd(self) -> str:
        return str(self._opts["cmd"])

    def __getattr__(self, key: str) -> Any:
        # Options read as attributes: show.graceful_timeout, show.stop_signal ...
        if key in OPTIONS and "_opts" in self.__dict__:
            return self._opts[key]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {key!r}")

    @property
    def flies(self) -> tuple[Fly, ...]:
        """The live flies, by wid."""
        return tuple(sorted(self._flies.values(), key=lambda f: (f.wid, f.started)))

    def get_fly(self, wid: int) -> Fly:
        for fly in self.flies:
            if fly.wid == wid and fly.state is FlyState.RUNNING:
                return fly
        raise KeyError(f"show {self.name!r} has no running fly with wid {wid!r}; "
                       f"wids: {[f.wid for f in self.flies]}")

    def __len__(self) -> int:
        return len(self._live)

    def _recount(self) -> None:
        # Other threads read len(show) while the loop changes flies. Counting there would read
        # a copy of the dict, then states that moved on since (seen: 1 fly during a reload of
        # 2). So the loop publishes the running flies as one tuple after each change.
        self._live = tuple(f for f in self._flies.values() if f.state is FlyState.RUNNING)

    def __repr__(self) -> str:
        return f"<Show {self.name!r} {self.state} {len(self)}/{self.numflies} flies>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        # Its trainer's dashboard for this show in a kernel; text and HTML elsewhere.
        from circus_widgets import mimebundle

        return mimebundle(self, include, exclude)

    # --- the thread-safe public API -------------------------------------------------------

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.trainer is None:
            from .trainer import run_offline

            return run_offline(fn(*args), self)
        return self.trainer._call(fn, *args)

    def start(self) -> None:
        """Spawn the flies and keep them alive."""
        return self._call(self._start)

    def stop(self, graceful: bool = True) -> None:
        """Stop every fly: stop_signal to its group, SIGKILL after graceful_timeout."""
        return self._call(self._stop, graceful)

    def restart(self) -> None:
        return self._call(self._restart)

    def reload(self, graceful: bool = True) -> None:
        """New flies first, then the old ones stop (SIGHUP instead with send_hup)."""
        return self._call(self._reload, graceful)

    def incr(self, nb: int = 1) -> int:
        """Add `nb` flies; returns the new numflies."""
        return self._call(self._scale, nb)

    def decr(self, nb: int = 1) -> int:
        """Remove `nb` flies; returns the new numflies."""
        return self._call(self._scale, -nb if isinstance(nb, int) else nb)

    def set_opt(self, key: str, value: Any) -> Action:
        """Validate and set one option, then do what it needs (scale, reload)."""
        return self._call(self._set_opt, key, value)

    def set_opts(self, options: dict[str, Any]) -> Action:
        """Set several options at once: all are checked before any is set."""
        return self._call(self._set_opts, dict(options))

    def get_opt(self, key: str) -> Any:
        spec(key)  # an unknown key gets the list of valid ones
        return self._opts[key]

    def options(self) -> dict[str, Any]:
        return dict(self._opts)

    def do_action(self, action: int) -> None:
        """Do what an option change asks: 0 nothing, 1 reload, 2 scale to numflies."""
        return self._call(self._do_action, Action(action))

    def status(self) -> str:
        return self.state.value

    def info(self) -> dict[int, Any]:
        """Per-fly process information, by pid."""
        return {fly.pid: fly.info() for fly in self.flies}

    def spawn_flies(self) -> None:
        """Spawn the flies that are missing (spaced by warmup_delay)."""
        return self._call(self._spawn_missing)

    def spawn_fly(self, wid: int | None = None) -> Fly | None:
        """Spawn one fly now, in slot `wid` (the first free one by default)."""
        return self._call(self._spawn_one, wid)

    def kill_fly(self, fly: Fly | int, graceful: bool = True) -> None:
        """Stop one fly (a Fly, or its pid). An active show then replaces it."""
        return self._call(self._kill_fly, fly, graceful)

    def kill_flies(self, graceful: bool = True) -> None:
        return self._call(self._kill_flies, graceful)

    def send_signal(self, signum: int | str, wid: int | None = None) -> None:
        """Send a signal to every fly, or to the fly of slot `wid`."""
        return self._call(self._send_signal, signum, wid)

    def send_signal_child(self, wid: int, pid: int, signum: int | str) -> None:
        """Send a signal to child `pid` of the fly in slot `wid`."""
        return self._call(self._send_signal_child, wid, pid, signum)

    def reap_flies(self) -> None:
        """Process any fly that has exited (the loop does this as soon as one does)."""
        return self._call(self._reap)

    def manage_flies(self) -> None:
        """Bring the live flies back to numflies."""
        return self._call(self._manage)

    def reap_and_manage_flies(self) -> None:
        return self._call(self._reap_and_manage)

    def send_msg(self, topic: str, msg: dict[str, Any] | None = None) -> None:
        """Publish event `show.<name>.<topic>` with `msg` (time and show are added)."""
        payload = {"show": self.name, "time": time.time(), **(msg or {})}
        if self.trainer is not None:
            self.trainer.events.publish(f"show.{self.name}.{topic}", payload)

    # --- loop side ---------------------------------------------------------------------

    @property
    def _loop(self) -> asyncio.AbstractEventLoop:
        trainer = self.trainer
        if trainer is None or trainer.loop is None:
            raise NotRunningError(
                f"show {self.name!r} is not running: add it to a Trainer and start the trainer"
            )
        return trainer.loop

    def _attach(self) -> None:
        """Called on the loop when the trainer starts running this show."""
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()

    def _fly_msg(self, topic: str, fly: Fly, **extra: Any) -> None:
        self.send_msg(topic, {"fly_id": fly.wid, "fly_pid": fly.pid, **extra})

    def _task(self, coro: Any) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the show is told to stop."""
        assert self._wake is not None
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except TimeoutError:
            pass

    def _running(self) -> list[Fly]:
        return [f for f in self._flies.values() if f.state is FlyState.RUNNING]

    def _missing(self) -> list[int]:
        used = {f.wid for f in self._running()}
        return [w for w in range(1, self.numflies + 1) if w not in used]

    async def _start(self) -> None:
        self._loop  # noqa: B018 - raises NotRunningError without a running trainer
        if self.state in (ShowState.ACTIVE, ShowState.STARTING):
            return
        assert self._lock is not None and self._wake is not None
        async with self._lock:
            if self.state in (ShowState.STOPPED, ShowState.FAILED):
                self.retries = 0
            self._cancel_retry()
            self._wake.clear()
            self.state = ShowState.STARTING
            self.send_msg("start")
            await self._spawn_missing()
            if self.state is ShowState.STARTING:
                self.state = ShowState.ACTIVE
                self.send_msg("active")

    async def _spawn_missing(self) -> None:
        """Spawn the missing flies, one per warmup_delay."""
        if not self.warmup_delay:
            self._spawn_ready()
            return
        while self.state in (ShowState.STARTING, ShowState.ACTIVE) and self._spawn_ready(1):
            await self._pause(self.warmup_delay)

    def _spawn_ready(self, limit: int | None = None) -> bool:
        """Spawn up to `limit` missing flies whose slot is out of backoff; a timer retries
        the others. True if flies are still missing after this."""
        now = time.monotonic()
        waiting = []
        with SENTINEL.batch():
            for wid in self._missing()[:limit]:
                if self.state not in (ShowState.STARTING, ShowState.ACTIVE):
                    break  # flapping since the last spawn: stop trying
                not_before = self._not_before.get(wid, 0.0)
                if not_before > now:
                    waiting.append(not_before)
                else:
                    self._spawn_one(wid)
        if waiting:
            self._manage_later(min(waiting) - now)
        return bool(self._missing()) and not waiting

    def _spawn_one(self, wid: int | None = None) -> Fly | None:
        loop = self._loop
        if wid is None:
            missing = self._missing()
            wid = missing[0] if missing else max(f.wid for f in self._flies.values()) + 1
        opts = self._opts
        try:
            fly = self.fly_class(
                wid, opts["cmd"], working_dir=opts["working_dir"], shell=opts["shell"],
                uid=opts["uid"], gid=opts["gid"], env=opts["env"], args=opts["args"],
                show_name=self.name, copy_env=opts["copy_env"],
                output_lines=opts["output_lines"], output_bytes=opts["output_bytes"],
                graceful_timeout=opts["graceful_timeout"], stop_signal=opts["stop_signal"],
            )  # fmt: skip
        # OverflowError: Popen(user=2**40), e.g. from uid="1099511627776" (issue 6)
        except (OSError, ValueError, TypeError, OverflowError) as exc:
            text = getattr(exc, "strerror", None) or str(exc)
            where = getattr(exc, "filename", None)
            where = f": {where!r}" if where else ""
            self.last_error = f"cannot spawn {self.cmd!r}: {text}{where}"
            self.send_msg("spawn_error", {
                "fly_id": wid, "fly_pid": None, "error": self.last_error,
                "errno": getattr(exc, "errno", None),
            })  # fmt: skip
            self._died_young(wid)
            return None
        fly.managed = True
        self._flies[fly.pid] = fly
        self._recount()
        fly._exit = loop.create_future()  # type: ignore[attr-defined]
        if fly.pidfd >= 0:
            loop.add_reader(fly.pidfd, self._on_exit, fly)
        for stream in STREAMS:
            loop.add_reader(fly.fds[stream], self._on_output, fly, stream)
        fly._logs = self._open_logs(fly)  # type: ignore[attr-defined]
        self._fly_msg("spawn", fly)
        return fly

    def _open_logs(self, fly: Fly) -> dict[str, RotatingFile]:
        logs = {}
        for stream in STREAMS:
            path = self._opts[f"{stream}_file"]
            if not path:
                continue
            path = fly._expand(path)
            log = self._files.get(path)
            if log is None:
                log = self._files[path] = RotatingFile(path, self.max_bytes, self.backup_count)
            else:
                log.users += 1
            logs[stream] = log
        return logs

    def _close_logs(self, fly: Fly) -> None:
        for log in getattr(fly, "_logs", {}).values():
            log.users -= 1
            if log.users == 0:
                self._files.pop(log.path, None)
                log.close()
        fly._logs = {}  # type: ignore[attr-defined]

    def _on_output(self, fly: Fly, stream: str) -> None:
        data = fly.read(stream)
        if data is None:
            return
        if not data:
            self._loop.remove_reader(fly.fds[stream])
            fly.close_stream(stream)
            return
        self._take_output(fly, stream, data)

    def _take_output(self, fly: Fly, stream: str, data: bytes) -> None:
        log = getattr(fly, "_logs", {}).get(stream)
        if log is not None:
            try:
                log.write(data)
            except OSError as exc:
                self.last_error = f"cannot write {log.path!r}: {exc.strerror}"
        text = fly.output[stream].feed(data)
        if self._opts["echo"] and text:
            # Asked for: in a kernel this lands in whichever cell runs (see PITFALLS.md).
            target = sys.stdout if stream == "stdout" else sys.stderr
            target.write(text)
            target.flush()
        topic = f"show.{self.name}.output"
        if self.trainer is not None and self.trainer.events.wants(topic):
            self._fly_msg("output", fly, stream=stream, data=text)

    def _on_exit(self, fly: Fly) -> None:
        """The fly's pidfd is readable: it exited. Reap exactly that pid."""
        self._loop.remove_reader(fly.pidfd)
        unexpected = fly.state in (FlyState.RUNNING, FlyState.EXITED)  # EXITED: seen by _reap
        fly.poll()
        self._recount()
        self._fly_msg("reap", fly, exit_code=fly.exit_code, signal=fly.exit_signal,
                      returncode=fly.returncode, age=round(fly.age(), 6), expected=not unexpected)
        exit_future = getattr(fly, "_exit", None)
        if exit_future is not None and not exit_future.done():
            exit_future.set_result(fly.returncode)
        if not unexpected:
            return  # whoever stops it finishes the job
        self._flies.pop(fly.pid, None)
        if fly.group_alive():  # grandchildren left in its group (zombies don't count)
            self._task(self._sweep(fly))
        else:
            self._finalize(fly)
        if fly.exit_signal in EXTERNAL_SIGNALS:
            # Reliability fix (issue 6): "respawned at once", even when the slot is still in
            # the backoff of earlier young deaths (e.g. of a cmd that was fixed since); see
            # tests/test_reliability.py::test_an_external_kill_is_respawned_at_once_after_backoff
            self._not_before.pop(fly.wid, None)
        elif fly.age() < self.within:
            self._died_young(fly.wid)
        else:
            self._young.pop(fly.wid, None)
            self._not_before.pop(fly.wid, None)
            self._deaths.clear()
            self.retries = 0
        if self.state is ShowState.ACTIVE:
            self.restarts += 1
            self._manage()

    def _died_young(self, wid: int) -> None:
        """A fly died within `within` seconds of its spawn (or could not spawn)."""
        now = time.monotonic()
        young = self._young[wid] = self._young.get(wid, 0) + 1
        if young >= 2:
            delay = min(BACKOFF_FIRST * 2 ** (young - 2), BACKOFF_MAX)
            self._not_before[wid] = now + delay
        self._deaths.append(now)
        while len(self._deaths) > self.times:
            self._deaths.popleft()
        if (
            self.state in (ShowState.ACTIVE, ShowState.STARTING)
            and len(self._deaths) >= self.times
            and now - self._deaths[0] <= self.within
        ):
            self._flapping()

    def _flapping(self) -> None:
        self._deaths.clear()
        self.retries += 1
        if self.last_error and self.last_error.startswith("cannot spawn"):
            reason = f"{self.times} spawns failed within {self.within:g} s: {self.last_error}"
        else:
            reason = f"{self.times} flies died within {self.within:g} s of starting"
        give_up = self.max_retry != -1 and self.retries > self.max_retry
        if self._wake is not None:
            self._wake.set()
        if give_up:
            self.state = ShowState.FAILED
            self.last_error = f"{reason}; gave up after {self.max_retry} retries"
            self.send_msg("flapping", {"reason": self.last_error, "retry": self.retries,
                                       "retry_in": None, "failed": True})
        else:
            self.state = ShowState.FLAPPING
            self.last_error = reason
            self.send_msg("flapping", {"reason": reason, "retry": self.retries,
                                       "retry_in": self.retry_in, "failed": False})
            self._retry = self._loop.call_later(self.retry_in, self._retry_now)
        self._task(self._stop_flies(self._running(), graceful=True))

    def _retry_now(self) -> None:
        self._retry = None
        if self.state is ShowState.FLAPPING:
            self._young.clear()
            self._not_before.clear()
            self.state = ShowState.ACTIVE
            self.send_msg("retry", {"retry": self.retries})
            if self._wake is not None:
                self._wake.clear()
            self._manage()

    def _cancel_retry(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None

    def _manage_later(self, delay: float) -> None:
        if self._timer is None or self._timer.when() > self._loop.time() + delay:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_later(max(delay, 0.0), self._manage_timer)

    def _manage_timer(self) -> None:
        self._timer = None
        self._manage()

    def _manage(self) -> None:
        if self.state is not ShowState.ACTIVE:
            return
        running = self._running()
        extra = [f for f in running if f.wid > self.numflies]
        if extra:
            self._task(self._stop_flies(extra, graceful=True))
        if not self._missing():
            return
        if self.warmup_delay:
            if self._spawner is None or self._spawner.done():
                self._spawner = self._task(self._spawn_missing())  # type: ignore[assignment]
            return
        self._spawn_ready()  # now, in this callback: the fastest respawn

    def _reap(self) -> None:
        for fly in list(self._flies.values()):
            if fly.returncode is None and fly.poll() is not None and fly.pidfd >= 0:
                self._on_exit(fly)

    def _reap_and_manage(self) -> None:
        self._reap()
        self._manage()

    async def _sweep(self, fly: Fly) -> None:
        """The fly is gone but its group is not: ask, then SIGKILL at graceful_timeout."""
        await self._stop_group(fly, fly.stop_signal)
        self._finalize(fly)

    async def _stop_group(self, fly: Fly, sig: int) -> None:
        deadline = time.monotonic() + self.graceful_timeout
        if fly.signal_group(sig):
            # Members of a group can't be waited on without being their parent: poll, briefly.
            delay = 0.005
            while fly.group_alive() and time.monotonic() < deadline:  # zombies don't count
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.05)
            fly.signal_group(signal.SIGKILL)

    def _finalize(self, fly: Fly) -> None:
        """Drain what is left in the pipes, then release every fd of the fly."""
        loop = self._loop
        for stream in STREAMS:
            fd = fly.fds[stream]
            if fd < 0:
                continue
            while data := fly.read(stream):
                self._take_output(fly, stream, data)
            loop.remove_reader(fd)
            fly.close_stream(stream)
        if fly.pidfd >= 0:
            loop.remove_reader(fly.pidfd)
        self._close_logs(fly)
        fly.close()

    async def _stop_fly(self, fly: Fly, graceful: bool = True) -> None:
        if fly.state in (FlyState.STOPPING, FlyState.STOPPED):
            await asyncio.shield(fly._exit)  # type: ignore[attr-defined]
            return
        exited = fly.state is FlyState.EXITED
        fly.state = FlyState.STOPPING
        self._recount()
        self._fly_msg("kill", fly, graceful=graceful)
        exit_future: asyncio.Future[int] = fly._exit  # type: ignore[attr-defined]
        timeout = self.graceful_timeout if graceful else 0.0
        if not exited:
            if timeout > 0:
                fly.signal_group(self.stop_signal)
                try:
                    await asyncio.wait_for(asyncio.shield(exit_future), timeout)
                except TimeoutError:
                    pass
            if not exit_future.done():
                fly.signal_group(signal.SIGKILL)
                await asyncio.shield(exit_future)
        await self._stop_group(fly, self.stop_signal if timeout > 0 else signal.SIGKILL)
        fly.state = FlyState.STOPPED
        self._flies.pop(fly.pid, None)
        self._finalize(fly)

    async def _stop_flies(self, flies: Iterable[Fly], graceful: bool = True) -> None:
        await asyncio.gather(*(self._stop_fly(f, graceful) for f in flies))

    async def _stop(self, graceful: bool = True) -> None:
        if self.trainer is None or self.trainer.loop is None:
            return  # nothing runs: stopping is a no-op
        if self.state is ShowState.STOPPED and not self._flies:
            return
        self._cancel_retry()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        assert self._lock is not None and self._wake is not None
        self.state = ShowState.STOPPING
        self.send_msg("stopping")
        self._wake.set()  # cut a warmup pause short
        async with self._lock:
            self.state = ShowState.STOPPING
            await self._stop_flies(list(self._flies.values()), graceful)
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
            self.state = ShowState.STOPPED
            self.send_msg("stop")

    async def _restart(self) -> None:
        await self._stop()
        await self._start()
        self.send_msg("restart")

    async def _reload(self, graceful: bool = True) -> None:
        self._loop  # noqa: B018
        assert self._lock is not None
        async with self._lock:
            if self.prereload_fn is not None:
                self.prereload_fn(self)
            if self.state is not ShowState.ACTIVE:
                return  # a stopped show has nothing to reload: new options apply at start
            if self.send_hup:
                for fly in self._running():
                    fly.send_signal(signal.SIGHUP)
            else:
                old = self._running()
                if not graceful:
                    await self._stop_flies(old, graceful=False)
                    old = []
                for wid in range(1, self.numflies + 1):
                    self._spawn_one(wid)
                    if self.warmup_delay:
                        await self._pause(self.warmup_delay)
                await self._stop_flies(old, graceful=True)
            self.send_msg("reload")

    async def _scale(self, nb: int) -> int:
        if isinstance(nb, bool) or not isinstance(nb, int):
            raise OptionError(f"nb={nb!r} is not valid: nb must be an integer")
        target = self.numflies + nb
        if target < 0:
            raise OptionError(
                f"cannot remove {-nb} flies from show {self.name!r}: it has {self.numflies}"
            )
        await self._set_opt("numflies", target)
        return target

    async def _set_opt(self, key: str, value: Any) -> Action:
        return await self._set_opts({key: value})

    async def _set_opts(self, options: dict[str, Any]) -> Action:
        checked = {key: validate(key, value) for key, value in options.items()}
        changed = {k: v for k, v in checked.items() if self._opts[k] != v}
        self._opts.update(checked)
        if not changed:
            return Action.NONE
        for key, value in changed.items():
            self.send_msg("updated", {"key": key, "value": _jsonable(value)})
        action = max(OPTIONS[key].action for key in changed)
        await self._do_action(action)
        return action

    async def _do_action(self, action: Action) -> None:
        if self.trainer is None or self.trainer.loop is None:
            return
        if action is Action.RELOAD:
            await self._reload()
        elif action is Action.MANAGE:
            self._manage()

    async def _kill_fly(self, fly: Fly | int, graceful: bool = True) -> None:
        self._loop  # noqa: B018
        if not isinstance(fly, Fly):
            found = self._flies.get(fly)
            if found is None:
                raise KeyError(f"show {self.name!r} has no fly with pid {fly!r}; "
                               f"pids: {sorted(self._flies)}")
            fly = found
        await self._stop_fly(fly, graceful)
        self._manage()

    async def _kill_flies(self, graceful: bool = True) -> None:
        await self._stop_flies(list(self._flies.values()), graceful)

    def _send_signal(self, signum: int | str, wid: int | None = None) -> None:
        from ._options import parse_signal

        sig = parse_signal("signum", signum)
        flies = [self.get_fly(wid)] if wid is not None else self._running()
        for fly in flies:
            fly.send_signal(sig)
        self.send_msg("signal", {"signum": int(sig), "fly_ids": [f.wid for f in flies]})

    def _send_signal_child(self, wid: int, pid: int, signum: int | str) -> None:
        from ._options import parse_signal

        self.get_fly(wid).send_signal_child(pid, parse_signal("signum", signum))


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return int(value) if isinstance(value, signal.Signals) else value
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)
