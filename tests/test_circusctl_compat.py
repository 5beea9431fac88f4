"""The stock Circus 0.19 `circusctl` (from PyPI) drives our circusd.

Circus 0.19 is installed into a venv of its own, `.cache/circus019-venv` (git-ignored), the
first time this runs: `python3 -m venv` + `pip install circus==0.19.0`. It runs on Python 3.11
with current pyzmq and tornado; the pins only freeze what this was checked with. Its
circusctl runs with our package nowhere on its path (no PYTHONPATH, cwd elsewhere), so it
imports Circus 0.19's own `circus`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from _helpers_control import ROOT, Daemon, short_dir, wait_for

VENV = Path(ROOT) / ".cache" / "circus019-venv"
REQUIREMENTS = ["circus==0.19.0", "pyzmq>=25,<28", "tornado>=6.3,<7", "psutil>=5.9"]


def _stock_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


def _version(python: Path) -> str | None:
    if not python.exists():
        return None
    out = subprocess.run([str(python), "-I", "-c", "import circus; print(circus.__version__)"],
                         capture_output=True, text=True, timeout=60, env=_stock_env(), cwd="/")
    return out.stdout.strip() if out.returncode == 0 else None


@pytest.fixture(scope="module")
def stock_circusctl() -> str:
    python = VENV / "bin" / "python"
    if _version(python) != "0.19.0":
        VENV.parent.mkdir(exist_ok=True)
        ignore = VENV.parent / ".gitignore"
        if not ignore.exists():
            ignore.write_text("*\n")
        base = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        try:
            subprocess.run([base, "-m", "venv", "--clear", str(VENV)], check=True, timeout=120,
                           capture_output=True, env=_stock_env())
            subprocess.run([str(python), "-m", "pip", "install", "-q", *REQUIREMENTS],
                           check=True, timeout=600, capture_output=True, env=_stock_env())
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            pytest.skip(f"cannot install Circus 0.19 from PyPI: {exc}")
        assert _version(python) == "0.19.0"
    return str(VENV / "bin" / "circusctl")


CONFIG = """
[circus]
endpoint = ipc://{d}/s/ctl.sock
pubsub_endpoint = ipc://{d}/s/pub.sock

[watcher:sleeper]
cmd = sleep 60
numprocesses = 2
graceful_timeout = 2
"""


def test_stock_circusctl_drives_our_daemon(stock_circusctl):
    with short_dir() as d, Daemon(d, CONFIG.format(d=d)) as daemon:
        daemon.wait_log("controller listening")
        ep = f"ipc://{d}/s/ctl.sock"

        def ctl(*args: str, ok: bool = True) -> str:
            out = subprocess.run([stock_circusctl, "--endpoint", ep, *args], capture_output=True,
                                 text=True, timeout=30, env=_stock_env(), cwd=d)
            if ok:
                assert out.returncode == 0, (args, out.stdout, out.stderr)
            return out.stdout.strip() if ok else out.stdout + out.stderr

        wait_for(lambda: ctl("numprocesses") == "2", what="2 flies")
        assert ctl("list") == "sleeper"
        pids = [int(p) for p in ctl("list", "sleeper").split(",")]
        assert len(pids) == 2
        assert ctl("status") == "sleeper: active"
        assert ctl("status", "sleeper") == "active"
        assert ctl("numwatchers") == "1"
        assert ctl("numprocesses", "sleeper") == "2"
        assert ctl("incr", "sleeper") == "3"
        assert ctl("incr", "sleeper", "2") == "5"
        assert ctl("decr", "sleeper") == "4"
        options = dict(line.split(": ", 1) for line in ctl("options", "sleeper").splitlines()
                       if ": " in line)
        assert options["cmd"] == "sleep 60" and options["numflies"] == "4"
        assert ctl("get", "sleeper", "numprocesses", "cmd") == "numprocesses: 4\ncmd: sleep 60"
        assert ctl("set", "sleeper", "numprocesses", "2") == "ok"
        wait_for(lambda: ctl("numprocesses", "sleeper") == "2", what="set numprocesses")
        stats = ctl("stats", "sleeper")
        assert stats.startswith("sleeper:") and "sleep 60" in stats
        assert "Main Process" in ctl("dstats")
        assert f"endpoint: {ep}" in ctl("globaloptions")
        # stop then start at once: queued, not "already running a command"
        assert ctl("stop", "sleeper") == "ok"
        assert ctl("status", "sleeper") == "stopped"
        assert ctl("start", "sleeper") == "ok"
        assert ctl("restart", "sleeper") == "ok"
        assert ctl("status", "sleeper") == "active"
        victim = [int(p) for p in ctl("list", "sleeper").split(",")][0]
        assert ctl("signal", "sleeper", str(victim), "15") == "ok"
        wait_for(lambda: not psutil.pid_exists(victim) or
                 psutil.Process(victim).status() == psutil.STATUS_ZOMBIE, what="the signal")
        assert ctl("add", "extra", "sleep 30") == "ok"
        assert ctl("status", "extra") == "stopped"  # Circus adds stopped unless --start
        assert ctl("add", "--start", "more", "sleep 30") == "ok"
        assert ctl("status", "more") == "active"
        assert ctl("rm", "extra") == "ok" and ctl("rm", "more") == "ok"
        assert ctl("list") == "sleeper"
        assert "error: " in ctl("list", "nosuch", ok=False)
        reply = json.loads(ctl("--json", "status"))
        assert reply["status"] == "ok" and reply["statuses"] == {"sleeper": "active"}
        assert ctl("quit") == "ok"
        assert daemon.proc.wait(15) == 0
