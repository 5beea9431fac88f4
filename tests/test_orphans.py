"""No orphans: when the host dies by any means, every fly and grandchild is gone in 2 s."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from helpers import alive, wait_for

HOST = textwrap.dedent("""
    import sys, time
    from circus import get_trainer
    code = ("import subprocess, time; subprocess.Popen(['sleep', '1000']); time.sleep(1000)")
    trainer = get_trainer(sys.executable + " -c \\"" + code + "\\"", numflies=3, name="w")
    trainer.start(background=True)
    print("up", flush=True)
    sys.stdin.readline()  # "go": exit normally, with the trainer still running
    sys.exit(0)
""")


def _descendants(pid):
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _flies_and_grandchildren(host):
    return [p for p in _descendants(host.pid) if "circus-sentinel" not in _cmd(p)]


def _cmd(proc):
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM", "exit"])
def test_host_death_leaves_no_fly(how):
    host = subprocess.Popen([sys.executable, "-c", HOST], stdout=subprocess.PIPE,
                            stdin=subprocess.PIPE, text=True)
    try:
        assert host.stdout.readline().strip() == "up"
        procs = wait_for(lambda: (lambda p: p if len(p) == 6 else None)(
            _flies_and_grandchildren(host)), what="3 flies with a grandchild each")
        t0 = time.monotonic()
        if how == "exit":
            host.stdin.write("go\n")
            host.stdin.flush()
        else:
            host.send_signal(getattr(signal, how))
        host.wait(5)
        wait_for(lambda: not alive(procs), timeout=2.0, interval=0.01,
                 what=f"every fly and grandchild to die after {how}")
        took = time.monotonic() - t0
        assert took < 2.0
    finally:
        host.kill()
        host.wait()
        host.stdout.close()
        host.stdin.close()
        for p in alive(_flies_and_grandchildren(host)):
            p.kill()
