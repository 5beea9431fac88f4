"""Trainer-level behaviour: shows added and removed live, reload, restart, a given loop."""

from __future__ import annotations

import asyncio
import os
import signal
import threading

import psutil

from circus import Show, ShowState, Trainer
from helpers import alive, wait_for

SLEEP = "sleep 1000"


def test_add_and_rm_show_while_running(trainer):
    show = trainer.add_show("a", SLEEP, numflies=2)
    assert len(show) == 2 and trainer.numflies() == 2 and trainer.numshows() == 1
    flies = [psutil.Process(f.pid) for f in show.flies]
    trainer.rm_show("a")
    assert trainer.numshows() == 0 and not alive(flies)
    assert show.trainer is None


def test_stopped_shows_wait_for_a_start():
    trainer = Trainer([Show("a", SLEEP), Show("b", SLEEP, stopped=True)])
    trainer.start(background=True)
    try:
        assert trainer.statuses() == {"a": "active", "b": "stopped"}
        trainer.get_show("b").start()
        assert trainer.statuses() == {"a": "active", "b": "active"}
        assert trainer.numflies() == 2
    finally:
        trainer.stop()


def test_reload_calls_prereload_fn_and_replaces_flies():
    calls = []
    trainer = Trainer([Show("a", SLEEP, numflies=2)], prereload_fn=calls.append)
    trainer.start(background=True)
    try:
        old = {f.pid for f in trainer.get_show("a").flies}
        trainer.reload()
        assert calls == [trainer]
        new = {f.pid for f in trainer.get_show("a").flies}
        assert len(new) == 2 and not (old & new)
    finally:
        trainer.stop()


def test_a_trainer_starts_again_after_stop():
    trainer = Trainer([Show("a", SLEEP)])
    trainer.start(background=True)
    trainer.start(background=True)  # a second start is a no-op
    first = trainer.get_show("a").flies[0].pid
    trainer.stop()
    trainer.stop()
    assert not trainer.running and trainer.statuses() == {"a": "stopped"}
    trainer.start(background=True)
    try:
        assert trainer.get_show("a").flies[0].pid != first
    finally:
        trainer.stop()


def test_runs_on_a_loop_it_is_given():
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="users-loop")
    thread.start()
    trainer = Trainer([Show("s", SLEEP, numflies=2)], loop=loop)
    try:
        trainer.start()  # returns: the loop is the caller's
        show = trainer.get_show("s")
        victim = show.flies[0].pid
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: len(show) == 2 and victim not in [f.pid for f in show.flies],
                 what="a respawn on the given loop")
        assert show.state is ShowState.ACTIVE
    finally:
        trainer.stop()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
    assert not trainer.running


def test_summary_and_repr(trainer):
    trainer.add_show("a", SLEEP, numflies=1)
    assert "a:active(1/1)" in repr(trainer)
    text = trainer.summary()
    assert text.startswith("Trainer (running), 1 show(s), 1 fly(ies)")
    assert "wid 1" in text
