"""Faults the core must survive: a kill storm, stuck flies, pipe-holding grandchildren, and
spawning with no fds or processes left. See docs/reliability.md for the figures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import psutil
import pytest

from helpers import collect, py, wait_for

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))
import soak  # noqa: E402  (bench/soak.py: the same storm as the 60-second soak run)


def dead(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def kill_marked(marker: str) -> None:
    """SIGKILL every process whose command line holds `marker` (escaped grandchildren)."""
    for proc in psutil.process_iter():
        try:
            if marker in " ".join(proc.cmdline()):
                proc.kill()
        except psutil.Error:
            pass


# --- kill storm ---------------------------------------------------------------------------


def test_kill_storm_5s():
    """50 flies, 100 random SIGKILLs a second for 5 s: the Trainer runs on a thread of this
    process, the storm (and its /proc census) in a helper process."""
    result = soak.run_inprocess(numflies=50, duration=5.0, rate=100.0, seed=6)
    print(json.dumps(result))
    assert result["kills"] >= 450, result
    assert result["recovered"] == result["kills"], result
    assert result["quiet_samples"] >= 5, result
    assert not soak.verdict(result), soak.verdict(result)


# --- stuck flies ------------------------------------------------------------------------------

STUBBORN = textwrap.dedent("""
    import signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ok', flush=True); time.sleep(1000)"], stdout=subprocess.PIPE)
    child.stdout.readline()
    print("ready", child.pid, flush=True)
    time.sleep(1000)
""")


def ready_pids(show, n):
    """{fly pid: grandchild pid} once each of the n flies printed 'ready <pid>'."""

    def ready():
        found = {}
        for fly in show.flies:
            for line in fly.lines():
                if line.startswith("ready "):
                    found[fly.pid] = int(line.split()[1])
        return found if len(found) == n else None

    return wait_for(ready, timeout=10, what=f"{n} flies with a grandchild ready")


def test_term_ignoring_flies_and_grandchildren_are_killed_at_graceful_timeout(trainer):
    timeout = 1.0
    show = trainer.add_show("stuck", py(STUBBORN), numflies=2, graceful_timeout=timeout)
    family = ready_pids(show, 2)
    procs = list(family) + list(family.values())
    stopped = threading.Event()
    took: dict[str, float] = {}
    t0 = time.monotonic()

    def stop():
        show.stop()
        took["stop"] = time.monotonic() - t0
        stopped.set()

    thread = threading.Thread(target=stop)
    thread.start()
    try:
        deaths = {}
        while len(deaths) < len(procs) and time.monotonic() - t0 < timeout + 3:
            for pid in procs:
                if pid not in deaths and dead(pid):
                    deaths[pid] = time.monotonic() - t0
            time.sleep(0.002)
        stopped.wait(10)
    finally:
        thread.join()
    print(f"deaths after stop(): {sorted(deaths.values())}, stop() took {took}")
    assert len(deaths) == len(procs), f"still alive: {set(procs) - set(deaths)}"
    assert all(timeout - 0.02 <= t <= timeout + 0.25 for t in deaths.values()), deaths
    # stop() itself returns once they are dead, not a second graceful_timeout later (an
    # orphaned grandchild may stay a zombie under an init that doesn't reap, as in containers)
    assert took["stop"] <= timeout + 0.25, took


HOLDER = textwrap.dedent("""
    import signal, subprocess, sys, time
    own_session = sys.argv[1] == "session"
    child = subprocess.Popen([sys.executable, "-c",
        "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ok', flush=True); time.sleep(1000)", sys.argv[2]],
        start_new_session=own_session)  # inherits our stdout: holds the fly's pipe open
    time.sleep(0.3)
    print("ready", child.pid, flush=True)
    time.sleep(1000)
