"""Fuzz the control socket: whatever arrives, the reply is well-formed (or there is none) and
the daemon keeps serving. Commands that could spawn or stop things are left out."""

from __future__ import annotations

import json

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _helpers_control import recv_id, request, short_dir
from circus import Trainer

FIXTURE = HealthCheck.function_scoped_fixture  # the module fixture is meant to be shared

# ZeroMQ's I/O thread (re)connects the shared DEALER behind our back, with a new socket fd
# each time (the daemon drops a peer that sends a bad frame): the module fixture closes them.
pytestmark = pytest.mark.allow_fd_growth
SAFE = ["list", "status", "numshows", "numflies", "numwatchers", "numprocesses", "options",
        "get", "stats", "globaloptions", "snapshot", "logs", "dstats", "listsockets",
        "nosuch", "", "LIST", "status ", "rmdir"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids,
                                                              max_size=4),
    max_leaves=12,
)
properties = st.dictionaries(
    st.sampled_from(["name", "nb", "keys", "options", "pid", "wid", "lines", "stream",
                     "process", "extended", "waiting", "match"]) | st.text(max_size=8),
    st.sampled_from(["w", "nosuch", "*"]) | json_values, max_size=5,
)
requests = st.fixed_dictionaries(
    {"command": st.sampled_from(SAFE) | json_values},
    optional={"id": st.text(max_size=12) | json_values, "properties": properties | json_values,
              "msg_type": st.sampled_from(["call", "cast"]) | json_values},
)


@pytest.fixture(scope="module")
def served():
    with short_dir() as d:
        ep = f"ipc://{d}/s/ctl.sock"
        trainer = Trainer(endpoint=ep)
        trainer.add_show("w", "sleep 60", numflies=1, graceful_timeout=1)
        trainer.start(background=True)
        ctx = zmq.Context()
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.connect(ep)
        try:
            yield trainer, sock
        finally:
            sock.close()
            ctx.term()
            trainer.stop()


def _check(reply: dict, sent_id) -> None:
    assert isinstance(reply["time"], float)
    if reply["status"] == "error":
        assert isinstance(reply["reason"], str) and reply["reason"]
        assert reply["errno"] in range(7)
    assert reply["id"] == sent_id or reply["id"] is None


def _healthy(sock) -> None:
    reply = request(sock, "status", properties={"name": "w"})
    assert reply is not None and reply["status"] == "active"


@settings(max_examples=250, deadline=None, suppress_health_check=[FIXTURE])
@given(msg=requests)
def test_fuzzed_requests(served, msg):
    trainer, sock = served
    sock.send(json.dumps(msg).encode())
    cast = msg.get("msg_type") == "cast"
    replies = []
    while sock.poll(0 if cast else 5000):
        replies.append(json.loads(sock.recv()))
        if not cast:
            break
    if cast:
        assert replies == [] or all(r["status"] == "error" for r in replies)
    else:
        assert len(replies) == 1, msg
        _check(replies[0], msg.get("id") if isinstance(msg.get("id"), str | int) else None)
    _healthy(sock)


@settings(max_examples=100, deadline=None, suppress_health_check=[FIXTURE])
@given(frames=st.lists(st.binary(max_size=64), min_size=1, max_size=4))
def test_fuzzed_frames(served, frames):
    trainer, sock = served
    sock.send_multipart(frames)
    if len(frames) == 1 or (len(frames) == 2 and frames[0] == b""):
        assert sock.poll(5000)
        parts = sock.recv_multipart()
        reply = json.loads(parts[-1])
        assert reply["status"] in ("ok", "error", "active")
    else:
        assert sock.poll(5000)
        reply = json.loads(sock.recv())
        assert reply["errno"] == 6 and "expected one JSON frame" in reply["reason"]
    while sock.poll(0):
        sock.recv()
    _healthy(sock)
    assert recv_id(sock, "never", timeout=0) is None
