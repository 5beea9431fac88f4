"""Two circusd "hosts" and one notebook driving both.

Where the machine permits (root, `ip netns`), each circusd runs in a network namespace of its
own, reached over a veth pair at 10.231.x.2, with CurveZMQ on tcp://. Elsewhere the two run
on 127.0.0.2 and 127.0.0.3. A notebook executed by nbclient attaches to both with
`circus.connect`, scales a show on one and sees the events of the other (and, when
circus.models is there, a TrainerModel of each remote follows along).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys

import pytest

from _helpers_control import ROOT, Daemon, short_dir

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

pytestmark = [pytest.mark.slow, pytest.mark.allow_fd_growth]  # nbclient caches a loop


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def _netns_hosts(tag: str) -> tuple[list[str], list[str | None], list[str]] | None:
    """Make two namespaces joined to us by veth pairs; None if the machine does not let us."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return None
    made_ns: list[str] = []
    made_links: list[str] = []
    try:
        hosts = []
        for i in range(2):
            ns, host_if, ns_if = f"cx{tag}{i}", f"cxh{tag}{i}", f"cxn{tag}{i}"
            net = f"10.231.{int(tag, 16) % 100 * 2 + i}"
            _ip("netns", "add", ns)
            made_ns.append(ns)
            _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
            made_links.append(host_if)
            _ip("link", "set", ns_if, "netns", ns)
            _ip("addr", "add", f"{net}.1/24", "dev", host_if)
            _ip("link", "set", host_if, "up")
            _ip("netns", "exec", ns, "ip", "addr", "add", f"{net}.2/24", "dev", ns_if)
            _ip("netns", "exec", ns, "ip", "link", "set", ns_if, "up")
            _ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
            hosts.append(f"{net}.2")
        return hosts, list(made_ns), made_links
    except (subprocess.CalledProcessError, OSError):
        _teardown(made_ns, made_links)
        return None


def _teardown(namespaces: list[str], links: list[str]) -> None:
    for link in links:
        subprocess.run(["ip", "link", "del", link], capture_output=True, timeout=30)
    for ns in namespaces:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


@pytest.fixture
def two_hosts():
    tag = f"{random.randrange(16**3):03x}"
    made = _netns_hosts(tag)
    if made is None:
        hosts, namespaces, links = ["127.0.0.2", "127.0.0.3"], [None, None], []
    else:
        hosts, namespaces, links = made
    try:
        yield hosts, namespaces
    finally:
        _teardown([n for n in namespaces if n], links)


CONFIG = """
[circus]
endpoint = tcp://{host}:{port}
pubsub_endpoint = tcp://{host}:{pubport}
keys_dir = {keys}

[show:web]
cmd = sleep 60
numflies = 1
graceful_timeout = 1

[show:ticker]
# a fly that exits every 0.3 s: a steady stream of reap/spawn events on this host
cmd = sleep 0.3
numflies = 1
within = 0.1
"""

NOTEBOOK = [
    """
import json, time
import circus
a = circus.connect(ENDPOINTS[0], keys=KEYS)
b = circus.connect(ENDPOINTS[1], keys=KEYS)
events = {"a": [], "b": []}
a.subscribe("show.", lambda t, p: events["a"].append(t))
b.subscribe("show.", lambda t, p: events["b"].append(t))
(a.connection_state, b.connection_state)
""",
    """
def wait(pred, timeout=20):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)

wait(lambda: "show.ticker.reap" in events["b"])  # B's own life, seen from here
a.incr("web", 2)                                  # scale A
wait(lambda: events["a"].count("show.web.spawn") >= 2)
result = {"a_flies": a.numflies("web"), "b_shows": b.list(),
          "b_events": sorted(set(events["b"])), "a_events": sorted(set(events["a"]))}
""",
    """
try:
    from circus.models import TrainerModel
except ImportError:
    result["model"] = None
else:
    model = TrainerModel(a)
    wait(lambda: model["web"].numflies == 3)
    a.decr("web")
    wait(lambda: model["web"].numflies == 2)
    result["model"] = model["web"].numflies
print("RESULT " + json.dumps(result))
a.close(); b.close()
""",
]


def test_one_notebook_drives_two_hosts(two_hosts):
    hosts, namespaces = two_hosts
    print(f"hosts {hosts} in namespaces {namespaces}")
    with short_dir() as d:
        from circus._keys import gen_keys

        gen_keys(f"{d}/keys")
        daemons = []
        try:
            for i, (host, ns) in enumerate(zip(hosts, namespaces, strict=True)):
                config = CONFIG.format(host=host, port=5555 + 2 * i, pubport=5556 + 2 * i,
                                       keys=f"{d}/keys")
                daemons.append(Daemon(d, config, netns=ns, name=f"host{i}.ini"))
            for daemon in daemons:
                daemon.wait_log("controller listening", timeout=20)
            endpoints = [f"tcp://{h}:{5555 + 2 * i}" for i, h in enumerate(hosts)]
            nb = nbformat.v4.new_notebook()
            setup = f"ENDPOINTS = {endpoints!r}\nKEYS = {f'{d}/keys'!r}\n"
            nb.cells = [nbformat.v4.new_code_cell(setup + NOTEBOOK[0])] + [
                nbformat.v4.new_code_cell(src) for src in NOTEBOOK[1:]]
            client = nbclient.NotebookClient(
                nb, timeout=60, kernel_name="python3",
                resources={"metadata": {"path": ROOT}},
            )
            os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
            client.execute()
            outputs = [o for cell in nb.cells for o in cell.get("outputs", [])]
            text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
            line = next(x for x in text.splitlines() if x.startswith("RESULT "))
            result = json.loads(line[len("RESULT "):])
            assert result["a_flies"] == 3
            assert result["b_shows"] == ["ticker", "web"]
            assert {"show.ticker.reap", "show.ticker.spawn"} <= set(result["b_events"])
            assert "show.web.spawn" in result["a_events"]
            assert result["model"] in (None, 2)
            # each daemon really is in its namespace: the other host's address is not local
            if namespaces[0]:
                here = subprocess.run(["ip", "netns", "exec", namespaces[0], "ip", "-o", "addr"],
                                      capture_output=True, text=True, timeout=30).stdout
                assert hosts[0] in here and hosts[1] not in here
        finally:
            for daemon in daemons:
                daemon.stop()
    assert sys.executable  # the kernel ran on this interpreter's venv (kernel "python3")
