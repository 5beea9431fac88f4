"""Show behaviour on real processes: respawn, exits, flapping, stop, reload, options."""

from __future__ import annotations

import os
import resource
import signal
import threading
import time

import psutil
import pytest

from circus import OptionError, Show, ShowState, Trainer
from circus.errors import NotRunningError
from helpers import collect, py, wait_for

SLEEP = "sleep 1000"



def pids(show):
    return {f.pid for f in show.flies if f.state.value == "running"}


def test_respawn_keeps_numflies_with_new_pids(trainer):
    show = trainer.add_show("s", SLEEP, numflies=3)
    before = pids(show)
    assert len(before) == 3
    victim = sorted(before)[0]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(pids(show)) == 3 and victim not in pids(show), what="respawn")
    assert len(pids(show) & before) == 2
    assert show.restarts == 1
    assert sorted(f.wid for f in show.flies) == [1, 2, 3]  # the slot is reused


def test_exit_code_and_signal_are_reported(trainer):
    events = collect(trainer, "show.e.reap")
    show = trainer.add_show("e", py("import sys; sys.exit(7)"), numflies=1, times=100)
    wait_for(lambda: events, what="a reap")
    assert events[0][1]["exit_code"] == 7 and events[0][1]["signal"] is None
    show.stop()
    show.set_opt("cmd", SLEEP)
    show.start()
    fly = show.flies[0]
    events.clear()
    os.kill(fly.pid, signal.SIGUSR1)
    wait_for(lambda: events, what="a reap")
    payload = events[0][1]
    assert payload["signal"] == signal.SIGUSR1 and payload["exit_code"] is None
    assert payload["fly_pid"] == fly.pid and payload["fly_id"] == 1


def test_stop_does_not_respawn(trainer):
    show = trainer.add_show("s", SLEEP, numflies=2)
    old = pids(show)
    show.stop()
    assert show.state is ShowState.STOPPED and not show.flies
    assert not [p for p in old if psutil.pid_exists(p)]
    time.sleep(0)  # let nothing sneak in: housekeeping runs every 0.5 s
    show.stop()  # idempotent
    assert not show.flies


def test_flapping_fails_without_spinning(trainer):
    events = collect(trainer, "show.f.flapping")
    me = psutil.Process()
    cpu0 = sum(me.cpu_times()[:2])
    t0 = time.monotonic()
    show = trainer.add_show("f", "false", numflies=2, times=3, within=1.0, retry_in=0.2,
                            max_retry=2)
    wait_for(lambda: show.state is ShowState.FAILED, timeout=10, what="failed state")
    elapsed = time.monotonic() - t0
    wait_for(lambda: len(events) == 3, what="three flapping events")
    assert [e[1]["failed"] for e in events] == [False, False, True]
    assert "gave up after 2 retries" in show.last_error
    assert "died within 1 s" in show.last_error
    wait_for(lambda: not show.flies, what="the last flies stopped")
    # No busy loop: the host used well under half a core while flapping.
    assert sum(me.cpu_times()[:2]) - cpu0 < 0.5 * elapsed + 0.3
    show.start()  # a failed show starts again by hand
    assert show.state in (ShowState.ACTIVE, ShowState.STARTING, ShowState.FLAPPING)


