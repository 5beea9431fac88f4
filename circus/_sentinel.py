"""No orphans: a tiny sentinel process kills every fly when the host process dies.

`atexit` does not run on SIGKILL, and Jupyter's own cleanup only reaches the kernel's process
group, while each fly has a group of its own. So while any fly is alive, a small Python process
in its own session holds the read end of a pipe whose write end only this process has. The
host tells it which process groups are alive (`+pgid` / `-pgid` lines). If the pipe reaches EOF
while groups are still listed, the host is gone: the sentinel sends SIGTERM to each group,
then SIGKILL to what is left half a second later. (This is the pattern of multiprocessing's
resource tracker; PR_SET_PDEATHSIG would fire on the death of the spawning *thread*, and is
cleared for grandchildren.)
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading

TAG = "circus-sentinel"

_CODE = r"""
import os, signal, sys, time
for s in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGTSTP):
    signal.signal(s, signal.SIG_IGN)
groups, buf = set(), b""
while True:
    try:
        data = os.read(0, 65536)
    except InterruptedError:
        continue
    if not data:
        break
    buf += data
    *lines, buf = buf.split(b"\n")
    for line in lines:
        if line[:1] == b"+":
            groups.add(int(line[1:]))
        elif line[:1] == b"-":
            groups.discard(int(line[1:]))
def send(sig):
    alive = set()
    for g in groups:
        try:
            os.killpg(g, sig)
            alive.add(g)
        except OSError:
            pass
    return alive
groups = send(signal.SIGTERM)
deadline = time.monotonic() + 0.5
while groups and time.monotonic() < deadline:
    time.sleep(0.02)
    groups = send(0)
send(signal.SIGKILL)
"""


class Sentinel:
    """One per host process; started while something holds it, stopped when nothing does."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._holders = 0
        self._groups: set[int] = set()
        self._proc: subprocess.Popen[bytes] | None = None
        self._fd = -1
        self._pending: list[str] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def hold(self) -> None:
        with self._lock:
            self._holders += 1
            if self._proc is None:
                self._start()

    def release(self) -> None:
        """Drop one hold; the last one ends the sentinel (after untracking every group)."""
        with self._lock:
            self._holders = max(0, self._holders - 1)
            if self._holders == 0 and not self._groups:
                self._shutdown()

    @contextlib.contextmanager
    def batch(self):  # type: ignore[no-untyped-def]
        """Send the registrations made inside in one write (a Show spawning 200 flies)."""
        with self._lock:
            outer = self._pending is not None
            if not outer:
                self._pending = []
            try:
                yield
            finally:
                if not outer:
                    lines, self._pending = self._pending, None
                    if lines:
                        self._send("".join(lines))

    def track(self, pgid: int) -> None:
        with self._lock:
            self._groups.add(pgid)
            if self._pending is not None:
                self._pending.append(f"+{pgid}\n")
            else:
                self._send(f"+{pgid}\n")

    def untrack(self, pgid: int) -> None:
        with self._lock:
            if pgid in self._groups:
                self._groups.discard(pgid)
                if self._pending is not None and f"+{pgid}\n" in self._pending:
                    self._pending.remove(f"+{pgid}\n")
                else:
                    self._send(f"-{pgid}\n")
                if self._holders == 0 and not self._groups:
                    self._shutdown()

    def _start(self) -> None:
        read, self._fd = os.pipe()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _CODE, TAG, str(os.getpid())],
                stdin=read,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
            )
        finally:
            os.close(read)
        if self._groups:
            self._send("".join(f"+{g}\n" for g in self._groups))

    def _send(self, line: str) -> None:
        if self._proc is None:
            self._start()
            return
        try:
            os.write(self._fd, line.encode())
        except OSError:  # the sentinel was killed: start a new one that knows every group
            self._shutdown()
            self._start()

    def _shutdown(self) -> None:
        proc, self._proc = self._proc, None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if proc is not None:
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _after_fork_in_child(self) -> None:
        # A forked child must not keep the host's pipe open, or the host's death goes unseen.
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass
        self.__init__()  # type: ignore[misc]


SENTINEL = Sentinel()
os.register_at_fork(after_in_child=SENTINEL._after_fork_in_child)
