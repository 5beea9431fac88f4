"""circusd and our circusctl as real processes: signals, reload, pidfile, keys, output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading

import psutil
import pytest

from _helpers_control import CIRCUSD, ROOT, Daemon, run_ctl, short_dir, wait_for
from circus.client import Client
from helpers import alive

CONFIG = """
[circus]
endpoint = ipc://{d}/s/ctl.sock
pubsub_endpoint = ipc://{d}/s/pub.sock
pidfile = {d}/circusd.pid

[show:sleeper]
cmd = sleep 60
numflies = {n}
graceful_timeout = 2
"""


def _pids(client: Client, name: str) -> list[int]:
    return client.command("list", name=name)["pids"]


def test_run_reload_and_stop_gracefully():
    with short_dir() as d, Daemon(d, CONFIG.format(d=d, n=2)) as daemon:
        daemon.wait_log("controller listening")
        with Client(f"ipc://{d}/s/ctl.sock") as client:
            wait_for(lambda: len(_pids(client, "sleeper")) == 2, what="2 flies")
            with open(f"{d}/circusd.pid") as f:
                assert f.read().strip() == str(daemon.proc.pid)
            # SIGHUP: one show updated, one added; a removed show goes away
            daemon.write(CONFIG.format(d=d, n=3) + "\n[show:extra]\ncmd = sleep 60\n"
                         "graceful_timeout = 1\n")
            daemon.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: client.command("list")["shows"] == ["extra", "sleeper"],
                     what="the added show")
            wait_for(lambda: len(_pids(client, "sleeper")) == 3, what="3 flies after reload")
            daemon.write(CONFIG.format(d=d, n=1))
            assert client.command("reloadconfig") == {"added": [], "removed": ["extra"],
                                                      "updated": ["sleeper"]}
            # a broken config on reload: an error, and the running shows stay
            daemon.write("[show:sleeper]\nnumflies = x\n")
            daemon.proc.send_signal(signal.SIGHUP)
            daemon.wait_log("reload failed")
            assert client.command("numflies", name="sleeper")["numflies"] == 1
            flies = [psutil.Process(p) for p in _pids(client, "sleeper")]
        assert daemon.stop(signal.SIGTERM) == 0
        assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in flies)
        assert not os.path.exists(f"{d}/circusd.pid")
        assert "stopped" in daemon.logs()


def test_bad_config_starts_nothing():
    with short_dir() as d:
        path = os.path.join(d, "bad.ini")
        with open(path, "w") as f:
            f.write(f"[circus]\nendpoint = ipc://{d}/s/c.sock\n[show:a]\ncmd = sleep 60\n"
                    "numflys = 2\n")
        out = subprocess.run([*CIRCUSD, path], capture_output=True, text=True, timeout=30,
                             env={**os.environ, "PYTHONPATH": ROOT})
        assert out.returncode == 2
        assert f"{path}: [show:a] numflys: unknown option; valid options:" in out.stderr
        assert not os.path.exists(f"{d}/s")


def test_tcp_without_keys_is_refused_and_insecure_warns():
    with short_dir() as d:
        path = os.path.join(d, "tcp.ini")
        with open(path, "w") as f:
            f.write("[circus]\nendpoint = tcp://127.0.0.1:0\n")
        out = subprocess.run([*CIRCUSD, path], capture_output=True, text=True, timeout=30,
                             env={**os.environ, "PYTHONPATH": ROOT})
        assert out.returncode == 2 and "without CurveZMQ keys" in out.stderr
        with Daemon(d, "[circus]\nendpoint = tcp://127.0.0.1:0\ninsecure = true\n") as daemon:
            daemon.wait_log("NO authentication")


def test_gen_keys_and_a_curve_daemon():
    with short_dir() as d:
        out = subprocess.run([*CIRCUSD, "--gen-keys", f"{d}/keys"], capture_output=True,
                             text=True, timeout=30, env={**os.environ, "PYTHONPATH": ROOT})
        assert out.returncode == 0, out.stderr
        assert oct(os.stat(f"{d}/keys").st_mode & 0o777) == "0o700"
        assert oct(os.stat(f"{d}/keys/server.key_secret").st_mode & 0o777) == "0o600"
        config = (f"[circus]\nendpoint = tcp://127.0.0.1:{_free_port()}\nkeys_dir = {d}/keys\n"
                  "[show:a]\ncmd = sleep 60\ngraceful_timeout = 1\n")
        with Daemon(d, config) as daemon:
            daemon.wait_log("controller listening")
            ok = run_ctl("--config", daemon.path, "status")
            assert ok.returncode == 0 and ok.stdout == "a: active\n", ok.stderr
            ep = config.split("endpoint = ")[1].split("\n")[0]
            denied = run_ctl("--endpoint", ep, "--timeout", "0.5", "incr", "a")
            assert denied.returncode == 3 and "requires CurveZMQ" in denied.stderr
            assert run_ctl("--config", daemon.path, "numflies", "a").stdout == "1\n"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_circusctl_readable_json_and_listen():
    with short_dir() as d, Daemon(d, CONFIG.format(d=d, n=1)) as daemon:
        daemon.wait_log("controller listening")
        ep = f"ipc://{d}/s/ctl.sock"
        assert run_ctl("-e", ep, "status").stdout == "sleeper: active\n"
        reply = json.loads(run_ctl("-e", ep, "--json", "status", "sleeper").stdout)
        assert reply["status"] == "active" and "id" in reply
        bad = run_ctl("-e", ep, "list", "nosuch")
        assert bad.returncode == 1 and bad.stderr.startswith("error: no show named 'nosuch'")
        assert run_ctl("-e", ep, "get", "sleeper", "numflies", "cmd").stdout == \
            "numflies: 1\ncmd: sleep 60\n"
        assert run_ctl("-e", ep, "set", "sleeper", "numflies", "2").stdout == "ok\n"
        assert run_ctl("-e", ep, "decr", "sleeper").stdout == "1\n"
        # listen: poke the daemon until the listener has seen two events
        listener = subprocess.Popen(
            [*CIRCUSD[:-1], "circus.circusctl", "-e", ep, "--json", "--count", "2", "listen",
             "show.sleeper."], stdout=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": ROOT})
        done = threading.Event()
        lines: list[str] = []

        def read():
            assert listener.stdout is not None
            lines.extend(listener.stdout)
            done.set()

        reader = threading.Thread(target=read)
        reader.start()
        timeout = [1.0]

        def poke():
            timeout[0] += 0.5
            run_ctl("-e", ep, "set", "sleeper", "graceful_timeout", str(timeout[0]))
            return done.wait(0.2)

        try:
            wait_for(poke, timeout=20, what="circusctl listen")
        finally:
            listener.kill() if listener.poll() is None else None
            listener.wait()
            reader.join()
            listener.stdout.close()  # type: ignore[union-attr]
        events = [json.loads(line) for line in lines]
        assert len(events) == 2 and all(e["topic"] == "show.sleeper.updated" for e in events)
        assert run_ctl("-e", ep, "quit").stdout == "ok\n"
        assert daemon.proc.wait(15) == 0


@pytest.mark.parametrize("sig", [signal.SIGINT])
def test_sigint_stops_too(sig):
    with short_dir() as d, Daemon(d, CONFIG.format(d=d, n=1)) as daemon:
        daemon.wait_log("spawn")
        assert daemon.stop(sig) == 0


def test_sigkill_of_circusd_leaves_no_fly():
    """circusd dies without a chance to clean up: its sentinel kills the flies within 2 s."""
    config = CONFIG.format(d="{d}", n=3).replace(
        "cmd = sleep 60", "cmd = sh -c 'sleep 60 & exec sleep 60'")  # a grandchild each
    with short_dir() as d, Daemon(d, config.format(d=d)) as daemon:
        daemon.wait_log("controller listening")
        with Client(f"ipc://{d}/s/ctl.sock") as client:
            wait_for(lambda: len(_pids(client, "sleeper")) == 3, what="3 flies")
        flies = wait_for(lambda: (lambda p: p if len(p) == 6 else None)(
            [c for c in psutil.Process(daemon.proc.pid).children(recursive=True)
             if "circus-sentinel" not in " ".join(c.cmdline())]), what="flies + grandchildren")
        daemon.proc.kill()
        daemon.proc.wait()

        wait_for(lambda: not alive(flies), timeout=2.0, what="every fly gone after SIGKILL")