def test_unlimited_retries_never_spin(trainer):
    """times is loose and max_retry -1: slot backoff still spaces the respawns."""
    spawns = collect(trainer, "show.u.spawn")
    me = psutil.Process()
    cpu0 = sum(me.cpu_times()[:2])
    show = trainer.add_show("u", "true", numflies=1, times=1000, max_retry=-1)
    time.sleep(2.0)  # measuring a rate over a fixed window, not waiting for a state
    assert len(spawns) < 15, f"{len(spawns)} spawns in 2 s"
    assert sum(me.cpu_times()[:2]) - cpu0 < 1.0
    show.stop()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"cmd": "/nonexistent/prog"}, "No such file or directory"),
        ({"cmd": "/usr"}, "Permission denied"),  # a directory can not be run
        ({"cmd": SLEEP, "working_dir": "/nonexistent/dir"}, "No such file or directory"),
    ],
    ids=["no-such-file", "permission-denied", "missing-working-dir"],
)
def test_spawn_errors_are_events_and_count_towards_flapping(trainer, options, expected):
    events = collect(trainer, "show.x.spawn_error")
    show = trainer.add_show("x", numflies=1, retry_in=60, **options)
    wait_for(lambda: show.state is ShowState.FLAPPING, what="flapping")
    wait_for(lambda: events, what="a spawn_error event")
    assert expected in events[0][1]["error"] and events[0][1]["errno"]
    assert expected in show.last_error
    assert trainer.running  # the loop is fine


def test_unknown_user_and_group_are_rejected_at_the_call(trainer):
    with pytest.raises(OptionError, match="uid='no-such-user-xyz'.*no such user"):
        trainer.add_show("x", SLEEP, uid="no-such-user-xyz")
    with pytest.raises(OptionError, match="no such group"):
        trainer.add_show("x", SLEEP, gid="no-such-group-xyz")
    assert trainer.numshows() == 0  # nothing half-added


def test_graceful_exit_then_sigkill_after_timeout(trainer):
    graceful = trainer.add_show("g", SLEEP, numflies=1, graceful_timeout=5)
    t0 = time.monotonic()
    graceful.stop()
    assert time.monotonic() - t0 < 1.0
    stubborn_code = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                     "print('ready', flush=True); time.sleep(1000)")
    stubborn = trainer.add_show("t", py(stubborn_code), numflies=1, graceful_timeout=0.5)
    fly = stubborn.flies[0]
    wait_for(lambda: fly.output["stdout"].lines(), what="TERM ignored")
    events = collect(trainer, "show.t.reap")
    t0 = time.monotonic()
    stubborn.stop()
    took = time.monotonic() - t0
    assert 0.5 <= took < 1.5
    wait_for(lambda: events, what="the reap event")
    assert events[0][1]["signal"] == signal.SIGKILL


def test_stop_kills_grandchildren(trainer):
    code = ("import subprocess, time; p = subprocess.Popen(['sleep', '1000']); "
            "print(p.pid, flush=True); time.sleep(1000)")
    show = trainer.add_show("gc", py(code), numflies=1)
    fly = show.flies[0]
    grandchild = int(wait_for(lambda: fly.output["stdout"].lines(), what="pid")[0])
    assert psutil.pid_exists(grandchild)
    show.stop()
    wait_for(lambda: not psutil.pid_exists(grandchild) or
             psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE, what="gc gone")


def test_grandchildren_of_a_dead_fly_are_swept(trainer):
    code = ("import subprocess, os; p = subprocess.Popen(['sleep', '1000']); "
            "print(p.pid, flush=True); os._exit(0)")
    show = trainer.add_show("sw", py(code), numflies=1, times=100, graceful_timeout=1)
    reaps = collect(trainer, "show.sw.reap")
    wait_for(lambda: reaps, what="first fly exit")
    show.stop()
    wait_for(lambda: not [p for p in psutil.process_iter(["cmdline"])
                          if p.info["cmdline"] == ["sleep", "1000"] and
                          p.status() != psutil.STATUS_ZOMBIE and
                          p.ppid() in (1, os.getpid())
                          and "CIRCUS_SHOW" in _env(p)], what="sweep")


def _env(proc):
    try:
        return proc.environ()
    except psutil.Error:
        return {}


def test_reload_never_drops_to_zero(trainer):
    show = trainer.add_show("r", SLEEP, numflies=2)
    counts = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            counts.append(len(show))

    watcher = threading.Thread(target=watch)
    watcher.start()
    old = pids(show)
    try:
        show.reload()
    finally:
        stop.set()
        watcher.join()
    assert min(counts) >= 2
    assert not (pids(show) & old) and len(pids(show)) == 2