""")


@pytest.mark.parametrize("where", ["session", "group"])
def test_a_grandchild_holding_the_pipe_does_not_delay_the_reap(trainer, where):
    marker = f"holder-{uuid.uuid4().hex}"
    reaps = collect(trainer, "show.hold.reap")
    show = trainer.add_show(
        "hold", py(HOLDER) + f" {where} {marker}", numflies=1, graceful_timeout=0.5
    )
    try:
        ((fly_pid, grandchild),) = ready_pids(show, 1).items()
        t_kill = time.time()
        os.kill(fly_pid, signal.SIGKILL)
        event = wait_for(
            lambda: [p for _, p in reaps if p["fly_pid"] == fly_pid],
            timeout=2,
            what="the reap event",
        )[0]
        delay = event["time"] - t_kill
        print(f"{where}: reap event {delay * 1000:.1f} ms after SIGKILL")
        # ~1-2 ms when the machine is idle; the bound only has to tell "at once" from "when
        # the pipe closes" (never, here), with room for a loaded CI machine.
        assert delay < 0.5
        wait_for(lambda: len(show) == 1 and show.flies[0].pid != fly_pid, what="a respawn")
        if where == "group":  # the sweep SIGKILLs it at graceful_timeout
            wait_for(
                lambda: dead(grandchild),
                timeout=0.5 + 0.5,
                what="the grandchild in the group to be swept",
            )
        else:  # out of reach of any group kill, by design; the fly's fds are ours to close
            assert not dead(grandchild)
        show.stop()
    finally:
        kill_marked(marker)


# --- exhaustion ------------------------------------------------------------------------------

EXHAUST = textwrap.dedent("""
    import json, os, resource, signal, sys, time
    mode = sys.argv[1]
    if mode == "emfile":  # lower the hard limit too: the Trainer raises soft to hard
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    from circus import Trainer
    if mode == "eagain":  # RLIMIT_NPROC binds only without CAP_SYS_RESOURCE: become nobody
        import circus._commands  # noqa: F401 - later imports would need /root, mode 0700
        from circus._sentinel import SENTINEL
        SENTINEL.hold()  # as root: the sentinel runs the venv's python, which nobody can't exec
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)

    def wait(pred, timeout, what):
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                print(json.dumps({"timeout": what, **out}), flush=True)
                os._exit(3)
            time.sleep(0.005)

    out = {}
    events = []
    t = Trainer(check_delay=0.2)
    t.subscribe("show.x.", lambda topic, p: events.append((topic, p)))
    t.start(background=True)
    show = t.add_show("x", "sleep 1000", numflies=2, times=2, within=1.0, retry_in=0.3,
                      max_retry=-1 if mode == "emfile" else 0, graceful_timeout=1)
    wait(lambda: len(show) == 2, 5, "2 flies")
    hog = []

    def exhaust():
        if mode == "emfile":
            try:
                while True:
                    hog.append(os.open("/dev/null", os.O_RDONLY))
            except OSError as exc:
                out["hog_errno"] = exc.errno
        else:  # RLIMIT_NPROC counts this user's tasks; we already have more than 1
            resource.setrlimit(resource.RLIMIT_NPROC, (1, nproc[1]))

    nproc = resource.getrlimit(resource.RLIMIT_NPROC)
    exhaust()
    t0 = time.monotonic()
    show.incr(2)
    wait(lambda: show.state.value in ("flapping", "failed"), 5, "an error state")
    out["error_after_s"] = round(time.monotonic() - t0, 3)
    out["state"] = show.state.value
    out["last_error"] = show.last_error
    wait(lambda: len(show) == 0, 5, "flapping to stop the flies")
    exhaust()  # the stopped flies gave their fds back: take them too
    wait(lambda: any(tp.endswith(".retry") for tp, _ in events) or mode != "emfile", 5,
         "a retry while still exhausted")
    out["status_during"] = t.command("status")["statuses"]
    out["numflies_cmd_during"] = t.command("numflies", name="x")["numflies"]
    out["alive_during"] = len(show)
    while hog:
        os.close(hog.pop())
    resource.setrlimit(resource.RLIMIT_NPROC, nproc)
    t1 = time.monotonic()
    if mode == "eagain":
        show.start()
    wait(lambda: len(show) == 4 and show.state.value == "active", 5, "recovery")
    out["recovered_s"] = round(time.monotonic() - t1, 3)
    out["spawn_errors"] = sorted({p["errno"] for tp, p in events if tp.endswith("spawn_error")})
    out["error_texts"] = sorted({p["error"] for tp, p in events if tp.endswith("spawn_error")})
    out["flapping"] = [p["reason"] for tp, p in events if tp.endswith(".flapping")][:2]
    t.stop()
    if mode == "eagain":
        SENTINEL.release()
    out["stopped"] = True
    print(json.dumps(out), flush=True)
""")


def run_exhaust(mode, **kw):
    proc = subprocess.run(
        [sys.executable, "-c", EXHAUST, mode],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/tmp",
        **kw,
    )
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    print(mode, json.dumps(out))
    return out


def test_emfile_puts_the_show_in_error_and_it_recovers():
    import errno

    out = run_exhaust("emfile")
    assert out["hog_errno"] == errno.EMFILE
    assert errno.EMFILE in out["spawn_errors"]
    assert any("Too many open files" in e for e in out["error_texts"]), out
    assert out["state"] == "flapping" and "Too many open files" in out["last_error"]
    assert out["status_during"] == {"x": "flapping"} or out["status_during"] == {"x": "active"}
    assert out["alive_during"] == 0 and out["numflies_cmd_during"] == 0
    assert out["recovered_s"] < 1.0 and out["stopped"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the trainer as nobody")
def test_eagain_puts_the_show_in_error_and_it_recovers():
    """RLIMIT_NPROC is not enforced for root (CAP_SYS_RESOURCE), so the trainer's process
    drops to nobody once imported; it can't be started as nobody, as the venv's python lives
    under /root (mode 0700)."""
    import errno

    out = run_exhaust("eagain")
    assert errno.EAGAIN in out["spawn_errors"], out
    assert any("Resource temporarily unavailable" in e for e in out["error_texts"]), out
    assert out["state"] == "failed" and "gave up" in out["last_error"], out
    assert out["status_during"] == {"x": "failed"}
    assert out["alive_during"] == 0
    assert out["recovered_s"] < 1.0 and out["stopped"]


# --- respawn after backoff --------------------------------------------------------------------


def test_an_external_kill_is_respawned_at_once_after_backoff(trainer):
    """A slot whose fly died young several times is in backoff; once its cmd is fixed, a fly
    SIGKILLed from outside (a user, the OOM killer) still comes back at once."""
    spawns = collect(trainer, "show.b.spawn")
    show = trainer.add_show("b", "false", numflies=1, times=100, within=5.0)
    # young deaths 1..6 wait 0, 0.05, 0.1, 0.2, 0.4 s: the next one 0.8 s
    wait_for(lambda: len(spawns) >= 6, timeout=5, what="six young deaths")
    show.set_opt("cmd", "sleep 1000")  # reload: a good fly at once
    fly = wait_for(lambda: [f for f in show.flies if f.argv[0] == "sleep"], what="a sleeper")[0]
    t0 = time.monotonic()
    os.kill(fly.pid, signal.SIGKILL)
    wait_for(lambda: len(show) == 1 and show.flies[0].pid != fly.pid, timeout=2, what="the respawn")
    took = time.monotonic() - t0
    print(f"respawn after SIGKILL of a slot in backoff: {took * 1000:.1f} ms")
    assert took < 0.5  # the stale backoff would have been 0.8 s; ~5 ms when idle
