"""The measurements, each taken from outside on a running ``Daemon``.

Shared by ``run.py`` (ours against Circus and Supervisor) and ``respawn.py`` (ours alone).
Every wait has a deadline and raises ``TimeoutError`` past it; the ``Daemon`` context then
kills everything.
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
from _managers import Daemon, Manager, Workload, sleeper, stubborn, writer
from _procs import alive, ignores_sigterm, wait_for

MIB = 1 << 20


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(samples)
    rank = max(1, round(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def time_to_alive(daemon: Daemon, count: int, timeout: float) -> float:
    """Seconds from just before the manager's Popen until ``count`` workers run."""

    def enough() -> bool:
        if not daemon.running():
            raise RuntimeError(f"{daemon.manager.name} exited:\n{daemon.log_tail()}")
        return len(daemon.census.scan()) >= count

    wait_for(enough, timeout, interval=0.001)
    return time.perf_counter() - daemon.started


def respawn_latencies(
    daemon: Daemon, kills: int, timeout: float, max_gap: float = 1.0, seed: int = 0
) -> list[float]:
    """SIGKILL a random worker ``kills`` times; seconds until the count is back with a new pid.

    Kills are spaced by a random 10 ms..``max_gap`` so they land at a random phase of any
    periodic check a manager runs (Circus and Supervisor both tick once a second).
    """
    census = daemon.census
    target = daemon.workload.numprocs
    rng = random.Random(seed)
    latencies = []
    for _ in range(kills):
        census.verify()
        wait_for(lambda: len(census.scan()) >= target, timeout)
        before = set(census.workers)
        victim = rng.choice(sorted(before))
        start = time.perf_counter()
        os.kill(victim, signal.SIGKILL)
        census.forget(victim)

        def back(before: set[int] = before) -> bool:
            workers = census.scan()
            return len(workers) >= target and bool(workers - before)

        wait_for(back, timeout, interval=0.0002)
        latencies.append(time.perf_counter() - start)
        time.sleep(rng.uniform(0.01, max(0.01, max_gap)))
    return latencies


def _cpu_seconds(pid: int) -> float:
    """On-CPU time of all the process's threads, in ns resolution from schedstat."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e9


def idle_cpu(daemon: Daemon, seconds: float) -> dict[str, float]:
    """The manager's CPU use over ``seconds`` of doing nothing, in % of one core."""
    proc = psutil.Process(daemon.pid)
    before = proc.cpu_times()
    sched_before = _cpu_seconds(daemon.pid)
    start = time.perf_counter()
    time.sleep(seconds)
    wall = time.perf_counter() - start
    after = proc.cpu_times()
    sched = _cpu_seconds(daemon.pid) - sched_before
    ticks = (after.user + after.system) - (before.user + before.system)
    return {"idle_cpu_pct": 100 * sched / wall, "idle_cpu_ticks_pct": 100 * ticks / wall}


def memory(daemon: Daemon) -> dict[str, float]:
    """RSS in MB of the manager process, of its helper children, and of both together."""
    rss = psutil.Process(daemon.pid).memory_info().rss
    helpers = 0
    for pid in daemon.census.helpers():
        try:
            helpers += psutil.Process(pid).memory_info().rss
        except psutil.Error:
            continue
    return {
        "rss_mb": rss / MIB,
        "helper_rss_mb": helpers / MIB,
        "total_rss_mb": (rss + helpers) / MIB,
    }


def stop_time(daemon: Daemon, timeout: float) -> float:
    """SIGTERM the manager; seconds until it has exited and every worker is gone."""
    workers = set(daemon.census.verify())
    start = time.perf_counter()
    daemon.popen.send_signal(signal.SIGTERM)

    def gone() -> bool:
        workers.difference_update([pid for pid in workers if not alive(pid)])
        return not workers and daemon.popen.poll() is not None

    wait_for(gone, timeout, interval=0.001)
    return time.perf_counter() - start