def test_set_opt_cmd_reloads(trainer):
    show = trainer.add_show("c", SLEEP, numflies=2)
    old = pids(show)
    show.set_opt("cmd", "sleep 999")
    assert all(f.argv == ["sleep", "999"] for f in show.flies)
    assert not (pids(show) & old)


def test_send_hup_reload_keeps_pids(trainer):
    code = ("import signal, time\n"
            "signal.signal(signal.SIGHUP, lambda *a: print('hup', flush=True))\n"
            "print('ready', flush=True)\n"
            "while True: time.sleep(1)")
    reaps = collect(trainer, "show.h.reap")
    show = trainer.add_show("h", py(code), numflies=1, send_hup=True)

    def ready_fly():
        # The whole line, newline included: a SIGHUP between print's "ready" and its "\n"
        # would print "readyhup" (seen under load).
        return next((f for f in show.flies if f.output["stdout"].text() == "ready\n"), None)

    fly = wait_for(ready_fly, timeout=15, what="a fly with its SIGHUP handler")
    show.reload()
    wait_for(lambda: "hup" in fly.output["stdout"].lines(), timeout=15,
             what=f"hup (reaps so far: {[r[1] for r in reaps]})")
    assert pids(show) == {fly.pid}


def test_scale_up_and_down(trainer):
    show = trainer.add_show("sc", SLEEP, numflies=1)
    assert show.incr(3) == 4 and len(show) == 4
    assert show.decr(2) == 2
    wait_for(lambda: len(show.flies) == 2, what="scale down")
    assert sorted(f.wid for f in show.flies) == [1, 2]
    show.numflies = 0
    wait_for(lambda: not show.flies, what="scale to 0")
    with pytest.raises(OptionError, match="cannot remove 1 flies"):
        show.decr()


def test_warmup_delay_spaces_spawns_without_blocking(trainer):
    events = collect(trainer, "show.w.spawn")
    t0 = time.monotonic()
    show = trainer.add_show("w", SLEEP, numflies=3, warmup_delay=0.2)
    assert trainer.statuses() == {"w": "active"}  # the loop answered while warming up
    wait_for(lambda: len(events) == 3, what="three spawn events")
    times = [e[1]["time"] for e in events]
    assert times[1] - times[0] >= 0.18 and times[2] - times[1] >= 0.18
    assert time.monotonic() - t0 >= 0.36
    show.stop()


def test_stop_interrupts_warmup(trainer):
    show = trainer.add_show("w2", SLEEP, numflies=5, warmup_delay=30, stopped=True)
    starter = threading.Thread(target=show.start)
    starter.start()
    wait_for(lambda: len(show) == 1, what="first fly")
    t0 = time.monotonic()
    show.stop()
    starter.join(5)
    assert not starter.is_alive() and time.monotonic() - t0 < 2
    assert show.state is ShowState.STOPPED and not show.flies


def test_another_popens_exit_code_is_not_stolen(trainer):
    trainer.add_show("s", py("import sys; sys.exit(3)"), numflies=2, times=1000)
    import subprocess

    for _ in range(5):
        proc = subprocess.Popen([*py("import sys; sys.exit(7)").split(" ", 1)[:1], "-c",
                                 "import sys; sys.exit(7)"])
        assert proc.wait(5) == 7


def test_calls_from_many_threads(trainer):
    show = trainer.add_show("m", SLEEP, numflies=1)
    errors = []

    def work():
        try:
            for _ in range(5):
                show.incr()
                show.decr()
                trainer.statuses()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert show.numflies == 1
    wait_for(lambda: len(show.flies) == 1, what="back to 1")


