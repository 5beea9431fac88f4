"""One adapter per process manager: write its config, start it as a daemon, clean up.

An adapter only knows how to turn a ``Workload`` (an argv run N times) into the command line
of a foreground daemon. ``Daemon`` starts that command in a session of its own and, whatever
happens, SIGKILLs the whole session, the tree and every worker it ever saw on the way out.
"""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _procs import Census, kill_everything
from peers import PEERS

BENCH_DIR = Path(__file__).resolve().parent
WORKER_NAME = "w"


@dataclass(frozen=True)
class Workload:
    argv: tuple[str, ...]
    numprocs: int
    graceful_timeout: float = 2.0
    stdout_file: Path | None = None

    @property
    def cmd(self) -> str:
        return shlex.join(self.argv)


def sleeper(seconds: int = 1000) -> tuple[str, ...]:
    return ("/bin/sleep", str(seconds))


def stubborn() -> tuple[str, ...]:
    """A worker that ignores SIGTERM, so only the manager's SIGKILL ends it."""
    code = "import signal,time;signal.signal(15,signal.SIG_IGN);time.sleep(1000)"
    return (sys.executable, "-c", code)


def writer(megabytes: int, then_sleep: bool = True) -> tuple[str, ...]:
    """Write ``megabytes`` MiB of zeros to stdout in 1 MiB blocks, then idle (or exit)."""
    code = "import sys,time;b=bytes(1<<20);w=sys.stdout.buffer.write"
    code += f";[w(b) for _ in range({megabytes})];sys.stdout.flush()"
    if then_sleep:
        code += ";time.sleep(1000)"
    return (sys.executable, "-c", code)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Manager:
    """Turns a workload into the argv of a manager running in the foreground."""

    name = "?"

    def command(self, workload: Workload, workdir: Path) -> list[str]:
        raise NotImplementedError


class Ours(Manager):
    name = "ours"

    def command(self, workload: Workload, workdir: Path) -> list[str]:
        argv = [sys.executable, str(BENCH_DIR / "_ours.py"), "--cmd", workload.cmd]
        argv += ["--numflies", str(workload.numprocs)]
        argv += ["--graceful-timeout", str(workload.graceful_timeout)]
        if workload.stdout_file:
            argv += ["--stdout-file", str(workload.stdout_file)]
        return argv


class Circus(Manager):
    name = "circus"

    def command(self, workload: Workload, workdir: Path) -> list[str]:
        lines = [
            "[circus]",
            "check_delay = 1",
            f"endpoint = tcp://127.0.0.1:{free_port()}",
            f"pubsub_endpoint = tcp://127.0.0.1:{free_port()}",
            "multicast_endpoint =",  # empty: no UDP multicast socket
            "statsd = false",
            "",
            f"[watcher:{WORKER_NAME}]",
            f"cmd = {workload.cmd}",
            f"numprocesses = {workload.numprocs}",
            "warmup_delay = 0",
            f"graceful_timeout = {workload.graceful_timeout}",
            "stop_signal = TERM",
        ]
        if workload.stdout_file:
            lines += [
                "stdout_stream.class = FileStream",
                f"stdout_stream.filename = {workload.stdout_file}",
            ]
        ini = workdir / "circus.ini"
        ini.write_text("\n".join(lines) + "\n")
        return [str(PEERS["circus"].executable), str(ini)]


class Supervisor(Manager):
    name = "supervisor"

    def command(self, workload: Workload, workdir: Path) -> list[str]:
        stdout = workload.stdout_file or "NONE"
        conf = f"""\
[unix_http_server]
file = {workdir}/supervisor.sock

[supervisord]
nodaemon = true
logfile = {workdir}/supervisord.log
pidfile = {workdir}/supervisord.pid
childlogdir = {workdir}
minfds = 8192

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl = unix://{workdir}/supervisor.sock

[program:{WORKER_NAME}]
command = {workload.cmd.replace("%", "%%")}
numprocs = {workload.numprocs}
process_name = %(program_name)s_%(process_num)02d
autorestart = true
startsecs = 0
stopsignal = TERM
stopwaitsecs = {workload.graceful_timeout:g}
stdout_logfile = {stdout}
stdout_logfile_maxbytes = 0
stdout_logfile_backups = 0
stderr_logfile = NONE
"""
        path = workdir / "supervisord.conf"
        path.write_text(conf)
        return [str(PEERS["supervisor"].executable), "-c", str(path)]


MANAGERS: dict[str, type[Manager]] = {"ours": Ours, "circus": Circus, "supervisor": Supervisor}


class Daemon:
    """A running manager; use as a context manager so nothing outlives the measurement."""

    def __init__(self, manager: Manager, workload: Workload, workdir: Path | None = None):
        self.manager = manager
        self.workload = workload
        self._tmp = (
            None if workdir else tempfile.TemporaryDirectory(prefix=f"bench-{manager.name}-")
        )
        self.workdir = workdir or Path(self._tmp.name)
        self.popen: subprocess.Popen | None = None
        self.census: Census | None = None
        self.started = 0.0

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def __enter__(self) -> Daemon:
        argv = self.manager.command(self.workload, self.workdir)
        self._log = open(self.workdir / "manager.log", "wb")
        self.started = time.perf_counter()
        self.popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
        )
        self.census = Census(self.popen.pid, self.workload.argv)
        return self

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = (self.workdir / "manager.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __exit__(self, *exc_info) -> None:
        try:
            if self.popen is not None:
                kill_everything(self.popen.pid, self.census)
                try:
                    self.popen.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            self._log.close()
            if self._tmp is not None:
                self._tmp.cleanup()
