"""A Trainer inside a real ipykernel: whatever ends the kernel, no fly or grandchild survives 2 s,
and a graceful shutdown or restart is not held up by the trainer's loop thread."""

from __future__ import annotations

import json
import os
import signal
import time

import psutil
import pytest

from helpers import alive, wait_for

jupyter_client = pytest.importorskip("jupyter_client")
pytest.importorskip("ipykernel")

SETUP = """
import json, shlex, sys
from circus import get_trainer
code = "import subprocess, time; subprocess.Popen(['sleep', '1000']); time.sleep(1000)"
trainer = get_trainer(shlex.join([sys.executable, "-c", code]), numflies=3, name="w")
trainer.start()  # inside the kernel: the loop goes to a daemon thread, the cell returns
print(json.dumps({"thread": trainer._thread.name, "daemon": trainer._thread.daemon,
                  "pids": [f.pid for f in trainer.get_show("w").flies]}))
"""

# jupyter_client waits this long for a kernel that was asked to exit, then SIGKILLs it
SHUTDOWN_WAIT = 5.0


def _family(kernel_pid):
    """The kernel's flies and their grandchildren (not the sentinel)."""
    try:
        procs = psutil.Process(kernel_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    out = []
    for p in procs:
        try:
            if "circus-sentinel" not in p.cmdline():
                out.append(p)
        except psutil.Error:
            pass
    return out


def _start_trainer(km, kc):
    lines = []

    def hook(msg):
        if msg["msg_type"] == "stream":
            lines.append(msg["content"]["text"])

    reply = kc.execute_interactive(SETUP, timeout=30, output_hook=hook)
    assert reply["content"]["status"] == "ok", reply["content"]
    info = json.loads("".join(lines))
    assert info["daemon"] and len(info["pids"]) == 3, info
    kernel_pid = km.provisioner.pid
    procs = wait_for(
        lambda: (lambda f: f if len(f) == 6 else None)(_family(kernel_pid)),
        timeout=10,
        what="3 flies with a grandchild each in the kernel",
    )
    assert {p.pid for p in procs} >= set(info["pids"])
    return kernel_pid, procs


@pytest.mark.allow_fd_growth  # jupyter_core.utils.run_sync keeps an asyncio loop per thread
@pytest.mark.parametrize("how", ["sigkill", "restart", "restart_now", "shutdown"])
def test_kernel_death_leaves_no_fly(how):
    from jupyter_client import KernelManager

    # kernel_name python3 has argv "python -m ipykernel_launcher": jupyter_client runs it with
    # sys.executable, i.e. this venv's python
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd="/tmp")
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        old_pid, procs = _start_trainer(km, kc)
        t0 = time.monotonic()
        if how == "sigkill":
            os.kill(old_pid, signal.SIGKILL)
        elif how == "restart":
            km.restart_kernel()
        elif how == "restart_now":
            km.restart_kernel(now=True)
        else:
            km.shutdown_kernel()
        call = time.monotonic() - t0
        wait_for(
            lambda: not alive(procs),
            timeout=2.0,
            interval=0.01,
            what=f"every fly and grandchild to die after {how}",
        )
        gone = time.monotonic() - t0
        print(f"{how}: call {call:.3f} s, flies and grandchildren gone {gone:.3f} s")
        assert gone < 2.0
        if how in ("restart", "shutdown"):  # graceful: the kernel exits by itself, at once
            assert call < SHUTDOWN_WAIT / 2, f"{how} took {call:.2f} s: stalled"
        if how.startswith("restart"):  # the new kernel works and can run a trainer again
            kc.wait_for_ready(timeout=60)
            assert km.provisioner.pid != old_pid
            new_pid, new_procs = _start_trainer(km, kc)
            km.shutdown_kernel()
            wait_for(
                lambda: not alive(new_procs),
                timeout=2.0,
                interval=0.01,
                what="the new kernel's flies to die on shutdown",
            )
    finally:
        kc.stop_channels()
        if km.has_kernel:
            km.shutdown_kernel(now=True)
        km.cleanup_resources()
        km.context.destroy(linger=0)
