"""Kernel responsiveness with a live dashboard (issue 3).

A real kernel (jupyter_client, this venv's python) runs `%load_ext circus`, a show of 50
flies that each exit every 0.5 s, and `%circus dashboard`. Then, for `--seconds` seconds, we
send a trivial cell (`1+1`) every `--gap` seconds and time each execute_request -> execute_reply
round trip, while a thread counts everything the kernel sends on iopub.

Counted iopub messages: all of them except `status` (busy/idle) and the `execute_input` /
`execute_result` of our own `1+1` cells, i.e. what the dashboard and the kernel send on their
own (comm_msg of the widgets, stream output, ...). Targets: p99 <= 50 ms, <= 30 msgs/s.

    python bench/kernel.py [--seconds 20] [--numflies 50] [--gap 0.02] [--out bench/results]

Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import queue
import statistics
import sys
import threading
import time
from typing import Any

from jupyter_client import KernelManager

P99_TARGET_MS = 50.0
IOPUB_TARGET = 30.0

SETUP = """
%load_ext circus
import sys, circus._ipython
_t = circus._ipython.default_trainer(create=True)
_t.add_show("churn", f"{{sys.executable}} -c 'import time; time.sleep({life})'",
            numflies={numflies}, within=0.1, graceful_timeout=1)
%circus dashboard
"""


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def _run_cell(kc: Any, code: str, timeout: float = 60.0) -> dict[str, Any]:
    msg_id = kc.execute(code)
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        reply = kc.get_shell_msg(timeout=left)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply
    raise TimeoutError(f"no reply to {code!r} within {timeout} s")


class IopubCounter(threading.Thread):
    """Reads iopub until stopped; counts (time, msg_type) except the excluded ones."""

    def __init__(self, kc: Any) -> None:
        super().__init__(daemon=True, name="iopub-counter")
        self.kc = kc
        self.ours: set[str] = set()  # msg_ids of our timed cells
        self.counted: list[tuple[float, str]] = []
        self.stop_event = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                msg = self.kc.get_iopub_msg(timeout=0.1)
            except queue.Empty:
                continue
            kind = msg["header"]["msg_type"]
            parent = msg["parent_header"].get("msg_id")
            if kind == "status":
                continue
            with self.lock:
                if kind in ("execute_input", "execute_result") and parent in self.ours:
                    continue
                self.counted.append((time.monotonic(), kind))

    def window(self, t0: float, t1: float) -> list[str]:
        with self.lock:
            return [kind for t, kind in self.counted if t0 <= t < t1]


def measure(seconds: float, numflies: int, gap: float, life: float) -> dict[str, Any]:
    km = KernelManager(kernel_cmd=[sys.executable, "-m", "ipykernel_launcher", "-f",
                                   "{connection_file}"])
    km.start_kernel(cwd=os.getcwd())
    kc = km.client()
    kc.start_channels()
    counter = IopubCounter(kc)
    try:
        kc.wait_for_ready(timeout=60)
        counter.start()
        reply = _run_cell(kc, SETUP.format(numflies=numflies, life=life))
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"setup failed: {reply['content']}")
        # let the show reach its churn before timing
        _run_cell(kc, "import time as _time\n_d = _time.monotonic() + 30\n"
                      f"while len(_t.get_show('churn')) < {numflies} and _time.monotonic() < _d:"
                      "\n    _time.sleep(0.05)")
        time.sleep(2.0)  # the dashboard's first flushes and samples are past
        restarts0 = _restarts(kc)
        rtts: list[float] = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            msg_id = kc.execute("1+1")
            with counter.lock:
                counter.ours.add(msg_id)
            sent = time.monotonic()
            while True:
                reply = kc.get_shell_msg(timeout=30)
                if reply["parent_header"].get("msg_id") == msg_id:
                    break
            rtts.append((time.monotonic() - sent) * 1000)
            time.sleep(gap)
        t1 = time.monotonic()
        restarts1 = _restarts(kc)
        time.sleep(0.3)  # iopub messages of the last cells arrive
        kinds = counter.window(t0, t1)
        _run_cell(kc, "%unload_ext circus")
    finally:
        counter.stop_event.set()
        if counter.is_alive():
            counter.join(2)
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    elapsed = t1 - t0
    by_type = collections.Counter(kinds)
    return {
        "seconds": round(elapsed, 2), "cells": len(rtts), "numflies": numflies, "gap": gap,
        "fly_life": life, "respawns_per_s": round((restarts1 - restarts0) / elapsed, 1),
        "rtt_ms": {"p50": round(statistics.median(rtts), 2),
                   "p99": round(_percentile(rtts, 99), 2), "max": round(max(rtts), 2)},
        "iopub_per_s": round(len(kinds) / elapsed, 1),
        "iopub_by_type_per_s": {k: round(v / elapsed, 1) for k, v in by_type.most_common()},
    }  # fmt: skip


def _restarts(kc: Any) -> int:
    msg_id = kc.execute("", silent=False, user_expressions={"r": "_t.get_show('churn').restarts"})
    while True:
        reply = kc.get_shell_msg(timeout=30)
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    data = reply["content"]["user_expressions"]["r"]
    return int(data["data"]["text/plain"]) if data.get("status") == "ok" else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--numflies", type=int, default=50)
    parser.add_argument("--gap", type=float, default=0.02, help="pause between cells (s)")
    parser.add_argument("--life", type=float, default=0.5, help="seconds each fly lives")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)
    result = measure(args.seconds, args.numflies, args.gap, args.life)
    rtt = result["rtt_ms"]
    ok_rtt = rtt["p99"] <= P99_TARGET_MS
    ok_iopub = result["iopub_per_s"] <= IOPUB_TARGET
    result.update(date=time.strftime("%Y-%m-%dT%H:%M:%S"), cpus=os.cpu_count(),
                  python=platform.python_version(),
                  targets={"p99_ms": P99_TARGET_MS, "iopub_per_s": IOPUB_TARGET},
                  passed=ok_rtt and ok_iopub)
    rows = [("metric", "value", "target", ""),
            ("cells timed", str(result["cells"]), "", ""),
            ("respawns/s", str(result["respawns_per_s"]), "", ""),
            ("round trip p50 ms", f"{rtt['p50']:.1f}", "", ""),
            ("round trip p99 ms", f"{rtt['p99']:.1f}", f"<= {P99_TARGET_MS:g}",
             "PASS" if ok_rtt else "MISS"),
            ("round trip max ms", f"{rtt['max']:.1f}", "", ""),
            ("iopub msgs/s", f"{result['iopub_per_s']:.1f}", f"<= {IOPUB_TARGET:g}",
             "PASS" if ok_iopub else "MISS")]
    rows += [(f"  {kind}/s", f"{rate:.1f}", "", "")
             for kind, rate in result["iopub_by_type_per_s"].items()]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(c.ljust(wd) for c, wd in zip(row, widths, strict=True)).rstrip())
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "kernel.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    print(f"written {path}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
