"""Fly: one OS process, in a process group of its own, with its output captured."""

from __future__ import annotations

import fcntl
import os
import shlex
import signal
import subprocess
import time
from typing import TYPE_CHECKING, Any

from ._output import OutputBuffer
from ._sentinel import SENTINEL
from ._states import FlyState

if TYPE_CHECKING:
    import psutil

STREAMS = ("stdout", "stderr")

# A pipe holds 64 KiB. A fly that fills it (a fast writer) gets a 1 MiB pipe, so the loop
# wakes 16 times less often for the same bytes. Only busy pipes grow: every pipe's capacity
# counts against the user's pipe-user-pages-soft, past which Linux gives new pipes one page.
PIPE_SIZE = 1 << 16
BIG_PIPE_SIZE = 1 << 20
F_SETPIPE_SZ = 1031


def _bytes(n: float) -> str:
    for unit in ("B", "K", "M", "G"):
        if n < 1024 or unit == "G":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return str(n)


class FlyInfo(dict[str, Any]):
    """What `Fly.info()` returns: a mapping, whose str() is the one-line form of the seed."""

    def __str__(self) -> str:
        if self.get("status") == "gone":
            return "No such process (stopped?)"
        line = "{pid}  {cmdline} {username} {nice} {mem_info1} {mem_info2} {cpu} {mem} {ctime}"
        head = f"{self['wid']}: " + line.format(**self)
        return "\n".join([head] + ["   " + line.format(**c) for c in self.get("children", ())])

    def __repr__(self) -> str:
        return repr(str(self))


# Reliability fix (issue 6): killpg(pgid, 0) succeeds as long as a zombie is left in the group,
# and an orphaned grandchild stays a zombie for good under an init that does not reap (pid 1 of
# many containers). Waiting for "the group is empty" then took a whole extra graceful_timeout
# (see tests/test_reliability.py::test_term_ignoring_flies_and_grandchildren_are_killed_at_...).
# So a group counts as alive only while /proc shows a member that is not a zombie; one scan is
# shared by every fly that asks within _LIVE_TTL seconds.
_LIVE_TTL = 0.005
_live_cache: tuple[float, frozenset[int]] = (-1.0, frozenset())


def _live_groups() -> frozenset[int] | None:
    """Process groups with a member that is not a zombie; None without /proc."""
    global _live_cache
    now = time.monotonic()
    if now - _live_cache[0] < _LIVE_TTL:
        return _live_cache[1]
    try:
        names = os.listdir("/proc")
    except OSError:  # pragma: no cover - no procfs
        return None
    groups = set()
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                raw = f.read()
            state, _ppid, pgrp = raw[raw.rfind(b")") + 2 :].split()[:3]
        except (OSError, ValueError):
            continue
        if state not in (b"Z", b"X"):
            groups.add(int(pgrp))
    _live_cache = (time.monotonic(), frozenset(groups))
    return _live_cache[1]


def _process_info(proc: psutil.Process) -> dict[str, Any]:
    import psutil  # imported when first asked: a headless daemon starts faster without it

    info: dict[str, Any] = {"pid": proc.pid}
    na = "N/A"
    with proc.oneshot():
        try:
            status = proc.status()
        except psutil.Error:
            status = "gone"
        info["status"] = status
        zombie = status == psutil.STATUS_ZOMBIE
        fields = {
            "cmdline": lambda: " ".join(proc.cmdline()) or na,
            "username": proc.username,
            "nice": lambda: "Zombie" if zombie else proc.nice(),
            "mem_info1": lambda: _bytes(proc.memory_info().rss),
            "mem_info2": lambda: _bytes(proc.memory_info().vms),
            "cpu": lambda: proc.cpu_percent(interval=None),
            "mem": lambda: round(proc.memory_percent(), 1),
            "ctime": lambda: f"{sum(proc.cpu_times()[:2]):.2f}",
        }
        for key, get in fields.items():
            try:
                info[key] = na if zombie and key not in ("username", "nice") else get()
            except (psutil.Error, OSError):
                info[key] = na
    return info


class Fly:
    """One process of a show.

    The process starts in the constructor, as in the seed, in a new session (so its own process
    group): stopping it reaches its children too. Its stdout and stderr are pipes kept in a
    bounded tail (`stdout`, `stderr`, `lines()`); a Show drains them on its loop, a lone Fly
    whenever they are read.
    """

    RUNNING = 0
    DEAD_OR_ZOMBIE = 1
    OTHER = 2

    def __init__(
        self,
        wid: int | str,
        cmd: str,
        working_dir: str | None = None,
        shell: bool = False,
        uid: int | None = None,
        gid: int | None = None,
        env: dict[str, str] | None = None,
        *,
        args: tuple[str, ...] | list[str] = (),
        show_name: str = "",
        copy_env: bool = True,
        output_lines: int = 1000,
        output_bytes: int = 1 << 20,
        graceful_timeout: float = 30.0,
        stop_signal: int = signal.SIGTERM,
    ) -> None:
        self.wid: Any = wid  # a Show's slot number (1..numflies); any label for a lone Fly
        self.show_name = show_name
        self.graceful_timeout = graceful_timeout
        self.stop_signal = stop_signal
        self.cmd = self._expand(cmd)
        self.args = [self._expand(a) for a in args]
        self.state = FlyState.RUNNING
        self.returncode: int | None = None
        self.output = {s: OutputBuffer(output_lines, output_bytes) for s in STREAMS}
        if shell:
            argv = ["/bin/sh", "-c", " ".join([self.cmd, *map(shlex.quote, self.args)])]
        else:
            argv = shlex.split(self.cmd) + self.args
        self.argv = argv
        self.started = time.time()
        self._t0 = time.monotonic()
        self.exited_at: float | None = None
        self._popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=working_dir,
            env=self._environ(env, copy_env),
            user=uid,
            group=gid,
            start_new_session=True,  # its own group: killpg reaches grandchildren
            close_fds=True,
        )
        self.pid: int = self._popen.pid
        self.pgid: int = self._popen.pid
        SENTINEL.track(self.pgid)
        self.fds = {s: getattr(self._popen, s).fileno() for s in STREAMS}
        self.read_size = dict.fromkeys(STREAMS, PIPE_SIZE)
        self.managed = False  # True once a Show's loop drains the pipes
        for fd in self.fds.values():
            os.set_blocking(fd, False)
        try:
            self.pidfd: int = os.pidfd_open(self.pid)
        except OSError:  # pragma: no cover - kernels before 5.3
            self.pidfd = -1

    def _expand(self, text: str) -> str:
        return text.replace("$(circus.wid)", str(self.wid)).replace("$WID", str(self.wid))

    def _environ(self, env: dict[str, str] | None, copy_env: bool) -> dict[str, str]:
        out = dict(os.environ) if copy_env else {}
        out.setdefault("PYTHONUNBUFFERED", "1")  # a live tail of Python workers
        out.update(env or {})
        out["CIRCUS_WID"] = str(self.wid)
        out["CIRCUS_SHOW"] = self.show_name
        return out

    # --- the seed's members -------------------------------------------------------------

    @property
    def stdout(self) -> str:
        """What the fly wrote to stdout (the kept tail)."""
        self.pump()
        return self.output["stdout"].text()

    @property
    def stderr(self) -> str:
        """What the fly wrote to stderr (the kept tail)."""
        self.pump()
        return self.output["stderr"].text()

    def lines(self, stream: str = "stdout", n: int | None = None) -> list[str]:
        self.pump()
        return self.output[stream].lines(n)

    @property
    def status(self) -> int:
        """RUNNING (0), DEAD_OR_ZOMBIE (1) once it died, OTHER (2) once stopped."""
        if self.state is FlyState.STOPPED:
            return self.OTHER
        if self.poll() is None:
            return self.RUNNING
        return self.DEAD_OR_ZOMBIE

    def age(self) -> float:
        """Seconds since the fly started (until it exited)."""
        end = self.exited_at if self.exited_at is not None else time.monotonic()
        return end - self._t0

    def info(self) -> FlyInfo:
        import psutil

        if self.state is FlyState.STOPPED:
            return FlyInfo(wid=self.wid, pid=self.pid, status="gone")
        try:
            proc = psutil.Process(self.pid)
            info = FlyInfo(wid=self.wid, **_process_info(proc))
            info["children"] = [_process_info(c) for c in proc.children(recursive=True)]
        except psutil.NoSuchProcess:
            na = "N/A"
            info = FlyInfo(
                wid=self.wid, pid=self.pid, cmdline=na, username=na, nice="Dead",
                mem_info1=na, mem_info2=na, cpu=na, mem=na, ctime=na, status="dead",
                children=[],
            )  # fmt: skip
        info["age"] = self.age()
        info["returncode"] = self.returncode
        return info

    def children(self) -> list[int]:
        """Pids of the fly's children (all descendants)."""
        import psutil

        try:
            return [c.pid for c in psutil.Process(self.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def is_child(self, pid: int) -> bool:
        return pid in self.children()

    def send_signal(self, sig: int) -> None:
        """Send `sig` to the fly's process (not its children)."""
        if self.returncode is None:
            self._popen.send_signal(sig)

    def send_signal_child(self, pid: int, signum: int) -> None:
        if not self.is_child(pid):
            raise ValueError(f"pid {pid} is not a child of fly {self.wid}; its children: "
                             f"{self.children()}")
        os.kill(pid, signum)

    def send_signal_children(self, signum: int) -> None:
        for pid in self.children():
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def signal_group(self, sig: int) -> bool:
        """Send `sig` to the fly's whole process group; False once the group is empty."""
        try:
            os.killpg(self.pgid, sig)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:  # pid reused by a process we don't own: ours is gone
            return False

    def group_alive(self) -> bool:
        """True while the fly's group has a member that is not a zombie."""
        if not self.signal_group(0):
            return False
        live = _live_groups()
        return live is None or self.pgid in live

    def stop(self, graceful_timeout: float | None = None) -> None:
        """Stop the fly and its group, blocking: stop_signal, then SIGKILL at the timeout.

        A Show never calls this on its loop; it stops flies without blocking.
        """
        timeout = self.graceful_timeout if graceful_timeout is None else graceful_timeout
        deadline = time.monotonic() + timeout
        if self.poll() is None:
            self.state = FlyState.STOPPING
            self.signal_group(self.stop_signal)
            try:
                self._popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self._popen.wait()
            self._mark_exit()
        while self.group_alive() and time.monotonic() < deadline:
            time.sleep(0.01)  # a lone Fly has no loop: its leftover group is polled briefly
        self.signal_group(signal.SIGKILL)
        self.state = FlyState.STOPPED
        self.close()

    # --- helpers for the loop -------------------------------------------------------------

    def poll(self) -> int | None:
        """Reap this fly's own pid if it exited (never another process's)."""
        if self.returncode is None and self._popen.poll() is not None:
            self._mark_exit()
        return self.returncode

    def _mark_exit(self) -> None:
        self.returncode = self._popen.returncode
        if self.exited_at is None:
            self.exited_at = time.monotonic()
        if self.state is FlyState.RUNNING:
            self.state = FlyState.EXITED

    @property
    def exit_code(self) -> int | None:
        """The exit status, or None if a signal killed it."""
        rc = self.returncode
        return rc if rc is not None and rc >= 0 else None

    @property
    def exit_signal(self) -> int | None:
        rc = self.returncode
        return -rc if rc is not None and rc < 0 else None

    def read(self, stream: str) -> bytes | None:
        """Read what is there on one pipe: data, b"" at EOF, None if nothing yet."""
        fd = self.fds.get(stream, -1)
        if fd < 0:
            return b""
        try:
            data = os.read(fd, self.read_size[stream])
        except BlockingIOError:
            return None
        except OSError:
            return b""
        if len(data) == PIPE_SIZE == self.read_size[stream]:
            self._grow_pipe(stream, fd)
        return data

    def _grow_pipe(self, stream: str, fd: int) -> None:
        try:
            self.read_size[stream] = fcntl.fcntl(fd, F_SETPIPE_SZ, BIG_PIPE_SIZE)
        except OSError:  # over the user's pipe limits: keep the small pipe
            self.read_size[stream] = PIPE_SIZE + 1  # don't ask again

    def pump(self) -> None:
        """Drain both pipes without blocking: for a lone Fly, whenever its output is read.

        A Show's fly is drained by the Show's loop alone (log files and events come from
        there); reading its pipes from another thread would race with the loop.
        """
        if self.managed:
            return
        for stream in STREAMS:
            while (data := self.read(stream)) is not None:
                if not data:
                    self.close_stream(stream)
                    break
                self.output[stream].feed(data)

    def close_stream(self, stream: str) -> None:
        if self.fds.get(stream, -1) >= 0:
            self.fds[stream] = -1
            getattr(self._popen, stream).close()
            self.output[stream].close()

    def close(self) -> None:
        """Release the pipes, the pidfd and the sentinel's watch on the group."""
        self.pump()
        for stream in STREAMS:
            self.close_stream(stream)
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1
        if self.returncode is None:
            self.poll()
        if self.returncode is not None:  # the group got SIGKILL or was empty: stop watching it
            SENTINEL.untrack(self.pgid)

    def __repr__(self) -> str:
        return f"<Fly {self.show_name}:{self.wid} pid={self.pid} {self.state}>"
