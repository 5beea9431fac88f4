"""Helpers of the control-plane tests: short socket dirs, a circusd subprocess, raw requests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import zmq

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CIRCUSD = [sys.executable, "-m", "circus.circusd"]
CIRCUSCTL = [sys.executable, "-m", "circus.circusctl"]


@contextmanager
def short_dir(prefix: str = "cx") -> Iterator[str]:
    """A fresh directory with a short path (ipc:// paths are limited to ~107 bytes)."""
    path = tempfile.mkdtemp(prefix=prefix)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def request(sock: zmq.Socket[Any], command: Any, timeout: float = 5.0, **extra: Any) -> Any:
    """Send one request on a DEALER; return the reply with the same id (or None)."""
    cid = uuid.uuid4().hex
    sock.send(json.dumps({"id": cid, "command": command, **extra}).encode())
    return recv_id(sock, cid, timeout)


def recv_id(sock: zmq.Socket[Any], cid: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if sock.poll(left * 1000):
            reply = json.loads(sock.recv())
            if reply.get("id") == cid:
                return reply
    return None


class Daemon:
    """A circusd subprocess of a config text; `stop()` sends SIGTERM and waits."""

    def __init__(self, workdir: str, config: str, *args: str, netns: str | None = None,
                 name: str = "circus.ini") -> None:
        self.workdir = workdir
        self.path = os.path.join(workdir, name)
        self.write(config)
        self.log = os.path.join(workdir, name + ".log")
        cmd = [*CIRCUSD, self.path, "--log-output", self.log, *args]
        if netns:
            cmd = ["ip", "netns", "exec", netns, *cmd]
        env = {**os.environ, "PYTHONPATH": ROOT}
        self.proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)

    def write(self, config: str) -> None:
        with open(self.path, "w") as f:
            f.write(textwrap.dedent(config))

    def logs(self) -> str:
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""

    def wait_log(self, text: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            logs = self.logs()
            if text in logs:
                return logs
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"{text!r} not in circusd's log:\n{self.logs()}\n"
                             f"stderr: {self._stderr()}")

    def _stderr(self) -> str:
        if self.proc.poll() is None:
            return "(running)"
        return self.proc.stderr.read() if self.proc.stderr else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()
        return rc

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_ctl(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.run([*CIRCUSCTL, *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


def wait_for(predicate: Any, timeout: float = 10.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except Exception:
            value = None
            if time.monotonic() > deadline:
                raise
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(0.01)
