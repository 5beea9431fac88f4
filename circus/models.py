"""traitlets models of a trainer, its shows and their flies, fed by events.

The models talk to a trainer through one narrow interface, `TrainerBackend`: events in
(`subscribe`), one snapshot to start from (`snapshot`), commands out (`command`). A local
`Trainer` has these methods; a remote daemon's client (`circus.connect`) has them too, so
`TrainerModel(remote)` and the dashboards work unchanged.

Events arrive on the event-dispatcher thread. They update a plain mirror of the state under a
lock; one model thread per TrainerModel writes the mirror into the traits ("a flush") at most
`flush_rate` times a second, and once more after the last event, so the final state is exact.
The same thread samples cpu % and RSS every `sample_interval` seconds, but only while
something observes a sampled trait (`cpu`, `rss`, `age`, `cpu_history`, `rss_history`).

Writing a model acts: `show.numflies = 5` scales the show, `show.stop()` stops it.

A remote backend (`circus.connect`) publishes `trainer.connection` events; the model keeps
the state in `TrainerModel.connection`, and when the link is back ("connected" after "lost")
its model thread takes a fresh snapshot, since the events sent meanwhile are gone.

Output events carry chunks as the fly wrote them: the model joins them into lines per
(fly, stream), and shows the unfinished last line of each as the last output line.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

import psutil
from traitlets import (
    All,
    Bool,
    Dict,
    Float,
    HasTraits,
    Instance,
    Int,
    TraitError,
    Tuple,
    Unicode,
    UseEnum,
    observe,
    validate,
)

from ._states import FlyState, ShowState

Callback = Callable[[str, dict[str, Any]], None]

#: Longest unfinished output line kept (its tail), per fly and stream.
MAX_PARTIAL = 4096

#: Seconds between snapshot attempts while a reconnected remote does not answer yet.
RESYNC_RETRY = 0.5

#: Events kept while a snapshot is under way (older ones are in the snapshot anyway).
MAX_PENDING = 10_000

#: Traits whose values change with time, not with events: they cost a sample to keep fresh.
SAMPLED = frozenset({"cpu", "rss", "age", "cpu_history", "rss_history"})

HISTORY = 60  # points kept for the sparklines


class Closable(Protocol):
    def close(self) -> None: ...


@runtime_checkable
class TrainerBackend(Protocol):
    """What a model needs from a trainer, local or remote. Nothing else is ever called.

    - `subscribe(prefix, callback)`: call `callback(topic, payload)` (from any one thread,
      in publish order) for each event whose topic starts with `prefix`; topics are
      `show.<name>.<event>` and `trainer.<event>`, payloads are JSON dicts with `time`.
      Returns a handle with `close()`.
    - `snapshot()`: the JSON state of `circus._commands.snapshot` (with its `time`).
    - `command(name, **props)`: one command of `circus._commands.COMMANDS`; returns its
      JSON reply, raises `circus._commands.CommandError` (with `errno`) on bad input.
    """

    def subscribe(self, prefix: str, callback: Callback) -> Closable: ...

    def snapshot(self) -> dict[str, Any]: ...

    def command(self, command: str, /, **props: Any) -> dict[str, Any]: ...


@runtime_checkable
class SamplingBackend(TrainerBackend, Protocol):
    """A backend that can also sample processes itself (the local one, with psutil).

    `sample(pids)` returns `{pid: {"cpu": percent, "rss": bytes}}` for the pids still
    alive. Backends without it are sampled through the `stats` command.
    """

    def sample(self, pids: Sequence[int]) -> dict[int, dict[str, float]]: ...


class PsutilSampler:
    """cpu % and RSS of local pids: one `oneshot()` per process per call.

    The first reading of a pid is its average since it started (psutil's first
    `cpu_percent()` would say 0.0); later readings cover the time since the last call.
    """

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}

    def sample(self, pids: Sequence[int]) -> dict[int, dict[str, float]]:
        out: dict[int, dict[str, float]] = {}
        for pid in pids:
            proc = self._procs.get(pid)
            try:
                first = proc is None
                if proc is None:
                    proc = self._procs[pid] = psutil.Process(pid)
                with proc.oneshot():
                    cpu = proc.cpu_percent(None)
                    if first:
                        times = proc.cpu_times()
                        age = max(time.time() - proc.create_time(), 1e-3)
                        cpu = 100.0 * (times.user + times.system) / age
                    out[pid] = {"cpu": round(cpu, 1), "rss": float(proc.memory_info().rss)}
            except (psutil.Error, OSError):
                self._procs.pop(pid, None)
        for pid in set(self._procs) - set(pids):
            del self._procs[pid]
        return out


class LocalBackend:
    """A local `Trainer` as a `SamplingBackend` (its own methods, plus psutil sampling)."""

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self._sampler = PsutilSampler()

    def subscribe(self, prefix: str, callback: Callback) -> Closable:
        return self.trainer.subscribe(prefix, callback)

    def snapshot(self) -> dict[str, Any]:
        return self.trainer.snapshot()

    def command(self, command: str, /, **props: Any) -> dict[str, Any]:
        return self.trainer.command(command, **props)

    def sample(self, pids: Sequence[int]) -> dict[int, dict[str, float]]:
        return self._sampler.sample(pids)


def as_backend(obj: Any) -> TrainerBackend:
    """A local Trainer becomes a LocalBackend; anything with the three methods is kept."""
    from .trainer import Trainer

    if isinstance(obj, Trainer):
        return LocalBackend(obj)
    if isinstance(obj, TrainerBackend):
        return obj
    raise TypeError(f"{obj!r} is neither a Trainer nor has subscribe, snapshot and command")


def _parse_size(text: Any) -> float:
    """'12.3M' (what the stats command prints) -> bytes."""
    if isinstance(text, int | float):
        return float(text)
    try:
        units = {"B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
        return float(text[:-1]) * units[text[-1]]
    except (TypeError, ValueError, KeyError, IndexError):
        return 0.0


def sample_via_stats(backend: TrainerBackend, shows: Iterable[str]) -> dict[int, dict[str, float]]:
    """Sample through the `stats` command (what a remote daemon answers)."""
    out: dict[int, dict[str, float]] = {}
    for name in shows:
        try:
            info = backend.command("stats", name=name).get("info", {})
        except Exception:
            continue
        for pid, fly in info.items():
            cpu = fly.get("cpu")
            out[int(pid)] = {"cpu": float(cpu) if isinstance(cpu, int | float) else 0.0,
                             "rss": _parse_size(fly.get("mem_info1"))}
    return out


_local = threading.local()


def in_flush() -> bool:
    """True while the current thread writes a flush (model writes then don't act)."""
    return bool(getattr(_local, "flushing", False))


class _Model(HasTraits):
    """What the three models share: flush bookkeeping and observers of sampled traits."""

    flush_count = Int(0, help="How many flushes changed this model's traits (read only).")

    def __init__(self, **fixed: Any) -> None:
        super().__init__()
        self._flush_callbacks: tuple[Callable[[Any, frozenset[str]], None], ...] = ()
        for key, value in fixed.items():  # read-only identity traits (name, wid ...)
            self.set_trait(key, value)

    @property
    def _stat_watchers(self) -> set[tuple[Any, str]]:
        # observe() runs from HasTraits.__new__ (for @observe handlers), before __init__.
        return self.__dict__.setdefault("_circus_stat_watchers", set())

    def observe(self, handler: Any, names: Any = All, type: Any = "change") -> None:
        super().observe(handler, names, type)
        for name in self._sampled_names(names):
            self._stat_watchers.add((handler, name))

    def unobserve(self, handler: Any, names: Any = All, type: Any = "change") -> None:
        super().unobserve(handler, names, type)
        for name in self._sampled_names(names):
            self._stat_watchers.discard((handler, name))

    def unobserve_all(self, name: Any = All) -> None:
        super().unobserve_all(name)
        kept = {w for w in self._stat_watchers if name is not All and w[1] != name}
        self.__dict__["_circus_stat_watchers"] = kept

    @staticmethod
    def _sampled_names(names: Any) -> set[str]:
        if names is All:
            return set(SAMPLED)
        names = [names] if isinstance(names, str) else list(names)
        return {n for n in names if n in SAMPLED}

    def on_flush(self, callback: Callable[[Any, frozenset[str]], None], *,
                 stats: bool = False, remove: bool = False) -> None:
        """Call `callback(model, changed_names)` on the model thread after each flush that
        changed this model. With `stats=True` it also keeps cpu/RSS sampling on."""
        if remove:
            self._flush_callbacks = tuple(c for c in self._flush_callbacks if c != callback)
            self._stat_watchers.discard((callback, "*flush*"))
            return
        self._flush_callbacks = (*self._flush_callbacks, callback)
        if stats:
            self._stat_watchers.add((callback, "*flush*"))

    @property
    def wants_stats(self) -> bool:
        return bool(self._stat_watchers)

    def _write(self, values: dict[str, Any]) -> frozenset[str]:
        """Flush side: set the traits that differ; return their names."""
        changed = {k: v for k, v in values.items() if getattr(self, k) != v}
        if not changed:
            return frozenset()
        with self.hold_trait_notifications():
            for key, value in changed.items():
                setattr(self, key, value)
            self.flush_count += 1
        return frozenset(changed)

    def _after_flush(self, changed: frozenset[str]) -> None:
        for callback in self._flush_callbacks:
            try:
                callback(self, changed)
            except Exception:  # a broken view must not stop the model
                import logging

                logging.getLogger("circus.models").exception("flush callback %r", callback)


class FlyModel(_Model):
    """One slot (wid) of a show: the fly in it now, or the last one that exited from it."""

    show = Unicode(help="Name of the show.", read_only=True)
    wid = Int(help="Slot number, 1..numflies; a respawned fly keeps its slot.", read_only=True)
    pid = Int(0, help="Process id of the fly now in the slot.")
    state = UseEnum(FlyState, default_value=FlyState.RUNNING, help="running, stopping, exited.")
    started = Float(0.0, help="Unix time the fly started.")
    age = Float(0.0, help="Seconds since it started (until it exited); refreshed when sampled.")
    exit_code = Int(None, allow_none=True, help="Exit status of the last exit, if it exited.")
    exit_signal = Int(None, allow_none=True, help="Signal that killed it, if one did.")
    restarts = Int(0, help="How many times this slot's fly was respawned after dying.")
    cpu = Float(0.0, help="cpu % of the fly (100 = one core), sampled while observed.")
    rss = Int(0, help="Resident memory in bytes, sampled while observed.")
    output = Tuple(help="The last output lines of the fly (stdout and stderr merged).")

    def __init__(self, backend: TrainerBackend, show: str, wid: int) -> None:
        self._backend = backend
        super().__init__(show=show, wid=wid)

    def signal(self, signum: int | str) -> None:
        """Send a signal to this fly (15, 'TERM', 'SIGKILL' ...)."""
        self._backend.command("signal", name=self.show, signum=signum, pid=self.pid)

    def kill(self) -> None:
        self.signal("SIGKILL")

    def logs(self, lines: int = 50, stream: str = "stdout") -> list[str]:
        reply = self._backend.command("logs", name=self.show, wid=self.wid, lines=lines,
                                      stream=stream)
        return list(reply.get("logs", {}).get(str(self.wid), []))

    def __repr__(self) -> str:
        return f"<FlyModel {self.show}:{self.wid} pid={self.pid} {self.state.value}>"


class ShowModel(_Model):
    """A show: its state, target and running counts, options and flies."""

    name = Unicode(help="Name of the show.", read_only=True)
    state = UseEnum(ShowState, default_value=ShowState.STOPPED,
                    help="stopped, starting, active, stopping, flapping or failed.")
    numflies = Int(0, help="Target number of flies; setting it scales the show.")

    @validate("numflies")
    def _validate_numflies(self, proposal: Any) -> int:
        if proposal.value < 0:
            raise TraitError(f"numflies={proposal.value} is not valid: it must be >= 0")
        return int(proposal.value)

    @observe("numflies")
    def _numflies_changed(self, change: Any) -> None:
        if in_flush():
            return
        try:
            self._backend.command("set", name=self.name, options={"numflies": change.new})
        except Exception:
            self._mirror_dirty()  # the next flush puts back the real value
            raise

    running = Int(0, help="Flies running now.")
    restarts = Int(0, help="Flies respawned after dying on their own.")
    last_error = Unicode(None, allow_none=True, help="The last spawn or flapping error.")
    options = Dict(help="The show's options (JSON values), replaced on each change.")
    flies = Tuple(help="FlyModel of each slot, by wid (a new tuple on each change).")
    cpu = Float(0.0, help="Sum of the flies' cpu %, sampled while observed.")
    rss = Int(0, help="Sum of the flies' RSS in bytes, sampled while observed.")
    cpu_history = Tuple(help="Recent cpu samples, oldest first (for sparklines).")
    rss_history = Tuple(help="Recent RSS samples in bytes, oldest first.")
    output = Tuple(help="The last output lines of the show's flies, as '[wid] line'.")

    def __init__(self, backend: TrainerBackend, owner: TrainerModel | None, name: str) -> None:
        self._backend = backend
        self._owner = owner
        super().__init__(name=name)

    def _mirror_dirty(self) -> None:
        if self._owner is not None:
            self._owner._mark(self.name, force=True)

    def _cmd(self, command: str, **props: Any) -> dict[str, Any]:
        return self._backend.command(command, name=self.name, **props)

    def start(self) -> None:
        self._cmd("start")

    def stop(self) -> None:
        self._cmd("stop")

    def restart(self) -> None:
        self._cmd("restart")

    def reload(self) -> None:
        self._cmd("reload")

    def incr(self, nb: int = 1) -> int:
        return int(self._cmd("incr", nb=nb)["numflies"])

    def decr(self, nb: int = 1) -> int:
        return int(self._cmd("decr", nb=nb)["numflies"])

    def signal(self, signum: int | str, wid: int | None = None) -> None:
        """Send a signal to every fly, or to the fly in slot `wid`."""
        props: dict[str, Any] = {"signum": signum}
        if wid is not None:
            props["wid"] = wid
        self._cmd("signal", **props)

    def logs(self, lines: int = 50, wid: int | None = None, stream: str = "stdout"
             ) -> dict[int, list[str]]:
        props: dict[str, Any] = {"lines": lines, "stream": stream}
        if wid is not None:
            props["wid"] = wid
        return {int(k): v for k, v in self._cmd("logs", **props).get("logs", {}).items()}

    def fly(self, wid: int) -> FlyModel:
        for fly in self.flies:
            if fly.wid == wid:
                return fly
        raise KeyError(f"show {self.name!r} has no fly in slot {wid}; "
                       f"slots: {[f.wid for f in self.flies]}")

    def __repr__(self) -> str:
        return f"<ShowModel {self.name!r} {self.state.value} {self.running}/{self.numflies}>"


class TrainerModel(_Model):
    """A trainer's shows, kept up to date from its events.

    `TrainerModel(trainer_or_backend)`; `model["web"]` is the ShowModel of show "web";
    `close()` stops following (it is also a context manager).
    """

    running = Bool(False, help="Whether the trainer's loop runs.")
    shows = Tuple(help="ShowModel of each show, by name (a new tuple on each change).")
    flush_rate = Float(10.0, help="At most this many flushes per second.")

    @validate("flush_rate")
    def _validate_flush_rate(self, proposal: Any) -> float:
        if not proposal.value > 0:
            raise TraitError(f"flush_rate={proposal.value!r} is not valid: it must be > 0")
        return float(proposal.value)

    sample_interval = Float(1.0, help="Seconds between cpu/RSS samples, while observed.")

    @validate("sample_interval")
    def _validate_sample_interval(self, proposal: Any) -> float:
        if not proposal.value > 0:
            raise TraitError(f"sample_interval={proposal.value!r} is not valid: it must be > 0")
        return float(proposal.value)

    output_lines = Int(20, help="Output lines kept per fly and per show.")
    # Typed Any for mypy: the trait holds any object with the TrainerBackend methods.
    backend: Any = Instance(object, help="The TrainerBackend the model talks to.", read_only=True)
    connection = Unicode(None, allow_none=True, help=(
        "The link to a remote trainer (connecting, connected, lost, closed); None for a "
        "local one."))

    def __init__(self, trainer: Any, **kw: Any) -> None:
        backend = as_backend(trainer)
        super().__init__(backend=backend)
        for key, value in kw.items():
            setattr(self, key, value)
        self._lock = threading.Condition()
        self._mirror: dict[str, dict[str, Any]] = {}  # show name -> plain state
        self._running = False
        self._dirty: set[str] = set()
        self._dirty_trainer = False
        self._closed = False
        self._last_flush = 0.0
        self._next_sample = 0.0
        self._show_models: dict[str, ShowModel] = {}
        self._fly_models: dict[tuple[str, int], FlyModel] = {}
        self._flush_lock = threading.Lock()
        self._pending: list[tuple[str, dict[str, Any]]] = []
        self._synced = False
        self._synced_at = 0.0
        self._connection: str | None = None
        self._resync_at: float | None = None  # monotonic time of the next snapshot attempt
        self._subs = [backend.subscribe("trainer.", self._on_event),
                      backend.subscribe("show.", self._on_event)]
        self._load(backend.snapshot())
        self._thread = threading.Thread(target=self._run, name="circus-model", daemon=True)
        self._thread.start()
        self.flush()

    # --- public ---------------------------------------------------------------------------

    def __getitem__(self, name: str) -> ShowModel:
        for show in self.shows:
            if show.name == name:
                return show
        raise KeyError(f"no show named {name!r}; known shows: "
                       f"{', '.join(s.name for s in self.shows) or 'none'}")

    def add_show(self, name: str, cmd: str, start: bool = True, **options: Any) -> None:
        self.backend.command("addshow", name=name, cmd=cmd, options=options, start=start)

    def rm_show(self, name: str) -> None:
        self.backend.command("rmshow", name=name)

    def command(self, command: str, /, **props: Any) -> dict[str, Any]:
        return self.backend.command(command, **props)

    def flush(self) -> None:
        """Write the pending state into the traits now (the model thread does it by itself)."""
        with self._flush_lock:
            _local.flushing = True
            try:
                self._flush()
            finally:
                _local.flushing = False

    def wait_flushed(self, timeout: float = 5.0) -> bool:
        """Wait until every event so far has reached the traits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._dirty and not self._dirty_trainer:
                    return True
            time.sleep(0.01)
        return False

    def close(self) -> None:
        """Stop following events; the model thread ends. Safe to call twice."""
        for sub in self._subs:
            sub.close()
        self._subs = []
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(5)

    def __enter__(self) -> TrainerModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<TrainerModel {'running' if self.running else 'stopped'} {len(self.shows)} shows>"

    # --- the mirror (event thread) --------------------------------------------------------

    def _load(self, snap: dict[str, Any]) -> None:
        with self._lock:
            self._synced_at = snap.get("time", 0.0)
            self._running = bool(snap.get("running"))
            if self._connection is None or self._connection == "connecting":
                self._connection = snap.get("connection")
            self._mirror = {name: self._show_mirror(s, self._synced_at)
                            for name, s in snap.get("shows", {}).items()}
            self._dirty = set(self._mirror) | set(self._show_models)
            self._dirty_trainer = True
            for topic, payload in self._pending:  # what came while the snapshot was taken
                self._apply_event(topic, payload)
            self._pending, self._synced = [], True
            self._lock.notify_all()

    def _show_mirror(self, s: dict[str, Any], synced: float) -> dict[str, Any]:
        lines = self.output_lines
        flies = {}
        for f in s.get("flies", ()):
            rc = f.get("returncode")
            flies[f["wid"]] = {
                "pid": f["pid"], "state": FlyState(f["state"]), "started": f["started"],
                "age": f["age"], "exit_code": rc if rc is not None and rc >= 0 else None,
                "exit_signal": -rc if rc is not None and rc < 0 else None, "restarts": 0,
                "cpu": 0.0, "rss": 0, "output": collections.deque(maxlen=lines),
            }  # fmt: skip
        return {
            "synced": synced, "state": ShowState(s["state"]), "numflies": s["numflies"],
            "restarts": s["restarts"], "last_error": s.get("last_error"),
            "options": dict(s.get("options", {})), "flies": flies,
            "output": collections.deque(maxlen=lines), "partials": {}, "cpu": 0.0, "rss": 0,
            "cpu_history": collections.deque(maxlen=HISTORY),
            "rss_history": collections.deque(maxlen=HISTORY),
        }  # fmt: skip

    def _mark(self, name: str | None, force: bool = False) -> None:
        with self._lock:
            if name is None:
                self._dirty_trainer = True
            else:
                self._dirty.add(name)
            self._lock.notify_all()

    def _on_event(self, topic: str, payload: dict[str, Any]) -> None:
        with self._lock:  # a reentrant lock: the mirror is only touched under it
            if self._closed:
                return
            if topic == "trainer.connection":  # our own link, stamped by our clock: never late
                self._on_connection(str(payload.get("state")))
                return
            if not self._synced:
                self._pending.append((topic, payload))
                if len(self._pending) > MAX_PENDING:
                    del self._pending[: len(self._pending) - MAX_PENDING]
                return
            self._apply_event(topic, payload)

    def _on_connection(self, state: str) -> None:
        was, self._connection = self._connection, state
        if state == "connected" and was == "lost":
            self._synced = False  # events queue up until the model thread has a snapshot
            self._resync_at = time.monotonic()
        self._dirty_trainer = True
        self._lock.notify_all()

    def _apply_event(self, topic: str, payload: dict[str, Any]) -> None:
        if payload.get("time", 0.0) < self._synced_at:
            return  # already in the snapshot
        parts = topic.split(".")
        if parts[0] == "trainer" and len(parts) == 2:
            self._on_trainer_event(parts[1], payload)
        elif parts[0] == "show" and len(parts) == 3:
            show = self._mirror.get(parts[1])
            if show is None or payload.get("time", 0.0) < show["synced"]:
                return
            if _apply(show, parts[2], payload, self.output_lines):
                self._dirty.add(parts[1])
                self._lock.notify_all()

    def _on_trainer_event(self, event: str, payload: dict[str, Any]) -> None:
        if event in ("start", "stop"):
            self._running = event == "start"
        elif event == "add_show":
            name = payload.get("show")
            if not isinstance(name, str):
                return
            try:
                snap = self.backend.snapshot()  # the new show's state, once
            except Exception:
                return
            state = snap.get("shows", {}).get(name)
            if state is not None and name not in self._mirror:
                self._mirror[name] = self._show_mirror(state, snap.get("time", 0.0))
                self._dirty.add(name)
        elif event == "rm_show":
            self._mirror.pop(str(payload.get("show")), None)
        else:
            return
        self._dirty_trainer = True
        self._lock.notify_all()

    # --- the model thread -----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._closed:
                    now = time.monotonic()
                    dirty = self._dirty or self._dirty_trainer
                    flush_at = self._last_flush + 1.0 / self.flush_rate if dirty else float("inf")
                    sample_at = self._next_sample if self._want_samples() else float("inf")
                    resync_at = self._resync_due()
                    wake = min(flush_at, sample_at, resync_at)
                    if wake <= now:
                        break
                    # Bounded: a new observer of cpu/rss is noticed within 0.25 s.
                    self._lock.wait(min(wake - now, 0.25))
                if self._closed:
                    return
                sample = time.monotonic() >= self._next_sample and self._want_samples()
                resync = time.monotonic() >= self._resync_due()
            if resync:
                self._resync()
            if sample:
                self._next_sample = time.monotonic() + self.sample_interval
                self._sample()
            if time.monotonic() >= self._last_flush + 1.0 / self.flush_rate:
                self.flush()

    def _resync_due(self) -> float:
        if self._resync_at is None or self._connection != "connected":
            return float("inf")  # lost again: the next "connected" asks for it
        return self._resync_at

    def _resync(self) -> None:
        """The remote is back: start over from a fresh snapshot (on the model thread)."""
        backend: TrainerBackend = self.backend
        try:
            snap = backend.snapshot()
        except Exception:
            with self._lock:
                self._resync_at = time.monotonic() + RESYNC_RETRY
            return
        with self._lock:
            self._resync_at = None
            self._load(snap)

    def _want_samples(self) -> bool:
        if self._connection not in (None, "connected"):
            return False  # a lost remote would only time out
        return any(m.wants_stats for m in (*self._show_models.values(),
                                            *self._fly_models.values()))

    def _sample(self) -> None:
        with self._lock:
            wanted = [n for n, m in self._show_models.items()
                      if n in self._mirror and (m.wants_stats or any(
                          f.wants_stats for f in m.flies))]
            pids = [f["pid"] for n in wanted for f in self._mirror[n]["flies"].values()
                    if f["state"] is FlyState.RUNNING]
        backend = self.backend
        try:
            if isinstance(backend, SamplingBackend):
                stats = backend.sample(pids)
            else:
                stats = sample_via_stats(backend, wanted)
        except Exception:
            return
        now = time.time()
        with self._lock:
            for name in wanted:
                show = self._mirror.get(name)
                if show is None:
                    continue
                cpu, rss = 0.0, 0
                for fly in show["flies"].values():
                    if fly["state"] is FlyState.RUNNING:
                        got = stats.get(fly["pid"], {"cpu": 0.0, "rss": 0})
                        fly["cpu"], fly["rss"] = float(got["cpu"]), int(got["rss"])
                        fly["age"] = max(now - fly["started"], 0.0)
                    else:
                        fly["cpu"], fly["rss"] = 0.0, 0
                    cpu += fly["cpu"]
                    rss += fly["rss"]
                show["cpu"], show["rss"] = round(cpu, 1), rss
                show["cpu_history"].append(show["cpu"])
                show["rss_history"].append(rss)
                self._dirty.add(name)

    def _flush(self) -> None:
        """Write the mirror into the traits (on the model thread, or a flush() caller)."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            trainer_dirty, self._dirty_trainer = self._dirty_trainer, False
            writes: list[tuple[_Model, dict[str, Any]]] = []
            new_shows: list[ShowModel] = []
            for name in dirty:
                show = self._mirror.get(name)
                if show is None:
                    continue
                model = self._show_models.get(name)
                if model is None:
                    model = self._show_models[name] = ShowModel(self.backend, self, name)
                    new_shows.append(model)
                flies = []
                for wid in sorted(show["flies"]):
                    fly = show["flies"][wid]
                    key = (name, wid)
                    fm = self._fly_models.get(key)
                    if fm is None:
                        fm = self._fly_models[key] = FlyModel(self.backend, name, wid)
                    values = {k: v for k, v in fly.items() if k != "output"}
                    unfinished = tuple(text for (w, _), (pid, text) in show["partials"].items()
                                       if w == wid and pid == fly["pid"])
                    values["output"] = (tuple(fly["output"]) + unfinished)[-self.output_lines:]
                    writes.append((fm, values))
                    flies.append(fm)
                for key in [k for k in self._fly_models if k[0] == name
                            and k[1] not in show["flies"]]:
                    del self._fly_models[key]
                running = sum(1 for f in show["flies"].values()
                              if f["state"] is FlyState.RUNNING)
                writes.append((model, {
                    "state": show["state"], "numflies": show["numflies"], "running": running,
                    "restarts": show["restarts"], "last_error": show["last_error"],
                    "options": show["options"], "flies": tuple(flies), "cpu": show["cpu"],
                    "rss": show["rss"], "cpu_history": tuple(show["cpu_history"]),
                    "rss_history": tuple(show["rss_history"]),
                    "output": (tuple(show["output"]) + tuple(
                        f"[{w}] {text}" for (w, _), (_, text) in sorted(
                            show["partials"].items()))
                    )[-self.output_lines:],
                }))  # fmt: skip
            if trainer_dirty or new_shows:
                gone = [n for n in self._show_models if n not in self._mirror]
                for name in gone:
                    del self._show_models[name]
                    for key in [k for k in self._fly_models if k[0] == name]:
                        del self._fly_models[key]
                order = [n for n in self._mirror if n in self._show_models]
                writes.append((self, {"running": self._running, "connection": self._connection,
                                      "shows": tuple(self._show_models[n] for n in order)}))
        done: list[tuple[_Model, frozenset[str]]] = []
        for target, values in writes:
            changed = target._write(values)
            if changed:
                done.append((target, changed))
        for target, changed in done:
            target._after_flush(changed)
        with self._lock:  # the next flush is due 1/flush_rate after this one *ended*
            self._last_flush = time.monotonic()


def _apply(show: dict[str, Any], event: str, p: dict[str, Any], lines: int) -> bool:
    """Apply one show event to the mirror; True if anything may have changed."""
    flies = show["flies"]
    wid = p.get("fly_id")
    fly = flies.get(wid)
    if event == "start":
        show["state"] = ShowState.STARTING
    elif event in ("active", "retry"):
        show["state"] = ShowState.ACTIVE
    elif event == "stopping":
        show["state"] = ShowState.STOPPING
    elif event == "stop":
        show["state"] = ShowState.STOPPED
        flies.clear()
        for (w, _), (_, text) in sorted(show["partials"].items()):
            show["output"].append(f"[{w}] {text}")  # no fly will finish these lines
        show["partials"].clear()
    elif event == "flapping":
        show["state"] = ShowState.FAILED if p.get("failed") else ShowState.FLAPPING
        show["last_error"] = p.get("reason")
    elif event == "spawn_error":
        show["last_error"] = p.get("error")
    elif event == "updated":
        options = dict(show["options"])
        options[p["key"]] = p["value"]
        show["options"] = options
        if p["key"] == "numflies":
            show["numflies"] = int(p["value"])
            for w in [w for w, f in flies.items()
                      if w > show["numflies"] and f["state"] is FlyState.EXITED]:
                del flies[w]  # an exited fly's slot that scaling removed
    elif event == "spawn":
        if fly is not None and fly["pid"] == p["fly_pid"]:
            return False
        restarts = 0 if fly is None else fly["restarts"] + (fly["state"] is FlyState.EXITED)
        flies[wid] = {
            "pid": p["fly_pid"], "state": FlyState.RUNNING, "started": p["time"], "age": 0.0,
            "exit_code": None, "exit_signal": None, "restarts": restarts, "cpu": 0.0, "rss": 0,
            "output": collections.deque(maxlen=lines),
        }  # fmt: skip
    elif event == "kill":
        if fly is None or fly["pid"] != p["fly_pid"]:
            return False
        fly["state"] = FlyState.STOPPING
    elif event == "reap":
        if fly is None or fly["pid"] != p["fly_pid"]:
            return False
        if p.get("expected"):
            del flies[wid]  # we stopped it: the slot is gone or refilled by a spawn
        else:
            fly.update(state=FlyState.EXITED, exit_code=p.get("exit_code"),
                       exit_signal=p.get("signal"), age=p.get("age", fly["age"]), cpu=0.0, rss=0)
            if show["state"] is ShowState.ACTIVE:
                show["restarts"] += 1
            if wid > show["numflies"]:
                del flies[wid]  # its slot is gone: nothing will respawn it
    elif event == "output":
        return _output(show, fly, wid, p)
    else:
        return event in ("restart", "reload")
    return True


def _output(show: dict[str, Any], fly: dict[str, Any] | None, wid: Any, p: dict[str, Any]
            ) -> bool:
    """Join an output chunk to the unfinished line of its (fly, stream); keep whole lines."""
    data = str(p.get("data", ""))
    if not data:
        return False
    pid = p.get("fly_pid")
    key = (wid, str(p.get("stream", "stdout")))
    partials = show["partials"]
    held_pid, text = partials.pop(key, (pid, ""))
    if held_pid != pid:  # a new fly in the slot: the old one will never end its line
        show["output"].append(f"[{wid}] {text}")
        text = ""
    *done, rest = (text + data).split("\n")
    if rest:
        partials[key] = (pid, rest[-MAX_PARTIAL:])
    new = [ln for ln in (d.rstrip("\r") for d in done) if ln]
    if fly is not None and fly["pid"] == pid:
        fly["output"].extend(new)
    show["output"].extend(f"[{wid}] {ln}" for ln in new)
    return True


__all__ = [
    "FlyModel",
    "LocalBackend",
    "PsutilSampler",
    "SamplingBackend",
    "ShowModel",
    "TrainerBackend",
    "TrainerModel",
    "as_backend",
    "in_flush",
]
