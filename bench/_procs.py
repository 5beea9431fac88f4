"""Seeing a manager's processes from outside, through /proc.

``psutil.Process(pid).children()`` reads the stat file of every process on the machine, which
costs ~10 ms with 1,000 processes: too coarse to time a 1 ms respawn. ``Census`` keeps the
answer up to date instead: each scan lists /proc and reads only the pids it has not seen.
A pid whose parent is not the manager can never become its child, so it is read once; a
child that has not exec'd the workload yet (or is a helper) is read again on every scan.
"""

from __future__ import annotations

import os
import signal
import time

import psutil

HELPER_MARK = b"circus-sentinel"


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def stat_fields(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of a process, or None once it is gone."""
    raw = _read(f"/proc/{pid}/stat")
    if not raw:
        return None
    rest = raw[raw.rfind(b")") + 2 :].split()
    return rest[0].decode(), int(rest[1])


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    fields = stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def ignores_sigterm(pid: int) -> bool:
    raw = _read(f"/proc/{pid}/status") or b""
    for line in raw.splitlines():
        if line.startswith(b"SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


def _proc_pids() -> set[int]:
    return {int(name) for name in os.listdir("/proc") if name.isdigit()}


class Census:
    """The direct children of ``manager_pid`` whose argv is exactly ``argv``."""

    def __init__(self, manager_pid: int, argv: tuple[str, ...]) -> None:
        self.manager_pid = manager_pid
        self._cmdline = b"".join(arg.encode() + b"\0" for arg in argv)
        self._strangers: set[int] = set()  # not the manager's children: never will be
        self._pending: set[int] = set()  # the manager's children, not running the workload
        self._dead: set[int] = set()  # killed by us, maybe still a zombie
        self.workers: set[int] = set()
        self.seen: set[int] = set()  # every worker pid ever counted, for the cleanup

    def scan(self) -> set[int]:
        pids = _proc_pids()
        self._dead &= pids
        self.workers &= pids
        self._pending &= pids
        self._strangers &= pids
        known = self.workers | self._strangers | self._dead
        for pid in pids - known:
            self._classify(pid)
        return self.workers

    def forget(self, pid: int) -> None:
        """Stop counting a worker we have just killed."""
        self.workers.discard(pid)
        self._dead.add(pid)

    def verify(self) -> set[int]:
        """Drop workers that died on their own (zombies); slow, use between timings."""
        self.workers = {pid for pid in self.workers if alive(pid)}
        return self.workers

    def runs_workload(self, pid: int) -> bool:
        return _read(f"/proc/{pid}/cmdline") == self._cmdline

    def helpers(self) -> set[int]:
        """The manager's children that are not workers (e.g. our sentinel)."""
        return {pid for pid in self._pending if alive(pid)}

    def _classify(self, pid: int) -> None:
        self._pending.discard(pid)
        fields = stat_fields(pid)
        if fields is None:
            return
        state, ppid = fields
        if ppid != self.manager_pid:
            self._strangers.add(pid)
        elif state not in ("Z", "X") and self.runs_workload(pid):
            self.workers.add(pid)
            self.seen.add(pid)
        else:
            self._pending.add(pid)


def wait_for(predicate, timeout: float, interval: float = 0.0005):
    """Poll ``predicate`` until it returns something true; return (value, elapsed) or raise."""
    start = time.perf_counter()
    deadline = start + timeout
    while True:
        value = predicate()
        now = time.perf_counter()
        if value:
            return value, now - start
        if now > deadline:
            raise TimeoutError(f"not reached within {timeout:.0f} s")
        time.sleep(interval)


def kill_everything(session: int, census: Census | None) -> None:
    """SIGKILL the manager, its tree, its session and every worker it ever had; reap them."""
    victims: dict[int, psutil.Process] = {}
    try:
        root = psutil.Process(session)
        victims[root.pid] = root
        for child in root.children(recursive=True):
            victims[child.pid] = child
    except psutil.NoSuchProcess:
        pass
    for pid in psutil.pids():
        try:
            if os.getsid(pid) == session:
                victims.setdefault(pid, psutil.Process(pid))
        except (OSError, psutil.Error):
            continue
    for pid in census.seen if census else ():
        if pid not in victims and alive(pid) and census.runs_workload(pid):
            try:
                victims[pid] = psutil.Process(pid)
            except psutil.Error:
                pass
    for proc in victims.values():
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(list(victims.values()), timeout=10)
