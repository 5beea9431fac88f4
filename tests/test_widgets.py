"""Dashboards without a browser: widget state after real process events; clicks drive actions."""

from __future__ import annotations

import os
import signal

import pytest

from circus import ShowState
from circus_widgets import Dashboard, sparkline_svg, static_html
from helpers import SLEEPER, wait_for


@pytest.fixture
def board(trainer):
    d = Dashboard(trainer)
    yield d
    d.close()


def pids_in(panel):
    return [row[1] for row in panel.table.rows]


def test_kill_shows_new_pid(trainer, board):
    trainer.add_show("sl", SLEEPER, numflies=3)
    panel = wait_for(lambda: board.panels.get("sl"), what="panel")
    wait_for(lambda: len(panel.table.rows) == 3, what="3 rows")
    assert "active" in panel.header.value and "3 running / 3 target" in panel.header.value
    victim = int(panel.table.rows[0][1])
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: str(victim) not in pids_in(panel) and len(pids_in(panel)) == 3,
             what="a new pid in the table")
    new = trainer.get_show("sl").flies[0].pid
    assert str(new) in panel.table.get_state()["value"]
    assert panel.table.rows[0][4] == "1"  # that slot's restarts
    wait_for(lambda: "tick" in panel.log_tail.text.value, what="log tail")


def test_buttons_and_scale(trainer, board):
    trainer.add_show("sl", SLEEPER, numflies=1, graceful_timeout=2)
    panel = wait_for(lambda: board.panels.get("sl"), what="panel")
    panel.plus.click()
    wait_for(lambda: len(trainer.get_show("sl")) == 2 and len(panel.table.rows) == 2,
             what="+ adds a fly")
    assert panel.scale.value == 2
    panel.scale.value = 4
    wait_for(lambda: len(panel.table.rows) == 4, what="the number box scales")
    panel.minus.click()
    wait_for(lambda: len(panel.table.rows) == 3, what="- removes one")
    panel.buttons["stop"].click()
    wait_for(lambda: trainer.get_show("sl").state is ShowState.STOPPED, what="stop")
    wait_for(lambda: "stopped" in panel.header.value and not panel.table.rows, what="badge")
    panel.buttons["start"].click()
    wait_for(lambda: len(panel.table.rows) == 3, what="start")
    before = set(pids_in(panel))
    panel.buttons["restart"].click()
    wait_for(lambda: len(pids_in(panel)) == 3 and not before & set(pids_in(panel)), what="restart")
    before = set(pids_in(panel))
    panel.buttons["reload"].click()
    wait_for(lambda: len(pids_in(panel)) == 3 and not before & set(pids_in(panel)), what="reload")
    assert panel.error.value == ""


def test_errors_show_in_panel(trainer, board):
    trainer.add_show("sl", SLEEPER, numflies=0)
    panel = wait_for(lambda: board.panels.get("sl"), what="panel")
    panel.minus.click()  # below zero
    assert "cannot remove" in panel.error.value
    panel.scale.value = -2
    assert "numflies=-2" in panel.error.value and panel.scale.value == 0


def test_shows_appear_and_disappear(trainer, board):
    trainer.add_show("a", SLEEPER)
    wait_for(lambda: list(board.panels) == ["a"], what="a")
    trainer.add_show("b", SLEEPER)
    wait_for(lambda: [p.model.name for p in board.body.children] == ["a", "b"], what="b")
    trainer.rm_show("a")
    wait_for(lambda: [p.model.name for p in board.body.children] == ["b"], what="a gone")


def test_sparklines_fill(trainer, board):
    board.model.sample_interval = 0.2
    trainer.add_show("sl", SLEEPER)
    panel = wait_for(lambda: board.panels.get("sl"), what="panel")
    wait_for(lambda: "MiB" in panel.mem.value, what="memory sampled")
    wait_for(lambda: len(board.model["sl"].rss_history) >= 3, what="history")
    assert "<svg" in panel.cpu.value and "polyline" in panel.mem.value


def test_static_views(trainer):
    trainer.add_show("sl", SLEEPER, numflies=2)
    wait_for(lambda: len(trainer.get_show("sl")) == 2, what="2 flies")
    html = static_html(trainer.snapshot())
    assert "sl" in html and str(trainer.get_show("sl").flies[0].pid) in html
    bundle = trainer._repr_mimebundle_()  # no kernel here: text and static HTML only
    assert set(bundle) == {"text/plain", "text/html"}
    assert "sl: active" in bundle["text/plain"]
    assert "wid 1" in trainer.get_show("sl")._repr_mimebundle_()["text/plain"]
    assert sparkline_svg([1, 2, 3]).startswith("<svg")
