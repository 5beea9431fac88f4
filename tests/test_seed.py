"""The seed's two examples, run verbatim."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import psutil

from helpers import wait_for


def test_fly_example_verbatim():
    from circus.fly import Fly

    fly = Fly("Top", "top", shell=True)
    assert isinstance(fly.age(), float)
    wait_for(lambda: fly.status == Fly.DEAD_OR_ZOMBIE, what="top to exit without a terminal")
    assert fly.status == 1
    info = fly.info()
    assert str(info).startswith(f"Top: {fly.pid}  ")
    assert info["pid"] == fly.pid
    fly.stop()
    assert fly.status == 2
    assert str(fly.info()) == "No such process (stopped?)"


SCRIPT = """\
from circus import get_trainer

trainer = get_trainer("myprogram", numflies=3)
try:
    trainer.start()
finally:
    trainer.stop()
"""


def test_get_trainer_example_verbatim(tmp_path):
    """As a script, start() blocks until SIGINT; then every fly is stopped."""
    program = tmp_path / "myprogram"
    program.write_text("#!/bin/sh\nexec sleep 1000\n")
    program.chmod(0o755)
    script = tmp_path / "example.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}")
    host = subprocess.Popen([sys.executable, str(script)], env=env, stderr=subprocess.PIPE)
    proc = psutil.Process(host.pid)

    def flies():
        return [c for c in proc.children() if "circus-sentinel" not in c.cmdline()]

    try:
        wait_for(lambda: len(flies()) == 3, what="3 flies")
        pids = [p.pid for p in flies()]
        host.send_signal(signal.SIGINT)
        assert host.wait(10) == 0, host.stderr.read().decode()
        assert not [p for p in pids if psutil.pid_exists(p)]
    finally:
        host.kill()
        host.wait()
        host.stderr.close()


def test_example_in_ipython_returns_at_once(tmp_path):
    """Inside IPython start() returns at once with the loop in the background."""
    code = textwrap.dedent("""
        from IPython.testing.globalipapp import start_ipython
        ip = start_ipython()
        import threading
        from circus import get_trainer
        trainer = get_trainer("sleep 1000", numflies=3)
        try:
            trainer.start()
            assert trainer.running and len(trainer.get_show("sleep")) == 3
            assert any(t.name == "circus-trainer" for t in threading.enumerate())
        finally:
            trainer.stop()
        assert not trainer.running
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")