def log_throughput(daemon: Daemon, expected: int, timeout: float) -> dict[str, float]:
    """Seconds from the writer's start until ``expected`` bytes are in its log file."""
    path = daemon.workload.stdout_file
    wait_for(lambda: daemon.census.scan(), 30, interval=0.0002)
    start = time.perf_counter()

    def written() -> bool:
        try:
            return os.path.getsize(path) >= expected
        except OSError:
            return False

    try:
        wait_for(written, timeout, interval=0.001)
        seconds = time.perf_counter() - start
    except TimeoutError:
        seconds = float("nan")
    stop_time(daemon, 30)  # let the manager flush and close the file
    size = os.path.getsize(path) if os.path.exists(path) else 0
    return {"output_s": seconds, "output_mb": size / MIB, "output_mb_s": expected / MIB / seconds}


def devnull_time(megabytes: int) -> float:
    """Seconds for the same writer to push its output straight into /dev/null."""
    start = time.perf_counter()
    subprocess.run(writer(megabytes, then_sleep=False), stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


# -- scenarios: one fresh daemon each, returning {metric: value} ------------------------------


def fleet(
    manager: Manager, n: int, idle_seconds: float, kills: int = 0, max_gap: float = 1.0
) -> dict[str, float]:
    """N sleepers: time to alive, idle CPU, RSS, optional respawns, then time to stop."""
    with Daemon(manager, Workload(sleeper(), n)) as daemon:
        result = {"alive_s": time_to_alive(daemon, n, timeout=60 + n * 0.2)}
        time.sleep(2)  # let start-up work settle before calling it idle
        result |= idle_cpu(daemon, idle_seconds)
        result |= memory(daemon)
        if kills:
            samples = respawn_latencies(daemon, kills, timeout=15, max_gap=max_gap)
            result |= respawn_summary(samples)
        result["stop_s"] = stop_time(daemon, timeout=60)
        return result


def respawn(manager: Manager, n: int, kills: int) -> dict[str, float | list[float]]:
    """N sleepers; latency of ``kills`` SIGKILL-and-respawn cycles."""
    with Daemon(manager, Workload(sleeper(), n)) as daemon:
        alive_s = time_to_alive(daemon, n, timeout=60 + n * 0.2)
        time.sleep(0.5)
        samples = respawn_latencies(daemon, kills, timeout=15)
        return {"alive_s": alive_s, **respawn_summary(samples)}


def respawn_summary(samples: list[float]) -> dict[str, float | list[float]]:
    ms = [s * 1000 for s in samples]
    return {
        "respawn_p50_ms": statistics.median(ms),
        "respawn_p95_ms": percentile(ms, 95),
        "respawn_max_ms": max(ms),
        "respawn_samples_ms": ms,
    }


def stubborn_stop(manager: Manager, n: int, graceful: float) -> dict[str, float]:
    """N workers that ignore SIGTERM; time for the manager to stop (graceful, then SIGKILL)."""
    with Daemon(manager, Workload(stubborn(), n, graceful_timeout=graceful)) as daemon:
        time_to_alive(daemon, n, timeout=60)
        wait_for(lambda: all(ignores_sigterm(pid) for pid in daemon.census.workers), 30)
        return {"stop_s": stop_time(daemon, timeout=graceful + 30)}


def output(manager: Manager, megabytes: int, timeout: float) -> dict[str, float]:
    """One writer of ``megabytes`` MiB through the manager into a log file, vs /dev/null."""
    with tempfile.TemporaryDirectory(prefix="bench-out-") as tmp:
        log = Path(tmp) / "out.log"
        workload = Workload(writer(megabytes), 1, stdout_file=log)
        with Daemon(manager, workload, workdir=Path(tmp)) as daemon:
            result = log_throughput(daemon, megabytes * MIB, timeout)
    baseline = devnull_time(megabytes)
    result["devnull_s"] = baseline
    result["output_ratio"] = baseline / result["output_s"]
    return result
