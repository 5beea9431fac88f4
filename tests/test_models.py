"""traitlets models fed by a real trainer's events: state, acting writes, sampling, coalescing."""

from __future__ import annotations

import os
import signal
import time

import pytest
from traitlets import TraitError

from circus import FlyState, ShowState
from circus._commands import CommandError
from circus.models import LocalBackend, SamplingBackend, TrainerBackend, TrainerModel
from helpers import SLEEPER, py, wait_for


@pytest.fixture
def model(trainer):
    m = TrainerModel(trainer)
    yield m
    m.close()


def test_backend_protocol(trainer):
    backend = LocalBackend(trainer)
    assert isinstance(backend, TrainerBackend) and isinstance(backend, SamplingBackend)
    assert isinstance(trainer, TrainerBackend)  # a Trainer has the three methods itself


def test_snapshot_then_events(trainer, model):
    trainer.add_show("sl", SLEEPER, numflies=2, graceful_timeout=2)
    show = wait_for(lambda: next(iter(model.shows), None), what="show model")
    wait_for(lambda: show.running == 2 and show.state is ShowState.ACTIVE, what="2 running")
    assert [f.wid for f in show.flies] == [1, 2]
    assert {f.pid for f in show.flies} == {f.pid for f in trainer.get_show("sl").flies}
    assert all(f.state is FlyState.RUNNING for f in show.flies)
    wait_for(lambda: any("tick" in line for line in show.flies[0].output), what="output")
    assert model.running and show.numflies == 2 and show.options["cmd"] == SLEEPER

    # A model made later starts from the snapshot.
    with TrainerModel(trainer) as late:
        assert late["sl"].running == 2 and late["sl"].state is ShowState.ACTIVE


def test_kill_respawn_restarts(trainer, model):
    trainer.add_show("sl", SLEEPER, numflies=1)
    show = wait_for(lambda: model.shows and model.shows[0], what="show")
    fly = wait_for(lambda: show.flies and show.flies[0], what="fly")
    old = fly.pid
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: fly.pid != old and fly.state is FlyState.RUNNING, what="new pid")
    assert show.flies[0] is fly and fly.restarts == 1 and show.restarts == 1
    assert fly.pid == trainer.get_show("sl").flies[0].pid


def test_exit_code_kept(trainer, model):
    trainer.add_show("ex", py("import sys; sys.exit(3)"), numflies=1, times=100, within=0.01)
    show = wait_for(lambda: model.shows and model.shows[0], what="show")
    wait_for(lambda: show.restarts >= 1 and show.flies, what="an exit")
    assert show.flies[0].exit_code == 3 or show.flies[0].state is FlyState.RUNNING
    trainer.get_show("ex").stop()


def test_writes_act(trainer, model):
    trainer.add_show("sl", SLEEPER, numflies=1, graceful_timeout=2)
    show = wait_for(lambda: model.shows and model.shows[0], what="show")
    show.numflies = 3
    wait_for(lambda: show.running == 3 and len(trainer.get_show("sl")) == 3, what="scaled up")
    assert show.incr() == 4 and show.decr(2) == 2
    wait_for(lambda: show.running == 2 and len(show.flies) == 2, what="scaled down")
    with pytest.raises(TraitError):
        show.numflies = -1
    with pytest.raises(CommandError):
        show.signal("NOSUCH")
    show.stop()
    wait_for(lambda: show.state is ShowState.STOPPED and not show.flies, what="stopped")
    assert trainer.get_show("sl").state is ShowState.STOPPED
    show.start()
    wait_for(lambda: show.running == 2, what="started again")
    show.restart()
    wait_for(lambda: show.running == 2 and show.state is ShowState.ACTIVE, what="restarted")
    pids = {f.pid for f in show.flies}
    show.reload()
    wait_for(lambda: show.running == 2 and not pids & {f.pid for f in show.flies}, what="reload")


def test_signal_fly(trainer, model):
    trainer.add_show("sl", SLEEPER, numflies=2)
    show = wait_for(lambda: model.shows and model.shows[0], what="show")
    wait_for(lambda: show.running == 2, what="running")
    first = show.flies[0]
    old = first.pid
    first.kill()
    wait_for(lambda: first.pid != old, what="replaced")
    show.signal("KILL", wid=2)
    assert first.logs(lines=5) is not None


def test_add_rm_show_live(trainer, model):
    trainer.add_show("a", SLEEPER)
    wait_for(lambda: [s.name for s in model.shows] == ["a"], what="a")
    model.add_show("b", SLEEPER, numflies=2)
    wait_for(lambda: [s.name for s in model.shows] == ["a", "b"], what="b")
    wait_for(lambda: model["b"].running == 2, what="b running")
    model.rm_show("a")
    wait_for(lambda: [s.name for s in model.shows] == ["b"], what="a removed")
    with pytest.raises(KeyError):
        model["a"]


def test_sampling_only_while_observed(trainer, model):
    model.sample_interval = 0.2
    trainer.add_show("sl", SLEEPER, numflies=1)
    show = wait_for(lambda: model.shows and model.shows[0], what="show")
    fly = wait_for(lambda: show.flies and show.flies[0], what="fly")
    time.sleep(0.5)  # nobody observes cpu/RSS yet: they stay unsampled
    assert fly.rss == 0 and show.rss_history == ()
    seen = []
    fly.observe(lambda change: seen.append(change.new), names="rss")
    wait_for(lambda: fly.rss > 1 << 20, what="RSS sampled")
    wait_for(lambda: len(show.rss_history) >= 2, what="history")
    fly.unobserve_all("rss")
    n = len(show.rss_history)
    time.sleep(0.5)
    assert len(show.rss_history) <= n + 1  # at most one sample already under way


