"""%circus and %%circus on a real InteractiveShell."""

from __future__ import annotations

import os
import signal
import sys

import pytest

import circus
from circus import ShowState
from helpers import wait_for

pytestmark = pytest.mark.allow_fd_growth  # IPython keeps its history database open

SLEEP = f"{sys.executable} -c 'import time; time.sleep(60)'"


@pytest.fixture(scope="module")
def shell():
    from IPython.testing.globalipapp import get_ipython

    ip = get_ipython()
    ip.history_manager.enabled = False
    return ip


@pytest.fixture
def ip(shell):
    shell.run_line_magic("load_ext", "circus")
    yield shell
    shell.run_line_magic("unload_ext", "circus")
    assert circus.default_trainer() is None


def fails(ip, line):
    """Run a cell; return its UsageError text (IPython prints it as one line)."""
    from IPython.core.error import UsageError

    result = ip.run_cell(line)
    assert isinstance(result.error_in_exec, UsageError), result.error_in_exec
    return str(result.error_in_exec)


def test_start_as_written(ip, capsys):
    ip.run_line_magic("circus", "start python worker.py --numflies 3 --name w")
    trainer = circus.default_trainer()
    show = trainer.get_show("w")
    assert show.cmd == "python worker.py" and show.numflies == 3
    show.stop()


def test_start_options_and_subcommands(ip, capsys, tmp_path):
    ip.run_line_magic("circus", f"start {SLEEP} --numflies 2 --name sl --env A=1 --env B=x=y "
                                f"--cwd {tmp_path} --warmup-delay 0")
    trainer = ip.run_line_magic("circus", "")
    assert trainer is circus.default_trainer() and trainer.running
    show = trainer.get_show("sl")
    assert show.env == {"A": "1", "B": "x=y"} and show.working_dir == str(tmp_path)
    wait_for(lambda: len(show) == 2, what="2 flies")
    ip.run_line_magic("circus", "status")
    out = capsys.readouterr().out
    assert "sl" in out and "active" in out and str(show.flies[0].pid) in out and "RSS" in out
    ip.run_line_magic("circus", "scale sl 3")
    wait_for(lambda: len(show) == 3, what="scale")
    ip.run_line_magic("circus", "incr sl")
    ip.run_line_magic("circus", "decr sl 2")
    wait_for(lambda: len(show) == 2 and show.numflies == 2, what="incr/decr")
    pid = show.flies[0].pid
    ip.run_line_magic("circus", "signal sl KILL --wid 1")
    wait_for(lambda: show.flies[0].pid != pid and len(show) == 2, what="signal respawn")
    ip.run_line_magic("circus", "restart sl")
    ip.run_line_magic("circus", "reload sl")
    wait_for(lambda: len(show) == 2, what="reload")
    ip.run_line_magic("circus", "stop sl")
    assert show.state is ShowState.STOPPED
    ip.run_line_magic("circus", "start sl")
    wait_for(lambda: len(show) == 2, what="start by name")
    ip.run_line_magic("circus", "stop --all")
    assert show.state is ShowState.STOPPED and not show.flies


def test_shell_and_logs(ip, capsys):
    ip.run_line_magic("circus", "start echo hello-$CIRCUS_WID; sleep 60 --shell --name sh")
    show = circus.default_trainer().get_show("sh")
    wait_for(lambda: show.flies and show.flies[0].lines("stdout"), what="output")
    ip.run_line_magic("circus", "logs sh -n 5 --wid 1")
    assert "[1] hello-1" in capsys.readouterr().out


def test_mistakes_are_one_line(ip):
    assert "nothing runs yet" in fails(ip, "%circus status")
    ip.run_line_magic("circus", f"start {SLEEP} --name sl --numflies 0")
    assert "no show named 'nope'" in fails(ip, "%circus scale nope 3")
    assert "must be an integer" in fails(ip, "%circus scale sl x")
    assert "unknown subcommand 'frob'" in fails(ip, "%circus frob")
    assert "already exists" in fails(ip, f"%circus start {SLEEP} --name sl")
    assert "give a command" in fails(ip, "%circus start --numflies 2")
    assert "usage: %circus restart NAME" in fails(ip, "%circus restart")
    assert "signum" in fails(ip, "%circus signal sl NOSUCH")
    assert "KEY=VALUE" in fails(ip, "%circus start x --env nope")


def test_cell_magic(ip, capsys):
    ip.run_cell_magic("circus", "", f"""
[show:one]
cmd = {SLEEP}
numflies = 2

[show:two]
cmd = {SLEEP}
stopped = true

[env:one]
COLOUR = blue
""")
    trainer = circus.default_trainer()
    one = trainer.get_show("one")
    wait_for(lambda: len(one) == 2, what="one runs")
    assert one.env == {"COLOUR": "blue"} and trainer.get_show("two").state is ShowState.STOPPED
    assert "cmd is missing" in fails(ip, "%%circus\n[show:bad]\nnumflies = 1\n")


