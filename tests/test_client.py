"""circus.client and circus.connect: errors that say why, and a remote trainer like a local one."""

from __future__ import annotations

import time

import pytest

import circus
from _helpers_control import short_dir, wait_for
from circus import Trainer
from circus._commands import CommandError
from circus.client import Client, UnreachableError


def _trainer(d: str, numflies: int = 1) -> Trainer:
    trainer = Trainer(endpoint=f"ipc://{d}/s/ctl.sock", pubsub_endpoint=f"ipc://{d}/s/pub.sock")
    trainer.add_show("w", "sleep 60", numflies=numflies, graceful_timeout=2)
    trainer.start(background=True)
    return trainer


def test_daemon_down_is_a_clear_error():
    with short_dir() as d:
        with Client(f"ipc://{d}/nothing/ctl.sock", timeout=0.3) as client:
            with pytest.raises(UnreachableError, match="no socket at .*is the daemon running"):
                client.command("status")
    with Client("tcp://127.0.0.1:9", timeout=0.3) as client:
        t0 = time.monotonic()
        with pytest.raises(UnreachableError, match="cannot connect to tcp://127.0.0.1:9"):
            client.command("status")
        assert time.monotonic() - t0 < 2


def test_command_result_and_errors_like_a_local_trainer():
    with short_dir() as d:
        trainer = _trainer(d)
        try:
            with Client(f"ipc://{d}/s/ctl.sock") as client:
                for name, props in [("status", {}), ("status", {"name": "w"}),
                                    ("numflies", {"name": "w"}), ("list", {})]:
                    assert client.command(name, **props) == trainer.command(name, **props)
                with pytest.raises(CommandError) as info:
                    client.command("list", name="nosuch")
                assert info.value.errno == 3
                with pytest.raises(CommandError) as local:
                    trainer.command("list", name="nosuch")
                assert str(info.value) == str(local.value)
                client.cast("incr", name="w")
                wait_for(lambda: trainer.get_show("w").numflies == 2, what="the cast")
        finally:
            trainer.stop()


def test_remote_trainer_subscribe_snapshot_command():
    with short_dir() as d:
        trainer = _trainer(d)
        try:
            remote = circus.connect(f"ipc://{d}/s/ctl.sock")
            try:
                assert remote.connection_state == "connected"
                assert remote.pubsub_endpoint == f"ipc://{d}/s/pub.sock"
                snap = remote.snapshot()
                assert snap["shows"]["w"]["numflies"] == 1 and snap["connection"] == "connected"
                events = []
                remote.subscribe("show.w.", lambda t, p: events.append((t, p)))

                def scaled():
                    remote.set_opts("w", graceful_timeout=float(len(events) % 7 + 1))
                    return any(t == "show.w.updated" for t, _ in events)

                wait_for(scaled, what="events over SUB")  # the subscription is live
                assert remote.incr("w", 2) == 3
                wait_for(lambda: sum(t == "show.w.spawn" for t, _ in events) >= 2,
                         what="2 spawn events")
                assert remote.numflies("w") == 3 and remote.list() == ["w"]
                assert remote.status("w") == "active"
                remote.add_show("x", "sleep 30", numflies=1, graceful_timeout=1)
                assert sorted(remote.list()) == ["w", "x"]
                remote.rm_show("x")
                assert remote.statuses() == {"w": "active"}
            finally:
                remote.close()
                remote.close()
            assert remote.connection_state == "closed"
        finally:
            trainer.stop()


def test_lost_connection_is_a_state_and_recovers():
    with short_dir() as d:
        trainer = _trainer(d)
        remote = circus.connect(f"ipc://{d}/s/ctl.sock", timeout=1, command_timeout=1)
        states = []
        remote.subscribe("trainer.connection", lambda t, p: states.append(p["state"]))
        try:
            trainer.stop()
            wait_for(lambda: remote.connection_state == "lost", what="the lost state")
            with pytest.raises(UnreachableError):
                remote.command("status")
            trainer = _trainer(d, numflies=2)
            wait_for(lambda: remote.connection_state == "connected", what="reconnection")
            assert remote.snapshot()["shows"]["w"]["numflies"] == 2
            wait_for(lambda: states[-2:] == ["lost", "connected"], what="connection events")
        finally:
            remote.close()
            trainer.stop()