def test_set_opt_validates(trainer):
    show = trainer.add_show("v", SLEEP, numflies=1)
    with pytest.raises(OptionError, match=r"unknown option 'numflys'; valid options: .*numflies"):
        show.set_opt("numflys", 3)
    with pytest.raises(OptionError, match=r"numflies=-1 is not valid.*integer >= 0"):
        show.set_opt("numflies", -1)
    with pytest.raises(OptionError, match=r"numflies='many'"):
        show.set_opt("numflies", "many")
    with pytest.raises(OptionError, match=r"graceful_timeout=-2"):
        show.set_opt("graceful_timeout", -2)
    with pytest.raises(OptionError, match=r"stop_signal='SIGNOPE'"):
        show.set_opt("stop_signal", "SIGNOPE")
    assert show.set_opt("stop_signal", "INT") == 0
    assert show.get_opt("stop_signal") == signal.SIGINT
    assert show.options()["numflies"] == 1 and len(show) == 1


def test_bad_input_to_constructors():
    with pytest.raises(OptionError, match="numflies=-3"):
        Show("a", SLEEP, numflies=-3)
    with pytest.raises(OptionError, match="numflies=2.5"):
        Show("a", SLEEP, numflies=2.5)
    with pytest.raises(OptionError, match="cmd=''"):
        Show("a", "")
    with pytest.raises(OptionError, match="show name 'a b'"):
        Show("a b", SLEEP)
    trainer = Trainer([Show("a", SLEEP)])
    with pytest.raises(Exception, match="a show named 'a' already exists"):
        trainer.add_show("a", SLEEP)
    with pytest.raises(KeyError, match="no show named 'b'; known shows: a"):
        trainer.get_show("b")
    with pytest.raises(ValueError, match="check_delay=0"):
        Trainer(check_delay=0)


def test_a_show_without_a_running_trainer_says_so():
    show = Show("lonely", SLEEP)
    with pytest.raises(NotRunningError, match="add it to a Trainer and start the trainer"):
        show.start()
    show.stop()  # nothing runs: a no-op
    assert show.set_opt("numflies", 4) == 2 and show.numflies == 4


def test_subclassing_fly_and_show(trainer):
    from circus import Fly

    class TaggedFly(Fly):
        def __init__(self, *args, **kwargs):
            kwargs["env"] = {**(kwargs.get("env") or {}), "TAG": "x"}
            super().__init__(*args, **kwargs)

    class TaggedShow(Show):
        fly_class = TaggedFly

    class MyTrainer(Trainer):
        show_class = TaggedShow

    t = MyTrainer()
    t.start(background=True)
    try:
        show = t.add_show("sub", py("import os, time; print(os.environ['TAG'], "
                                    "os.environ['CIRCUS_WID'], os.environ['CIRCUS_SHOW']); "
                                    "time.sleep(1000)"))
        assert isinstance(show, TaggedShow) and isinstance(show.flies[0], TaggedFly)
        wait_for(lambda: show.flies[0].lines() == ["x 1 sub"], what="the env in the output")
    finally:
        t.stop()


def test_wid_is_substituted_in_cmd(trainer):
    show = trainer.add_show("wid", "sleep 10$WID", numflies=2)
    assert sorted(f.argv[1] for f in show.flies) == ["101", "102"]


def test_a_failing_subscriber_does_not_break_the_loop(trainer):
    def bad(topic, payload):
        raise RuntimeError("boom")

    def slow(topic, payload):
        time.sleep(0.5)

    trainer.subscribe("show.", bad)
    trainer.subscribe("show.", slow)
    t0 = time.monotonic()
    show = trainer.add_show("b", SLEEP, numflies=3)
    os.kill(show.flies[0].pid, signal.SIGKILL)
    wait_for(lambda: len(pids(show)) == 3 and show.restarts == 1, what="respawn")
    assert time.monotonic() - t0 < 1.5  # holding the loop would take 0.5 s per event


def test_many_flies_raise_the_fd_limit(trainer):
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft >= 4096 or soft == resource.RLIM_INFINITY or soft == _