def test_completion(ip):
    ip.run_line_magic("circus", f"start {SLEEP} --name alpha --numflies 0")
    ip.run_line_magic("circus", f"start {SLEEP} --name beta --numflies 0")
    def complete(line):
        from IPython.core.completer import provisionalcompleter

        with provisionalcompleter():
            return {c.text for c in ip.Completer.completions(line, len(line))}

    assert "alpha" in complete("%circus stop al")
    assert {"start", "status"} <= complete("%circus sta")


def test_unload_stops_every_fly(shell):
    shell.run_line_magic("load_ext", "circus")
    shell.run_line_magic("circus", f"start {SLEEP} --name sl --numflies 2")
    show = circus.default_trainer().get_show("sl")
    wait_for(lambda: len(show) == 2, what="2 flies")
    pids = [f.pid for f in show.flies]
    shell.run_line_magic("unload_ext", "circus")
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert "circus" not in shell.magics_manager.magics["line"]
    assert signal.SIGTERM  # the kernel's own handlers were never touched


DAEMON = """
[circus]
endpoint = ipc://{d}/{tag}/ctl.sock
pubsub_endpoint = ipc://{d}/{tag}/pub.sock

[show:{show}]
cmd = sleep 60
numflies = {n}
graceful_timeout = 2
"""


def test_connect_two_daemons(ip, capsys):
    from _helpers_control import Daemon, short_dir
    from circus._ipython import connections

    with short_dir() as d, \
            Daemon(d, DAEMON.format(d=d, tag="a", show="web", n=2), name="a.ini") as a, \
            Daemon(d, DAEMON.format(d=d, tag="b", show="db", n=1), name="b.ini") as b:
        a.wait_log("controller listening")
        b.wait_log("controller listening")
        board = ip.run_line_magic("circus", f"connect ipc://{d}/a/ctl.sock --name a")
        wait_for(lambda: "web" in board.panels and board.model["web"].running == 2,
                 timeout=10, what="a's show on its dashboard")
        assert "connected" in board.header.value
        other = ip.run_line_magic("circus", f"connect ipc://{d}/b/ctl.sock --timeout 3")
        assert other is not board
        wait_for(lambda: "db" in other.panels, what="b's show")
        # connecting again under the same name gives the same dashboard
        assert ip.run_line_magic("circus", f"connect ipc://{d}/a/ctl.sock --name a") is board
        assert "already connected" in fails(ip, f"%circus connect ipc://{d}/b/ctl.sock --name a")
        ip.run_line_magic("circus", "connections")
        rows = [line.split() for line in capsys.readouterr().out.splitlines()]
        assert [f"ipc://{d}/b/ctl.sock", f"ipc://{d}/b/ctl.sock", "connected"] in rows
        assert ["a", f"ipc://{d}/a/ctl.sock", "connected"] in rows
        # the dashboard acts on the daemon, and sees its events
        board.panels["web"].plus.click()
        wait_for(lambda: board.model["web"].running == 3, what="scaled through the dashboard")
        remote_a = connections()["a"]
        assert remote_a.numflies("web") == 3
        ip.run_line_magic("circus", "disconnect a")
        assert list(connections()) == [f"ipc://{d}/b/ctl.sock"]
        assert remote_a.connection_state == "closed" and board.comm is None
        assert "no connection named 'a'" in fails(ip, "%circus disconnect a")
        # unloading the extension closes the rest
        remote_b = connections()[f"ipc://{d}/b/ctl.sock"]
        ip.run_line_magic("unload_ext", "circus")
        assert remote_b.connection_state == "closed" and other.comm is None
        assert connections() == {}
        ip.run_line_magic("load_ext", "circus")  # for the fixture's unload


def test_connect_mistakes_are_one_line(ip, tmp_path):
    from _helpers_control import short_dir

    with short_dir() as d:
        assert "is the daemon running" in fails(
            ip, f"%circus connect ipc://{d}/none/ctl.sock --timeout 0.3")
    assert "not valid" in fails(ip, "%circus connect nowhere")
    assert "--timeout must be a number" in fails(ip, "%circus connect ipc:///x --timeout x")
    assert "no client keys" in fails(ip, f"%circus connect tcp://127.0.0.1:9 --keys {tmp_path}")
    assert "usage: %circus disconnect" in fails(ip, "%circus disconnect")
    assert "no connection named 'x'" in fails(ip, "%circus disconnect x")
    from circus._ipython import connections

    assert connections() == {}
