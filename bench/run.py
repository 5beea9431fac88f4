"""Ours against Circus 0.19 and Supervisor 4.3, measured from outside, in one run.

    python bench/run.py                 # full run, ~20 minutes
    python bench/run.py --quick         # ~2 minutes: fewer kills, no N=500/1000, 50 MB output
    python bench/run.py --only ours,circus --repeats 5 --out bench/results

Each scenario starts a fresh daemon; its repetitions alternate between the managers (the order
rotates every repetition) so that a slow moment of the machine hits all of them alike.
Medians over the repetitions go into the table; every sample goes into results.json.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import _measure as measure
from _managers import BENCH_DIR, MANAGERS, Manager
from _report import Metric, print_table, summarize, write_chart, write_json
from peers import PEERS, ensure


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable[[Manager], dict]


def plan(quick: bool) -> list[Scenario]:
    kills = 10 if quick else 30
    megabytes = 50 if quick else 500
    scenarios = [
        Scenario("fleet200", lambda m: measure.fleet(m, 200, idle_seconds=10)),
        Scenario("respawn20", lambda m: measure.respawn(m, 20, kills)),
        Scenario("stubborn20", lambda m: measure.stubborn_stop(m, 20, graceful=2.0)),
        Scenario("output", lambda m: measure.output(m, megabytes, timeout=180)),
    ]
    if not quick:
        scenarios += [
            Scenario("respawn500", lambda m: measure.respawn(m, 500, kills)),
            Scenario("scale1000", lambda m: measure.respawn(m, 1000, 15)),
        ]
    return scenarios


def metrics(quick: bool) -> list[Metric]:
    megabytes = 50 if quick else 500
    faster, less, smaller = ("faster", "slower"), ("less", "more"), ("smaller", "larger")
    found = [
        Metric("fleet200.alive_s", "1. start to 200 alive", "s", "lower", faster),
        Metric("respawn20.respawn_p50_ms", "2. respawn p50, N=20", "ms", "lower", faster),
        Metric("respawn20.respawn_p95_ms", "2. respawn p95, N=20", "ms", "lower", faster),
        Metric("respawn20.respawn_max_ms", "2. respawn max, N=20", "ms", "lower", faster),
        Metric("respawn500.respawn_p50_ms", "2. respawn p50, N=500", "ms", "lower", faster),
        Metric("respawn500.respawn_p95_ms", "2. respawn p95, N=500", "ms", "lower", faster),
        Metric("respawn500.respawn_max_ms", "2. respawn max, N=500", "ms", "lower", faster),
        Metric("fleet200.idle_cpu_pct", "3. idle CPU, 200 procs", "% core", "lower", less),
        Metric("fleet200.rss_mb", "4. RSS, 200 procs", "MB", "lower", smaller),
        Metric("fleet200.total_rss_mb", "4. RSS + helpers, 200 procs", "MB", "lower", smaller),
        Metric("fleet200.stop_s", "5. stop 200 (exit on TERM)", "s", "lower", faster),
        Metric("stubborn20.stop_s", "5. stop 20 (ignore TERM, 2 s)", "s", "lower", faster),
        Metric(
            "output.output_ratio",
            f"6. {megabytes} MB log: /dev/null time / time",
            "ratio",
            "higher",
            faster,
        ),
        Metric("output.output_s", f"6. {megabytes} MB to log file", "s", "lower", faster),
        Metric("output.output_mb_s", "6. log throughput", "MB/s", "higher", faster),
        Metric("output.output_mb", "6. MB that reached the log", "MB", ""),
        Metric("scale1000.alive_s", "7. start to 1000 alive", "s", "lower", faster),
        Metric("scale1000.respawn_p50_ms", "7. respawn p50, N=1000", "ms", "lower", faster),
    ]
    names = {s.name for s in plan(quick)}
    return [m for m in found if m.scenario in names]


def ours_importable() -> str | None:
    """None if bench/_ours.py can import our package, else the error."""
    done = subprocess.run(
        [sys.executable, str(BENCH_DIR / "_ours.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return None if done.returncode == 0 else (done.stderr.strip().splitlines() or ["?"])[-1]


def run_all(scenarios: list[Scenario], managers: list[str], repeats: int) -> dict:
    results: dict[str, dict[str, list[dict]]] = {}
    for scenario in scenarios:
        runs = results.setdefault(scenario.name, {name: [] for name in managers})
        for rep in range(repeats):
            shift = rep % len(managers)
            for name in managers[shift:] + managers[:shift]:
                start = time.perf_counter()
                try:
                    sample = scenario.run(MANAGERS[name]())
                except Exception as exc:  # one failure must not end the whole run
                    sample = {"error": f"{type(exc).__name__}: {exc}"}
                    traceback.print_exc(limit=2)
                sample["wall_s"] = time.perf_counter() - start
                runs[name].append(sample)
                brief = sample.get("error") or ", ".join(
                    f"{k}={measure_fmt(v)}"
                    for k, v in sample.items()
                    if not isinstance(v, list) and k != "wall_s"
                )
                print(
                    f"  {scenario.name:<11} #{rep + 1} {name:<10} {sample['wall_s']:5.1f}s  "
                    f"{brief}",
                    flush=True,
                )
    return results


def measure_fmt(value: float) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def versions(managers: list[str]) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {name: PEERS[name].version for name in managers if name in PEERS}
    if "ours" in managers:
        try:
            found["ours"] = f"circus-notebook {version('circus-notebook')}"
        except PackageNotFoundError:
            found["ours"] = "circus-notebook (work tree)"
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a ~2 minute smoke run")
    parser.add_argument(
        "--only",
        default="ours,circus,supervisor",
        help="comma-separated managers (default: all three)",
    )
    parser.add_argument("--repeats", type=int, help="repetitions per measurement (3; quick 1)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    args = parser.parse_args(argv)

    managers = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in managers if name not in MANAGERS]
    if unknown or not managers:
        parser.error(f"--only takes names from {', '.join(MANAGERS)}")
    if "ours" in managers and (error := ours_importable()):
        print(f"ours is not runnable ({error}); leaving it out")
        managers.remove("ours")
    if not managers:
        return 1
    ensure([name for name in managers if name in PEERS])
    repeats = args.repeats or (1 if args.quick else 3)

    started = time.perf_counter()
    print(f"managers: {', '.join(managers)}; repeats: {repeats}; cpus: {os.cpu_count()}")
    scenarios = plan(args.quick)
    results = run_all(scenarios, managers, repeats)
    summary = summarize(metrics(args.quick), results, managers)
    print()
    table = print_table(summary, managers)
    payload = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "python": sys.version,
        "platform": platform.platform(),
        "quick": args.quick,
        "repeats": repeats,
        "managers": managers,
        "versions": versions(managers),
        "wall_s": time.perf_counter() - started,
        "metrics": summary,
        "scenarios": results,
        "table": table,
    }
    write_json(args.out / "results.json", payload)
    print(f"\nwrote {args.out / 'results.json'}")
    if write_chart(args.out / "chart.png", summary, managers):
        print(f"wrote {args.out / 'chart.png'}")
    print(f"total {payload['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
