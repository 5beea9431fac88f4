"""The ZeroMQ controller inside a Trainer: wire format, malformed messages, events, security."""

from __future__ import annotations

import json
import os
import stat
import statistics
import subprocess
import sys
import threading
import time

import pytest
import zmq
import zmq.auth

from _helpers_control import request, short_dir, wait_for
from circus import Trainer
from circus._controller import MAX_MESSAGE, Controller, ControllerError
from circus._keys import gen_keys, keys_in
from circus.client import Client, UnreachableError


@pytest.fixture
def served():
    """A running Trainer with one show `w` of 2 sleepers, on ipc endpoints, and a DEALER."""
    with short_dir() as d:
        ep, pub = f"ipc://{d}/s/ctl.sock", f"ipc://{d}/s/pub.sock"
        trainer = Trainer(endpoint=ep, pubsub_endpoint=pub)
        trainer.add_show("w", "sleep 60", numflies=2, graceful_timeout=2)
        trainer.start(background=True)
        ctx = zmq.Context()
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.connect(ep)
        try:
            yield trainer, sock, ctx, d
        finally:
            sock.close()
            ctx.term()
            trainer.stop()


def test_no_socket_and_no_zmq_unless_asked():
    code = ("import sys, circus; t = circus.get_trainer('sleep 5'); t.start(background=True);"
            "print(t.plugins, 'zmq' in sys.modules); t.stop()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "[] False", out.stderr


def test_socket_dir_is_created_0700_and_removed(served):
    trainer, sock, ctx, d = served
    mode = os.stat(f"{d}/s").st_mode
    assert stat.S_IMODE(mode) == 0o700
    assert request(sock, "numshows")["numshows"] == 1
    trainer.stop()
    assert not os.path.exists(f"{d}/s")


def test_ipc_in_a_shared_directory_is_refused():
    with short_dir() as d:
        os.chmod(d, 0o755)
        trainer = Trainer(endpoint=f"ipc://{d}/ctl.sock")
        with pytest.raises(ControllerError, match="open to other users"):
            trainer.start(background=True)
        assert not trainer.running  # nothing half-started
        trainer.stop()
        assert not os.path.exists(f"{d}/ctl.sock")


def test_tcp_needs_keys_unless_insecure():
    trainer = Trainer(endpoint="tcp://127.0.0.1:0")
    with pytest.raises(ControllerError, match="CurveZMQ"):
        trainer.start(background=True)
    assert not trainer.running
    trainer.stop()
    trainer = Trainer(endpoint="tcp://127.0.0.1:0")
    trainer.plugins.append(Controller(insecure=True))
    trainer.start(background=True)
    try:
        with Client(trainer.plugins[0].bound["endpoint"]) as client:
            assert client.command("numshows") == {"numshows": 0, "numwatchers": 0}
    finally:
        trainer.stop()


def test_reply_format(served):
    trainer, sock, *_ = served
    reply = request(sock, "status", properties={})
    assert reply["status"] == "ok" and reply["statuses"] == {"w": "active"}
    assert isinstance(reply["time"], float) and len(reply["id"]) == 32
    reply = request(sock, "status", properties={"name": "w"})
    assert reply["status"] == "active"  # as Circus 0.19: the state replaces "ok"
    reply = request(sock, "list", properties={"name": "nosuch"})
    assert reply["status"] == "error" and reply["errno"] == 3
    assert "nosuch" in reply["reason"] and "tb" in reply and isinstance(reply["time"], float)
    reply = request(sock, "rmdir", properties={})
    assert reply["errno"] == 2 and "valid commands" in reply["reason"]
    reply = request(sock, "incr", properties={"name": "w", "nb": "x"})
    assert reply["status"] == "error" and reply["errno"] == 6


def test_malformed_messages_get_errors_and_serving_goes_on(served):
    trainer, sock, *_ = served

    def raw(frames):
        sock.send_multipart(frames)
        return json.loads(sock.recv()) if sock.poll(5000) else None

    assert raw([b"not json"])["errno"] == 1
    assert raw([b"\xff\xfe"])["errno"] == 1
    assert raw([b"[1, 2]"])["errno"] == 6
    assert raw([b'"text"'])["errno"] == 6
    assert raw([b"{}"])["reason"] == "the request has no 'command'"
    assert raw([b'{"command": 5}'])["errno"] == 6
    assert raw([b'{"command": "list", "properties": []}'])["errno"] == 6
    assert raw([b'{"command": "list", "id": {"a": 1}}'])["errno"] == 6
    assert raw([b"{}", b"{}"])["reason"] == "expected one JSON frame, got 2"
    # a REQ-style envelope (empty delimiter) is answered in kind
    sock.send_multipart([b"", b'{"id": "r", "command": "numshows"}'])
    assert sock.poll(5000) and sock.recv_multipart()[0] == b""
    # a frame over the cap: ZeroMQ drops the connection; the DEALER reconnects and is served
    sock.send(b"x" * (MAX_MESSAGE + 1))
    reply = request(sock, "numshows", properties={}, timeout=10)
    assert reply is not None and reply["numshows"] == 1
    # just under the cap is still read (and answered)
    assert raw([b'{"command": "numshows"' + b" " * (MAX_MESSAGE - 40) + b"}"])["numshows"] == 1


def test_cast_runs_without_reply(served):
    trainer, sock, *_ = served
    sock.send(json.dumps({"id": "c1", "command": "incr", "msg_type": "cast",
                          "properties": {"name": "w"}}).encode())
    wait_for(lambda: trainer.get_show("w").numflies == 3, what="the cast incr")
    assert request(sock, "numshows")["id"]  # the next reply is the next request's
    assert not sock.poll(100)


def test_overlapping_commands_queue(served):
    trainer, sock, *_ = served
    ids = []
    for command in ("stop", "start", "restart", "stop", "start", "incr", "decr"):
        cid = f"o{len(ids)}"
        sock.send(json.dumps({"id": cid, "command": command,
                              "properties": {"name": "w", "waiting": False}}).encode())
        ids.append(cid)
    replies = {}
    deadline = time.monotonic() + 20
    while len(replies) < len(ids) and time.monotonic() < deadline:
        if sock.poll(500):
            reply = json.loads(sock.recv())
            replies[reply["id"]] = reply
    assert [replies[i]["status"] for i in ids] == ["ok"] * len(ids), replies
    wait_for(lambda: len(trainer.get_show("w")) == 2, what="2 flies after the storm")


def test_events_in_both_dialects(served):
    trainer, sock, ctx, d = served
    sub = ctx.socket(zmq.SUB)
    sub.linger = 0
    sub.subscribe(b"")
    sub.connect(f"ipc://{d}/s/pub.sock")
    try:
        # the slow joiner: poke until our subscription is live (a new value each time, since
        # setting an option to the value it has publishes nothing)
        pokes = iter(range(1, 10_000))

        def seen_update():
            value = 2 + next(pokes) / 1000
            request(sock, "set", properties={"name": "w", "options": {"graceful_timeout": value}})
            return sub.poll(200)

        wait_for(seen_update, what="the first event")
        while sub.poll(100):
            sub.recv_multipart()
        pid = trainer.get_show("w").flies[0].pid
        os.kill(pid, 9)
        got = {}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not {"watcher.w.reap", "watcher.w.spawn"} <= set(got):
            if sub.poll(200):
                topic, data = sub.recv_multipart()
                got.setdefault(topic.decode(), json.loads(data))
        ours, theirs = got["show.w.reap"], got["watcher.w.reap"]
        assert ours["fly_pid"] == pid and ours["signal"] == 9
        assert theirs["process_pid"] == pid and theirs["exit_code"] == -9
        assert set(got["watcher.w.spawn"]) >= {"process_pid", "time"}
        assert got["show.w.spawn"]["fly_id"] == 1
    finally:
        sub.close()


def test_curve_authentication():
    with short_dir() as d:
        gen_keys(f"{d}/keys")
        server, client_keys = keys_in(f"{d}/keys")
        trainer = Trainer(endpoint="tcp://127.0.0.1:0")
        trainer.add_show("w", "sleep 60", numflies=1, graceful_timeout=2)
        trainer.plugins.append(Controller(keys=server))
        trainer.start(background=True)
        try:
            ep = trainer.plugins[0].bound["endpoint"]
            # no key at all: no reply, and the command does not run
            with Client(ep, timeout=0.5) as client:
                with pytest.raises(UnreachableError, match="requires CurveZMQ"):
                    client.command("incr", name="w")
            # a key the daemon does not know
            other_pub, other_sec = zmq.auth.create_certificates(d, "other")
            from circus._keys import client_keys as ck

            stranger = ck(other_sec, f"{d}/keys/server.key")
            with Client(ep, timeout=0.5, keys=stranger) as client:
                with pytest.raises(UnreachableError, match="refused this client's key"):
                    client.command("incr", name="w")
            assert trainer.get_show("w").numflies == 1
            # the right key
            with Client(ep, keys=f"{d}/keys") as client:
                assert client.command("incr", name="w")["numflies"] == 2
        finally:
            trainer.stop()


def _latency(client: Client, n: int = 200) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        client.command("numshows")
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def test_round_trip_latency(served, capsys):
    trainer, sock, ctx, d = served
    with Client(f"ipc://{d}/s/ctl.sock") as client:
        ipc = _latency(client)
    with short_dir() as kd:
        gen_keys(kd)
        server, _ = keys_in(kd)
        t2 = Trainer(endpoint="tcp://127.0.0.1:0")
        t2.plugins.append(Controller(keys=server))
        t2.start(background=True)
        try:
            with Client(t2.plugins[0].bound["endpoint"], keys=kd) as client:
                tcp = _latency(client)
        finally:
            t2.stop()
    with capsys.disabled():
        print(f"\n  command round trip, median of 200: ipc {ipc:.3f} ms, tcp+CURVE {tcp:.3f} ms")
    assert ipc < 50 and tcp < 50


def test_concurrent_clients_from_threads(served):
    trainer, sock, ctx, d = served
    errors = []
    with Client(f"ipc://{d}/s/ctl.sock") as client:
        def work():
            try:
                for _ in range(20):
                    assert client.command("status", name="w") == {"status": "active"}
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors
