"""Test-wide fixtures: every test must leave no process, thread or file descriptor behind.

Every process the suite starts inherits CIRCUS_TEST_RUN, so a leftover is found even when it
was reparented away from us (a grandchild that escaped its group, a kernel's fly).
"""

from __future__ import annotations

import os
import threading
import time
import uuid

import psutil
import pytest

from circus import Trainer

RUN_ID = uuid.uuid4().hex
os.environ["CIRCUS_TEST_RUN"] = RUN_ID
ME = os.getpid()
SENTINEL_TAG = "circus-sentinel"


def _ours() -> list[psutil.Process]:
    """Live processes (zombie children included) that this test run started."""
    found = []
    children = {p.pid for p in psutil.Process(ME).children(recursive=True)}
    for proc in psutil.process_iter():
        if proc.pid == ME:
            continue
        try:
            if proc.pid in children or proc.environ().get("CIRCUS_TEST_RUN") == RUN_ID:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            if proc.pid in children:
                found.append(proc)
    return found


def _describe(proc: psutil.Process) -> str:
    try:
        return f"{proc.pid} {proc.status()} {' '.join(proc.cmdline())[:120]}"
    except psutil.Error:
        return f"{proc.pid} (gone)"


def _is_sentinel(proc: psutil.Process) -> bool:
    try:
        return SENTINEL_TAG in proc.cmdline()
    except psutil.Error:
        return False


def _fds() -> set[str]:
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.add(f"{fd}:{os.readlink(f'/proc/self/fd/{fd}')}")
        except OSError:
            pass
    return out


def _settle(check, timeout: float = 3.0):
    deadline = time.monotonic() + timeout
    while True:
        left = check()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.02)


@pytest.fixture
def trainer():
    """A running Trainer with no shows, stopped after the test."""
    t = Trainer(check_delay=0.5)
    t.start(background=True)
    yield t
    t.stop()


@pytest.fixture(autouse=True)
def no_leaks(request):
    """Fail a test that leaves a child process, a zombie, a thread or an fd behind.

    The trainer's sentinel may outlive a test that keeps a module-wide trainer; the session
    check below makes sure it is gone in the end. Mark a test `allow_fd_growth` when a library
    it uses caches an fd for the rest of the process (e.g. IPython's history database).
    """
    procs_before = {p.pid for p in _ours()}
    threads_before = set(threading.enumerate())
    fds_before = _fds()
    yield
    left = _settle(lambda: [p for p in _ours()
                            if p.pid not in procs_before and not _is_sentinel(p)])
    for proc in left:
        try:
            proc.kill()
        except psutil.Error:
            pass
    assert not left, "processes left behind:\n" + "\n".join(map(_describe, left))
    threads = _settle(lambda: [t for t in threading.enumerate()
                               if t not in threads_before and t.is_alive()])
    assert not threads, f"threads left behind: {threads}"
    if request.node.get_closest_marker("allow_fd_growth") is None:
        fds = _settle(lambda: _fds() - fds_before)
        assert not fds, f"file descriptors left open: {sorted(fds)}"


@pytest.fixture(autouse=True, scope="session")
def no_sentinel_at_end():
    yield
    left = _settle(lambda: [p for p in _ours() if _is_sentinel(p)], timeout=5)
    for proc in left:
        proc.kill()
    assert not left, "a sentinel outlived every trainer: " + ", ".join(map(_describe, left))


def pytest_configure(config):
    config.addinivalue_line("markers", "allow_fd_growth: a library caches an fd for good")