@pytest.mark.slow
def test_coalescing_50_churning_flies(trainer, model):
    """50 flies that each exit every 200 ms for 5 s: <= 10 flushes/s per model, exact end."""
    stamps: dict[object, list[float]] = {}

    def record(m, changed):
        stamps.setdefault(m, []).append(time.monotonic())

    trainer.add_show("churn", "sleep 0.2", numflies=50, times=10_000, within=0.01,
                     max_retry=-1, graceful_timeout=1)
    show = wait_for(lambda: model.shows and model.shows[0], what="show")
    wait_for(lambda: len(show.flies) == 50, what="50 flies", timeout=10)
    show.on_flush(record)
    for fly in show.flies:
        fly.on_flush(record)
    t0 = time.monotonic()
    counts0 = {m: m.flush_count for m in (show, *show.flies)}
    restarts0 = show.restarts
    while time.monotonic() - t0 < 5:
        time.sleep(0.1)
    elapsed = time.monotonic() - t0
    rates = {m: (m.flush_count - counts0[m]) / elapsed for m in counts0}
    churned = show.restarts - restarts0
    show.numflies = 0
    wait_for(lambda: len(trainer.get_show("churn")) == 0, what="scaled to 0", timeout=10)
    assert model.wait_flushed()
    wait_for(lambda: show.running == 0 and not show.flies, what="model at 0")
    snap = trainer.snapshot()["shows"]["churn"]
    assert (show.numflies, show.running, show.restarts) == (0, 0, snap["restarts"])
    for m, times in stamps.items():
        for i, t in enumerate(times):  # no 1-second window holds more than 10 flushes
            assert sum(1 for u in times[i:] if u - t < 1.0) <= 10, (m, times)
    print(f"\nchurn: {churned / elapsed:.0f} respawns/s; show model "
          f"{rates[show]:.1f} flushes/s; fly models max "
          f"{max(r for m, r in rates.items() if m is not show):.1f} flushes/s")
    assert churned / elapsed > 50, "the flies did not churn"
    assert max(rates.values()) <= 10.5


REMOTE_CONFIG = """
[circus]
endpoint = ipc://{d}/s/ctl.sock
pubsub_endpoint = ipc://{d}/s/pub.sock

[show:sleeper]
cmd = sleep 60
numflies = {n}
graceful_timeout = 2
{extra}
"""


def test_remote_model_lost_then_resynced():
    """SIGKILL circusd (its sentinel takes the flies along): the model says "lost"; a new
    circusd on the same endpoint: the model resyncs to its shows from a fresh snapshot."""
    import circus
    from _helpers_control import Daemon, short_dir
    from circus_widgets import Dashboard

    with short_dir() as d:
        first = Daemon(d, REMOTE_CONFIG.format(d=d, n=2, extra=""))
        second = None
        try:
            first.wait_log("controller listening")
            remote = circus.connect(f"ipc://{d}/s/ctl.sock", timeout=2, command_timeout=2)
            try:
                with TrainerModel(remote) as model:
                    board = Dashboard(model)
                    assert model.connection == "connected" and "connected" in board.header.value
                    show = model["sleeper"]
                    wait_for(lambda: show.running == 2, timeout=10, what="2 flies")
                    old = {f.pid for f in show.flies}
                    first.stop(signal.SIGKILL)
                    wait_for(lambda: model.connection == "lost", timeout=10, what="lost")
                    wait_for(lambda: ">lost<" in board.header.value, what="a lost badge")
                    second = Daemon(d, REMOTE_CONFIG.format(
                        d=d, n=3, extra="[show:extra]\ncmd = sleep 60\ngraceful_timeout = 2\n"))
                    wait_for(lambda: model.connection == "connected", timeout=15,
                             what="connected again")
                    wait_for(lambda: sorted(s.name for s in model.shows) == ["extra", "sleeper"]
                             and model["sleeper"].running == 3 and model["extra"].running == 1,
                             timeout=10, what="the new daemon's shows in the model")
                    assert model["sleeper"] is show and show.numflies == 3
                    assert not old & {f.pid for f in show.flies}
                    assert {f.pid for f in show.flies} == set(remote.list("sleeper"))
                    wait_for(lambda: ">connected<" in board.header.value
                             and "extra" in board.panels, what="the dashboard back")
                    board.close()
            finally:
                remote.close()
        finally:
            first.stop()
            if second is not None:
                second.stop()


def test_output_line_split_across_writes(trainer, model):
    """'abc', a flush and a pause, then 'def\\n': one line 'abcdef', not two."""
    code = ("import sys, time\n"
            "sys.stdout.write('abc'); sys.stdout.flush(); time.sleep(0.3)\n"
            "sys.stdout.write('def\\n'); sys.stdout.flush(); time.sleep(60)")
    chunks = []
    trainer.subscribe("show.split.output", lambda t, p: chunks.append(p["data"]))
    trainer.add_show("split", py(code), numflies=1, graceful_timeout=1)
    show = wait_for(lambda: model.shows and model.shows[0], what="show")
    fly = wait_for(lambda: show.flies and show.flies[0], what="fly")
    wait_for(lambda: fly.output == ("abc",), what="the unfinished line")
    wait_for(lambda: fly.output == ("abcdef",), what="one whole line")
    assert chunks == ["abc", "def\n"]  # the fly really wrote it in two chunks
    wait_for(lambda: show.output == ("[1] abcdef",), what="the show's line")
